"""The final merge: all shards and all stage outputs into one table, streamed shard by shard.

Output: every manifest row exactly once, in manifest order; the manifest's columns first (values as
read), then ``row_id``, then each stage's columns in stage order. A stage column named like a manifest
column replaces it in place (as Open-Sora's ``--info`` does for ``num_frames``; a caption goes to
``text``), except in rows where the stage has no value (a failed row keeps its manifest value; the
stage's error column says it failed). Stage rows are joined
by ``row_id``; a missing, repeated or unknown id stops the merge with a message instead of shifting rows.

Written a group of consecutive shards at a time (``vidcap.merge``; ``shard_groups``: at most
``GROUP_ROWS`` rows, or one larger shard), memory bounded by a group: the Parquet dataset
``results/<name>/table/part-NNNNN.parquet`` (one part per shard, manifest order across parts, one
schema for all parts) always; the single-file tables (``outputs``: CSV, Parquet) when asked for
(the workflow asks when the run has at most ``merge.single_file_max_rows`` rows, or ``merge.single_file:
always``). Each stage's rows are checked per shard: a missing, repeated or unknown id stops the merge.

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
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vidcap.errors import GatherError
from vidcap.io.answers import answer_records, write_answers
from vidcap.io.results import iter_result_batches
from vidcap.io.run_dir import RunDir
from vidcap.io.shards import ROW_ID, ROW_INDEX
from vidcap.io.tables import write_table
from vidcap.judge.columns import from_stage_table
from vidcap.judge.summary import category_table, format_category_table, order_agreement
from vidcap.merge.dups import Duplicates
from vidcap.merge.join import STRING, MergeSchema, merge_schema, merge_shards
from vidcap.merge.near_dups import NearDuplicates
from vidcap.merge.parts import PartWriter, SingleFiles
from vidcap.summary import Summary, write_summary

log = logging.getLogger("vidcap.gather")
DUPLICATE = "caption_duplicate"
NEAR_OF, NEAR_SIM = "near_duplicate_of", "near_duplicate_sim"
FLOAT = pd.ArrowDtype(pa.float64())
GROUP_ROWS = 20_000   # rows merged at once when shards are smaller (``shard_groups``)


def gather(run: RunDir, stages: list[str], outputs: list[str | Path] | None = None,
           duplicates_of: str | None = None, summary_json: str | Path | None = None,
           summary_csv: str | Path | None = None, tag_keys: list[str] | None = None,
           top_k: int = 20, answers: dict | None = None, judge_table: str | Path | None = None,
           drop_failed: list[str] | None = None, near_duplicates: dict | None = None,
           drop_columns: list[str] | None = None) -> int:
    """Merge the run's shards with every stage's per-shard outputs; returns the rows written.

    ``stages``: stage names, in the order their columns should appear.
    ``outputs``: single-file tables to write besides the part files (CSV and/or Parquet, by extension).
    ``duplicates_of``: the caption column whose exact duplicates get ``caption_duplicate``.
    ``summary_json`` / ``summary_csv``: where the dataset summary goes (``vidcap.summary.Summary`` with
    ``tag_keys`` and ``top_k``). The camera-motion sentence is the clean stage's (``append_motion``).
    ``answers``: ``write_answers_file`` keyword arguments (``path``, ``text_column``, ...).
    ``judge_table``: where the judge's per-category table goes (CSV or Parquet).
    ``drop_failed``: stages whose failed rows (non-empty ``<stage>_error``) are left out of everything written
    here (``stages.caption.keep_failed: false``), after the exactly-once checks; the summary counts the
    caption's as ``dropped_failed_captions``.
    ``near_duplicates``: ``{"column", "threshold", "probes", "rows_per_cluster"}``: mark rows whose embedding
    (``column``, a list of floats) is this close to an earlier row's (``vidcap.merge.near_dups``).
    ``drop_columns``: stage columns left out of what is written (e.g. the embeddings once used).
    """
    names = run.shard_names()
    schema = merge_schema(run, names, stages)
    groups = shard_groups(run, names)
    work = run.root / ".gather"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    dups = None
    if duplicates_of:
        dups = find_duplicates(run, groups, schema, duplicates_of, drop_failed or [], work)
    near = None
    if near_duplicates:
        near = find_near_duplicates(run, groups, schema, near_duplicates, drop_failed or [], work)
    if drop_columns:
        schema = without_columns(schema, set(drop_columns))
    parts = PartWriter(run.root / "table")
    single = SingleFiles([Path(p) for p in outputs or []])
    summary = Summary(top_k, tag_keys, work) if (summary_json or summary_csv) else None
    dropped = {s: 0 for s in drop_failed or ()}
    judge_rows: list[pd.DataFrame] = []
    written = 0
    try:
        for i, group in enumerate(groups):
            merged, _, lengths = merge_shards(run, group, schema, warn=i == 0)
            merged, lengths = _drop_failed(merged, drop_failed or [], dropped, lengths)
            if duplicates_of:
                merged[DUPLICATE] = (pd.Series(dups.column(written, len(merged)), dtype=STRING)
                                     if dups is not None else pd.Series([None] * len(merged), dtype=STRING))
            if near_duplicates:
                of, sim = near.columns(written, len(merged)) if near is not None else (None, None)
                merged[NEAR_OF] = pd.Series(of if of is not None else [None] * len(merged), dtype=STRING)
                merged[NEAR_SIM] = pd.Series(sim if sim is not None else [None] * len(merged), dtype=FLOAT)
            table = pa.Table.from_pandas(merged, preserve_index=False)
            pieces, at = [], 0
            for name, n in zip(group, lengths):   # one part per shard
                pieces.append(parts.write(table.slice(at, n), name))
                at += n
            single.add(pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0])
            written += len(table)
            if summary is not None:
                summary.add(merged)
            if judge_table:
                judge_rows.append(from_stage_table(merged))
        single.close(parts.schema)
        parts.commit()
    except BaseException:
        parts.abort()
        single.abort()
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if dups is not None:
            dups.close()
        if near is not None:
            near.close()
        if summary is None:
            shutil.rmtree(work, ignore_errors=True)
    for stage, n in dropped.items():
        log.info("left out %d rows whose %s failed (keep_failed: false)", n, stage)
    if answers:
        write_answers_file(run.root / "table", **answers)
    if judge_table:
        write_judge_table(pd.concat(judge_rows, ignore_index=True) if judge_rows else pd.DataFrame(), judge_table)
    if summary is not None:
        try:
            write_summary(summary.result(dropped_failed_captions=sum(dropped.values()) if dropped else None,
                                         skipped_lines=run.shard_info().get("bad_lines")), summary_json, summary_csv)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    log.info("merged %d rows in %d parts into %s%s", written, parts.count, run.root / "table",
             "".join(f", {p}" for p in outputs or []))
    return written


def shard_groups(run: RunDir, names: list[str], rows: int | None = None) -> list[list[str]]:
    """``names`` cut into runs of consecutive shards of at most ``rows`` rows together (``GROUP_ROWS``;
    a larger shard is a group of its own): the merge works a group at a time, so small shards cost
    one pass of table work per group, and memory stays bounded by a group."""
    limit = GROUP_ROWS if rows is None else rows
    groups: list[list[str]] = []
    total = 0
    for name in names:
        n = pq.read_metadata(run.shard(name)).num_rows
        if not groups or total + n > limit:
            groups.append([])
            total = 0
        groups[-1].append(name)
        total += n
    return groups


def _drop_failed(merged: pd.DataFrame, stages: list[str], dropped: dict[str, int],
                 lengths: list[int] | None = None) -> tuple[pd.DataFrame, list[int]]:
    """``merged`` without the rows whose ``<stage>_error`` is set, and the rows left of each shard
    (``lengths``: the rows of each shard in ``merged``)."""
    lengths = [len(merged)] if lengths is None else list(lengths)
    for stage in stages:
        errors = merged[f"{stage}_error"].astype(STRING).fillna("").str.strip()
        failed = (errors != "").to_numpy(dtype=bool)
        dropped[stage] += int(failed.sum())
        shard_of = np.repeat(np.arange(len(lengths)), lengths)
        lengths = np.bincount(shard_of[~failed], minlength=len(lengths)).tolist()
        merged = merged[~failed].reset_index(drop=True)
    return merged, lengths


def find_duplicates(run: RunDir, groups: list[list[str]], schema: MergeSchema, column: str,
                    drop_failed: list[str], work: Path) -> Duplicates | None:
    """``caption_duplicate`` of the whole run (``vidcap.merge.dups``), from a pass over the columns it
    needs only, ``groups`` of shards (``shard_groups``) in order; None (and a warning) when the merged table has no ``column``."""
    known = set(schema.base.names).union(*(s.names for s in schema.stages.values()))
    if column not in known:
        log.warning("caption_duplicate: no column %r; nothing marked", column)
        return None
    dups = Duplicates(work / "dups", int(run.shard_info().get("rows") or 0))
    need = {ROW_ID, ROW_INDEX, column, *(f"{s}_error" for s in drop_failed)}
    for group in groups:
        merged, _, _ = merge_shards(run, group, schema, columns=need)
        merged, _ = _drop_failed(merged, drop_failed, {s: 0 for s in drop_failed})
        dups.add(pa.array(merged[column].astype(STRING)), pa.array(merged[ROW_ID].astype(STRING)))
    log.info("caption_duplicate: %d rows repeat an earlier caption", dups.finish())
    return dups


def write_answers_file(merged: pd.DataFrame | Path, path: str | Path, text_column: str = "text",
                       id_column: str = "question_id", prompt_column: str | None = None,
                       prompt: str | None = None) -> Path:
    """The caption stage's answers of every row, in manifest order, as NeVA answers JSONL
    (``vidcap.io.answers.write_answers``; model from ``caption_model``, errors from ``caption_error``,
    ``category`` in ``metadata`` when the manifest has one). ``merged``: a frame, or a merged table
    (``vidcap.io.results``) read in batches."""
    frames = [merged] if isinstance(merged, pd.DataFrame) else _frames(merged)
    count = [0]

    def records() -> Iterator[dict]:
        for df in frames:
            if id_column not in df.columns:
                raise GatherError(f"answers file: no column {id_column!r} to take question ids from")
            count[0] += len(df)
            yield from answer_records(df, "", model_column="caption_model", text_column=text_column,
                                      prompt_column=prompt_column, prompt=prompt or "",
                                      error_column="caption_error", id_column=id_column)

    out = write_answers(records(), path)
    log.info("answers of %d rows -> %s", count[0], out)
    return out


def _frames(where: Path) -> Iterator[pd.DataFrame]:
    for batch in iter_result_batches(where):
        yield batch.to_pandas(types_mapper=pd.ArrowDtype)


def write_judge_table(rows: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """The judge stage's per-category table (``vidcap.judge.core.category_table``) of the judge's rows
    (``vidcap.judge.columns.from_stage_table`` of the merged table) written to ``path``."""
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


def find_near_duplicates(run: RunDir, groups: list[list[str]], schema: MergeSchema, opts: dict,
                         drop_failed: list[str], work: Path) -> NearDuplicates | None:
    """``near_duplicate_of`` / ``near_duplicate_sim`` of the whole run (``vidcap.merge.near_dups``): two
    passes over the embedding column (a k-means sample, then the assignment); None (and a warning)
    when the merged table has no such column."""
    column = opts["column"]
    known = set(schema.base.names).union(*(s.names for s in schema.stages.values()))
    if column not in known:
        log.warning("near_duplicate_of: no column %r; nothing marked", column)
        return None
    near = NearDuplicates(work / "near", int(run.shard_info().get("rows") or 0), float(opts["threshold"]),
                          probes=int(opts.get("probes", 2)), rows_per_cluster=int(opts.get("rows_per_cluster", 1000)))
    need = {ROW_ID, ROW_INDEX, column, *(f"{s}_error" for s in drop_failed)}

    def shards() -> Iterator[pd.DataFrame]:
        for group in groups:
            merged, _, _ = merge_shards(run, group, schema, columns=need)
            yield _drop_failed(merged, drop_failed, {s: 0 for s in drop_failed})[0]

    for merged in shards():
        near.sample(pa.array(merged[column]))
    near.train()
    for merged in shards():
        near.add(pa.array(merged[column]), pa.array(merged[ROW_ID].astype(STRING)))
    log.info("near_duplicate_of: %d rows at cosine >= %s of an earlier row", near.finish(), opts["threshold"])
    return near


def without_columns(schema: MergeSchema, drop: set[str]) -> MergeSchema:
    """``schema`` with the stage columns in ``drop`` left out (the merge then never reads them)."""
    stages = {s: pa.schema([f for f in sch if f.name not in drop or f.name == ROW_ID]) for s, sch in schema.stages.items()}
    return MergeSchema(schema.base, stages, schema.as_text)
