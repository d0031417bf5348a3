"""Planning cost: sharding and `snakemake -n` for manifests of 10k, 100k and 1M rows.

Paths need not exist (nothing runs). Prints one markdown table; the ratio column is time over the
60 s target for planning a 1M-row manifest. Usage: python bench/plan/run.py [--rows 10000 100000 ...]
[--shard-size N] (default 1000; `bench/scale` measures `shard_size: auto`).

Second table (`--slurm-rows`, default 1M): SLURM jobs a run would submit through `profiles/slurm`,
with the profile's grouping of the small CPU stages and without it (the same profile minus `groups`,
`group-components` and `cores`), and the planning time of each. Counted from `snakemake -n` with
the profile (no cluster needed): every top-level job except local ones is one sbatch, and a
"Group job" block is one sbatch for all the jobs inside it.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vidcap.io.shards import make_shards  # noqa: E402

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


def slurm_dry_run(workdir: Path, config: Path, profile: Path) -> tuple[float, dict[str, int]]:
    """Planning time and the sbatch submissions `snakemake -n --profile profile` shows, by kind."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                           str(workdir), "--configfile", str(config), "--profile", str(profile), "-n"],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-3000:])
    counts: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^rule (\w+):", line)  # top level: a job of its own (indented = inside a group)
        g = re.search(r"\] Group job (\S+)", line)
        key = f"{m.group(1)}" if m else (f"group {g.group(1)}" if g else None)
        if key:
            counts[key] = counts.get(key, 0) + 1
    return elapsed, counts


def profile_without_groups(out: Path) -> Path:
    prof = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    for key in ("groups", "group-components", "cores"):
        prof.pop(key, None)
    folder = out / "profile_slurm_nogroups"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(prof))
    return folder


def slurm_table(n: int, shard_size: int, out: Path) -> None:
    work = out / f"rows{n}"
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "manifest.csv"
    if not manifest.exists():
        pd.DataFrame({"path": [f"videos/{i // 1000:04d}/clip{i:07d}.mp4" for i in range(n)]}).to_csv(
            manifest, index=False)
    variants = [("probe + motion", {}),
                ("probe + motion + caption", {"caption": {"enabled": True, "resources": {"gpu": 1}}})]
    profiles = [("grouped (profiles/slurm)", REPO / "profiles" / "slurm"),
                ("one job per shard", profile_without_groups(out))]
    rows = []
    for label, stages in variants:
        cfg = work / f"config_slurm_{len(rows)}.yaml"
        cfg.write_text(yaml.safe_dump({"name": "planslurm", "manifest": str(manifest), "shard_size": shard_size,
                                       "stages": stages}))
        for plabel, profile in profiles:
            t, counts = slurm_dry_run(work, cfg, profile)
            rows.append((label, plabel, t, counts))
            print(f"slurm {label} / {plabel}: {t:.1f}s {counts}", file=sys.stderr)
    print(f"\nSLURM submissions for {n:,} rows, shard_size = {shard_size} "
          f"({-(-n // shard_size):,} shards), from `snakemake -n --profile ...`\n")
    print("| stages | profile | sbatch jobs | of which groups | jobs per kind | `snakemake -n` s | jobs ratio |")
    print("|---|---|---:|---:|---|---:|---:|")
    base = {}
    for label, plabel, _t, counts in rows:
        total = sum(v for k, v in counts.items() if k != "all")
        base.setdefault(label, total) if plabel.startswith("one") else None
    for label, plabel, t, counts in rows:
        total = sum(v for k, v in counts.items() if k != "all")
        groups = sum(v for k, v in counts.items() if k.startswith("group "))
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()) if k != "all")
        print(f"| {label} | {plabel} | {total:,} | {groups:,} | {kinds} | {t:.1f} | {total / base[label]:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--shard-size", type=int, default=1000, help="rows per shard (the figures below: 1000)")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "plan"))
    ap.add_argument("--slurm-rows", type=int, default=1_000_000, help="rows for the SLURM table (0: skip)")
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
    if args.slurm_rows:
        slurm_table(args.slurm_rows, args.shard_size, out)


if __name__ == "__main__":
    main()
