"""Soak test of resume: kill -9 at random moments, edit the manifest between runs, check nothing is
lost, repeated or recomputed beyond what the edits require.

A manifest of ``--rows`` distinct tiny clips runs through probe, motion and caption (tiny random-weight
Qwen2.5-VL on the CPU). Each of ``--cycles`` cycles: a random edit of the manifest (add rows, delete
rows, point rows at other files), then ``snakemake`` killed with SIGKILL (whole process group) after a
random delay; the next cycle starts with ``--unlock`` and ``--rerun-incomplete``. A last run finishes;
then a clean run of the final manifest in a fresh folder. Per cycle it prints:

* recomputed beyond the minimum: journal records written in the cycle for a (stage, row id, input
  hash) that a journal already held when the cycle began (target 0);
* duplicate journal records: rows journaled more than once in one journal (target 0);
* at the end, rows lost / differing: the final table against the clean run's, every column the
  stages compute, cell for cell (must be 0).

Usage: python bench/soak/run.py [--rows 2000] [--cycles 10] [--seed 0] [--shard-size 100]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vidcap.dev import synth  # noqa: E402
from vidcap.dev.tiny import tiny_model  # noqa: E402
from vidcap.io.tables import write_table  # noqa: E402

OUT = REPO / "bench" / "out" / "soak"
STAGES = ("probe", "motion", "caption")
COMPARE = ["path", "num_frames", "width", "height", "cmotion", "motion_pan", "text", "caption_frame_indices",
           "probe_error", "motion_error", "caption_error"]


def snakemake(workdir: Path, cfg: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(cfg), "-c2", *extra]


def journals(run: Path) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(stage, shard) -> [(row_id, input hash)] in file order, every record (repeats kept)."""
    out = {}
    for stage in STAGES:
        for j in sorted((run / "journal" / stage).glob("*.jsonl")):
            recs = []
            for line in j.read_text().splitlines()[1:]:
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue
                recs.append((r["row_id"], r.get("_in")))
            out[(stage, j.stem)] = recs
    return out


def known(run: Path) -> Counter:
    """How many journal records each (stage, row id, input hash) has."""
    return Counter((stage, rid, h) for (stage, _), recs in journals(run).items() for rid, h in recs)


def edit(manifest: list[str], pool: list[str], rng: random.Random) -> tuple[list[str], str]:
    kind = rng.choice(["add", "delete", "change"])
    k = rng.randint(1, max(1, len(manifest) // 50))
    m = list(manifest)
    if kind == "add" and pool:
        for _ in range(min(k, len(pool))):
            m.insert(rng.randrange(len(m) + 1), pool.pop())
    elif kind == "delete":
        for _ in range(k):
            m.pop(rng.randrange(len(m)))
    elif pool:
        for _ in range(min(k, len(pool))):
            m[rng.randrange(len(m))] = pool.pop()
    return m, f"{kind} {k}"


def write_manifest(paths: list[str], where: Path) -> None:
    write_table(pd.DataFrame({"path": paths}), where)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-kill-s", type=float, default=8.0)
    ap.add_argument("--max-kill-s", type=float, default=40.0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    media = OUT / "media"
    spare = args.rows // 5
    total = args.rows + spare
    for i in range(total):
        p = media / f"c{i:05d}.mp4"
        if not p.exists():
            synth.write_video(p, num_frames=8, width=48, height=32, seed=i)
    names = [f"c{i:05d}.mp4" for i in range(total)]
    manifest, pool = names[: args.rows], names[args.rows:]
    rng.shuffle(pool)
    model = tiny_model("qwen2_5_vl")
    stages = {"probe": {"enabled": True}, "motion": {"enabled": True},
              "caption": {"enabled": True, "prompt": "video_short", "batch_size": 8, "decode_workers": 1,
                          "frames": {"num_frames": 4, "resize_short": 32}, "generation": {"max_new_tokens": 8},
                          "transformers": {"model": str(model)},
                          "resources": {"mem_mb": 2000, "runtime": 30, "threads": 1, "gpu": 0}},
              "clean": {"enabled": False}}
    work = OUT / "soak"
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir()
    man_path = work / "manifest.csv"
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump({"name": "soak", "manifest": str(man_path), "shard_size": args.shard_size,
                                   "media_root": str(media), "report": {"enabled": False}, "stages": stages}))
    run = work / "results" / "soak"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    rows = []
    print(f"{args.rows} rows, shard size {args.shard_size}, stages {', '.join(STAGES)}; {args.cycles} cycles of "
          f"edit + kill -9 after {args.min_kill_s:g}-{args.max_kill_s:g} s, then a finishing run", flush=True)
    for cycle in range(args.cycles + 1):
        last = cycle == args.cycles
        what = "none (first run)" if cycle == 0 else "none (finish)" if last else None
        if what is None:
            manifest, what = edit(manifest, pool, rng)
        write_manifest(manifest, man_path)
        before = known(run)
        subprocess.run(snakemake(work, cfg, "--unlock"), capture_output=True, env=env)
        t0 = time.time()
        log = open(work / f"cycle-{cycle:02d}.log", "w")
        proc = subprocess.Popen(snakemake(work, cfg, "--rerun-incomplete"), stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        if last:
            rc = proc.wait()
            killed = f"finished (rc {rc})"
        else:
            delay = rng.uniform(args.min_kill_s, args.max_kill_s)
            try:
                rc = proc.wait(timeout=delay)
                killed = f"finished before the kill (rc {rc})"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                killed = f"kill -9 at {delay:.1f} s"
        log.close()
        if last and rc:
            print((work / f"cycle-{cycle:02d}.log").read_text()[-4000:], flush=True)
        after = journals(run)
        now = known(run)
        new = {k: n - before.get(k, 0) for k, n in now.items() if n > before.get(k, 0)}
        written = sum(new.values())
        beyond = sum(n for k, n in new.items() if before.get(k, 0) > 0)
        dups = sum(len(recs) - len({rid for rid, _ in recs}) for recs in after.values())
        rows.append({"cycle": cycle, "edit": what, "outcome": killed, "s": time.time() - t0,
                     "journal records written": written, "recomputed beyond minimum": beyond,
                     "duplicate journal records": dups})
        print(f"cycle {cycle}: edit {what}; {killed}; {written} records written, {beyond} beyond minimum, "
              f"{dups} duplicates", flush=True)
    final = pd.read_csv(work / "results" / "soak.csv", dtype=str, keep_default_na=False)

    clean = OUT / "clean"
    if clean.exists():
        subprocess.run(["rm", "-rf", str(clean)], check=True)
    clean.mkdir()
    ccfg = clean / "config.yaml"
    ccfg.write_text(cfg.read_text().replace(str(man_path), str(clean / "manifest.csv")))
    write_manifest(manifest, clean / "manifest.csv")
    subprocess.run(snakemake(clean, ccfg), check=True, capture_output=True, env=env)
    ref = pd.read_csv(clean / "results" / "soak.csv", dtype=str, keep_default_na=False)
    cols = [c for c in COMPARE if c in ref.columns]
    lost = len(set(ref["path"]) - set(final["path"]))
    extra = len(final) - len(ref)
    diff = int((final[cols].reset_index(drop=True) != ref[cols].reset_index(drop=True)).any(axis=1).sum()) \
        if len(final) == len(ref) else None

    print("\n| cycle | edit | outcome | wall s | journal records written | recomputed beyond minimum | "
          "duplicate journal records |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['cycle']} | {r['edit']} | {r['outcome']} | {r['s']:.0f} | {r['journal records written']} | "
              f"{r['recomputed beyond minimum']} | {r['duplicate journal records']} |")
    print(f"\nfinal table: {len(final)} rows; clean run of the same manifest: {len(ref)} rows; "
          f"rows lost {lost}; extra rows {extra}; rows differing in {', '.join(cols)}: {diff}")
    print(f"totals: recomputed beyond minimum {sum(r['recomputed beyond minimum'] for r in rows)}, "
          f"duplicate journal records {sum(r['duplicate journal records'] for r in rows)}")
    ok = lost == 0 and extra == 0 and diff == 0 and all(r["duplicate journal records"] == 0 for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
