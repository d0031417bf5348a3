"""The frozen synthetic splits of the shot-detection bench: specs, ground truth and their encoded videos.

``splits.json`` (frozen before the detector was tuned) holds, per split, the seeds, the encoding and a
SHA-256 of the ground truth; ``load_split`` refuses to run when ``vidcap.dev.cuts`` no longer draws
the same ground truth (a changed generator would silently change the test set).
"""
from __future__ import annotations

import hashlib
import json
from multiprocessing import Pool
from pathlib import Path

from vidcap.dev import cuts

HERE = Path(__file__).resolve().parent
SPLITS = HERE / "splits.json"


def specs(split: dict) -> list:
    return [cuts.make_spec(seed, n_shots=split["n_shots"], fps=split["fps"]) for seed in split["seeds"]]


def truth_hash(spec_list) -> str:
    blob = json.dumps([s.truth() for s in spec_list], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_split(name: str) -> tuple[dict, list]:
    """(split settings, specs); RuntimeError when the generator no longer matches the frozen hash."""
    split = json.loads(SPLITS.read_text())["splits"][name]
    spec_list = specs(split)
    got = truth_hash(spec_list)
    if got != split["truth_sha256"]:
        raise RuntimeError(f"split {name!r}: ground truth hash {got} != frozen {split['truth_sha256']}: "
                           "vidcap/dev/cuts.py changed; re-freeze (new GENERATOR_VERSION) instead")
    source = cuts.photo_source()
    if source != split["photo_source"]:
        raise RuntimeError(f"split {name!r} was frozen with {split['photo_source']!r}, this machine has "
                           f"{source!r} (pip install the bench extra: scikit-image)")
    return split, spec_list


def _write(args):
    spec, path, split = args
    if not Path(path).exists():
        cuts.write_video(spec, path, split["width"], split["height"], split["crf"], split["preset"])
    return path


def videos(name: str, out: Path, jobs: int = 2) -> tuple[dict, list, list[Path]]:
    """Generate (once) the split's videos under ``out/<name>/``; (split, specs, paths)."""
    split, spec_list = load_split(name)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(s, str(folder / f"{s.name}.mp4"), split) for s in spec_list]
    if jobs > 1:
        with Pool(jobs) as pool:
            paths = pool.map(_write, todo, chunksize=1)
    else:
        paths = [_write(t) for t in todo]
    return split, spec_list, [Path(p) for p in paths]


def freeze(out: Path = SPLITS) -> dict:
    """Write ``splits.json`` (run once, before tuning)."""
    base = {"fps": 24, "n_shots": 12, "width": 640, "height": 360, "crf": 23, "preset": "veryfast"}
    splits = {"test": {**base, "seeds": list(range(1000, 1028))},
              # the first six test videos again, at 720p: the speed measurement (and accuracy at 720p)
              "test720": {**base, "width": 1280, "height": 720, "seeds": list(range(1000, 1006))},
              "dev": {**base, "seeds": list(range(2000, 2012))}}
    for split in splits.values():
        split["truth_sha256"] = truth_hash(specs(split))
        split["photo_source"] = cuts.photo_source()
    doc = {"generator": "vidcap.dev.cuts", "generator_version": cuts.GENERATOR_VERSION,
           "note": "frozen before the detector was tuned; tune on 'dev' only, report 'test' and 'test720' only",
           "splits": splits}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def add_split(name: str, seeds: list[int], out: Path = SPLITS, **overrides) -> dict:
    """Add one split to ``splits.json`` (the others untouched), frozen the same way (seeds, encoding, a
    SHA-256 of the ground truth); run once, before any tuning the split is meant to judge."""
    doc = json.loads(out.read_text())
    if name in doc["splits"]:
        raise ValueError(f"split {name!r} is frozen already")
    if doc["generator_version"] != cuts.GENERATOR_VERSION:
        raise RuntimeError("generator version changed: re-freeze every split instead")
    split = {"fps": 24, "n_shots": 12, "width": 640, "height": 360, "crf": 23, "preset": "veryfast",
             **overrides, "seeds": list(seeds)}
    split["truth_sha256"] = truth_hash(specs(split))
    split["photo_source"] = cuts.photo_source()
    doc["splits"][name] = split
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return split


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--add"]:  # data.py --add NAME FIRST_SEED STOP_SEED
        print(json.dumps(add_split(sys.argv[2], list(range(int(sys.argv[3]), int(sys.argv[4])))), indent=1))
    else:
        print(json.dumps(freeze(), indent=1))
