"""Frame-sampling benchmark: videos/s per core for each decoder and policy (4 frames a clip).

Clip kinds (generated once with vidcap.dev.synth into bench/out/frames/clips, git-ignored):
  short: 4 clips, 1280x720, 30 fps, 4 s (120 frames), H.264 ultrafast, GOP 30 (1 s)
  long:  2 clips,  640x360, 30 fps, 5 min (9000 frames), H.264 ultrafast, GOP 30 (1 s)
(--quick: 2 short clips of 2 s and 1 long clip of 30 s at 320x240, fewer repetitions.)

Everything runs on ONE core: the process is pinned with sched_setaffinity, decoders get one thread
(frames.sample_frames(threads=1), OMP_NUM_THREADS=1, cv2.setNumThreads(1)), so videos/s is per core.
Baseline: PyAV decoding every frame of the clip (thread_count=1, no RGB conversion), measured in the
same run; "x baseline" = baseline ms / ms (how many times faster than decoding everything).

    .venv/bin/python bench/frames/run.py [--quick]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import av
import cv2

from vidcap.dev import synth
from vidcap.media import decoders as D
from vidcap.media import frames as F

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "frames"


def make_clips(quick: bool) -> dict[str, list[Path]]:
    if quick:
        spec = {"short": (2, 1280, 720, 60), "long": (1, 320, 240, 900)}
    else:
        spec = {"short": (4, 1280, 720, 120), "long": (2, 640, 360, 9000)}
    clips = {}
    for kind, (n, w, h, nf) in spec.items():
        clips[kind] = []
        for k in range(n):
            path = OUT / "clips" / f"{kind}_{w}x{h}_{nf}f_{k}.mp4"
            if not path.exists():
                t = time.perf_counter()
                tmp = path.with_suffix(".tmp.mp4")
                synth.write_video(tmp, num_frames=nf, width=w, height=h, fps=30, codec="h264", seed=k)
                tmp.rename(path)
                print(f"generated {path.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            clips[kind].append(path)
    return clips


def decode_all(path: Path) -> int:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        return sum(1 for _ in c.decode(s))


def timed(fn, paths: list[Path], reps: int) -> float:
    """Median over repetitions of the mean ms per clip (one warm-up pass first)."""
    for p in paths:
        fn(p)
    per_rep = []
    for _ in range(reps):
        t = time.perf_counter()
        for p in paths:
            fn(p)
        per_rep.append((time.perf_counter() - t) * 1e3 / len(paths))
    return statistics.median(per_rep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--num-frames", type=int, default=4)
    args = ap.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    clips = make_clips(args.quick)
    reps = 1 if args.quick else 5
    n = args.num_frames
    rows = []
    t0 = time.perf_counter()
    for kind, paths in clips.items():
        base = timed(decode_all, paths, 1)
        rows.append((kind, "pyav", "every frame (baseline)", base))
        configs = [(d, pol, {}) for d in F.DECODERS for pol in F.POLICIES]
        # PyAV strategy knobs, to justify the seek heuristic, and the cost of resizing
        configs += [
            ("pyav", "uniform", {"seek": "never", "label": "uniform, always sequential"}),
            ("pyav", "uniform", {"seek": "always", "label": "uniform, always seek"}),
            ("pyav", "uniform", {"resize_short": 224, "label": "uniform + resize_short=224"}),
            ("opencv", "uniform", {"ogap": float("inf"), "label": "uniform, always sequential"}),
        ]
        for dec, pol, extra in configs:
            D.PYAV_SEEK = extra.get("seek", "auto")
            D.OPENCV_SEEK_GAP_S = extra.get("ogap", 2.0)
            rs = extra.get("resize_short")

            def fn(p, dec=dec, pol=pol, rs=rs):
                r = F.sample_frames(p, n, pol, decoder=dec, threads=1, resize_short=rs)
                assert [synth.read_index(f) for f in r.frames] == [i % (1 << synth.INDEX_BITS) for i in r.indices], (p, dec, pol)

            ms = timed(fn, paths, reps)
            rows.append((kind, dec, extra.get("label", pol), ms))
            print(f"{kind:5s} {dec:6s} {extra.get('label', pol):30s} {ms:8.1f} ms", file=sys.stderr)
        D.PYAV_SEEK, D.OPENCV_SEEK_GAP_S = "auto", 2.0

    spec = {k: f"{len(v)} x {v[0].stem.split('_')[1]}, {v[0].stem.split('_')[2][:-1]} frames" for k, v in clips.items()}
    lines = [
        f"{n} frames a clip, 1 core, H.264 (GOP 1 s), {'--quick' if args.quick else 'full'} run; "
        + "; ".join(f"{k}: {s} @ 30 fps" for k, s in spec.items()),
        "",
        "| clip | decoder | policy | videos/s per core | ms/clip | x baseline |",
        "|---|---|---|---:|---:|---:|",
    ]
    bases = {k: ms for k, d, p, ms in rows if p.startswith("every frame")}
    for kind, dec, pol, ms in rows:
        lines.append(f"| {kind} | {dec} | {pol} | {1e3 / ms:.1f} | {ms:.1f} | {bases[kind] / ms:.1f} |")
    table = "\n".join(lines)
    print(table)
    print(f"\n(measured in {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    name = "results_quick" if args.quick else "results"
    (OUT / f"{name}.md").write_text(table + "\n")
    (OUT / f"{name}.json").write_text(json.dumps([dict(zip(("clip", "decoder", "policy", "ms"), r)) for r in rows], indent=1))


if __name__ == "__main__":
    main()
