"""Splitting a manifest into shards with stable row ids.

A row's id is derived from its resolved media path (and its ``start``/``end`` range when the manifest
has one: clips of one file) and how many rows with the same path came before it, so the same manifest
and ``media_root`` always give the same ids and shards, an edit elsewhere in the manifest does not
change a row's id (journaled results stay usable), pointing the manifest at
other files does, and duplicate rows stay distinct (each comes back once).

A shard is a Parquet table: ``row_id``, ``_row_index`` (position in the manifest), ``_media_path``
(the path resolved to an absolute file name; '' for an empty path), then the manifest's own columns.
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vidcap.errors import TableError
from vidcap.io import table_batches  # by module: tests swap its functions (fault injection)
from vidcap.io.media_paths import media_base
from vidcap.io.row_keys import RANGE_COLUMNS, RowKeys, batch_ids_task
from vidcap.io.tables import write_table, write_text

ROW_ID = "row_id"
ROW_INDEX = "_row_index"
MEDIA_PATH = "_media_path"
INTERNAL = (ROW_ID, ROW_INDEX, MEDIA_PATH)


PARALLEL_MIN_ROWS = 1_000_000   # make_shards uses worker processes from this many rows
AUTO_MIN_SHARD = 1000       # rows per shard below which ``auto`` does not go
AUTO_MAX_SHARDS = 2000      # shards (= jobs per stage) above which ``auto`` makes shards bigger


def resolve_shard_size(shard_size: int | str, n_rows: int) -> int:
    """Rows per shard: an explicit size as given; ``auto`` = ``AUTO_MIN_SHARD`` (1000) rows, or for
    manifests over 2 M rows ``ceil(rows / AUTO_MAX_SHARDS)`` rounded up to a multiple of 1000, so a run
    has at most ``AUTO_MAX_SHARDS`` (2000) jobs per stage (100 M rows: 50,000 rows per shard)."""
    if shard_size != "auto":
        return int(shard_size)
    per = math.ceil(n_rows / AUTO_MAX_SHARDS)
    return max(AUTO_MIN_SHARD, math.ceil(per / 1000) * 1000)


def n_shards(n_rows: int, shard_size: int) -> int:
    return max(1, math.ceil(n_rows / shard_size))


def shard_names(n_rows: int, shard_size: int) -> list[str]:
    """Names of the shards, zero-padded so they sort in manifest order (at least 5 digits)."""
    count = n_shards(n_rows, shard_size)
    width = max(5, len(str(count - 1)))
    return [f"{i:0{width}d}" for i in range(count)]


def row_ids(paths) -> list[str]:
    """16-hex-digit ids from (path, occurrence number of that path so far)."""
    seen: dict[str, int] = {}
    ids = []
    for p in paths:
        k = seen.get(p, 0)
        seen[p] = k + 1
        ids.append(hashlib.blake2b(f"{p}\x00{k}".encode(), digest_size=8).hexdigest())
    return ids


def make_shards(manifest: str | Path, outdir: str | Path, shard_size: int,
                media_root: str | None = None, bad_lines: str = "fail",
                expect_rows: int | None = None, workers: int = 1) -> list[Path]:
    """Write ``outdir/<name>.parquet`` for every shard and ``outdir/manifest.json`` (counts, names).

    The manifest is read in batches (``vidcap.io.table_batches``) and shards are written as it goes;
    ids come from ``vidcap.io.row_keys`` (the same as ``row_ids`` over the whole manifest); memory is
    bounded by a batch and a shard's row group, not by the manifest. A manifest column named like an
    internal one (``row_id``, e.g. a vidcap output fed back in) is replaced by the new value.
    ``manifest`` may be a folder of Parquet files or a NeVA prompt file (``.jsonl``, one row per
    question; ``media_root`` is its ``media_base_path``); ``bad_lines``: ``fail`` stops on any bad
    line, ``report`` skips them and lists them (line, reason) in ``manifest.json`` under ``bad_lines``.
    TableError naming the manifest when it changes while it is read, or has another number of rows
    than ``expect_rows`` (what the run was planned for). ``workers`` > 1: ids are hashed in that many
    processes (when ``expect_rows`` >= ``PARALLEL_MIN_ROWS``; the same ids), at most two batches
    per worker in flight.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for left in [*outdir.glob(".rowids-*"), *outdir.glob(".shard-*.parquet.tmp")]:   # a killed job's
        shutil.rmtree(left) if left.is_dir() else left.unlink(missing_ok=True)
    table_batches.check_manifest(manifest, encoding=False)   # the plan checked it; Arrow validates UTF-8 as it reads
    stamp = table_batches.manifest_stamp(manifest)
    base = media_base(manifest, media_root)
    ranges = tuple(c for c in RANGE_COLUMNS if c in table_batches.table_columns(manifest, bad_lines))
    keys = RowKeys(base, ranges, table_batches.int_columns_with_nulls(manifest, ranges) if ranges else set(), spill_dir=outdir)
    skipped: list = []
    writer = _ShardWriter(outdir, shard_size)
    rows = 0
    try:
        parallel = workers if (expect_rows or 0) >= PARALLEL_MIN_ROWS else 1
        for batch, media, ids in _with_ids(table_batches.iter_batches(manifest, bad_lines, skipped), keys, parallel):
            originals = batch.select([n for n in batch.schema.names if n not in INTERNAL])
            index = pa.array(np.arange(rows, rows + batch.num_rows, dtype=np.int64))
            full = pa.Table.from_arrays([ids, index, media, *originals.columns],
                                        names=[*INTERNAL, *originals.schema.names])
            writer.add(full)
            rows += batch.num_rows
        if table_batches.manifest_stamp(manifest) != stamp:
            raise TableError(f"{manifest}: the manifest changed while it was read; shard it again when it is "
                             "no longer being written")
        if expect_rows is not None and rows != expect_rows:
            raise TableError(f"{manifest}: {rows} rows now, {expect_rows} when the run was planned: the manifest "
                             "changed; start the run again")
        columns = [c for c in table_batches.table_columns(manifest, bad_lines) if c not in INTERNAL]
        empty = pa.schema([(ROW_ID, pa.string()), (ROW_INDEX, pa.int64()), (MEDIA_PATH, pa.string())]
                          + [(c, pa.string()) for c in columns])
        names = writer.finish(rows, empty)
        _renumber_repeats(keys, outdir, names, shard_size)
    finally:
        writer.abort()
        keys.close()
    info = {"manifest": str(Path(manifest).resolve()), "media_base": base, "rows": rows,
            "shard_size": shard_size, "shards": names}
    if skipped:
        info["bad_lines"] = [{"line": b.line, "reason": b.reason} for b in skipped]
    write_text(outdir / "manifest.json", json.dumps(info, indent=1))
    return [outdir / f"{n}.parquet" for n in names]


def _with_ids(batches, keys, workers: int):
    """(batch, media paths, first ids) in manifest order, the ids spilled (``vidcap.io.row_keys``)."""
    rows = 0
    if workers <= 1:
        for batch in batches:
            media, ids = keys.batch(batch, rows)
            rows += batch.num_rows
            yield batch, media, ids
        return

    def done(item):
        batch, result = item
        media, ids, rec = result.get()
        keys.spill(rec)
        return batch, media, ids

    pending: deque = deque()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for batch in batches:
            need = batch.select([c for c in ("path", *keys.range_columns) if c in batch.schema.names])
            args = (need, rows, keys.base, keys.range_columns, keys.float_columns)
            pending.append((batch, pool.apply_async(batch_ids_task, (args,))))
            rows += batch.num_rows
            while len(pending) > 2 * workers:
                yield done(pending.popleft())
        while pending:
            yield done(pending.popleft())


def _renumber_repeats(keys, outdir: Path, names: list[str], shard_size: int) -> None:
    """Give every row that repeats an earlier row's key its ``k``-th id, rewriting only the shards
    that hold such rows (one at a time)."""
    rows, ks = keys.repeats()
    if not len(rows):
        return
    shard_of = rows // shard_size
    for s in np.unique(shard_of):
        path = outdir / f"{names[s]}.parquet"
        table = pq.read_table(path)
        mine = shard_of == s
        local = rows[mine] - s * shard_size
        part = table.take(pa.array(local))
        part_keys = keys.keys(part, part.column(MEDIA_PATH).combine_chunks()).to_pylist()
        ids = table.column(ROW_ID).to_numpy(zero_copy_only=False).astype(object)
        ids[local] = RowKeys.ids_for(part_keys, ks[mine].tolist())
        table = table.set_column(0, ROW_ID, pa.array(ids, pa.string()))
        write_table(table, path)


class _ShardWriter:
    """Writes consecutive rows into shards of ``shard_size`` rows, each written to a temporary file
    and renamed into place when whole."""

    def __init__(self, outdir: Path, shard_size: int):
        self.outdir, self.shard_size = outdir, shard_size
        self.index, self.filled, self.schema = 0, 0, None
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self.names: list[str] = []

    def add(self, table: pa.Table) -> None:
        table = table.replace_schema_metadata(None)
        if self.schema is None:
            self.schema = table.schema
        elif not table.schema.equals(self.schema):
            table = table.cast(self.schema)
        offset = 0
        while offset < table.num_rows:
            take = min(self.shard_size - self.filled, table.num_rows - offset)
            if self._writer is None:
                fd, name = tempfile.mkstemp(prefix=".shard-", suffix=".parquet.tmp", dir=self.outdir)
                os.close(fd)
                self._tmp = Path(name)
                self._writer = pq.ParquetWriter(self._tmp, self.schema)
            self._writer.write_table(table.slice(offset, take))
            offset += take
            self.filled += take
            if self.filled == self.shard_size:
                self._close_shard()

    def _close_shard(self) -> None:
        assert self._writer is not None and self._tmp is not None, "no shard open"
        self._writer.close()
        self._writer = None
        self.names.append(self._tmp.name)
        self.filled = 0

    def finish(self, rows: int, empty_schema: pa.Schema) -> list[str]:
        """Renames the shards into place; returns their names (``shard_names``). Zero rows: one empty shard."""
        if self._writer is not None:
            self._close_shard()
        if not self.names:
            fd, name = tempfile.mkstemp(prefix=".shard-", suffix=".parquet.tmp", dir=self.outdir)
            os.close(fd)
            pq.write_table((self.schema or empty_schema).empty_table(), name)
            self.names.append(Path(name).name)
        final = shard_names(rows, self.shard_size)
        umask = os.umask(0)
        os.umask(umask)
        for tmp, name in zip(self.names, final):
            os.chmod(self.outdir / tmp, 0o666 & ~umask)
            os.replace(self.outdir / tmp, self.outdir / f"{name}.parquet")
        self.names = []
        return final

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for tmp in self.names:
            (self.outdir / tmp).unlink(missing_ok=True)
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self.names = []


def shard_members(outdir: str | Path) -> dict[str, list[str]]:
    """Shard name → its row ids, for the shards listed in ``outdir/manifest.json``."""
    outdir = Path(outdir)
    names = json.loads((outdir / "manifest.json").read_text())["shards"]
    return {n: pq.read_table(outdir / f"{n}.parquet", columns=[ROW_ID]).column(ROW_ID).to_pylist() for n in names}
