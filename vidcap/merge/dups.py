"""``caption_duplicate`` over a whole run with memory bounded by a bucket, not by the run.

A row's value: the ``row_id`` of the first row, in manifest order, whose text is exactly the same;
null for that first row, for unique texts and for empty ones (null, or only whitespace as Unicode
defines it). Texts are compared by a 128-bit hash (two keyed 64-bit SipHash values of the UTF-8 text,
``pandas.util.hash_array``): two different captions share one with a chance of about 1e-23 for 100 M rows.

1. ``add`` (each shard, in manifest order): per non-empty text its hash, its ordinal (place among the
   merged rows) and its ``row_id``, appended to one of ``buckets`` Arrow files by hash.
2. ``finish``: per bucket (``rows / buckets`` rows in memory), sort by hash then ordinal; every row of a
   group but the first is a duplicate of the first. The pairs (ordinal, first ``row_id``) go to range
   files by ordinal.
3. ``column(start, n)``: the values of ordinals ``start`` .. ``start + n - 1`` (a part), read from the
   range file(s) they fall in (one range in memory at a time; parts come in order).
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vidcap.merge.ordinals import KeyedStreams, OrdinalRanges

ROWS_PER_BUCKET = 1_000_000
MAX_BUCKETS = 256
_KEYS = ("vidcap-dup-key-1", "vidcap-dup-key-2")   # 16 characters each (SipHash keys)
_ENTRY = pa.schema([("h1", pa.uint64()), ("h2", pa.uint64()), ("ord", pa.int64()), ("row_id", pa.string())])
_PAIR = pa.schema([("ord", pa.int64()), ("first", pa.string())])


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def text_hashes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions of the non-empty texts, h1, h2) of ``texts``."""
    texts = texts.cast(pa.string()) if texts.type != pa.string() else texts
    keep = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0), False)
    pos = np.flatnonzero(keep.to_numpy(zero_copy_only=False))
    values = texts.take(pa.array(pos, pa.int64())).to_numpy(zero_copy_only=False)
    h1 = pd.util.hash_array(values, hash_key=_KEYS[0], categorize=False)
    h2 = pd.util.hash_array(values, hash_key=_KEYS[1], categorize=False)
    return pos, h1, h2


class Duplicates:
    """Duplicate texts of a run, found on disk under ``workdir`` (module docstring)."""

    def __init__(self, workdir: Path, rows: int):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.buckets = max(1, min(MAX_BUCKETS, math.ceil(rows / ROWS_PER_BUCKET)))
        self.ordinal = 0
        self._buckets = KeyedStreams(self.dir, "bucket")
        self._pairs: OrdinalRanges | None = None

    def add(self, texts: pa.Array | pa.ChunkedArray, row_ids: pa.Array | pa.ChunkedArray) -> None:
        """The next rows of the merged table (in manifest order): their texts and row ids."""
        texts, row_ids = _flat(texts), _flat(row_ids)
        start, n = self.ordinal, len(texts)
        self.ordinal += n
        pos, h1, h2 = text_hashes(texts)
        if not len(pos):
            return
        bucket = (h1 % np.uint64(self.buckets)).astype(np.int64)
        order = np.argsort(bucket, kind="stable")
        counts = np.bincount(bucket, minlength=self.buckets)
        ids = row_ids.take(pa.array(pos[order], pa.int64()))
        h1, h2, ords = h1[order], h2[order], pos[order] + start
        at = 0
        for b in np.flatnonzero(counts):
            sel = slice(at, at + int(counts[b]))
            at += int(counts[b])
            batch = pa.record_batch([pa.array(h1[sel]), pa.array(h2[sel]), pa.array(ords[sel], pa.int64()),
                                     ids[sel]], schema=_ENTRY)
            self._buckets.write(int(b), batch)

    def finish(self) -> int:
        """Group every bucket; returns how many rows repeat an earlier row's text."""
        self._buckets.close()
        self._pairs = pairs = OrdinalRanges(self.dir, "range", _PAIR, self.ordinal, self.buckets)
        total = 0
        for b in range(self.buckets):
            table = self._buckets.take(b)
            if table is None:
                continue
            h1, h2, ords = (table.column(c).to_numpy() for c in ("h1", "h2", "ord"))
            order = np.lexsort((ords, h2, h1))
            s1, s2, so = h1[order], h2[order], ords[order]
            first = np.ones(len(order), dtype=bool)
            first[1:] = (s1[1:] != s1[:-1]) | (s2[1:] != s2[:-1])
            group_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
            dup = ~first
            if not dup.any():
                continue
            first_ids = table.column("row_id").take(pa.array(order[group_start[dup]], pa.int64())).combine_chunks()
            total += int(dup.sum())
            pairs.add(so[dup], [first_ids])
        pairs.close_writers()
        return total

    def column(self, start: int, n: int) -> pa.Array:
        """``caption_duplicate`` of the merged rows ``start`` .. ``start + n - 1``."""
        if n == 0 or self._pairs is None:
            return pa.nulls(n, pa.string())
        found = self._pairs.rows(start, n)
        index = np.full(n, -1, dtype=np.int64)
        index[found.column("ord").to_numpy() - start] = np.arange(found.num_rows)
        return found.column("first").combine_chunks().take(pa.array(index, mask=index < 0))

    def close(self) -> None:
        self._buckets.close()
        shutil.rmtree(self.dir, ignore_errors=True)
