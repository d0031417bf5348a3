"""The one reader of a finished run's merged table, for every consumer (report, export, filter, status).

``results_dataset(where)`` accepts what a user names on the command line:

* a run folder ``<results_dir>/<name>`` or the merged file ``<results_dir>/<name>.parquet``;
* the merged Parquet dataset folder ``<results_dir>/<name>/table/`` (``part-*.parquet``);
* any other Parquet file or folder of Parquet files (e.g. the output of ``vidcap filter``).

It returns a ``pyarrow.dataset.Dataset``: read it in batches (``iter_result_batches``) so memory is
bounded by a batch, never by the run. Row order is the manifest's (parts sort by name).
A missing or unreadable table raises ``ResultsError`` naming the path and what to do.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from vidcap.errors import TableError
from vidcap.io.run_dir import RunDir


class ResultsError(TableError):
    """A run's merged table is missing or unreadable."""


def _dataset_dir(run: RunDir) -> Path:
    return run.root / "table"


def results_source(where: str | Path) -> Path | list[Path]:
    """The file, or the sorted part files, that hold the merged table named by ``where``."""
    where = Path(where)
    if where.is_dir():
        candidates = [where] if any(where.glob("*.parquet")) else []
        if (where / "shards").is_dir():  # a run folder
            run = RunDir.at(where)
            candidates = [_dataset_dir(run), run.table("parquet")]
        for cand in candidates:
            if cand.is_dir():
                parts = sorted(cand.glob("*.parquet"))
                if parts:
                    return parts
            elif cand.is_file():
                return cand
        looked = ", ".join(map(str, candidates)) or "Parquet files in it"
        raise ResultsError(f"{where}: no merged table found (looked for {looked}); finish the run first "
                           "(rerun the same snakemake command)")
    if where.is_file():
        return where
    raise ResultsError(f"{where} does not exist: name a run folder, its merged .parquet, or a Parquet folder")


def results_dataset(where: str | Path) -> ds.Dataset:
    """The merged table named by ``where`` as a pyarrow dataset (nothing read yet)."""
    source = results_source(where)
    try:
        if isinstance(source, list):
            return ds.dataset([str(p) for p in source], format="parquet")
        return ds.dataset(str(source), format="parquet")
    except (OSError, pa.ArrowInvalid) as exc:
        raise ResultsError(f"{where}: merged table unreadable ({exc}); rerun the workflow to rebuild it") from None


def iter_result_batches(where: str | Path, columns: list[str] | None = None,
                        batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
    """The merged table's rows in manifest order, ``batch_size`` rows at a time."""
    dataset = results_dataset(where)
    try:
        yield from dataset.to_batches(columns=columns, batch_size=batch_size)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ResultsError(f"{where}: merged table unreadable ({exc}); rerun the workflow to rebuild it") from None
