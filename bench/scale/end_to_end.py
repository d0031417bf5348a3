"""Scale: a whole run of ``--rows`` rows end to end on this machine, every file missing.

A synthetic Parquet manifest (``bench/scale/run.py``'s: relative ``path`` + a ``text`` column; no file
exists), the default config with the probe stage only (``shard_size: auto``; motion and clean off, the
report on), then ``snakemake --profile profiles/local --cores N`` under ``/usr/bin/time -v``: sharding,
every probe job (each row fails fast: no such file), the merge and the report. Then the checks, in
bounded memory (column by column from the part files): every manifest row back exactly once, in order,
each with its ``probe_error``.

Prints wall time, CPU time, the peak resident memory of the largest process of the run (GNU time's
figure for a process tree: the largest descendant), jobs per rule and the checks.

Usage: python bench/scale/end_to_end.py [--rows 10000000] [--cores 2] [--keep]
Writes under bench/out/scale-e2e (git-ignored). bench/scale/README.md holds the figures.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from run import write_manifest  # noqa: E402  (bench/scale/run.py: the same manifest)

OUT = REPO / "bench" / "out" / "scale-e2e"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = OUT / f"rows{args.rows}"
    shutil.rmtree(work, ignore_errors=True)
    manifest = work / "manifest.parquet"
    t0 = time.perf_counter()
    write_manifest(manifest, args.rows)
    print(f"{args.rows:,} rows: manifest written in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    config = {"name": "e2e", "manifest": str(manifest),
              "stages": {"probe": {"enabled": True}, "motion": {"enabled": False}, "clean": {"enabled": False}}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(work),
           "--profile", str(REPO / "profiles" / "local"), "--configfile", str(work / "config.yaml"),
           "--cores", str(args.cores), "--quiet", "rules"]
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (work / "snakemake.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise SystemExit(f"the run failed ({proc.returncode}); log: {work / 'snakemake.log'}\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", proc.stderr).group(1)) for k in ("User", "System"))
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout + proc.stderr, flags=re.M))

    # the checks, one column at a time
    parts = ds.dataset(work / "results" / "e2e" / "table", format="parquet")
    rows = parts.count_rows()
    paths = pq.read_table(manifest, columns=["path"]).column("path")
    got = parts.to_table(columns=["path"]).column("path")
    in_order = rows == len(paths) and bool(pc.all(pc.equal(got, paths)).as_py())
    del got, paths
    ids = parts.to_table(columns=["row_id"]).column("row_id")
    distinct = pc.count_distinct(ids).as_py()
    del ids
    errors = parts.to_table(columns=["probe_error"]).column("probe_error")
    failed = len(errors) - errors.null_count
    print(f"| {args.rows:,} | {wall:.0f} | {cpu:.0f} | {rss:,.0f} | {jobs} | rows back {rows:,}, "
          f"distinct row ids {distinct:,}, manifest order {in_order}, probe_error set {failed:,} |")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
