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
    """Shard ``name`` merged (rows in manifest order, columns in merge order) and the replaced columns
    that fell back to text in it. ``columns``: only these (and what they need); ``check``: each stage
    has the shard's rows exactly once (``GatherError`` otherwise); ``warn``: log the replaced columns.
    A stage's rows are put in the shard's order by ``row_id`` (a left join)."""
    base = _read(run.shard(name), schema.base, columns)
    ids = base.column(ROW_ID).combine_chunks()
    merged, fell_back = base.to_pandas(types_mapper=pd.ArrowDtype), set()
    clashes = schema.clashes()
    for stage, stage_schema in schema.stages.items():
        part = _read(run.output(stage, name), stage_schema, columns)
        if check:
            check_shard_once(stage, name, ids, part.column(ROW_ID))
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
    merged = merged.sort_values(ROW_INDEX, kind="stable").reset_index(drop=True)
    ordered = schema.originals + [ROW_ID]
    ordered += [c for c in merged.columns if c not in ordered and c not in (ROW_INDEX, MEDIA_PATH)]
    return merged[[c for c in ordered if c in merged.columns]], fell_back
