"""Where the defaults' CPU time above the decode floor goes, step by step, and what this method cannot avoid.

    .venv/bin/python bench/shots/steps.py                # 3 test720 videos (generated when missing), 3 rounds
    .venv/bin/python bench/shots/steps.py --videos 6 --rounds 5
    .venv/bin/python bench/shots/steps.py --video clip.mp4 --rounds 1   # any video

In one process, per video, each round in a shuffled order (seeded), the least CPU time of the rounds:

* plain runs, as ``run.py --speed`` measures them: the decode floor, the read floor (decoding and one
  sum over the rows ``decode.shrink = spread`` samples: fetching the bytes this method looks at, no
  arithmetic on them), and ``detect_boundaries`` with the defaults;
* the same detection with a clock around each step of its loop (``detect_timed``: the loop of
  ``detect.detect_boundaries``, steps in the same order), and around each frame the decoder hands over,
  in it and in the floor: the time inside the decoder;
* each step alone on data already in the CPU caches: its compute (``in_cache``: one decoded frame
  shrunk again and again, one batch converted and analysed again and again, and the video's own
  thumbnails fed again to the fades, dissolves and flash check, whose work depends on what it holds).

Printed: per frame, each step's cost in the pipeline and alone, and three ratios to the decode
floor: the defaults, the read floor, and the floor plus the fetch plus every step's compute (the least
this method costs here unless its steps ran while the frame is still in cache). CPU time is
``time.process_time()``; ``cv2.setNumThreads(1)``.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import data  # noqa: E402
import numpy as np  # noqa: E402
import run  # noqa: E402

from vidcap.shots import decode  # noqa: E402
from vidcap.shots import detect as shots  # noqa: E402
from vidcap.shots.detectors import detectors, thumbnails  # noqa: E402
from vidcap.shots.shrink import Shrinker  # noqa: E402

STEPS = ("shrink", "batch to BGR", "thumbnails", "hard-cut scores", "fades", "dissolves", "flash check")
clock = time.process_time


class Timed:
    """``decode._decode`` and ``shrink.Shrinker`` with a clock around each frame the decoder hands over,
    each ``add`` and each ``take`` (``install`` / ``remove``, around the instrumented runs only)."""

    def __init__(self):
        self.t = dict.fromkeys(("decoder", "shrink", "batch to BGR"), 0.0)
        self.real = decode._decode, Shrinker.add, Shrinker.take

    def install(self):
        real_decode, real_add, real_take = self.real
        t = self.t

        def timed_decode(*args):
            frames = real_decode(*args)
            while True:
                t0 = clock()
                item = next(frames, None)
                t["decoder"] += clock() - t0
                if item is None:
                    return
                yield item

        def add(shrinker, k, frame):
            t0 = clock()
            real_add(shrinker, k, frame)
            t["shrink"] += clock() - t0

        def take(shrinker, b, n):
            t0 = clock()
            out = real_take(shrinker, b, n)
            t["batch to BGR"] += clock() - t0
            return out

        decode._decode, Shrinker.add, Shrinker.take = timed_decode, add, take

    def remove(self):
        decode._decode, Shrinker.add, Shrinker.take = self.real


def detect_timed(path) -> tuple[dict[str, float], int]:
    """``detect_boundaries``' loop with the defaults, a clock around each step: ({step: CPU s}, frames)."""
    settings = shots.shot_settings({})
    timed = Timed()
    timed.install()
    info = decode.open_video(path)
    try:
        cut, fade, diss = detectors(settings, info.fps)
        flash = shots.flash_check(settings, info.fps)
        dec = settings["decode"]
        t = dict.fromkeys(STEPS[2:], 0.0)
        n = 0
        for batches in decode.scan_blocks(info, settings["analysis_width"], 0, None, dec["skip"], dec["fast"],
                                          dec["threads"], shrink=dec["shrink"], batch=shots.BATCH, block=shots.BLOCK):
            indices: list[int] = []
            parts = []
            for part, stack in batches:
                t0 = clock()
                parts.append(thumbnails(stack))
                t1 = clock()
                cut.score(part, stack)
                t2 = clock()
                t["thumbnails"] += t1 - t0
                t["hard-cut scores"] += t2 - t1
                indices += part
            t0 = clock()
            thumbs = np.concatenate(parts)
            t1 = clock()
            flash.push_batch(indices, thumbs)
            t2 = clock()
            flash.add(cut.cuts())
            t3 = clock()
            fade.process_batch(indices, thumbs.reshape(len(indices), -1).mean(axis=1))
            t4 = clock()
            diss.push_batch(indices, thumbs)
            t5 = clock()
            for step, dt in zip(STEPS[2:], (t1 - t0, t3 - t2, t4 - t3, t5 - t4, t2 - t1), strict=True):
                t[step] += dt
            n += len(indices)
    finally:
        info.close()
        timed.remove()
    return {**timed.t, **t}, n


def floor_timed(path) -> float:
    """The decode floor's loop with a clock around each frame the decoder hands over: CPU s inside it."""
    import av

    inside = 0.0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        s.codec_context.options = {"skip_loop_filter": "all"}
        frames = c.decode(s)
        while True:
            t0 = clock()
            frame = next(frames, None)
            inside += clock() - t0
            if frame is None:
                return inside


def in_cache(path, reps: int = 40) -> dict[str, float]:
    """CPU s per frame of each step alone, on data in the caches: the shrink of one decoded frame again
    and again; the conversion, thumbnails and hard-cut scores of one batch (the first ``detect.BATCH``
    frames) again and again; the fades, dissolves and flash check (whose work depends on what the video
    holds) fed the thumbnails of the whole video again, a block at a time as in the pipeline, each time
    from a new detector."""
    import av

    settings = shots.shot_settings({})
    info = decode.open_video(path)
    try:
        w, h = decode.analysis_size(info.width, info.height, settings["analysis_width"])
        batches = []  # (indices, thumbnails) of each block
        for block in decode.scan_blocks(info, settings["analysis_width"], batch=shots.BATCH, block=shots.BLOCK):
            parts = list(block)
            batches.append(([i for part, _ in parts for i in part],
                            np.concatenate([thumbnails(stack) for _, stack in parts])))
        fps = info.fps
    finally:
        info.close()
    with av.open(str(path)) as c:
        frames = [f for _, f in zip(range(shots.BATCH), c.decode(video=0))]
    small = Shrinker(w, h, shots.BATCH, "FAST_BILINEAR", settings["decode"]["shrink"])
    for k, f in enumerate(frames):
        small.add(k, f)
    n, total = len(frames), sum(len(i) for i, _ in batches)
    stack = small.take(0, n)
    cut = detectors(settings, fps)[0]

    def replay(step):
        _, fade, diss = detectors(settings, fps)
        flash = shots.flash_check(settings, fps)
        for indices, thumbs in batches:
            if step == "fades":
                fade.process_batch(indices, thumbs.reshape(len(indices), -1).mean(axis=1))
            elif step == "dissolves":
                diss.push_batch(indices, thumbs)
            else:
                flash.push_batch(indices, thumbs)
        if step == "dissolves":
            diss.finish()

    one = frames[0]
    calls = {"shrink": (lambda: [small.add(k, one) for k in range(n)], n, reps),
             "batch to BGR": (lambda: small.take(0, n), n, reps),
             "thumbnails": (lambda: thumbnails(stack), n, reps),
             "hard-cut scores": (lambda: cut.process_batch(list(range(n)), stack), n, reps),
             **{step: (lambda step=step: replay(step), total, 2) for step in ("fades", "dissolves", "flash check")}}
    return {step: min(_cpu(fn, times) for _ in range(3)) / (times * per_call)
            for step, (fn, per_call, times) in calls.items()}


def _cpu(fn, reps: int) -> float:
    t0 = clock()
    for _ in range(reps):
        fn()
    return clock() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=3, help="test720 videos used (of 6)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per video and method (least CPU time)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/shots")
    ap.add_argument("--video", type=Path, action="append", help="measure this video instead (repeatable)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    paths = args.video or data.videos("test720", args.out, 2)[2][:args.videos]
    plain = {"floor": run.run_floor, "read floor": lambda p: run.run_floor(p, each=run.read_spread_rows),
             "defaults": lambda p: run.run_vidcap(p, {})}
    for fn in (*plain.values(), detect_timed, floor_timed):  # warm-up: imports, first-call costs
        fn(paths[0])
    order = random.Random(0)
    totals: dict[str, float] = {}
    frames = 0
    for path in paths:
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            labels = [*plain, "detect, timed", "floor, timed"]
            order.shuffle(labels)
            for label in labels:
                t0 = clock()
                if label in plain:
                    plain[label](path)
                    best[label] = min(best.get(label, 1e9), clock() - t0)
                elif label == "floor, timed":
                    best["inside the decoder, floor"] = min(best.get("inside the decoder, floor", 1e9), floor_timed(path))
                else:
                    steps, n = detect_timed(path)
                    for step, cpu in steps.items():
                        best[step] = min(best.get(step, 1e9), cpu)
                    best["detect, timed"] = min(best.get("detect, timed", 1e9), clock() - t0)
        frames += n
        for key, cpu in best.items():
            totals[key] = totals.get(key, 0.0) + cpu
        print(f"  {Path(path).name} done", file=sys.stderr, flush=True)
    alone = in_cache(paths[0])
    us = {k: v / frames * 1e6 for k, v in totals.items()}
    floor = us["floor"]
    fetch = us["read floor"] - floor
    which = ", ".join(Path(p).name for p in args.video) if args.video else f"{len(paths)} test720 videos"
    lines = [f"Per frame, CPU time (µs), {which} ({frames} frames), least of {args.rounds} "
             f"rounds per video; the decode floor is {floor:.0f} µs a frame:", "",
             "| part | in the pipeline | alone, data in cache |", "|---|---|---|",
             f"| decoding (inside the decoder; alone: in the floor's loop) | {us['decoder']:.1f} | "
             f"{us['inside the decoder, floor']:.1f} |"]
    for step in STEPS:
        lines.append(f"| {step} | {us[step]:.1f} | {alone[step] * 1e6:.1f} |")
    lines.append(f"| fetching the sampled rows (read floor - floor) | - | {fetch:.1f} |")
    compute = sum(alone.values()) * 1e6
    lines += ["", f"* the defaults: {us['defaults'] / floor:.3f}x the decode floor ({us['defaults'] - floor:+.1f} µs a frame); "
              f"timed step by step: {us['detect, timed'] / floor:.3f}x",
              f"* the read floor (decoding and fetching the rows this method samples): {us['read floor'] / floor:.3f}x; "
              f"the defaults are {us['defaults'] / us['read floor']:.3f}x the read floor",
              f"* the floor, the fetch and every step's compute alone: {(floor + fetch + compute) / floor:.3f}x "
              f"(compute {compute:.1f} µs a frame)"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
