"""The final merge: all shards and all stage outputs into one table.

Output: every manifest row exactly once, in manifest order; the manifest's columns first (values as
read), then ``row_id``, then each stage's columns in stage order. A stage column named like a manifest
column replaces it in place (as Open-Sora's ``--info`` does for ``num_frames``; a caption goes to
``text``), except in rows where the stage has no value (a failed row keeps its manifest value; the
stage's error column says it failed). Stage rows are joined
by ``row_id``; a missing, repeated or unknown id stops the merge with a message instead of shifting rows.

Finishing steps that need every shard: ``caption_duplicate`` (with ``duplicates_of``: the ``row_id`` of
the first row, in manifest order, whose caption is exactly the same; empty for that first row, for
unique captions and for empty captions) and the dataset summary (``vidcap.summary``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vidcap.errors import GatherError
from vidcap.run_dir import RunDir
from vidcap.shards import INTERNAL, MEDIA_PATH, ROW_ID, ROW_INDEX
from vidcap.tables import write_table

log = logging.getLogger("vidcap.gather")


def _read(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except FileNotFoundError:
        raise GatherError(f"{path} is missing: rerun the workflow to make it again") from None
    except (OSError, pa.ArrowInvalid) as exc:
        raise GatherError(f"{path} is damaged ({exc}): rerun the workflow; the file is set aside and "
                          "rebuilt from its journal") from None


def _read_all(paths: list[Path]) -> pd.DataFrame:
    tables = [_read(p) for p in paths]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def gather(run: RunDir, stages: list[str], outputs: list[str | Path],
           duplicates_of: str | None = None, summary_json: str | Path | None = None,
           summary_csv: str | Path | None = None, tag_keys: list[str] | None = None,
           top_k: int = 20) -> pd.DataFrame:
    """Merge the run's shards with every stage's per-shard outputs.

    ``stages``: stage names, in the order their columns should appear.
    ``outputs``: tables to write (CSV and/or Parquet, by extension), each atomically.
    ``duplicates_of``: the caption column whose exact duplicates get ``caption_duplicate``.
    ``summary_json`` / ``summary_csv``: where the dataset summary goes (``vidcap.summary.summarize`` with
    ``tag_keys`` and ``top_k``). The camera-motion sentence is the clean stage's (``append_motion``).
    """
    names = run.shard_names()
    base = _read_all([run.shard(n) for n in names])
    originals = [c for c in base.columns if c not in INTERNAL]
    merged = base
    for stage in stages:
        part = _read_all([run.output(stage, n) for n in names])
        _check_exactly_once(stage, base[ROW_ID], part[ROW_ID])
        clash = [c for c in part.columns if c != ROW_ID and c in merged.columns]
        if clash:
            log.warning("stage %s replaces column(s) %s where it has a value", stage, ", ".join(clash))
            merged = merged.rename(columns={c: f"{c}\x00old" for c in clash})
        merged = merged.merge(part, on=ROW_ID, how="left", validate="one_to_one", sort=False)
        for c in clash:
            old = merged.pop(f"{c}\x00old")
            new = merged[c]
            if new.dtype != old.dtype:
                try:
                    old = old.astype(new.dtype)  # e.g. a CSV's "32" into the stage's int64
                except (TypeError, ValueError, pa.ArrowInvalid):
                    old, new = old.astype(pd.ArrowDtype(pa.string())), new.astype(pd.ArrowDtype(pa.string()))
            merged[c] = new.where(new.notna(), old)
    merged = merged.sort_values(ROW_INDEX, kind="stable").reset_index(drop=True)
    ordered = originals + [ROW_ID]
    ordered += [c for c in merged.columns if c not in ordered and c not in (ROW_INDEX, MEDIA_PATH)]
    merged = merged[[c for c in ordered if c in merged.columns]]
    if duplicates_of:
        merged["caption_duplicate"] = mark_duplicates(merged, duplicates_of)
    for out in outputs:
        write_table(merged, out)
    if summary_json or summary_csv:
        from vidcap.summary import summarize, write_summary

        write_summary(summarize(merged, top_k=top_k, tag_keys=tag_keys), summary_json, summary_csv)
    log.info("merged %d rows, %d columns into %s", len(merged), merged.shape[1],
             ", ".join(map(str, outputs)))
    return merged


def _check_exactly_once(stage: str, want: pd.Series, got: pd.Series) -> None:
    dup = got[got.duplicated()]
    want_set, got_set = set(want), set(got)
    missing, unknown = want_set - got_set, got_set - want_set
    if len(dup) or missing or unknown:
        raise GatherError(
            f"stage {stage}: rows not exactly once: {len(missing)} missing, {len(dup)} repeated, "
            f"{len(unknown)} unknown ids (e.g. {next(iter(missing or unknown or set(dup)), '')})"
        )


def mark_duplicates(df: pd.DataFrame, column: str) -> pd.Series:
    """Per row: the ``row_id`` of the first earlier row with exactly the same non-empty ``column`` value,
    else null (the first row of a group, unique and empty captions)."""
    if column not in df.columns:
        log.warning("caption_duplicate: no column %r; nothing marked", column)
        return pd.Series([None] * len(df), index=df.index, dtype=pd.ArrowDtype(pa.string()))
    first: dict[str, str] = {}
    out = []
    for text, row_id in zip(df[column], df[ROW_ID]):
        key = None if text is None or pd.isna(text) else str(text)
        if not key or not key.strip():
            out.append(None)
            continue
        if key in first:
            out.append(first[key])
        else:
            first[key] = row_id
            out.append(None)
    return pd.Series(out, index=df.index, dtype=pd.ArrowDtype(pa.string()))
