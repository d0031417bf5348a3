"""Reading and writing tables (CSV, Parquet, or a NeVA JSONL prompt file) without changing their values.

CSV cells are read as strings exactly as written (no NA guessing, no number parsing), so extra columns
come back verbatim (quotes, commas, newlines, unicode). Every write is atomic: a temporary file in the
same folder, then ``os.replace``; a reader never sees a half-written table.

A ``.jsonl`` / ``.ndjson`` file is a NeVA prompt file (``vidcap.io.prompt_files``): read line by line into one row
per question (``path`` as written, ``media_type``, ``prompt``, ``category``, ``question_id``, other keys
as string columns). ``bad_lines``: ``fail`` (default) raises ``vidcap.io.prompt_files.PromptFileError`` (a
``TableError``) listing every bad line by number; ``report`` skips them (listed in
``df.attrs["bad_lines"]`` and logged). CSV and Parquet ignore ``bad_lines``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vidcap.errors import TableError
from vidcap.io.atomic import atomic_path
from vidcap.io.prompt_files import read_prompt_file, write_prompt_file

FORMATS = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson")


def table_format(path: str | Path) -> str:
    """'csv', 'parquet' (a file or a folder of Parquet files) or 'jsonl' (a NeVA prompt file) from the
    file name; TableError for anything else."""
    if Path(path).is_dir():
        return "parquet"
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise TableError(f"{path}: unknown table format {suffix!r}; use one of {', '.join(FORMATS)}")


def _read_prompt_file(path: Path, bad_lines: str) -> pd.DataFrame:
    result = read_prompt_file(path, on_bad_line=bad_lines, resolve=False)
    df = result.table
    df.attrs["bad_lines"] = result.bad_lines
    return df


def read_table(path: str | Path, required: tuple[str, ...] = ("path",), bad_lines: str = "fail") -> pd.DataFrame:
    """The whole table; CSV cells as strings. Raises TableError naming the file and what is wrong.
    ``bad_lines``: for prompt files (module docstring)."""
    path = Path(path)
    fmt = table_format(path)
    if not (path.is_file() or path.is_dir()):
        raise TableError(f"table not found: {path}")
    if fmt == "jsonl":
        df = _read_prompt_file(path, bad_lines)
        check_columns(df, required, path)
        return df
    try:
        if fmt == "csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        else:
            df = pq.read_table(path).to_pandas()
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: empty table (no header line)") from None
    except Exception as exc:  # pyarrow / parser errors: give the file name with the reason
        raise TableError(f"{path}: cannot read table: {exc}") from exc
    check_columns(df, required, path)
    return df


def cell_text(value) -> str:
    """A table cell as text: '' for null (None, NaN, pd.NA), else ``str(value)``."""
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):   # list-like cells
        pass
    return str(value)


def check_columns(df: pd.DataFrame, required, where) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns)) or "(none)"
        raise TableError(f"{where}: missing required column(s) {', '.join(missing)}; columns found: {have}")


def write_table(df: pd.DataFrame | pa.Table, path: str | Path) -> Path:
    """Write CSV or Parquet (by extension) atomically; returns the path. ``.jsonl``: a NeVA prompt file
    (``vidcap.io.prompt_files.write_prompt_file``; needs ``path``, ``prompt`` and ``question_id``; other
    columns become string keys)."""
    path = Path(path)
    fmt = table_format(path)
    if fmt == "jsonl":
        return write_prompt_file(df.to_pandas() if isinstance(df, pa.Table) else df, path, keep_columns=True)
    with atomic_path(path) as tmp:
        if fmt == "csv":
            frame = df.to_pandas() if isinstance(df, pa.Table) else df
            lists_as_json(frame).to_csv(tmp, index=False)
        else:
            table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
            # no pandas metadata: Arrow-backed dtypes in it (list<...>[pyarrow]) break plain readers
            pq.write_table(table.replace_schema_metadata(None), tmp)
    return path


def lists_as_json(df: pd.DataFrame) -> pd.DataFrame:
    """List-valued cells (frame indices, tags) as JSON text, e.g. ``[0, 8, 15]``; others unchanged."""
    out = df
    for col in df.columns:
        sample = df[col].dropna()
        if len(sample) and isinstance(sample.iloc[0], (list, tuple, np.ndarray)):
            if out is df:
                out = df.copy()
            out[col] = [None if v is None or (not isinstance(v, (list, tuple, np.ndarray)) and pd.isna(v))
                        else json.dumps(np.asarray(v).tolist(), ensure_ascii=False) for v in df[col]]
    return out


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file (UTF-8, whatever the locale) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented JSON atomically (NaN and infinities written as null)."""
    return write_text(path, json.dumps(_finite(obj), indent=1, sort_keys=True, default=str) + "\n")


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def parquet_intact(path: str | Path) -> bool:
    """Cheap check that ``path`` is a whole Parquet file: magic bytes at both ends and a footer that
    fits (catches truncation and overwritten ends; reads 12 bytes, no parsing)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size < 12:
                return False
            fh.seek(-8, os.SEEK_END)
            tail = fh.read(8)
    except OSError:
        return False
    footer = int.from_bytes(tail[:4], "little")
    return head == b"PAR1" and tail[4:] == b"PAR1" and footer + 12 <= size


def cell_list(v) -> list:
    """A list cell (Arrow list, numpy array, JSON text) as a Python list."""
    if v is None:
        return []
    if isinstance(v, str):
        try:
            v = json.loads(v) if v.strip().startswith("[") else [v]
        except ValueError:
            return [v]
    if isinstance(v, (list, tuple, np.ndarray)):
        return [x for x in (v.tolist() if isinstance(v, np.ndarray) else v) if x is not None]
    try:
        if pd.isna(v):
            return []
    except (TypeError, ValueError):
        pass
    return [v]


def pair_counts(df: pd.DataFrame, key: str, detail: str) -> list[tuple[str, str, int]]:
    """(key, detail, rows) for each distinct non-empty ``key`` value with its ``detail`` ('' when the
    detail column is absent), commonest first; [] when ``key`` is not a column."""
    if key not in df.columns:
        return []
    cols = [c for c in (key, detail) if c in df.columns]
    sub = df[cols].astype("string").fillna("")
    sub = sub[sub[key] != ""]
    out = []
    for values, n in sub.value_counts().items():
        values = values if isinstance(values, tuple) else (values,)
        out.append((values[0], values[1] if len(values) > 1 else "", int(n)))
    return out
