"""How many decoded frames to hold before shrinking them (``vidcap.shots.decode.HOLD``), per frame size.

    .venv/bin/python bench/shots/hold.py        # 360p, 540p, 720p, 1080p; 2 dev videos each; holds 1 2 4 6 8; 3 rounds
    .venv/bin/python bench/shots/hold.py --sizes 1280x720 --holds 1 4 --rounds 5 --videos 4

The videos are the first ``--videos`` of the tuning split ``dev``, rendered at each size with the
``test720`` encoding (H.264, CRF 23, veryfast), written once into ``<out>/sizes/<w>x<h>/``. Per video,
in one process, each round in a shuffled order (seeded): the decode floor twice (``run.run_floor``;
the second is the A/A control), and the defaults (``detect_boundaries``) with ``HOLD`` set to each of
``--holds``, held at every size (``HOLD_FROM_BYTES`` 0, ``HOLD_BYTES`` unlimited); the least CPU time
of the rounds is kept. Every hold must give the same boundaries (checked: holding changes no frame).

Printed per size: the size of a decoded frame, the A/A ratio, each hold's CPU time over the floor,
and how many frames ``decode.held_frames`` holds there with the defaults. CPU time is
``time.process_time()``; ``cv2.setNumThreads(1)``.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from multiprocessing import Pool
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import data  # noqa: E402
import run  # noqa: E402

from vidcap.shots import decode  # noqa: E402

clock = time.process_time
SIZES = ["640x360", "960x540", "1280x720", "1920x1080"]


def render(size: str, n: int, out: Path, jobs: int = 2) -> list[Path]:
    """The first ``n`` dev videos at ``size`` (``WxH``), rendered once under ``out/sizes/<size>/``."""
    width, height = (int(x) for x in size.split("x"))
    encoding, _ = data.load_split("test720")
    _, specs = data.load_split("dev")
    folder = out / "sizes" / size
    folder.mkdir(parents=True, exist_ok=True)
    at_size = {**encoding, "width": width, "height": height}
    with Pool(jobs) as pool:
        paths = pool.map(data._write, [(s, str(folder / f"{s.name}.mp4"), at_size) for s in specs[:n]],
                         chunksize=1)
    return [Path(p) for p in paths]


def defaults_holding(hold: int):
    """The defaults with ``hold`` decoded frames held at any frame size."""
    def detect(path: Path):
        saved = decode.HOLD, decode.HOLD_FROM_BYTES, decode.HOLD_BYTES
        decode.HOLD, decode.HOLD_FROM_BYTES, decode.HOLD_BYTES = hold, 0, 1 << 62
        try:
            return run.run_vidcap(path, {})
        finally:
            decode.HOLD, decode.HOLD_FROM_BYTES, decode.HOLD_BYTES = saved
    return detect


def measure(paths: list[Path], holds: list[int], rounds: int) -> dict[str, float]:
    """{method: CPU seconds summed over ``paths``}, each video's least over ``rounds`` shuffled rounds."""
    fns = {"floor": run.run_floor, "again": run.run_floor, **{f"hold {k}": defaults_holding(k) for k in holds}}
    total = dict.fromkeys(fns, 0.0)
    order = random.Random(0)
    for path in paths:
        best = dict.fromkeys(fns, float("inf"))
        found = {}
        for _ in range(rounds):
            labels = list(fns)
            order.shuffle(labels)
            for label in labels:
                t = clock()
                result = fns[label](path)
                best[label] = min(best[label], clock() - t)
                if label.startswith("hold"):
                    found[label] = repr(result)
        if len(set(found.values())) > 1:
            raise SystemExit(f"{path}: the holds gave different boundaries: {found}")
        for label in fns:
            total[label] += best[label]
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=SIZES, help="WxH")
    ap.add_argument("--holds", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    ap.add_argument("--videos", type=int, default=2, help="dev videos per size")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/shots")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    videos = {size: render(size, args.videos, args.out) for size in args.sizes}
    run.run_vidcap(videos[args.sizes[0]][0], {})  # warm up: imports and first-call set-up
    rows = []
    for size, paths in videos.items():
        width, height = (int(x) for x in size.split("x"))
        total = measure(paths, args.holds, args.rounds)
        floor = total["floor"]
        rows.append(f"| {size} | {width * height * 1.5 / 1e6:.2f} | {total['again'] / floor:.3f} | "
                    + " | ".join(f"{total[f'hold {k}'] / floor:.3f}x" for k in args.holds)
                    + f" | {decode.held_frames(width, height)} |")
        print(f"  {size} done", flush=True)
    print(f"\nCPU time over the decode floor, {args.videos} dev videos per size, least of {args.rounds} "
          "rounds per video, methods shuffled each round:\n")
    print("| size | MB a frame | A/A | " + " | ".join(f"hold {k}" for k in args.holds) + " | held by default |")
    print("|---|---|---|" + "---|" * len(args.holds) + "---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
