"""Scores benchmark: vidcap's CPU scores against the truth and against the peers' computation, one run.

    python bench/scores/run.py                 # test split (generated once into bench/out/scores/)
    python bench/scores/run.py --split dev     # the tuning split (never reported)

Per clip, interleaved, one thread (``cv2.setNumThreads(1)``, single-threaded decoding), CPU time of this
process (``time.process_time``): vidcap's scores stage on the clip (defaults: every CPU column,
motion_flow, motion_mv, laplacian_var, exposure, still; and with ``motion_vectors: false``, the same
computation as the peer's plus blur and exposure) and EasyAnimate's Farneback motion score
(``baseline.py``). Accuracy: Spearman of motion_flow / motion_mv / EasyAnimate's score against the true
pixel speed (``flow`` set), of -laplacian_var against the applied blur sigma (``blur`` set); how
motion_mv relates to motion_flow (Pearson, Spearman, median ratio) on the ``flow`` set. Prints a
Markdown table and writes it to ``bench/out/scores/table_<split>.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import pearsonr, spearmanr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))
import baseline  # noqa: E402
import gen  # noqa: E402

from vidcap.scores.stage import ScoresStage  # noqa: E402

OUT = HERE.parent / "out" / "scores"


def clips(split: str) -> list[tuple[dict, Path]]:
    specs = gen.make_split(split)
    frozen = json.loads((HERE / "FROZEN.json").read_text())["splits"][split]
    if gen.truth_hash(specs) != frozen:
        sys.exit(f"bench/scores: the generator no longer reproduces split {split!r} (FROZEN.json)")
    out = []
    for spec in specs:
        path = OUT / split / f"{spec['id']}.mp4"
        if not path.is_file():
            gen.write_clip(spec, path)
        out.append((spec, path))
    return out


def timed(fn, *args):
    t0 = time.process_time()
    value = fn(*args)
    return value, time.process_time() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test", choices=sorted(gen.SPLITS))
    args = ap.parse_args()
    cv2.setNumThreads(1)
    os.environ.setdefault("VIDCAP_DECODE_THREADS", "1")
    t_gen = time.monotonic()
    data = clips(args.split)
    t_gen = time.monotonic() - t_gen
    stage, flow_only = ScoresStage({}), ScoresStage({"motion_vectors": False})
    rows, cpu_v, cpu_f, cpu_e = [], 0.0, 0.0, 0.0
    for spec, path in data:   # interleaved per clip
        row = {"row_id": spec["id"], "_media_path": str(path)}
        ours, dt_v = timed(stage.process_row, row)
        _, dt_f = timed(flow_only.process_row, row)
        easy, dt_e = timed(baseline.easyanimate_motion_score, str(path))
        cpu_v, cpu_f, cpu_e = cpu_v + dt_v, cpu_f + dt_f, cpu_e + dt_e
        gap = int(spec["fps"] / 2)
        rows.append({**spec, **ours, "easyanimate": easy, "true_flow": spec["speed"] * gap})
    flow = [r for r in rows if r["kind"] == "flow"]
    blur = [r for r in rows if r["kind"] == "blur"]
    truth = [r["true_flow"] for r in flow]

    def rho(key, rs=flow, ref=truth):
        return spearmanr([r[key] for r in rs], ref).statistic

    lines = [f"Scores benchmark, split {args.split!r}: {len(flow)} flow clips (true speed 0-12 px/frame, "
             f"{sum(1 for r in flow if r['object'])} with a crossing object), {len(blur)} blur clips "
             "(sigma 0-4); 640x360 H.264 CRF 20-28, 24/25/30 fps, 2-3 s. One thread, CPU time.",
             "", "| measure | Spearman vs truth | median |score / truth| - 1| (flow > 1 px) |", "|---|---|---|"]
    for key, name in (("motion_flow", "vidcap motion_flow (Farneback, short side 96)"),
                      ("motion_mv", "vidcap motion_mv (codec motion vectors)"),
                      ("easyanimate", "EasyAnimate motion score (Farneback, full res)")):
        rel = [abs(r[key] / r["true_flow"] - 1) for r in flow if r["true_flow"] > 1]
        lines.append(f"| {name} | {rho(key):.3f} | {np.median(rel):.3f} |")
    sharp = spearmanr([-r["laplacian_var"] for r in blur], [r["sigma"] for r in blur]).statistic
    lines.append(f"| vidcap laplacian_var (negated) vs blur sigma | {sharp:.3f} | - |")
    fv, mv = np.array([r["motion_flow"] for r in flow]), np.array([r["motion_mv"] for r in flow])
    moving = fv > 1
    lines += ["", f"motion_mv vs motion_flow on the flow set: Pearson {pearsonr(fv, mv).statistic:.3f}, "
              f"Spearman {spearmanr(fv, mv).statistic:.3f}, median motion_mv / motion_flow "
              f"{np.median(mv[moving] / fv[moving]):.3f} (clips with flow > 1)."]
    n = len(rows)
    lines += ["", "| method | CPU s | clips/s per core | vs EasyAnimate |", "|---|---|---|---|",
              f"| vidcap scores, defaults (every CPU column, motion_mv too) | {cpu_v:.2f} | {n / cpu_v:.2f} | "
              f"{cpu_e / cpu_v:.2f}x |",
              f"| vidcap scores, motion_vectors: false (the flow, blur, exposure, still) | {cpu_f:.2f} | "
              f"{n / cpu_f:.2f} | {cpu_e / cpu_f:.2f}x |",
              f"| EasyAnimate motion score | {cpu_e:.2f} | {n / cpu_e:.2f} | 1.00x |",
              "", f"(clip generation, not timed above: {t_gen:.0f} s wall; load average "
              f"{os.getloadavg()[0]:.1f} at the end)"]
    table = "\n".join(lines)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"table_{args.split}.md").write_text(table + "\n")
    (OUT / f"rows_{args.split}.json").write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
