"""Progress of a run directory: per stage, rows done / failed / remaining, and the commonest errors.

Reads only files: shard tables, finished stage outputs and the journals of unfinished shards, so it
works while a run is going, after a kill, and on a cluster's shared filesystem.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from vidcap.stage import read_journal


def run_status(run_dir: str | Path) -> dict:
    """``{"rows": N, "shards": S, "stages": {name: {...counts..., "errors": Counter}}}``."""
    run_dir = Path(run_dir)
    info_path = run_dir / "shards" / "manifest.json"
    if not info_path.exists():
        raise FileNotFoundError(f"{run_dir}: no shards yet ({info_path} missing); has the run started?")
    info = json.loads(info_path.read_text())
    sizes = {n: pq.ParquetFile(run_dir / "shards" / f"{n}.parquet").metadata.num_rows for n in info["shards"]}
    names = sorted({p.name for d in ("stages", "journal") if (run_dir / d).is_dir()
                    for p in (run_dir / d).iterdir() if p.is_dir()})
    stages = {}
    for stage in names:
        err_col = f"{stage}_error"
        done = finished = 0
        errors: Counter = Counter()
        for shard, size in sizes.items():
            out = run_dir / "stages" / stage / f"{shard}.parquet"
            journal = run_dir / "journal" / stage / f"{shard}.jsonl"
            if out.exists():
                col = pq.read_table(out, columns=[err_col]).column(err_col).to_pylist()
                done += len(col)
                errors.update(e for e in col if e)
                finished += 1
            elif journal.exists():
                records = read_journal(journal)[1]
                done += min(len(records), size)
                errors.update(r.get(err_col) for r in records.values() if r.get(err_col))
        stages[stage] = {"shards_done": finished, "rows_done": done, "failed": sum(errors.values()),
                         "remaining": info["rows"] - done, "errors": errors}
    return {"rows": info["rows"], "shards": len(sizes), "stages": stages}


def format_status(status: dict, top_errors: int = 3) -> str:
    lines = [f"{status['rows']} rows in {status['shards']} shards", ""]
    header = f"{'stage':<12}{'shards':>12}{'done':>10}{'failed':>10}{'remaining':>11}{'progress':>10}"
    lines.append(header)
    for name, s in status["stages"].items():
        pct = 100.0 * s["rows_done"] / status["rows"] if status["rows"] else 100.0
        lines.append(f"{name:<12}{s['shards_done']:>7}/{status['shards']:<4}{s['rows_done']:>10}"
                     f"{s['failed']:>10}{s['remaining']:>11}{pct:>9.1f}%")
    if not status["stages"]:
        lines.append("(no stage has started)")
    for name, s in status["stages"].items():
        if s["errors"]:
            lines.append("")
            lines.append(f"{name}: commonest errors")
            for msg, n in s["errors"].most_common(top_errors):
                lines.append(f"  {n:>7} × {msg[:150]}")
    return "\n".join(lines)
