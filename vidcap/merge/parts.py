"""Writing the merged table as it comes, one part at a time.

``PartWriter``: the Parquet dataset ``<run>/table/part-NNNNN.parquet`` (one part per shard, numbered in
manifest order, each written atomically; every part has the same schema). Parts are written to
``table.partial/`` and swapped in when the last is written, so a reader sees the old dataset or the
new one, never a mix.

``SingleFiles``: the single-file tables (``.csv``, ``.parquet``) fed part by part: the CSV is appended
(header once), the Parquet gets a row group per ``ROW_GROUP`` rows (buffered), each file renamed into
place when closed. For a run of up to ``ROW_GROUP`` rows both are byte for byte what writing the whole
table at once gives (``vidcap.io.tables.write_table``).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vidcap.errors import GatherError
from vidcap.io.atomic import atomic_path
from vidcap.io.tables import lists_as_json, write_table

ROW_GROUP = 1024 * 1024   # pyarrow's default rows per row group


class PartWriter:
    def __init__(self, table_dir: Path):
        self.final = Path(table_dir)
        self.staging = self.final.with_name(self.final.name + ".partial")
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        self.count = 0
        self.schema: pa.Schema | None = None

    def write(self, table: pa.Table, shard: str) -> pa.Table:
        """Write the next part; returns it as written (cast to the first part's schema)."""
        table = table.replace_schema_metadata(None)
        if self.schema is None:
            self.schema = table.schema
        elif table.schema != self.schema:
            try:
                table = table.cast(self.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise GatherError(f"shard {shard}: its merged columns do not fit the first shard's types "
                                  f"({exc}); check its stage outputs") from None
        write_table(table, self.staging / f"part-{self.count:05d}.parquet")
        self.count += 1
        return table

    def commit(self) -> Path:
        old = self.final.with_name(self.final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.staging, self.final)
        shutil.rmtree(old, ignore_errors=True)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class SingleFiles:
    def __init__(self, outputs: list[Path]):
        self._stack = contextlib.ExitStack()
        self.csv = [self._stack.enter_context(atomic_path(p)) for p in outputs if Path(p).suffix == ".csv"]
        self.parquet = [self._stack.enter_context(atomic_path(p)) for p in outputs if Path(p).suffix != ".csv"]
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._writers: list[pq.ParquetWriter] = []
        self._header = True

    def add(self, table: pa.Table) -> None:
        if self.csv:
            frame = lists_as_json(table.to_pandas(types_mapper=pd.ArrowDtype))
            for tmp in self.csv:
                frame.to_csv(tmp, index=False, header=self._header, mode="w" if self._header else "a")
            self._header = False
        if self.parquet:
            self._buffer.append(table)
            self._buffered += len(table)
            if self._buffered >= ROW_GROUP:
                self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer).combine_chunks()
        self._buffer, self._buffered = [], 0
        if not self._writers:
            self._writers = [pq.ParquetWriter(str(tmp), table.schema) for tmp in self.parquet]
        for writer in self._writers:
            writer.write_table(table)

    def close(self, schema: pa.Schema | None) -> None:
        """Finish every file (an empty table of ``schema`` when no part came) and rename it into place."""
        if self.parquet:
            if not self._buffer and not self._writers and schema is not None:
                self._buffer = [schema.empty_table()]
            self._flush()
            for writer in self._writers:
                writer.close()
        if self.csv and self._header and schema is not None:
            self._header = True
            self.add_csv_header(schema)
        self._stack.close()

    def add_csv_header(self, schema: pa.Schema) -> None:
        for tmp in self.csv:
            pd.DataFrame(columns=schema.names).to_csv(tmp, index=False)

    def abort(self) -> None:
        self._stack.__exit__(GatherError, GatherError("merge failed"), None)
