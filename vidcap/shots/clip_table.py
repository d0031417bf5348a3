"""The shots step's merge: the clip table, manifest of the next step (``vidcap gather --clips``)."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa

from vidcap.errors import GatherError
from vidcap.io.run_dir import RunDir
from vidcap.io.run_tables import check_exactly_once, read_stage_tables
from vidcap.io.shards import INTERNAL, MEDIA_PATH, ROW_ID, ROW_INDEX
from vidcap.io.tables import write_table

log = logging.getLogger("vidcap.shots.clip_table")


def gather_clips(run: RunDir, outputs: list[str | Path], failed_output: str | Path | None = None) -> pd.DataFrame:
    """The shots step's merge: every clip of every source row, as the manifest of the next step.

    Each clip row: the source row's manifest columns with ``path`` the absolute media path (the
    manifest's own value in ``source_path``) and ``start``/``end`` the clip's range in seconds, then
    ``clip_id``, ``source_row_id`` and the clip columns, in source order then clip order. Every source
    row must appear in the shots outputs (its clips, or one error row; GatherError otherwise); source
    rows that gave no clip go to ``failed_output`` with their ``shots_error``.
    """
    names = run.shard_names()
    base = read_stage_tables([run.shard(n) for n in names])
    originals = [c for c in base.columns if c not in INTERNAL]
    shots = read_stage_tables([run.output("shots", n) for n in names])
    check_exactly_once("shots", base[ROW_ID], shots["source_row_id"].drop_duplicates())
    if shots[ROW_ID].duplicated().any():
        raise GatherError("stage shots: clip ids are not unique")
    source = base.rename(columns={ROW_ID: "source_row_id"})
    error = shots["shots_error"].astype(pd.ArrowDtype(pa.string())).fillna("")
    good = shots[(error == "").to_numpy(dtype=bool)].rename(columns={ROW_ID: "clip_id"})
    clips = good.merge(source, on="source_row_id", how="left", validate="many_to_one", sort=False)
    clips = clips.sort_values([ROW_INDEX, "clip_index"], kind="stable").reset_index(drop=True)
    clips["source_path"] = clips["path"]
    clips["path"] = clips[MEDIA_PATH]
    clips["start"], clips["end"] = clips["start_s"], clips["end_s"]
    first = [c for c in originals if c not in ("start", "end")] + ["start", "end", "source_path", "clip_id",
                                                                    "source_row_id"]
    rest = [c for c in good.columns if c not in first and c not in ("shots_error",)]
    clips = clips[first + [c for c in rest if c in clips.columns]]
    for out in outputs:
        write_table(clips, out)
    if failed_output is not None:
        bad = shots[(error != "").to_numpy(dtype=bool)][["source_row_id", "shots_error"]]
        failed = bad.merge(source[["source_row_id", *originals]], on="source_row_id", how="left")
        write_table(failed[[*originals, "source_row_id", "shots_error"]], failed_output)
    log.info("%d clips from %d source rows (%d gave no clip) -> %s", len(clips), len(base),
             int((error != "").sum()), ", ".join(map(str, outputs)))
    return clips
