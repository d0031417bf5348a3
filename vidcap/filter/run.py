"""``filter_results``: a finished run's merged table, filtered batch by batch, written as the next manifest.

Reads through ``vidcap.io.results`` (memory bounded by a batch), keeps the rows where the condition
(``vidcap.filter.expr``) is true, and writes them with every column to ``output`` (Parquet, or CSV when
it ends in ``.csv``; written to a temporary file and renamed). Relative ``path`` values are made absolute
against the run's media folder (from the run's shard info, or ``media_root``), so the output works as
a manifest wherever it lies. The report (returned, and written as JSON to ``<output stem>.filter.json``)
counts, for each top-level ``and`` term in order, the rows it ``removed`` (that every earlier term kept)
and the rows it ``fails`` on its own, then ``kept`` of ``rows``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from vidcap.filter.expr import parse
from vidcap.io.atomic import atomic_path
from vidcap.io.media_paths import resolve_media_path
from vidcap.io.results import results_dataset
from vidcap.io.run_dir import RunDir
from vidcap.io.tables import write_json

PATH_COLUMN = "path"   # the manifest's media column


def report_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f"{output.name.rsplit('.', 1)[0]}.filter.json")


def run_media_base(where: str | Path) -> str | None:
    """The folder the run resolved relative paths against (its shard info), when ``where`` is a run."""
    where = Path(where)
    for root in ([where] if where.is_dir() else [where.with_suffix("")]):
        run = RunDir.at(root)
        if run.shard_info_path.is_file():
            return run.shard_info().get("media_base")
    return None


def filter_results(where: str | Path, output: str | Path, condition: str, media_root: str | None = None,
                   batch_size: int = 65_536) -> dict:
    """Filter the merged table named by ``where`` into ``output``; returns the report (module docstring)."""
    cond = parse(condition)
    dataset = results_dataset(where)
    schema = dataset.schema
    cond.check_columns(schema.names)
    base = os.path.abspath(os.path.expanduser(media_root)) if media_root else run_media_base(where)
    removed = np.zeros(len(cond.terms), dtype=np.int64)
    fails = np.zeros(len(cond.terms), dtype=np.int64)
    rows = kept = 0
    output = Path(output)
    with atomic_path(output) as tmp, _Writer(tmp, schema, output.suffix.lower() == ".csv") as writer:
        for batch in dataset.to_batches(batch_size=batch_size):
            alive = np.ones(batch.num_rows, dtype=bool)
            for i, mask in enumerate(cond.term_masks(batch)):
                ok = mask.to_numpy(zero_copy_only=False)
                fails[i] += int((~ok).sum())
                removed[i] += int((alive & ~ok).sum())
                alive &= ok
            whole = cond.mask(batch).to_numpy(zero_copy_only=False)
            rows += batch.num_rows
            kept += int(whole.sum())
            out = batch.filter(pa.array(whole))
            if base and PATH_COLUMN in out.schema.names:
                out = _absolute_paths(out, base)
            writer.write(out)
    report = {"input": str(where), "output": str(output), "where": condition, "rows": rows, "kept": kept,
              "terms": [{"term": t.text, "removed": int(r), "fails": int(f)}
                        for t, r, f in zip(cond.terms, removed, fails)]}
    if len(cond.terms) == 1 or kept != rows - int(removed.sum()):   # an `or` at the top: one term
        report["removed"] = rows - kept
    write_json(report_path(output), report)
    return report


def format_report(report: dict) -> str:
    lines = [f"{report['rows']} rows, kept {report['kept']} ({report['rows'] - report['kept']} removed) "
             f"-> {report['output']}"]
    width = max((len(t["term"]) for t in report["terms"]), default=0)
    for t in report["terms"]:
        lines.append(f"  {t['term']:<{width}}  removed {t['removed']:>8}  (fails alone {t['fails']})")
    return "\n".join(lines)


def _absolute_paths(batch: pa.RecordBatch, base: str) -> pa.RecordBatch:
    i = batch.schema.get_field_index(PATH_COLUMN)
    col = batch.column(i)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        return batch
    values = [None if p is None else resolve_media_path(p, base) if "://" not in p else p
              for p in col.to_pylist()]
    return batch.set_column(i, batch.schema.field(i), pa.array(values, col.type))


class _Writer:
    """Streaming Parquet or CSV writer of the output's batches."""

    def __init__(self, path: Path, schema: pa.Schema, csv: bool):
        self.path, self.schema, self.csv = path, schema, csv
        self.writer: Any = None

    def __enter__(self):
        if self.csv:

            self.writer = pacsv.CSVWriter(str(self.path), self.schema)
        else:

            self.writer = pq.ParquetWriter(str(self.path), self.schema)
        return self

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self.writer.write_batch(batch)

    def __exit__(self, *exc):
        self.writer.close()
        return False

