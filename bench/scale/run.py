"""Scale: sharding and planning manifests of 1 M, 10 M and 100 M rows with `shard_size: auto`.

For each size: a synthetic Parquet manifest (relative ``path`` + one ``text`` column; the files need
not exist: nothing runs), then, each in its own process with its peak resident memory (``/usr/bin/time
-v``): `vidcap shard --workers N` (the workflow's shard job; N = its threads, default 1), `snakemake -n`
of the workflow with the default config (``shard_size: auto``; stages probe, motion, clean) once the shards exist, and `snakemake -n` of
a bare Snakefile with the same number of jobs per stage (one rule per stage, one job per shard: the
floor that Snakemake itself sets). ``--old-sharder`` also runs the sharder of main at 295c4ab (whole
manifest in one pandas frame) on the smallest size, with its shard size, for the comparison.

Usage: python bench/scale/run.py [--rows 1000000 10000000] [--workers 1] [--old-sharder] [--keep]
Writes under bench/out/scale (git-ignored) and deletes the manifests and shards unless ``--keep``.
Prints one markdown table; bench/scale/README.md holds the figures.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vidcap.io.shards import resolve_shard_size, shard_names  # noqa: E402

CHUNK = 1_000_000
STAGES = ("probe", "motion", "clean")   # the default config's stages for a manifest with a text column


def write_manifest(path: Path, n: int) -> None:
    """``n`` rows in row groups of 1 M: ``videos/<dir>/clip_<i>.mp4`` and a short caption."""
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("path", pa.string()), ("text", pa.string())])
    with pq.ParquetWriter(path, schema) as w:
        for lo in range(0, n, CHUNK):
            idx = range(lo, min(n, lo + CHUNK))
            w.write_table(pa.table({"path": [f"videos/{i // 1000:06d}/clip_{i:09d}.mp4" for i in idx],
                                    "text": [f"a person walks a dog along the beach, clip {i}" for i in idx]},
                                   schema=schema))


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of ``cmd`` run under /usr/bin/time -v."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    return wall, rss, proc.stdout


def jobs_per_rule(stdout: str) -> dict[str, int]:
    """Snakemake's `-n -q rules` job-count table."""
    counts = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


BARE = """
SHARDS = [f"{{i:0{width}d}}" for i in range({n})]
STAGES = {stages!r}

rule all:
    input: expand("out/{{stage}}/{{shard}}.parquet", stage=STAGES, shard=SHARDS)

rule shard:
    output: expand("shards/{{shard}}.parquet", shard=SHARDS)
    shell: "touch {{output}}"
"""
BARE_STAGES = "".join(f"""
rule {s}:
    input: "shards/{{shard}}.parquet"
    output: "out/{s}/{{shard}}.parquet"
    shell: "touch {{output}}"
""" for s in STAGES)


def one_size(n: int, out: Path, old: bool, workers: int) -> list[dict]:
    work = out / f"rows{n}"
    manifest = work / "manifest.parquet"
    t0 = time.perf_counter()
    write_manifest(manifest, n)
    print(f"{n:,} rows: manifest written in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    size = resolve_shard_size("auto", n)
    shards = work / "results" / "scale" / "shards"
    rows = []
    py = sys.executable
    wall, rss, _ = timed([py, "-m", "vidcap", "shard", "--manifest", str(manifest), "--outdir", str(shards),
                          "--shard-size", str(size), "--expect-rows", str(n), "--workers", str(workers)], cwd=REPO)
    rows.append({"rows": n, "step": f"shard (streaming, {workers} process{'es' if workers > 1 else ''})", "shard_size": size, "s": wall, "mb": rss,
                 "jobs": f"{len(shard_names(n, size)):,} shards"})
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump({"name": "scale", "manifest": str(manifest), "report": {"enabled": False}}))
    wall, rss, stdout = timed([py, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(work),
                               "--configfile", str(cfg), "-n", "-q", "rules"])
    counts = jobs_per_rule(stdout)
    rows.append({"rows": n, "step": "`snakemake -n` (vidcap, shards made)", "shard_size": "auto", "s": wall,
                 "mb": rss, "jobs": ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))})
    bare = work / "bare"
    bare.mkdir(exist_ok=True)
    count = len(shard_names(n, size))
    (bare / "Snakefile").write_text(BARE.format(n=count, width=max(5, len(str(count - 1))), stages=STAGES) + BARE_STAGES)
    wall, rss, stdout = timed([py, "-m", "snakemake", "-s", str(bare / "Snakefile"), "--directory", str(bare),
                               "-n", "-q", "rules", "-c1"])
    counts = jobs_per_rule(stdout)
    rows.append({"rows": n, "step": "`snakemake -n` (bare Snakefile, same jobs)", "shard_size": "", "s": wall,
                 "mb": rss, "jobs": ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))})
    if old:
        src = subprocess.run(["git", "show", "295c4ab:vidcap/io/shards.py"], capture_output=True, text=True,
                             cwd=REPO, check=True).stdout
        (work / "old_shards.py").write_text(src)
        code = ("import importlib.util, sys; sys.path.insert(0, sys.argv[1]); "
                "spec = importlib.util.spec_from_file_location('old_shards', sys.argv[2]); "
                "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
                "m.make_shards(sys.argv[3], sys.argv[4], int(sys.argv[5]))")
        for s in sorted({size, 1000}):
            wall, rss, _ = timed([py, "-c", code, str(REPO), str(work / "old_shards.py"), str(manifest),
                                  str(work / f"old_shards_{s}"), str(s)])
            rows.append({"rows": n, "step": "shard (main at 295c4ab, whole frame)", "shard_size": s, "s": wall,
                         "mb": rss, "jobs": f"{len(shard_names(n, s)):,} shards"})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--old-sharder", action="store_true", help="also time main's sharder on the smallest size")
    ap.add_argument("--keep", action="store_true", help="keep manifests and shards")
    ap.add_argument("--workers", type=int, default=1, help="vidcap shard --workers (the shard rule's threads)")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "scale"))
    args = ap.parse_args()
    out = Path(args.out)
    rows = []
    for i, n in enumerate(sorted(args.rows)):
        rows += one_size(n, out, args.old_sharder and i == 0, args.workers)
        if not args.keep:
            shutil.rmtree(out / f"rows{n}", ignore_errors=True)
    print("\n| rows | step | shard_size | wall s | peak RSS MB | jobs |")
    print("|---:|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['rows']:,} | {r['step']} | {r['shard_size']} | {r['s']:.1f} | {r['mb']:,.0f} | {r['jobs']} |")
    for n in sorted(args.rows):
        shard = next(r for r in rows if r["rows"] == n and r["step"].startswith("shard (streaming"))
        plan = next(r for r in rows if r["rows"] == n and r["step"].startswith("`snakemake -n` (vidcap"))
        print(f"\n{n:,} rows: shard + plan {shard['s'] + plan['s']:.0f} s (target for 100 M: < 300 s); "
              f"largest process {max(r['mb'] for r in rows if r['rows'] == n):,.0f} MB (target < 4096)")


if __name__ == "__main__":
    main()
