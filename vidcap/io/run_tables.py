"""Reading a run's shard and stage tables for a merge: a missing or damaged file is named with what to
do, and a stage's rows are checked to cover the shards' rows exactly once (``GatherError``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vidcap.errors import GatherError


def read_stage_table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except FileNotFoundError:
        raise GatherError(f"{path} is missing: rerun the workflow to make it again") from None
    except (OSError, pa.ArrowInvalid) as exc:
        raise GatherError(f"{path} is damaged ({exc}): rerun the workflow; the file is set aside and "
                          "rebuilt from its journal") from None


def read_stage_tables(paths: list[Path]) -> pd.DataFrame:
    """The tables of ``paths`` stacked (columns promoted to a common type), as Arrow-backed pandas."""
    tables = [read_stage_table(p) for p in paths]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def check_exactly_once(stage: str, want: pd.Series, got: pd.Series) -> None:
    dup = got[got.duplicated()]
    want_set, got_set = set(want), set(got)
    missing, unknown = want_set - got_set, got_set - want_set
    if len(dup) or missing or unknown:
        raise GatherError(
            f"stage {stage}: rows not exactly once: {len(missing)} missing, {len(dup)} repeated, "
            f"{len(unknown)} unknown ids (e.g. {next(iter(missing or unknown or set(dup)), '')})"
        )


def read_stage_schema(path: Path) -> pa.Schema:
    """The schema of one shard or stage table (its footer only), errors as ``read_stage_table``."""
    try:
        return pq.read_schema(path).remove_metadata()
    except FileNotFoundError:
        raise GatherError(f"{path} is missing: rerun the workflow to make it again") from None
    except (OSError, pa.ArrowInvalid) as exc:
        raise GatherError(f"{path} is damaged ({exc}): rerun the workflow; the file is set aside and "
                          "rebuilt from its journal") from None


def unified_schema(paths: list[Path]) -> pa.Schema:
    """One schema for the tables of ``paths`` (types promoted as ``read_stage_tables`` does, e.g. a
    column that is all null in one shard takes the type it has in the others)."""
    schemas = [read_stage_schema(p) for p in paths]
    return pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])


def conform(table: pa.Table, schema: pa.Schema, columns: list[str] | None = None) -> pa.Table:
    """``table`` with the fields of ``schema`` (or those named in ``columns``), in its order: a missing
    column is all null, a column of another type is cast (as ``pa.concat_tables`` promotes)."""
    arrays, fields = [], []
    for field in schema:
        if columns is not None and field.name not in columns:
            continue
        if field.name in table.column_names:
            col = table.column(field.name)
            arrays.append(col if col.type == field.type else col.cast(field.type))
        else:
            arrays.append(pa.nulls(len(table), field.type))
        fields.append(field)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def check_shard_once(stage: str, shard: str, want: pa.Array | pa.ChunkedArray,
                     got: pa.Array | pa.ChunkedArray) -> None:
    """``check_exactly_once`` for one shard: the stage's rows of ``shard`` are its rows, once each."""
    want, got = _flat(want), _flat(got)
    if (len(want) == len(got) and pc.count_distinct(got).as_py() == len(got) and got.null_count == 0
            and pc.all(pc.is_in(got, value_set=want)).as_py() is not False):
        return
    check_exactly_once(f"{stage} (shard {shard})", pd.Series(want.to_pylist(), dtype=object),
                       pd.Series(got.to_pylist(), dtype=object))
