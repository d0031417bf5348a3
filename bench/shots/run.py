"""Shot-detection benchmark: cut precision/recall per transition kind and CPU cost per hour of 720p video.

    .venv/bin/python bench/shots/run.py           # frozen test split (28 videos, 360p) + test720 (6 videos, 720p)
    .venv/bin/python bench/shots/run.py --quick   # first 8 test videos, first 2 test720 videos
    .venv/bin/python bench/shots/run.py --split dev   # the split the knobs were tuned on (not for reporting)
    .venv/bin/python bench/shots/run.py --speed   # the speed table only (a GPU machine: adds decode.hwaccel = cuda)

Videos are generated once into ``bench/out/shots/<split>/`` (``data.py``; the split settings and a hash of
their ground truth are frozen in ``splits.json``). Compared in one run, each on the same files:

* ``vidcap`` with its defaults (every frame decoded), with ``decode.skip = nonref``, with each other
  ``decode.shrink`` (``vidcap.shots.decode``: swscale, planes, spread), and in proxy mode
  (``proxy.enabled``, with ``proxy.skip = nonref`` and ``nonkey``);
* PySceneDetect 0.7.2 as shipped: ``detect(path, AdaptiveDetector())`` and ``detect(path, ContentDetector())``
  (PyAV backend, its automatic downscaling, no fade or dissolve handling);
* speed only: the decode floors (decoding alone, vidcap's decoder settings, every frame or reference
  frames only, no conversion), from which each method's cost above decoding is computed; decoding and
  reading the rows ``spread`` samples (the memory traffic of looking at the pictures); vidcap's
  decoding and shrinking alone, each ``decode.shrink`` (no analysis: the split of that cost); decoding every frame to
  full-resolution RGB; ``decode.hwaccel = cuda`` where CUDA decoding works.

Matching: a detected boundary matches a true one of any kind within 2 frames (one-to-one); an unmatched
detection counts as a false positive of the kind of the nearest true transition. CPU time is
``time.process_time()`` of this process (all its threads) around each call; one video at a time, the
methods interleaved per video in a shuffled order each round, ``cv2.setNumThreads(1)``; the decode floor
is measured twice, as two methods, and the second's ratio to the first (the A/A control row) shows how
far the measurement itself moves. A line under the speed table pairs the defaults, the read floor and
the A/A with the floor measured in the same round (median and quartiles over every round: the spread
behind the table's one figure).
"""
from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from collections import Counter
from functools import lru_cache, partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import data  # noqa: E402
import metrics  # noqa: E402

from vidcap.shots import detect as shots  # noqa: E402
from vidcap.shots.shrink import SHRINKS  # noqa: E402

KINDS = ("cut", "fade", "dissolve")


def run_vidcap(path, params):
    det = shots.detect_boundaries(path, params)
    return [b.cut for b in det.boundaries]


def run_scenedetect(path, which):
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    detector = AdaptiveDetector() if which == "adaptive" else ContentDetector()
    scenes = detect(str(path), detector, backend="pyav")
    return [start.frame_num for start, _ in scenes[1:]]


def run_decode_all(path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        for frame in c.decode(s):
            frame.to_ndarray(format="rgb24")
    return []


def run_floor(path, skip="none", each=None, end=None):
    """Decoding alone, with vidcap's decoder settings (one thread, deblocking skipped): no conversion;
    ``each(frame)`` for every decoded frame when given; ``end``: the first ``end`` frames only (None: all)."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        s.codec_context.options = {"skip_loop_filter": "all"}
        if skip != "none":
            s.codec_context.skip_frame = skip.upper()
        for n, frame in enumerate(c.decode(s), 1):
            if each is not None:
                each(frame)
            if n == end:
                break
    return []


@lru_cache
def _analysis_rows(width: int, height: int) -> int:
    from vidcap.shots.decode import analysis_size

    return analysis_size(width, height, shots.shot_settings({})["analysis_width"])[1]


def read_spread_rows(frame) -> None:
    """Read, from each plane of a decoded frame, the rows ``decode.shrink = spread`` reads (one sum over
    them, no other arithmetic): what any per-frame analysis that samples the picture as densely pays
    for fetching those bytes from memory (the read floor)."""
    import numpy as np

    from vidcap.shots.shrink import spread_rows

    out = _analysis_rows(frame.width, frame.height)
    for q, plane in enumerate(frame.planes):
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        cv2.sumElems(rows[spread_rows(plane.height, out if q == 0 else out // 2), :plane.width])


def run_scan(path, skip="none", shrink=None, end=None):
    """vidcap's own decoding and shrinking to ``analysis_width`` (``decode.scan_blocks``, blocks and
    batches as the detector takes them), no analysis; ``shrink``: ``decode.shrink`` (None: the
    default); ``end``: the frames before it only (None: all)."""
    from vidcap.shots.decode import open_video, scan_blocks

    settings = shots.shot_settings({})
    dec = settings["decode"]
    info = open_video(path)
    try:
        for batches in scan_blocks(info, settings["analysis_width"], end=end, skip=skip, fast=dec["fast"],
                                   threads=dec["threads"], shrink=shrink or dec["shrink"], batch=shots.BATCH,
                                   block=shots.BLOCK):
            for _ in batches:
                pass
    finally:
        info.close()
    return []


def run_shrink(shrink, path):
    return run_vidcap(path, {"decode": {"shrink": shrink}})


PROXY = "vidcap (proxy mode, skip = {})"
DEFAULT_SHRINK = shots.shot_settings({})["decode"]["shrink"]
SHRINK = "vidcap (decode.shrink = {})"
OTHER_SHRINKS = [s for s in SHRINKS if s != DEFAULT_SHRINK]
METHODS = {
    "vidcap (defaults)": lambda p: run_vidcap(p, {}),
    "vidcap (decode.skip = nonref)": lambda p: run_vidcap(p, {"decode": {"skip": "nonref"}}),
    **{SHRINK.format(s): partial(run_shrink, s) for s in OTHER_SHRINKS},
    PROXY.format("nonref"): lambda p: run_vidcap(p, {"proxy": {"enabled": True, "skip": "nonref"}}),
    PROXY.format("nonkey"): lambda p: run_vidcap(p, {"proxy": {"enabled": True, "skip": "nonkey"}}),
    "PySceneDetect AdaptiveDetector": lambda p: run_scenedetect(p, "adaptive"),
    "PySceneDetect ContentDetector": lambda p: run_scenedetect(p, "content"),
}
HWACCEL = "vidcap (decode.hwaccel = cuda)"
FLOOR = "decode floor: every frame (1 thread, deblocking skipped, no conversion)"
READ = "decode floor + reading the rows decode.shrink = spread samples (one sum, no analysis)"
SCAN = "decode + shrink to analysis_width (decode.shrink = {}{}), no analysis"
SCANS = {s: SCAN.format(s, ": the default" if s == DEFAULT_SHRINK else "") for s in SHRINKS}
AGAIN = "decode floor, measured again (A/A control: how far this measurement moves between identical runs)"
FLOORS = {
    FLOOR: run_floor,
    AGAIN: partial(run_floor),
    READ: partial(run_floor, each=read_spread_rows),
    "decode floor: reference frames only (skip_frame nonref)": lambda p: run_floor(p, "nonref"),
    **{label: partial(run_scan, shrink=s) for s, label in SCANS.items()},
    "PyAV decode every frame to full-res RGB (the former baseline)": run_decode_all,
}
# the floor each method's "above its floor" is measured against (same frames decoded)
OWN_FLOOR = {"vidcap (defaults)": FLOOR, HWACCEL: FLOOR, AGAIN: FLOOR, READ: FLOOR, **{label: FLOOR for label in SCANS.values()},
             **{SHRINK.format(s): FLOOR for s in OTHER_SHRINKS},
             "vidcap (decode.skip = nonref)": "decode floor: reference frames only (skip_frame nonref)"}


def hwaccel_status(path) -> str | None:
    """None when CUDA decoding works here, else why not (the fallback's own reason)."""
    from vidcap.shots.decode import _open_hw

    container, reason = _open_hw(str(path), "cuda")
    if container is not None:
        container.close()
    return reason


def evaluate(name, specs, paths, methods, repeat=1):
    """{method: (totals, cpu_s, page_faults, rounds)} over the split, one video at a time; for each video
    ``repeat`` rounds, each round every method once in a shuffled order (seeded: the same orders every
    run), so that a change of machine load or a method's position after another hits every method
    alike; with ``repeat`` > 1 the least CPU time (and the fewest page faults) per video and method.
    ``rounds``: the method's CPU time in each round of each video, in order (for ``paired``)."""
    fns = {**METHODS, **FLOORS, HWACCEL: lambda p: run_vidcap(p, {"decode": {"hwaccel": "cuda"}})}
    out = {label: ({}, 0.0, 0, []) for label in methods}
    order = random.Random(0)
    for spec, path in zip(specs, paths, strict=True):
        best: dict[str, float] = {}
        faults: dict[str, int] = {}
        found: dict[str, list[int]] = {}
        for _ in range(repeat):
            labels = list(methods)
            order.shuffle(labels)
            for label in labels:
                f0, t0 = _faults(), time.process_time()
                found[label] = fns[label](path)
                cpu, flt = time.process_time() - t0, _faults() - f0
                out[label][3].append(cpu)
                best[label] = min(best.get(label, cpu), cpu)
                faults[label] = min(faults.get(label, flt), flt)
        for label in methods:
            tot, total_cpu, total_faults, rounds = out[label]
            if label not in FLOORS:
                metrics.add(tot, metrics.match(spec.truth(), found[label]))
            out[label] = (tot, total_cpu + best[label], total_faults + faults[label], rounds)
        print(f"  {name}: {spec.name} done", file=sys.stderr, flush=True)
    for label, (_tot, cpu, _flt, _rounds) in out.items():
        print(f"  {name}: {label}: {cpu:.1f} s CPU", file=sys.stderr, flush=True)
    return out


def paired(speed, labels: dict[str, str]) -> str:
    """A line: each method's CPU time over the decode floor's in the same round of the same video (both
    measured within seconds of each other, under the same machine load), as the median and quartiles
    over every round: the spread of the 'x floor' column's measurement, which takes each method's
    least time separately. ``labels``: {name printed: method}."""
    floor = speed[FLOOR][3]
    parts = []
    for name, label in labels.items():
        ratios = [c / f for c, f in zip(speed[label][3], floor, strict=True)]
        q1, med, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        parts.append(f"{name}: median {med:.3f}x (quartiles {q1:.3f}-{q3:.3f})")
    return (f"Paired in each round ({len(floor)} rounds: each method's CPU time over the decode floor's "
            "in the same round of the same video): " + "; ".join(parts) + ".")


def _faults() -> int:
    """Page faults of this process so far (minor: memory the kernel maps in and zeroes; no instruction
    count of the process shows their cost)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def fmt(p, r, tp, fp, fn):
    return f"{p:.3f} / {r:.3f} ({tp} tp, {fp} fp, {fn} fn)"


def speed_table(args) -> list[str]:
    """The speed table on test720 (every method interleaved per video), as printed lines."""
    hi_name = "test720"
    hsplit, hspecs, hpaths = data.videos(hi_name, args.out, args.jobs)
    if args.quick:
        hspecs, hpaths = hspecs[:2], hpaths[:2]
    hframes = sum(s.num_frames for s in hspecs)
    seconds = hframes / hsplit["fps"]
    no_cuda = hwaccel_status(hpaths[0])
    methods = [*METHODS, *([HWACCEL] if no_cuda is None else []), *FLOORS]
    speed = evaluate(hi_name, hspecs, hpaths, methods, args.repeat)
    floor = speed[FLOOR][1]
    lines = [f"Speed on '{hi_name}' ({len(hspecs)} videos, {hsplit['width']}x{hsplit['height']}, "
             f"{hframes} frames = {seconds / 60:.1f} min of video), CPU time of this process, one video "
             f"at a time, methods interleaved per video in a shuffled order each round{f', least of {args.repeat} runs' if args.repeat > 1 else ''}. "
             "'x floor': CPU time over the decode floor (every frame decoded, nothing else); 'above its "
             "floor': the cost over decoding the same frames alone; 'page faults per frame': minor page "
             "faults (memory the kernel maps in and zeroes, about 2 µs each on this machine), the fewest of "
             "the runs:", "",
             "| method | CPU s | CPU s per hour of video | x real time per core | x floor | above its floor | "
             "page faults per frame | P / R hard cut | P / R dissolve |", "|---|---|---|---|---|---|---|---|---|"]
    for label, (htot, cpu, flt, _rounds) in speed.items():
        if label in FLOORS:
            pr = ["-", "-"]
        else:
            pr = ["{:.3f} / {:.3f}".format(*metrics.prf(htot, k)[:2]) for k in ("cut", "dissolve")]
        own = OWN_FLOOR.get(label)
        above = f"{(cpu / speed[own][1] - 1) * 100:+.1f}%" if own else "-"
        lines.append(f"| {label} | {cpu:.1f} | {cpu / seconds * 3600:.0f} | {seconds / cpu:.1f}x | "
                     f"{cpu / floor:.3f}x | {above} | {flt / hframes:.2f} | {pr[0]} | {pr[1]} |")
    parts = []
    for s in SHRINKS:
        scan_cpu = speed[SCANS[s]][1]
        full_cpu = speed["vidcap (defaults)" if s == DEFAULT_SHRINK else SHRINK.format(s)][1]
        parts.append(f"decode.shrink = {s}{' (the default)' if s == DEFAULT_SHRINK else ''}: shrinking every "
                     f"frame to analysis_width {(scan_cpu / floor - 1) * 100:+.1f}%, the detectors "
                     f"{(full_cpu - scan_cpu) / floor * 100:+.1f}%")
    lines += ["", "Where the cost above the decode floor goes (of the floor's CPU time): " + "; ".join(parts) + ".",
              "", paired(speed, {"the defaults": "vidcap (defaults)", "the read floor": READ,
                                   "the floor again (A/A)": AGAIN})]
    if no_cuda is not None:
        lines += ["", f"{HWACCEL}: not measured, CUDA decoding is unavailable here: {no_cuda}."]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 test videos, 2 test720 videos")
    ap.add_argument("--split", default="test", choices=("test", "test2", "dev"))
    ap.add_argument("--jobs", type=int, default=2, help="processes generating videos")
    ap.add_argument("--repeat", type=int, default=1, help="speed: runs per video and method (least CPU time)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/shots")
    ap.add_argument("--speed", action="store_true",
                    help="the speed table on test720 only (with decode.hwaccel = cuda where CUDA decoding works)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    if args.speed:
        text = "\n".join(speed_table(args))
        print(text)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"table_speed{'_quick' if args.quick else ''}.md").write_text(text + "\n")
        return 0

    split, specs, paths = data.videos(args.split, args.out, args.jobs)
    if args.quick:
        specs, paths = specs[:8], paths[:8]
    counts = Counter(t.kind for s in specs for t in s.transitions)
    events = Counter(e.kind for s in specs for sh in s.shots for e in sh.events)
    frames = sum(s.num_frames for s in specs)
    acc = evaluate(args.split, specs, paths, list(METHODS))

    lines = [f"Shot-detection benchmark, split '{args.split}' ({len(specs)} videos, {split['width']}x"
             f"{split['height']} H.264 CRF {split['crf']} {split['preset']}, {frames} frames = "
             f"{frames / split['fps'] / 60:.1f} min; transitions: {dict(counts)}; hard negatives: "
             f"{dict(events)}; images: {split['photo_source']}). Precision / recall, tolerance 2 frames.",
             "", "| method | hard cut | fade | dissolve | all | FP where |", "|---|---|---|---|---|---|"]
    for label, (tot, _cpu, _flt, _rounds) in acc.items():
        cells = [fmt(*metrics.prf(tot, k)) for k in (*KINDS, None)]
        where = ", ".join(f"{k} {v}" for k, v in sorted(tot.get("fp_where", Counter()).items())) or "-"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {where} |")
    lines.append("")
    for label in ("vidcap (defaults)", *(SHRINK.format(s) for s in OTHER_SHRINKS)):
        tot = acc[label][0]
        errs = {k: dict(sorted(Counter(v).items())) for k, v in sorted(tot.get("errors", {}).items())}
        lines.append(f"{label} offsets of matched boundaries (detected - true: count): {errs}")

    if args.split == "test":
        lines += ["", *speed_table(args)]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"table_{args.split}{'_quick' if args.quick else ''}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
