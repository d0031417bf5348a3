"""Camera-motion benchmark: accuracy and single-core speed of ``vidcap.motion`` vs a dense-flow baseline.

    .venv/bin/python bench/motion/run.py            # 300 clips, seed 1 (the held-out TEST seed)
    .venv/bin/python bench/motion/run.py --quick    # 60 clips
    .venv/bin/python bench/motion/run.py --seed 0   # the TUNE seed the knobs were chosen on

Clips (H.264 .mp4, see clips.py) go to ``bench/out/motion/clips_<seed>/``; per-clip results to
``bench/out/motion/results_<seed>.csv``; the markdown table is printed and written to
``bench/out/motion/table_<seed>.md``. Timing: one process, ``cv2.setNumThreads(1)``, single-threaded
decoding, wall time of decode + classify per clip (clips generated beforehand, in parallel).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import Counter, defaultdict
from multiprocessing import Pool
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import baseline  # noqa: E402
import clips  # noqa: E402
from vidcap import motion  # noqa: E402

TUNE_SEEDS = (0,)
TEST_SEED = 1


def _make(args):
    spec, path = args
    if not Path(path).exists():
        clips.write_clip(spec, Path(path))
    return path


def generate(specs, folder: Path, jobs: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(s, str(folder / f"{s.name}_{s.nuisance}.mp4")) for s in specs]
    if jobs > 1:
        with Pool(jobs) as pool:
            paths = pool.map(_make, todo, chunksize=4)
    else:
        paths = [_make(t) for t in todo]
    return [Path(p) for p in paths]


def pct(num, den):
    return f"{100.0 * num / den:.1f}% ({num}/{den})" if den else "n/a"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="number of clips (default 300)")
    ap.add_argument("--quick", action="store_true", help="60 clips")
    ap.add_argument("--seed", type=int, default=TEST_SEED,
                    help=f"clip seed (default {TEST_SEED} = test; {TUNE_SEEDS} were used for tuning)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for clip generation")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/motion")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args(argv)
    n = 60 if args.quick else args.n

    specs = clips.make_specs(n, args.seed)
    t0 = time.perf_counter()
    paths = generate(specs, args.out / f"clips_{args.seed}", args.jobs)
    gen_s = time.perf_counter() - t0
    clips.photos()

    cv2.setNumThreads(1)
    k = motion.DEFAULTS
    rows = []
    ours_t = base_t = 0.0
    for spec, path in zip(specs, paths):
        t = time.perf_counter()
        frames = motion.read_motion_frames(path, k["num_frames"], k["short_side"])
        res = motion.classify_frames(frames)
        ours_t += time.perf_counter() - t
        base = ""
        if not args.no_baseline:
            t = time.perf_counter()
            base = baseline.classify_path(path, k["threshold"])
            base_t += time.perf_counter() - t
        rows.append({"clip": path.name, "expected": spec.label, "nuisance": spec.nuisance,
                     "combo": spec.combo, "pan": round(spec.pan, 3), "tilt": round(spec.tilt, 3),
                     "zoom": round(spec.zoom, 3), **{c: res[c] for c in motion.OUTPUT_COLUMNS},
                     "baseline": base})
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / f"results_{args.seed}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    table = render(rows, len(specs), ours_t, base_t, args, gen_s)
    (args.out / f"table_{args.seed}.md").write_text(table)
    print(table)
    wrong = [r for r in rows if r["cmotion"] != r["expected"]]
    if wrong:
        print(f"\nmisclassified ({len(wrong)}):")
        for r in wrong:
            print(f"  {r['clip']}: expected {r['expected']} got {r['cmotion']} ({r['motion_reason']}) "
                  f"pan={r['motion_pan']:.2f} tilt={r['motion_tilt']:.2f} zoom={r['motion_zoom']:.2f} "
                  f"fit={r['motion_fit']:.2f} | true pan={r['pan']} tilt={r['tilt']} zoom={r['zoom']}")
    return 0


def render(rows, n, ours_t, base_t, args, gen_s) -> str:
    def acc(sel, key):
        return pct(sum(r[key] == r["expected"] for r in sel), len(sel))

    has_base = not args.no_baseline
    out = [f"Camera-motion benchmark: {n} clips, seed {args.seed} "
           f"({'TEST' if args.seed == TEST_SEED else 'TUNE' if args.seed in TUNE_SEEDS else 'other'}), "
           f"{clips.WIDTH}x{clips.HEIGHT} H.264, 40-72 frames; source: {clips.SOURCE}; "
           f"threshold {motion.DEFAULTS['threshold']}; generation {gen_s:.0f} s.", ""]
    out.append("| subset | clips | vidcap.motion exact match | baseline (Farneback, every 15th pair) |")
    out.append("|---|---|---|---|")
    groups = [("overall", rows), ("static (incl. below-threshold motion)", [r for r in rows if r["expected"] == "static"]),
              ("single direction", [r for r in rows if r["expected"] in motion.DIRECTION_LABELS]),
              ("combinations", [r for r in rows if r["combo"]]),
              ("expected unclassified", [r for r in rows if r["expected"] == "unclassified"])]
    for nuis in clips.NUISANCES + clips.UNCLASSIFIED_KINDS:
        groups.append((f"nuisance: {nuis}", [r for r in rows if r["nuisance"] == nuis]))
    groups.append(("nuisance: foreground on static camera",
                   [r for r in rows if r["nuisance"] == "foreground" and r["expected"] == "static"]))
    for name, sel in groups:
        out.append(f"| {name} | {len(sel)} | {acc(sel, 'cmotion')} | {acc(sel, 'baseline') if has_base else '-'} |")
    out.append("")
    out.append("| per label (set element) | support | precision | recall | baseline precision | baseline recall |")
    out.append("|---|---|---|---|---|---|")

    def elems(lbl):
        return set(lbl.split("+"))

    for lab in motion.MOTION_LABELS:
        cols = []
        for key in ("cmotion", "baseline"):
            tp = sum(lab in elems(r["expected"]) and lab in elems(r[key]) for r in rows)
            pred = sum(lab in elems(r[key]) for r in rows)
            sup = sum(lab in elems(r["expected"]) for r in rows)
            cols += [f"{tp / pred:.3f}" if pred else "n/a", f"{tp / sup:.3f}" if sup else "n/a"]
        sup = sum(lab in elems(r["expected"]) for r in rows)
        if not has_base:
            cols[2:] = ["-", "-"]
        out.append(f"| {lab} | {sup} | {cols[0]} | {cols[1]} | {cols[2]} | {cols[3]} |")
    out.append("")
    out.append("| speed (1 thread, decode .mp4 + classify) | total s | clips/s per core | relative |")
    out.append("|---|---|---|---|")
    out.append(f"| vidcap.motion ({motion.DEFAULTS['num_frames']} frames @ {motion.DEFAULTS['short_side']} px) "
               f"| {ours_t:.1f} | {n / ours_t:.1f} | "
               f"{(base_t / ours_t if has_base and ours_t else float('nan')):.1f}x |")
    if has_base:
        out.append(f"| baseline (Farneback full-res, every 15th pair) | {base_t:.1f} | {n / base_t:.1f} | 1.0x |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
