"""Progress of a run: per stage, rows done / failed / remaining, and the commonest kinds of error.

Reads only files of the run folder (``vidcap.io.run_dir``): a finished shard's stats file (else its
output's error column), else the journal of a shard still running or killed. So it works while a
run is going, after a kill, and on a cluster's shared filesystem. Errors are grouped by class
(``vidcap.errors.error_class``: paths, numbers and ids stripped), with a few examples each.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from vidcap.errors import ErrorGroups
from vidcap.io.run_dir import RunDir
from vidcap.stages import STAGES
from vidcap.stages.journal import read_journal


def _order(names: list[str]) -> list[str]:
    return [s for s in STAGES if s in names] + sorted(s for s in names if s not in STAGES)


def run_status(run_dir: str | Path) -> dict:
    """``{"rows": N, "shards": S, "stages": {name: {...counts..., "errors": ErrorGroups}}}``."""
    run = RunDir.at(run_dir)
    info = run.shard_info()
    sizes = {n: pq.ParquetFile(run.shard(n)).metadata.num_rows for n in info["shards"]}
    stages = {}
    for stage in _order(run.stage_names()):
        err_col = f"{stage}_error"
        done = finished = 0
        errors = ErrorGroups()
        for shard, size in sizes.items():
            out, stats = run.output(stage, shard), run.read_stats(stage, shard)
            if out.exists() and stats is not None and stats.get("rows") == size:
                done += size
                errors.update(ErrorGroups.from_json(stats.get("errors")))
                finished += 1
            elif out.exists():
                col = pq.read_table(out, columns=[err_col]).column(err_col).to_pylist()
                done += len(col)
                for e in col:
                    errors.add(e)
                finished += 1
            elif run.journal(stage, shard).exists():
                records = read_journal(run.journal(stage, shard))[1]
                done += min(len(records), size)
                for r in records.values():
                    errors.add(r.get(err_col))
        stages[stage] = {"shards_done": finished, "rows_done": done, "failed": errors.total(),
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
        if s["errors"].total():
            lines.append("")
            lines.append(f"{name}: commonest errors")
            for cls, n, examples in s["errors"].top(top_errors):
                lines.append(f"  {n:>7} × {cls[:150]}")
                for ex in examples[:3]:
                    if ex != cls:
                        lines.append(f"            e.g. {ex[:150]}")
    return "\n".join(lines)
