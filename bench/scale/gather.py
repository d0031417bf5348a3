"""Scale: the final merge (`vidcap gather`) over synthetic stage outputs of realistic width.

For each size: a synthetic finished run (``vidcap.dev.synthetic_run``: missing files sharded with
``shard_size: auto``; per shard the outputs of probe, caption (a 400-character caption, every 10th
row repeating an earlier one) and motion), then `vidcap gather` as the workflow calls it (the part
dataset ``table/``, ``caption_duplicate``, the summary; the single-file CSV and Parquet only up to
``merge.single_file_max_rows``, 1 M by default) in its own process under ``/usr/bin/time -v`` (wall
time, peak resident memory). ``--old COMMIT``: also the merge of that commit (``git archive`` of its
``vidcap/``; the whole table in one pandas frame) on the smallest size, for the comparison.

Usage: python bench/scale/gather.py [--rows 1000000 10000000] [--old 48eefa2] [--keep]
Writes under bench/out/scale-gather (git-ignored). Prints one markdown table; bench/scale/README.md holds the figures.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vidcap.dev.synthetic_run import STAGES, make_synthetic_run  # noqa: E402
from vidcap.io.shards import resolve_shard_size  # noqa: E402

OUT = REPO / "bench" / "out" / "scale-gather"
SINGLE_FILE_MAX = 1_000_000


def timed(cmd: list[str], env: dict, cwd: Path = REPO) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system: what a loaded machine does not inflate) and peak RSS
    (MB) of ``cmd`` (``/usr/bin/time -v``) run in ``cwd`` (``python -m`` imports from there first)."""
    t = time.time()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.time() - t
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed:\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) // 1024
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", proc.stderr).group(1)) for k in ("User", "System"))
    return wall, cpu, rss


def gather_cmd(run_root: Path, rows: int, single: bool) -> list[str]:
    cmd = [sys.executable, "-m", "vidcap", "gather", "--run", str(run_root)]
    for s in STAGES:
        cmd += ["--stage", s]
    cmd += ["--duplicates-of", "text", "--summary-json", str(run_root.parent / "syn.summary.json"),
            "--summary-csv", str(run_root.parent / "syn.summary.csv")]
    if single:
        cmd += ["-o", str(run_root.parent / "syn.csv"), "-o", str(run_root.parent / "syn.parquet")]
    return cmd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--old", default=None, help="also the merge of this commit, on the smallest size")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    lines = ["| rows | step | shard_size | wall s | CPU s | peak RSS MB |", "|---:|---|---:|---:|---:|---:|"]
    for rows in args.rows:
        size = resolve_shard_size("auto", rows)
        where = OUT / f"{rows}"
        shutil.rmtree(where, ignore_errors=True)
        t = time.time()
        run = make_synthetic_run(where, rows, size)
        print(f"{rows:,} rows: synthetic run made in {time.time() - t:.0f} s", file=sys.stderr)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        single = rows <= SINGLE_FILE_MAX
        wall, cpu, rss = timed(gather_cmd(run.root, rows, single), env)
        step = "gather (streaming" + (", + single files)" if single else ", parts only)")
        lines.append(f"| {rows:,} | {step} | {size} | {wall:.1f} | {cpu:.1f} | {rss} |")
        print(lines[-1], file=sys.stderr)
        if args.old and rows == min(args.rows):
            old = OUT / "old"
            shutil.rmtree(old, ignore_errors=True)
            old.mkdir(parents=True)
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.old, "vidcap"], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
            wall, cpu, rss = timed(gather_cmd(run.root, rows, True), {**os.environ, "PYTHONPATH": str(old)}, cwd=old)
            lines.append(f"| {rows:,} | gather ({args.old}, whole table, single files) | {size} | {wall:.1f} | {cpu:.1f} "
                         f"| {rss} |")
            print(lines[-1], file=sys.stderr)
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
