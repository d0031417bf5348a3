"""Reading a run's shard and stage tables for a merge: a missing or damaged file is named with what to
do, and a stage's rows are checked to cover the shards' rows exactly once (``GatherError``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
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
