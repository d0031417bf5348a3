"""Values keyed by a merged row's ordinal, kept on disk and read back one part at a time.

The run-wide columns of the merge (``caption_duplicate``, ``near_duplicate_of``) are found bucket by
bucket in an order unrelated to the rows, then written out part by part in manifest order.
``OrdinalRanges`` is the bridge: ``add`` appends batches (an ``ord`` column first, then the values) to
one of ``ranges`` Arrow files by ordinal (range ``r`` holds ordinals ``r * size`` .. ``(r + 1) * size - 1``);
``rows(start, n)`` gives the entries of ordinals ``start`` .. ``start + n - 1``, sorted by ordinal, with
one range file in memory at a time (parts come in order, so each file is read once).

``KeyedStreams``: the Arrow files themselves, one IPC stream per integer key (``<prefix>-NNNNN.arrow``),
appended to batch by batch and read back whole; also the buckets of ``vidcap.merge.dups`` and the
cluster groups of ``vidcap.merge.near_dups``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa


class KeyedStreams:
    """Arrow IPC stream files under ``workdir``, one per integer key: ``write`` appends a batch to its
    key's file (opened on first use, with that batch's schema), ``close`` finishes every open file,
    ``read(key)`` gives a finished file whole (None when nothing was written to it), ``take(key)`` the
    same and removes the file."""

    def __init__(self, workdir: Path, prefix: str):
        self.dir, self.prefix = Path(workdir), prefix
        self._writers: dict[int, tuple] = {}

    def path(self, key: int) -> Path:
        return self.dir / f"{self.prefix}-{key:05d}.arrow"

    def write(self, key: int, batch: pa.RecordBatch) -> None:
        if key not in self._writers:
            sink = pa.OSFile(str(self.path(key)), "wb")
            self._writers[key] = (sink, pa.ipc.new_stream(sink, batch.schema))
        self._writers[key][1].write_batch(batch)

    def close(self) -> None:
        for sink, writer in self._writers.values():
            writer.close()
            sink.close()
        self._writers.clear()

    def read(self, key: int) -> pa.Table | None:
        path = self.path(key)
        if not path.exists():
            return None
        with pa.OSFile(str(path), "rb") as fh:
            return pa.ipc.open_stream(fh).read_all()

    def take(self, key: int) -> pa.Table | None:
        table = self.read(key)
        self.path(key).unlink(missing_ok=True)
        return table


class OrdinalRanges:
    def __init__(self, workdir: Path, prefix: str, schema: pa.Schema, total: int, ranges: int):
        if schema.names[0] != "ord":
            raise ValueError("OrdinalRanges: the schema's first field must be 'ord'")
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.ranges = max(1, ranges)
        self.size = max(1, math.ceil(total / self.ranges))
        self._files = KeyedStreams(self.dir, prefix)
        self._loaded: tuple[int, pa.Table] | None = None

    def add(self, ords: np.ndarray, values: list[pa.Array]) -> None:
        """Entries ``(ords[i], values[0][i], ...)``; an ordinal may get several (the reader keeps all)."""
        if not len(ords):
            return
        which = ords // self.size
        by = np.argsort(which, kind="stable")
        counts = np.bincount(which, minlength=self.ranges)
        at = 0
        for r in np.flatnonzero(counts):
            sel = pa.array(by[at: at + int(counts[r])], pa.int64())
            at += int(counts[r])
            batch = pa.record_batch([pa.array(ords).take(sel), *(v.take(sel) for v in values)], schema=self.schema)
            self._files.write(int(r), batch)

    def close_writers(self) -> None:
        self._files.close()

    def _range(self, r: int) -> pa.Table:
        if self._loaded is None or self._loaded[0] != r:
            table = self._files.read(r)
            table = self.schema.empty_table() if table is None else table.sort_by("ord").combine_chunks()
            self._loaded = (r, table)
        return self._loaded[1]

    def rows(self, start: int, n: int) -> pa.Table:
        """The entries of ordinals ``start`` .. ``start + n - 1``, by ordinal (stable within one)."""
        if n <= 0:
            return self.schema.empty_table()
        pieces = []
        for r in range(start // self.size, (start + n - 1) // self.size + 1):
            table = self._range(r)
            ords = table.column("ord").to_numpy()
            lo, hi = np.searchsorted(ords, [start, start + n])
            pieces.append(table.slice(lo, hi - lo))
        return pa.concat_tables(pieces) if pieces else self.schema.empty_table()
