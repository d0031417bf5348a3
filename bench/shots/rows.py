"""What one shots source row costs on short inputs: short clips, and manifest rows with a ``start``/``end``.

    .venv/bin/python bench/shots/rows.py                  # 2-, 5- and 10-s inputs, 6 videos of test720 and test, 5 rounds
    .venv/bin/python bench/shots/rows.py --seconds 5 --videos 2 --rounds 3

``run.py --speed`` measures minute-long videos, where what a detection costs once per video does not
show. Here, per input, in one process, each round in a shuffled order (seeded), the least CPU time of
the rounds:

* **clips**: the first ``seconds`` of each video of ``test720`` (720p) and ``test`` (360p), re-encoded as
  the split is (H.264, same CRF and preset; written once into ``bench/out/shots/rows/``): the shots
  stage's ``process_row`` on the clip's row (what the workflow calls per source row, settings checked
  once, as the stage does), against the decode floor of the clip (``run.run_floor``: open, decode every
  frame, close);
* **ranges**: a row of the whole 720p video with ``start``/``end`` around its middle and ``ranges: detect``
  (the shots searched inside the range), against decoding what the range needs (seek to the keyframe
  before ``start``, decode up to ``end``);
* the decode floor twice (the A/A control: how far the measurement moves between identical runs).

Printed: per kind and length, the CPU milliseconds per row of the floor and of the stage, and their
ratio (the same yardstick as the speed table's ``x floor``). CPU time is ``time.process_time()``;
``cv2.setNumThreads(1)``.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import data  # noqa: E402
import run  # noqa: E402

from vidcap.shots.stage import ShotsStage  # noqa: E402

clock = time.process_time


def cut_clip(src: Path, dst: Path, seconds: float, split: dict) -> Path:
    """The first ``seconds`` of ``src`` re-encoded as the split's videos are, written once."""
    import av

    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_suffix(".part.mp4")
    with av.open(str(src)) as inp, av.open(str(part), "w") as out:
        s = inp.streams.video[0]
        o = out.add_stream("libx264", rate=split["fps"])
        o.width, o.height, o.pix_fmt = s.width, s.height, "yuv420p"
        o.options = {"crf": str(split["crf"]), "preset": split["preset"]}
        for k, frame in enumerate(inp.decode(s)):
            if k >= round(seconds * split["fps"]):
                break
            frame.pts = None
            for p in o.encode(frame):
                out.mux(p)
        for p in o.encode():
            out.mux(p)
    part.rename(dst)
    return dst


def range_floor(path: Path, start_s: float, end_s: float) -> None:
    """Decoding what a range needs, with vidcap's decoder settings: seek to the keyframe before
    ``start_s``, decode every frame up to ``end_s``."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        s.codec_context.options = {"skip_loop_filter": "all"}
        tb, first = s.time_base, s.start_time or 0
        c.seek(first + int(Fraction(start_s) / tb), backward=True, any_frame=False, stream=s)
        for frame in c.decode(s):
            if (frame.pts - first) * tb >= end_s:
                break


def measure(cases: list[tuple[str, dict, object]], rounds: int, stage: ShotsStage) -> dict:
    """{(kind, seconds): [floor, again, stage] CPU seconds summed over the inputs}, each input's methods
    run ``rounds`` times in a shuffled order, the least of each kept."""
    order = random.Random(0)
    sums: dict = {}
    for key, row, floor in cases:
        fns = {"floor": floor, "again": floor, "stage": lambda row=row: stage.process_row(dict(row))}
        best = dict.fromkeys(fns, float("inf"))
        for _ in range(rounds):
            labels = list(fns)
            order.shuffle(labels)
            for label in labels:
                t = clock()
                fns[label]()
                best[label] = min(best[label], clock() - t)
        acc = sums.setdefault(key, [0.0, 0.0, 0.0, 0])
        for i, label in enumerate(fns):
            acc[i] += best[label]
        acc[3] += 1
    return sums


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    ap.add_argument("--videos", type=int, default=6, help="videos of each split")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/shots")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    stage = ShotsStage({})
    detect_ranges = ShotsStage({"ranges": "detect"})
    cases: list = []
    for name in ("test720", "test"):
        split, specs, paths = data.videos(name, args.out)
        for spec, path in list(zip(specs, paths, strict=True))[:args.videos]:
            for sec in args.seconds:
                clip = cut_clip(path, args.out / "rows" / f"{name}_{sec:g}s_{spec.name}.mp4", sec, split)
                row = {"row_id": f"{spec.name}-{sec:g}", "_media_path": str(clip), "path": str(clip)}
                cases.append(((f"clip, {split['height']}p", sec), row, lambda clip=clip: run.run_floor(clip)))
    clips = measure(cases, args.rounds, stage)
    ranges: list = []
    split, specs, paths = data.videos("test720", args.out)
    for spec, path in list(zip(specs, paths, strict=True))[:args.videos]:
        middle = spec.num_frames / split["fps"] / 2
        for sec in args.seconds:
            row = {"row_id": f"{spec.name}-r{sec:g}", "_media_path": str(path), "path": str(path),
                   "start": middle - sec / 2, "end": middle + sec / 2}
            ranges.append((("range in a 720p video, ranges: detect", sec), row,
                           lambda path=path, a=row["start"], b=row["end"]: range_floor(path, a, b)))
    found = measure(ranges, args.rounds, detect_ranges)
    print(f"CPU ms per source row, least of {args.rounds} rounds per input, methods shuffled each round:\n")
    print("| input | length | rows | decode floor | shots stage | x floor | A/A |")
    print("|---|---|---|---|---|---|---|")
    for (kind, sec), (floor, again, cost, n) in {**clips, **found}.items():
        print(f"| {kind} | {sec:g} s | {n} | {floor / n * 1e3:.1f} | {cost / n * 1e3:.1f} | "
              f"{cost / floor:.3f}x | {again / floor:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
