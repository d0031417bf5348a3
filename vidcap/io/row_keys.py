"""Row ids for a manifest read in batches: the same ids as ``vidcap.io.shards.row_ids`` over the whole
manifest, with memory bounded by a batch.

A row's key is its resolved media path, plus its ``start``/``end`` cells when either is set; its id
is ``blake2b(f"{key}\\x00{k}", digest_size=8)`` in hex, ``k`` = how many rows with the same key came
before it in the manifest. Computed in two steps:

1. ``batch_ids`` (``RowKeys.batch``; worker processes may run it): every row gets the id of
   ``k = 0`` (one C-level hash per row; paths resolved with Arrow kernels, Python only for the few
   that need ``normpath``), and each row's (row index, id, the key's CRC-32 and length) is spilled to one of ``PARTITIONS`` files
   on disk, chosen by the id's top byte.
2. ``RowKeys.repeats()``: each partition is loaded alone (rows / ``PARTITIONS`` entries), sorted by
   (id, CRC and length, row index), and every row that is not the first of its key gets its ``k``:
   ``(row index, k)`` pairs in manifest order. Rows of one key always share a partition; two keys
   are told apart by 96 bits of two independent hashes and their length. ``RowKeys.ids_for(keys, ks)`` then hashes those rows again.

Cells of ``start``/``end`` read as ``vidcap.io.tables.read_table`` gives them: strings verbatim, numbers
as Python's ``str`` (an integer column with a null anywhere reads as floats, ``'3.0'``), null as ''.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vidcap.io.media_paths import URL, resolve_media_path

PARTITIONS = 256
RANGE_COLUMNS = ("start", "end")
_SPILL = np.dtype([("row", "<i8"), ("h1", "<u8"), ("h2", "<i8")])   # row, id, crc32 | length << 32
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NEEDS_NORMPATH = r"//|/\.\.?(/|$)|/$"


def text_cells(column: pa.Array | pa.ChunkedArray, as_float: bool = False) -> pa.Array:
    """A column's cells as ``read_table`` + ``cell_text`` give them (module docstring)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pc.fill_null(column.cast(pa.string()), "")
    if pa.types.is_null(column.type):
        return pa.array([""] * len(column), pa.string())
    values = column.to_pylist()
    if as_float:
        values = [None if v is None else float(v) for v in values]
    return pa.array(["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values], pa.string())


def resolve_paths(paths: pa.Array, base: str) -> pa.Array:
    """``vidcap.io.media_paths.resolve_media_path`` over an array: '' stays '', relative paths are joined to
    ``base`` (already absolute and normalised), ``~`` expanded, ``.``/``..``/``//`` normalised; URLs
    stay as written (their row id is then a hash of the URL)."""
    prefix = base if base.endswith("/") else base + "/"
    joined = pc.if_else(pc.starts_with(paths, "/"), paths, pc.binary_join_element_wise(prefix, paths, ""))
    joined = pc.if_else(pc.equal(paths, ""), "", joined)
    slow = pc.or_(pc.starts_with(paths, "~"), pc.match_substring_regex(joined, _NEEDS_NORMPATH))
    url = pc.match_substring_regex(paths, URL.pattern)
    if URL.match(base):   # a URL media root: every relative path is a URL, joined by resolve_media_path
        slow = pc.and_not(pc.not_equal(paths, ""), url)
    joined = pc.if_else(url, paths, joined)
    slow = pc.and_not(slow, url)
    idx = np.flatnonzero(slow.to_numpy(zero_copy_only=False))
    if not len(idx):
        return joined
    fixed = [resolve_media_path(p, base) for p in paths.take(pa.array(idx)).to_pylist()]
    return pc.replace_with_mask(joined, slow, pa.array(fixed, pa.string()))


def hex_ids(digests: bytes, n: int) -> pa.Array:
    """``n`` 8-byte digests (concatenated) as 16-hex-digit strings, without a Python loop."""
    raw = np.frombuffer(digests, dtype=np.uint8)
    out = np.empty(raw.size * 2, dtype=np.uint8)
    out[0::2], out[1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


def digest_all(items: list[bytes]) -> bytes:
    base = hashlib.blake2b(digest_size=8)
    out: list[bytes] = []
    append = out.append
    for item in items:
        h = base.copy()
        h.update(item)
        append(h.digest())
    return b"".join(out)


def row_keys(batch: pa.RecordBatch | pa.Table, media: pa.Array, range_columns: tuple[str, ...],
             float_columns: set[str]) -> pa.Array:
    """Each row's key: its resolved media path, plus ``\\x00start\\x00end`` when either cell is set."""
    if not range_columns:
        return media
    names = batch.schema.names
    cells = [text_cells(batch.column(names.index(c)), c in float_columns) if c in names
             else pa.array([""] * len(media), pa.string()) for c in RANGE_COLUMNS]
    ranged = pc.or_(pc.not_equal(cells[0], ""), pc.not_equal(cells[1], ""))
    return pc.if_else(ranged, pc.binary_join_element_wise(media, cells[0], cells[1], "\x00"), media)


def batch_ids(batch: pa.RecordBatch, first_row: int, base: str, range_columns: tuple[str, ...],
              float_columns: set[str]) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """(resolved media paths, ids with ``k = 0``, spill records) of one batch (``path`` and the range
    columns are enough); a pure function, so worker processes can run it."""
    media = resolve_paths(text_cells(batch.column(batch.schema.get_field_index("path"))), base)
    keys = row_keys(batch, media, range_columns, float_columns)
    items = pc.binary_join_element_wise(keys, "0", "\x00").cast(pa.binary()).to_pylist()
    digests = digest_all(items)
    rec = np.empty(len(items), dtype=_SPILL)
    rec["row"] = np.arange(first_row, first_row + len(items), dtype=np.int64)
    rec["h1"] = np.frombuffer(digests, dtype=">u8")
    crc = np.fromiter(map(zlib.crc32, items), dtype=np.int64, count=len(items))   # same in every process
    rec["h2"] = crc | (pc.binary_length(keys).to_numpy().astype(np.int64) << 32)
    return media, hex_ids(digests, len(items)), rec


def batch_ids_task(args):
    """``batch_ids(*args)`` for ``multiprocessing`` (a picklable top-level function)."""
    return batch_ids(*args)


class RowKeys:
    """Keys and first ids of a manifest's batches, and the repeats among them (module docstring)."""

    def __init__(self, base: str, range_columns: tuple[str, ...] = (), float_columns: set[str] | None = None,
                 spill_dir: str | Path | None = None):
        self.base = base
        self.range_columns = tuple(range_columns)
        self.float_columns = float_columns or set()
        self._dir = Path(tempfile.mkdtemp(prefix=".rowids-", dir=spill_dir))
        self._files: dict[int, BinaryIO] = {}

    def keys(self, batch: pa.RecordBatch | pa.Table, media: pa.Array) -> pa.Array:
        """Each row's key from its resolved media path and range cells."""
        return row_keys(batch, media, self.range_columns, self.float_columns)

    def batch(self, batch: pa.RecordBatch, first_row: int) -> tuple[pa.Array, pa.Array]:
        """(resolved media paths, ids with ``k = 0``) of one batch, its spill written (``spill``)."""
        media, ids, rec = batch_ids(batch, first_row, self.base, self.range_columns, self.float_columns)
        self.spill(rec)
        return media, ids

    def spill(self, rec: np.ndarray) -> None:
        """Append (row, id, second hash) records to their partitions' files."""
        part = (rec["h1"] >> np.uint64(56)).astype(np.intp)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(PARTITIONS + 1))
        for p in np.flatnonzero(np.diff(bounds)).tolist():
            fh = self._files.get(p) or self._files.setdefault(p, open(self._dir / f"{p:03d}", "ab"))
            rec[order[bounds[p]:bounds[p + 1]]].tofile(fh)

    def repeats(self) -> tuple[np.ndarray, np.ndarray]:
        """(row indices, k) of every row that is not the first of its key, in manifest order."""
        for fh in self._files.values():
            fh.close()
        rows, ks = [], []
        for p in sorted(self._files):
            rec = np.fromfile(self._dir / f"{p:03d}", dtype=_SPILL)
            order = np.lexsort((rec["row"], rec["h2"], rec["h1"]))
            s = rec[order]
            new = np.ones(len(s), dtype=bool)
            new[1:] = (s["h1"][1:] != s["h1"][:-1]) | (s["h2"][1:] != s["h2"][:-1])
            starts = np.flatnonzero(new)
            k = np.arange(len(s)) - np.repeat(starts, np.diff(np.append(starts, len(s))))
            later = k > 0
            rows.append(s["row"][later])
            ks.append(k[later])
        self.close()
        if not rows:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        row, k = np.concatenate(rows), np.concatenate(ks)
        order = np.argsort(row, kind="stable")
        return row[order], k[order]

    @staticmethod
    def ids_for(keys: list[str], ks: list[int]) -> list[str]:
        return [hashlib.blake2b(f"{key}\x00{k}".encode(), digest_size=8).hexdigest() for key, k in zip(keys, ks)]

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __del__(self):
        if os.path.isdir(getattr(self, "_dir", "")):
            self.close()
