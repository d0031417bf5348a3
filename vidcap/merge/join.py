"""One shard of the merge: the shard's rows joined with each stage's rows for that shard.

The rules are ``vidcap.gather``'s (its module docstring): the manifest's columns, ``row_id``, then each
stage's columns in stage order; a stage column named like an earlier column replaces it where the
stage has a value. Types are decided for the whole run before the first shard (``MergeSchema``): each
source's schema is unified over its shards, and a replaced column whose old values do not all cast
to the stage's type becomes text in every shard, so every part of the merged dataset has one schema.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vidcap.io.run_dir import RunDir
from vidcap.io.run_tables import check_shard_once, conform, read_stage_table, unified_schema
from vidcap.io.shards import INTERNAL, MEDIA_PATH, ROW_ID, ROW_INDEX

log = logging.getLogger("vidcap.gather")
STRING = pd.ArrowDtype(pa.string())


@dataclass
class MergeSchema:
    """Types of the whole run: ``base`` (the shard tables), ``stages`` (each stage's outputs), and the
    replaced columns that must become text everywhere (``as_text``)."""

    base: pa.Schema
    stages: dict[str, pa.Schema]
    as_text: set[str] = field(default_factory=set)

    @property
    def originals(self) -> list[str]:
        return [c for c in self.base.names if c not in INTERNAL]

    def clashes(self) -> dict[str, list[str]]:
        """Per stage, the columns it replaces."""
        seen, out = set(self.base.names), {}
        for stage, schema in self.stages.items():
            out[stage] = [c for c in schema.names if c != ROW_ID and c in seen]
            seen.update(schema.names)
        return out

    def typed_clashes(self) -> set[str]:
        """Replaced columns whose old and new types differ (their fate needs a look at the values)."""
        types = {f.name: f.type for f in self.base}
        out = set()
        for schema in self.stages.values():
            for f in schema:
                if f.name != ROW_ID and f.name in types and types[f.name] != f.type:
                    out.add(f.name)
                types[f.name] = f.type
        return out


def merge_schema(run: RunDir, names: list[str], stages: list[str]) -> MergeSchema:
    schema = MergeSchema(unified_schema([run.shard(n) for n in names]),
                         {s: unified_schema([run.output(s, n) for n in names]) for s in stages})
    typed = schema.typed_clashes()
    if typed:   # one look at those columns only: does any shard's old value refuse the new type?
        for name in names:
            _, fell_back = merge_shard(run, name, schema, columns=typed | {ROW_ID, ROW_INDEX}, check=False)
            schema.as_text |= fell_back
        if schema.as_text:
            log.warning("column(s) %s: old values that are not of the stage's type: kept as text",
                        ", ".join(sorted(schema.as_text)))
    return schema


def _read(path: Path, schema: pa.Schema, columns: set[str] | None) -> pa.Table:
    want = None if columns is None else [c for c in schema.names if c in columns]
    if want is None:
        table = read_stage_table(path)
    else:
        have = set(pq.read_schema(path).names)
        table = read_stage_table_columns(path, [c for c in want if c in have])
    return conform(table, schema, want)


def read_stage_table_columns(path: Path, columns: list[str]) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid):
        return read_stage_table(path).select(columns)   # names the damage


def merge_shard(run: RunDir, name: str, schema: MergeSchema, columns: set[str] | None = None,
                check: bool = True, warn: bool = False) -> tuple[pd.DataFrame, set[str]]:
    """Shard ``name`` merged (``merge_shards`` of one shard)."""
    merged, fell_back, _ = merge_shards(run, [name], schema, columns, check, warn)
    return merged, fell_back


def merge_shards(run: RunDir, names: list[str], schema: MergeSchema, columns: set[str] | None = None,
                 check: bool = True, warn: bool = False) -> tuple[pd.DataFrame, set[str], list[int]]:
    """Shards ``names`` merged: their rows, shard after shard, each shard's rows in manifest order,
    columns in merge order; the replaced columns that fell back to text; the rows of each shard (the
    merged rows of ``names[i]`` follow those of ``names[:i]``). ``columns``: only these (and what they
    need); ``check``: each stage has each shard's rows exactly once (``GatherError`` otherwise);
    ``warn``: log the replaced columns. A stage's rows are put in the shards' order by ``row_id`` (a
    left join). Merging several small shards at once costs one pass of table work, not one per shard."""
    bases = [_read(run.shard(n), schema.base, columns) for n in names]
    lengths = [t.num_rows for t in bases]
    base = pa.concat_tables(bases) if len(bases) > 1 else bases[0]
    ids = base.column(ROW_ID).combine_chunks()
    merged, fell_back = base.to_pandas(types_mapper=pd.ArrowDtype), set()
    clashes = schema.clashes()
    for stage, stage_schema in schema.stages.items():
        pieces = [_read(run.output(stage, n), stage_schema, columns) for n in names]
        part = pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]
        if check:
            _check_shards_once(stage, names, ids, lengths, pieces)
        where = pc.index_in(ids, value_set=part.column(ROW_ID).combine_chunks())
        aligned = part.drop_columns([ROW_ID]).take(where).to_pandas(types_mapper=pd.ArrowDtype)
        clash = [c for c in clashes[stage] if c in aligned.columns and c in merged.columns]
        if clash and warn:
            log.warning("stage %s replaces column(s) %s where it has a value", stage, ", ".join(clash))
        cols = {c: merged[c] for c in merged.columns if c not in clash}
        for c in aligned.columns:
            new = aligned[c]
            if c in clash:
                old = merged[c]
                if c in schema.as_text:
                    old, new = old.astype(STRING), new.astype(STRING)
                elif new.dtype != old.dtype:
                    try:
                        old = old.astype(new.dtype)  # e.g. a CSV's "32" into the stage's int64
                    except (TypeError, ValueError, pa.ArrowInvalid):
                        fell_back.add(c)
                        old, new = old.astype(STRING), new.astype(STRING)
                new = new.where(new.notna(), old)
            cols[c] = new
        merged = pd.DataFrame(cols)
    if len(names) == 1:
        merged = merged.sort_values(ROW_INDEX, kind="stable").reset_index(drop=True)
    else:   # each shard's rows in manifest order, shards in the given order
        index = merged[ROW_INDEX].to_numpy(dtype=np.int64, na_value=-1)
        order = np.lexsort((index, np.repeat(np.arange(len(names)), lengths)))   # stable
        merged = merged.take(order).reset_index(drop=True)
    ordered = schema.originals + [ROW_ID]
    ordered += [c for c in merged.columns if c not in ordered and c not in (ROW_INDEX, MEDIA_PATH)]
    return merged[[c for c in ordered if c in merged.columns]], fell_back, lengths


def _check_shards_once(stage: str, names: list[str], ids: pa.Array, lengths: list[int],
                       pieces: list[pa.Table]) -> None:
    """Each shard's stage rows are that shard's rows, once each: one vectorised test over the group,
    and ``check_shard_once`` per shard (which names what is wrong) only when it fails."""
    got = [t.column(ROW_ID) for t in pieces]
    if len(names) > 1 and [len(g) for g in got] == lengths:
        flat = pa.chunked_array([c for g in got for c in g.chunks], type=ids.type).combine_chunks()
        if flat.null_count == 0 and pc.count_distinct(flat).as_py() == len(flat):
            at = pc.index_in(flat, value_set=ids).to_numpy(zero_copy_only=False)
            if not np.isnan(at.astype(np.float64)).any():
                bounds = np.cumsum([0, *lengths])
                home = np.searchsorted(bounds, at.astype(np.int64), side="right") - 1
                if (home == np.repeat(np.arange(len(names)), lengths)).all():
                    return
    offset = 0
    for name, n, g in zip(names, lengths, got):
        check_shard_once(stage, name, ids.slice(offset, n), g)
        offset += n
