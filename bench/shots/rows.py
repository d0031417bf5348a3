"""What one shots source row costs on short inputs: short clips, and manifest rows with a ``start``/``end``.

    .venv/bin/python bench/shots/rows.py                  # 2-, 5- and 10-s inputs, 6 videos of test720 and test, 5 rounds
    .venv/bin/python bench/shots/rows.py --seconds 5 --videos 2 --rounds 3
    .venv/bin/python bench/shots/rows.py --video a.mp4 --seconds 2 --rounds 1   # any video instead

``run.py --speed`` measures minute-long videos, where what a detection costs once per video does not
show. Here, per input, in one process, each round in a shuffled order (seeded), the least CPU time of
the rounds:

* **clips**: the first ``seconds`` of each video of ``test720`` (720p) and ``test`` (360p), or of each
  ``--video``, re-encoded as the split is (H.264, same CRF and preset; ``--video``: CRF 23, veryfast),
  written once into ``<out>/rows/``: the shots stage's ``process_row`` on the clip's row (what the
  workflow calls per source row, settings checked once, as the stage does), against the decode floor
  of the clip (``run.run_floor``: open, decode every frame, close);
* **ranges**: a row of each whole 720p video (or each ``--video``) with ``start``/``end`` around its
  middle and ``ranges: detect`` (the shots searched inside the range), against decoding what the range
  needs (seek to the keyframe before ``start``, decode up to ``end``);
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
from collections.abc import Callable
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
    """The first ``seconds`` of ``src`` re-encoded as the split's videos are (``fps``, ``crf``,
    ``preset``), written once."""
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


def measure(cases: list[tuple[tuple[str, float], dict, Callable[[], object]]], rounds: int,
            stage: ShotsStage) -> dict:
    """{(kind, seconds): [floor, again, stage CPU seconds summed over the inputs, inputs]} for ``cases``
    ``((kind, seconds), row, floor)``, each input's methods run ``rounds`` times in a shuffled order, the
    least of each kept."""
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


def inputs(args) -> list[tuple[str, dict, list[Path], list[float]]]:
    """``(name, encoding, videos, durations)``: the splits' first ``--videos`` videos, or ``--video``."""
    if args.video:
        import av

        out = []
        for path in args.video:
            with av.open(str(path)) as c:
                s = c.streams.video[0]
                fps = s.average_rate or s.guessed_rate
                seconds = float(s.duration * s.time_base) if s.duration else float(c.duration or 0) / 1e6
            out.append(("video", {"fps": fps, "crf": 23, "preset": "veryfast", "height": s.height},
                        [Path(path)], [seconds]))
        return out
    out = []
    for name in ("test720", "test"):
        split, specs, paths = data.videos(name, args.out)
        chosen = list(zip(specs, paths, strict=True))[:args.videos]
        out.append((name, split, [p for _, p in chosen], [s.num_frames / split["fps"] for s, _ in chosen]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    ap.add_argument("--videos", type=int, default=6, help="videos of each split")
    ap.add_argument("--video", type=Path, action="append", help="measure this video instead (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/shots")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    stage = ShotsStage({})
    detect_ranges = ShotsStage({"ranges": "detect"})
    cases: list = []
    ranges: list = []
    sources = inputs(args)
    for name, split, paths, durations in sources:
        for path, duration in zip(paths, durations, strict=True):
            for sec in args.seconds:
                clip = cut_clip(path, args.out / "rows" / f"{name}_{sec:g}s_{path.stem}.mp4", sec, split)
                row = {"row_id": f"{path.stem}-{sec:g}", "_media_path": str(clip), "path": str(clip)}
                cases.append(((f"clip, {split['height']}p", sec), row, lambda clip=clip: run.run_floor(clip)))
                if name == "test" or sec >= duration:  # ranges: the 720p split's videos, or each --video
                    continue
                middle = duration / 2
                row = {"row_id": f"{path.stem}-r{sec:g}", "_media_path": str(path), "path": str(path),
                       "start": middle - sec / 2, "end": middle + sec / 2}
                ranges.append(((f"range in a {split['height']}p video, ranges: detect", sec), row,
                               lambda path=path, a=row["start"], b=row["end"]: range_floor(path, a, b)))
    for (_, row, floor), st in ((cases[0], stage), *(((ranges[0], detect_ranges),) if ranges else ())):
        floor()  # warm up: the imports and the first call's set-up are not a row's cost
        st.process_row(dict(row))
    clips = measure(cases, args.rounds, stage)
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
