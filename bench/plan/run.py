"""Planning cost: sharding and `snakemake -n` for manifests of 10k, 100k and 1M rows.

Paths need not exist (nothing runs). Prints one markdown table; the ratio column is time over the
60 s target for planning a 1M-row manifest. Usage: python bench/plan/run.py [--rows 10000 100000 ...]
[--shard-size N] (default: the schema's default shard size).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vidcap.config import load_schema  # noqa: E402
from vidcap.shards import make_shards  # noqa: E402

TARGET_S = 60.0


def dry_run(workdir: Path, config: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                           str(workdir), "--configfile", str(config), "-n", "-q", "rules"],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return elapsed, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--shard-size", type=int, default=load_schema()["properties"]["shard_size"]["default"])
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "plan"))
    args = ap.parse_args()
    out = Path(args.out)
    rows_out = []
    for n in args.rows:
        work = out / f"rows{n}"
        work.mkdir(parents=True, exist_ok=True)
        manifest = work / "manifest.csv"
        pd.DataFrame({"path": [f"videos/{i // 1000:04d}/clip{i:07d}.mp4" for i in range(n)],
                      "text": [f"caption {i}, with a comma" for i in range(n)]}).to_csv(manifest, index=False)
        cfg = work / "config.yaml"
        cfg.write_text(yaml.safe_dump({"name": "plan", "manifest": str(manifest), "shard_size": args.shard_size}))
        t_fresh, _ = dry_run(work, cfg)
        t0 = time.perf_counter()
        shards = make_shards(manifest, work / "results" / "plan" / "shards", args.shard_size)
        t_shard = time.perf_counter() - t0
        # shards now exist and are newer than the manifest, as after the shard job
        t_after, _ = dry_run(work, cfg)
        rows_out.append((n, len(shards), t_fresh, t_shard, t_after))
        print(f"rows={n}: shards={len(shards)} dry-run={t_fresh:.1f}s shard={t_shard:.1f}s "
              f"dry-run-after-shard={t_after:.1f}s", file=sys.stderr)
    print(f"\nshard_size = {args.shard_size}; target: 1M rows planned in < {TARGET_S:.0f} s\n")
    print("| rows | shards | `snakemake -n` (no shards yet) s | sharding s | `snakemake -n` (shards made) s "
          "| plan + shard s | ratio to 60 s target |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, s, a, b, c in rows_out:
        total = a + b
        print(f"| {n:,} | {s:,} | {a:.1f} | {b:.1f} | {c:.1f} | {total:.1f} | {total / TARGET_S:.2f} |")


if __name__ == "__main__":
    main()
