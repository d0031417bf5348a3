"""Reading a manifest in batches, with memory bounded by a batch, and checking it before a run starts.

A manifest is a CSV file, a Parquet file, a folder of Parquet files (``*.parquet`` / ``*.pq``, read in
file-name order, every file with the same columns and types), or a NeVA prompt file (``.jsonl``).

* ``iter_batches`` yields ``pyarrow.RecordBatch`` es of at most ``BATCH_ROWS`` rows (a CSV: blocks of
  ``CSV_BLOCK_BYTES``). CSV cells come back as strings exactly as written (no NA guessing, no number
  parsing, quoted newlines kept), like ``vidcap.io.tables.read_table``. A prompt file is read line by
  line (twice: once for its columns, once for its rows).
* ``check_manifest`` raises ``TableError`` naming the file for what would fail later: a CSV that is
  binary or not UTF-8 (the line and byte of the first bad byte), a Parquet folder whose files differ
  in columns or types (the first such file), a ``path`` column that is all null, no ``path`` column.
* ``read_table_columns``: only some columns of a table.
* ``count_manifest_rows``: Parquet from its footers; CSV by one streaming parse of the ``path`` column.
* ``manifest_stamp``: size and modification time of the file(s), to notice a manifest that changes
  while it is read.
"""
from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from vidcap.errors import TableError
from vidcap.io.prompt_files import PROMPT_COLUMNS, BadLine, iter_prompt_file, log, scan_prompt_file
from vidcap.io.tables import check_columns, read_table, table_format, write_text

BATCH_ROWS = 65_536
CSV_BLOCK_BYTES = 8 << 20
PARQUET_SUFFIXES = (".parquet", ".pq")


def manifest_kind(path: str | Path) -> str:
    """'csv', 'parquet', 'parquet_dir' or 'jsonl'; TableError for a missing file or an unknown format."""
    path = Path(path)
    if path.is_dir():
        return "parquet_dir"
    fmt = table_format(path)
    if not path.is_file():
        raise TableError(f"table not found: {path}")
    return fmt


def parquet_files(folder: str | Path) -> list[Path]:
    """The Parquet files of a manifest folder, in file-name order (TableError when there are none)."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES)
    if not files:
        raise TableError(f"{folder}: a folder manifest must hold Parquet files (*.parquet); found none")
    return files


def _files(path: Path, kind: str) -> list[Path]:
    return parquet_files(path) if kind == "parquet_dir" else [path]


def parquet_schema(path: str | Path) -> pa.Schema:
    """Schema of a Parquet manifest (file or folder; a folder's files must agree: ``check_manifest``)."""
    path = Path(path)
    first = parquet_files(path)[0] if path.is_dir() else path
    return _footer(first).schema_arrow


def _footer(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:   # not Parquet, truncated
        raise TableError(f"{path}: cannot read Parquet: {exc}") from None


# ------------------------------------------------------------------------------------------- CSV


def check_text_encoding(path: str | Path, chunk: int = 16 << 20) -> None:
    """TableError unless ``path`` is UTF-8 text: names the line and byte of the first bad byte (a NUL
    byte means a binary file). Streams the file; memory: one chunk."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset, lines = 0, 1
    with open(path, "rb") as fh:
        while True:
            data = fh.read(chunk)
            nul = data.find(b"\x00")
            if nul >= 0:
                line = lines + data.count(b"\n", 0, nul)
                raise TableError(f"{path}: not a CSV text file (binary data: a NUL byte on line {line}, at "
                                 f"byte offset {offset + nul})")
            try:
                decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                at = max(0, exc.start)
                line = lines + data.count(b"\n", 0, at)
                raise TableError(f"{path}: not UTF-8 text: line {line}, byte offset {offset + at} (0x{data[at]:02x}); "
                                 "save the CSV as UTF-8") from None
            if not data:
                return
            lines += data.count(b"\n")
            offset += len(data)


def csv_columns(path: str | Path) -> list[str]:
    """A CSV's column names from its header (TableError for an empty file or repeated names)."""
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 20),
                                parse_options=pacsv.ParseOptions(newlines_in_values=True))
        names = reader.schema.names
        reader.close()
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise TableError(f"{path}: empty table (no header line)") from None
        raise TableError(f"{path}: cannot read CSV: {exc}") from None
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TableError(f"{path}: repeated column name(s) in the header: {', '.join(repeated)}")
    return names


def _open_csv(path: str | Path, columns: list[str] | None = None):
    names = csv_columns(path)
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                                   quoted_strings_can_be_null=False, null_values=[], include_columns=columns)
    return pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                          parse_options=pacsv.ParseOptions(newlines_in_values=True), convert_options=convert)


def _csv_batches(path: Path, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    reader = _open_csv(path, columns)
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:   # e.g. a row with too many fields, bad UTF-8 found late
            raise TableError(f"{path}: cannot read CSV: {exc}") from None
        yield batch


# ------------------------------------------------------------------------------------------- API


def table_columns(path: str | Path, bad_lines: str = "fail") -> list[str]:
    """Column names of a manifest without reading its rows (a prompt file: read once)."""
    kind = manifest_kind(path)
    if kind == "csv":
        return csv_columns(path)
    if kind == "jsonl":
        return prompt_file_columns(path, bad_lines)
    return list(parquet_schema(path).names)


def read_table_columns(path: str | Path, columns: list[str], bad_lines: str = "fail") -> pd.DataFrame:
    """Only ``columns`` of a table, as ``vidcap.io.tables.read_table`` reads it (all must exist;
    TableError otherwise). A prompt file is read whole; ``bad_lines`` as for ``read_table``."""
    path = Path(path)
    if table_format(path) == "jsonl":
        if not path.is_file():
            raise TableError(f"table not found: {path}")
        return read_table(path, required=tuple(columns), bad_lines=bad_lines)[list(columns)]
    if table_format(path) == "parquet":
        names = table_columns(path)
        check_columns(pd.DataFrame(columns=names), columns, path)
        return pq.read_table(path, columns=columns).to_pandas()
    if not path.is_file():
        raise TableError(f"table not found: {path}")
    try:
        header = pd.read_csv(path, nrows=0, dtype=str)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: empty table (no header line)") from None
    check_columns(header, columns, path)
    return pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_filter=False)


def check_manifest(path: str | Path, encoding: bool = True) -> None:
    """What would fail later, found before anything runs (module docstring); cheap for Parquet (footers
    only); a CSV is streamed once for its encoding (``encoding=False``: not)."""
    path = Path(path)
    kind = manifest_kind(path)
    if kind == "csv":
        if encoding:
            check_text_encoding(path)
        names = csv_columns(path)
    elif kind == "jsonl":
        return
    else:
        files = _files(path, kind)
        schema = _footer(files[0]).schema_arrow
        for f in files[1:]:
            other = _footer(f).schema_arrow
            if not other.remove_metadata().equals(schema.remove_metadata()):
                diff = _schema_difference(schema, other)
                raise TableError(f"{path}: the Parquet files of this folder differ: {files[0].name} vs {f.name}: {diff}")
        names = schema.names
        if "path" in names:
            _check_path_not_all_null(files, schema)
    if "path" not in names:
        raise TableError(f"{path}: missing required column(s) path; columns found: {', '.join(names) or '(none)'}")


def _schema_difference(a: pa.Schema, b: pa.Schema) -> str:
    only_a, only_b = [n for n in a.names if n not in b.names], [n for n in b.names if n not in a.names]
    if only_a or only_b:
        return f"columns only in the first: {only_a or 'none'}; only in this one: {only_b or 'none'}"
    typed = [f"{n} ({a.field(n).type} vs {b.field(n).type})" for n in a.names if a.field(n).type != b.field(n).type]
    return "column types " + ", ".join(typed) if typed else "column order differs"


def _check_path_not_all_null(files: list[Path], schema: pa.Schema) -> None:
    if pa.types.is_null(schema.field("path").type):
        raise TableError(f"{files[0].parent if len(files) > 1 else files[0]}: column 'path' is all null")
    total = nulls = 0
    for f in files:
        meta = _footer(f).metadata
        idx = schema.get_field_index("path")
        for rg in range(meta.num_row_groups):
            col = meta.row_group(rg).column(idx)
            stats = col.statistics
            if stats is None or not stats.has_null_count:
                return   # unknown: the sharder finds out
            total += meta.row_group(rg).num_rows
            nulls += stats.null_count
    if total and nulls == total:
        raise TableError(f"{files[0] if len(files) == 1 else files[0].parent}: column 'path' is all null "
                         f"({total} rows, no media path in any)")


def count_manifest_rows(path: str | Path, bad_lines: str = "fail") -> int:
    """Rows of a manifest (module docstring); a prompt file: its good lines."""
    path = Path(path)
    kind = manifest_kind(path)
    if kind == "csv":
        if "path" not in csv_columns(path):
            return sum(b.num_rows for b in _csv_batches(path))
        return sum(b.num_rows for b in _csv_batches(path, ["path"]))
    if kind == "jsonl":
        return scan_prompt_file(path, bad_lines)[0]
    return sum(_footer(f).metadata.num_rows for f in _files(path, kind))


def checked_row_count(path: str | Path, cache: Path | None = None) -> int:
    """``check_manifest`` then ``count_manifest_rows``, remembered in ``cache`` (JSON: the manifest's
    absolute path, ``manifest_stamp`` and rows) when its folder exists, so the next plan of the same
    unchanged manifest (a rerun, every job of a cluster run) reads nothing. Not for prompt files."""
    key = {"manifest": str(Path(path).resolve()), "stamp": [list(s) for s in manifest_stamp(path)]}
    if cache is not None and cache.is_file():
        try:
            saved = json.loads(cache.read_text())
            if {k: saved.get(k) for k in key} == key and isinstance(saved.get("rows"), int):
                return saved["rows"]
        except (OSError, ValueError):
            pass
    check_manifest(path)
    rows = count_manifest_rows(path)
    if cache is not None and cache.parent.is_dir() and [list(s) for s in manifest_stamp(path)] == key["stamp"]:
        write_text(cache, json.dumps({**key, "rows": rows}))
    return rows


def manifest_stamp(path: str | Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the manifest's file(s)."""
    path = Path(path)
    files = parquet_files(path) if path.is_dir() else [path]
    return [(f.name, (s := f.stat()).st_size, s.st_mtime_ns) for f in files]


def int_columns_with_nulls(path: str | Path, names: tuple[str, ...]) -> set[str]:
    """Which of ``names`` are integer columns of a Parquet manifest with a null anywhere (pandas reads
    those as floats, so their cells read as ``'3.0'``; ids of ranged rows depend on that text). From
    the footers' null counts; a row group without them is read, one column at a time."""
    path = Path(path)
    kind = manifest_kind(path)
    if kind not in ("parquet", "parquet_dir"):
        return set()
    schema = parquet_schema(path)
    nullable = {c.get("name") for c in (schema.pandas_metadata or {}).get("columns", [])
                if str(c.get("numpy_type", "")).startswith(("Int", "UInt"))}   # written from pandas' Int64: stay ints
    ints = [n for n in names if n in schema.names and n not in nullable and pa.types.is_integer(schema.field(n).type)]
    out: set[str] = set()
    for f in _files(path, kind):
        pf = _footer(f)
        for name in ints:
            idx = schema.get_field_index(name)
            for rg in range(pf.metadata.num_row_groups):
                stats = pf.metadata.row_group(rg).column(idx).statistics
                nulls = (stats.null_count if stats is not None and stats.has_null_count
                         else pf.read_row_group(rg, columns=[name]).column(0).null_count)
                if nulls:
                    out.add(name)
                    break
    return out


def iter_batches(path: str | Path, bad_lines: str = "fail", skipped: list | None = None) -> Iterator[pa.RecordBatch]:
    """The manifest's rows in batches (module docstring). A prompt file's skipped bad lines
    (``bad_lines: report``) are appended to ``skipped``."""
    path = Path(path)
    kind = manifest_kind(path)
    if kind == "csv":
        yield from _csv_batches(path)
    elif kind == "jsonl":
        yield from _prompt_batches(path, bad_lines, skipped if skipped is not None else [])
    else:
        for f in _files(path, kind):
            try:
                yield from _parquet_batches(_footer(f))
            except (pa.ArrowInvalid, OSError) as exc:
                raise TableError(f"{f}: cannot read Parquet: {exc}") from None


def _parquet_batches(pf: pq.ParquetFile) -> Iterator[pa.RecordBatch]:
    """A Parquet file's rows in batches, one row group at a time: one reader over the whole file
    (``ParquetFile.iter_batches()``) keeps Arrow memory that grows about 10 bytes a row (pyarrow 26:
    300 MB after 30 M rows of path + text; `bench/scale/README.md`), a reader per row group does not."""
    for group in range(pf.metadata.num_row_groups):
        yield from pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[group])


# ------------------------------------------------------------------------------------ prompt files


def prompt_file_columns(path: str | Path, bad_lines: str = "fail") -> list[str]:
    """Columns of a prompt file read as a table: ``PROMPT_COLUMNS`` then other keys by first appearance."""
    scan_prompt_file(path, bad_lines)   # 'fail': every bad line listed before anything is written
    extra: dict[str, None] = {}
    for item in iter_prompt_file(path, resolve=False):
        if not isinstance(item, BadLine):
            extra.update((k, None) for k in item if k not in PROMPT_COLUMNS)
    return list(PROMPT_COLUMNS) + list(extra)


def _prompt_batches(path: Path, bad_lines: str, skipped: list) -> Iterator[pa.RecordBatch]:
    columns = prompt_file_columns(path, bad_lines)
    schema = pa.schema([(c, pa.string()) for c in columns])
    rows: list[dict] = []
    for item in iter_prompt_file(path, resolve=False):
        if isinstance(item, BadLine):
            log.warning("prompt file %s line %d skipped: %s", path, item.line, item.reason)
            skipped.append(item)
            continue
        rows.append(item)
        if len(rows) == BATCH_ROWS:
            yield _rows_batch(rows, schema)
            rows = []
    if rows:
        yield _rows_batch(rows, schema)


def _rows_batch(rows: list[dict], schema: pa.Schema) -> pa.RecordBatch:
    cols = [[("" if r.get(c) is None else str(r[c])) for r in rows] for c in schema.names]
    return pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in cols], schema=schema)
