"""The report's rows: the merged table read in batches (``vidcap.io.results``), memory bounded.

A table of up to ``limit`` rows is read whole. A larger one gives a seeded uniform sample of
``limit`` rows (positions drawn once, rows kept in manifest order as the batches pass): the gallery
and every per-column statistic the report computes from rows take it; the dataset summary (counts
over every row) comes from gather's summary file or ``vidcap.summary.summarize_table``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from vidcap.io.results import iter_result_batches, results_dataset

SAMPLE_ROWS = 200_000


def report_rows(table: str | Path, limit: int = SAMPLE_ROWS, seed: int = 0) -> pd.DataFrame:
    """The rows the report shows (module docstring), as Arrow-backed pandas."""
    total = results_dataset(table).count_rows()
    if total <= limit:
        return results_dataset(table).to_table().to_pandas(types_mapper=pd.ArrowDtype)
    keep = np.sort(np.random.default_rng(seed).choice(total, size=limit, replace=False))
    pieces, start = [], 0
    for batch in iter_result_batches(table):
        lo, hi = np.searchsorted(keep, [start, start + batch.num_rows])
        if hi > lo:
            pieces.append(batch.take(pa.array(keep[lo:hi] - start)))
        start += batch.num_rows
    return pa.Table.from_batches(pieces).to_pandas(types_mapper=pd.ArrowDtype).reset_index(drop=True)
