"""The final merge: all shards and all stage outputs into one table.

Output: every manifest row exactly once, in manifest order; the manifest's columns first (values as
read), then ``row_id``, then each stage's columns in stage order. A stage column named like a manifest
column replaces it in place (as Open-Sora's ``--info`` does for ``num_frames``; a caption goes to
``text``), except in rows where the stage has no value (a failed row keeps its manifest value; the
stage's error column says it failed). Stage rows are joined
by ``row_id``; a missing, repeated or unknown id stops the merge with a message instead of shifting rows.

Finishing steps that need every shard: ``caption_duplicate`` (with ``duplicates_of``: the ``row_id`` of
the first row, in manifest order, whose caption is exactly the same; empty for that first row, for
unique captions and for empty captions) and the dataset summary (``vidcap.summary``). On request:
the caption answers in NeVA's answer shape (``write_answers_file``: one JSON object a line,
``question_id``, ``prompt``, ``text``, ``answer_id``, ``model_id``, ``metadata``; a failed row has
``"text": ""`` and ``metadata.error``) and the judge's per-category table (``write_judge_table``:
rows ``all`` and one per category; mean A, mean B, relative score 100 × mean B / mean A, n, failed and
a seeded 95 % bootstrap interval).
"""
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

log = logging.getLogger("vidcap.gather")


def gather(run: RunDir, stages: list[str], outputs: list[str | Path],
           duplicates_of: str | None = None, summary_json: str | Path | None = None,
           summary_csv: str | Path | None = None, tag_keys: list[str] | None = None,
           top_k: int = 20, answers: dict | None = None, judge_table: str | Path | None = None,
           drop_failed: list[str] | None = None) -> pd.DataFrame:
    """Merge the run's shards with every stage's per-shard outputs.

    ``stages``: stage names, in the order their columns should appear.
    ``outputs``: tables to write (CSV and/or Parquet, by extension), each atomically.
    ``duplicates_of``: the caption column whose exact duplicates get ``caption_duplicate``.
    ``summary_json`` / ``summary_csv``: where the dataset summary goes (``vidcap.summary.summarize`` with
    ``tag_keys`` and ``top_k``). The camera-motion sentence is the clean stage's (``append_motion``).
    ``answers``: ``write_answers_file`` keyword arguments (``path``, ``text_column``, ...).
    ``judge_table``: where the judge's per-category table goes (CSV or Parquet).
    ``drop_failed``: stages whose failed rows (non-empty ``<stage>_error``) are left out of everything written
    here (``stages.caption.keep_failed: false``), after the exactly-once checks; the summary counts the
    caption's as ``dropped_failed_captions``.
    """
    names = run.shard_names()
    base = read_stage_tables([run.shard(n) for n in names])
    originals = [c for c in base.columns if c not in INTERNAL]
    merged = base
    for stage in stages:
        part = read_stage_tables([run.output(stage, n) for n in names])
        check_exactly_once(stage, base[ROW_ID], part[ROW_ID])
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
    dropped: dict[str, int] = {}
    for stage in drop_failed or ():
        errors = merged[f"{stage}_error"].astype(pd.ArrowDtype(pa.string())).fillna("").str.strip()
        failed = (errors != "").to_numpy(dtype=bool)
        dropped[stage] = int(failed.sum())
        merged = merged[~failed].reset_index(drop=True)
        log.info("left out %d rows whose %s failed (keep_failed: false)", dropped[stage], stage)
    if duplicates_of:
        merged["caption_duplicate"] = mark_duplicates(merged, duplicates_of)
    for out in outputs:
        write_table(merged, out)
    if answers:
        write_answers_file(merged, **answers)
    if judge_table:
        write_judge_table(merged, judge_table)
    if summary_json or summary_csv:
        from vidcap.summary import summarize, write_summary

        write_summary(summarize(merged, top_k=top_k, tag_keys=tag_keys,
                                dropped_failed_captions=sum(dropped.values()) if dropped else None,
                                skipped_lines=run.shard_info().get("bad_lines")), summary_json, summary_csv)
    log.info("merged %d rows, %d columns into %s", len(merged), merged.shape[1],
             ", ".join(map(str, outputs)))
    return merged


def write_answers_file(merged: pd.DataFrame, path: str | Path, text_column: str = "text",
                       id_column: str = "question_id", prompt_column: str | None = None,
                       prompt: str | None = None) -> Path:
    """The caption stage's answers of every row, in manifest order, as NeVA answers JSONL
    (``vidcap.io.answers.write_answers``; model from ``caption_model``, errors from ``caption_error``,
    ``category`` in ``metadata`` when the manifest has one)."""
    from vidcap.io.answers import write_answers

    if id_column not in merged.columns:
        raise GatherError(f"answers file: no column {id_column!r} to take question ids from")
    out = write_answers(merged, path, model_column="caption_model", text_column=text_column,
                        prompt_column=prompt_column, prompt=prompt or "",
                        error_column="caption_error", id_column=id_column)
    log.info("answers of %d rows -> %s", len(merged), out)
    return out


def write_judge_table(merged: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """The judge stage's per-category table (``vidcap.judge.core.category_table``) written to ``path``."""
    from vidcap.judge.columns import from_stage_table
    from vidcap.judge.summary import category_table, format_category_table, order_agreement

    rows = from_stage_table(merged)
    table = category_table(rows)
    write_table(table, path)
    agree = order_agreement(rows)
    log.info("judge: %d rows judged, order agreement %s -> %s\n%s", len(rows),
             "-" if agree["share"] is None else f"{100 * agree['share']:.1f}% of {agree['pairs']}", path,
             format_category_table(table))
    return table


def mark_duplicates(df: pd.DataFrame, column: str) -> pd.Series:
    """Per row: the ``row_id`` of the first earlier row with exactly the same non-empty ``column`` value,
    else null (the first row of a group, unique and empty captions)."""
    if column not in df.columns:
        log.warning("caption_duplicate: no column %r; nothing marked", column)
        return pd.Series([None] * len(df), index=df.index, dtype=pd.ArrowDtype(pa.string()))
    first: dict[str, str] = {}
    out: list[str | None] = []
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
