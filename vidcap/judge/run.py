"""``vidcap judge``: two answer sets in, a judged folder out, through the judge stage (``vidcap.judge.stage``).

Inputs (``pairs_from_*``), each giving one table of pairs with the columns ``PAIR_COLUMNS``:

* two answers files (NeVA/llava-bench shapes) and the questions (a prompt file; without one the
  questions come from answers A's ``prompt`` fields) - ``pairs_from_answers``;
* two columns of one table - ``pairs_from_table``;
* two finished runs (their merged tables, rows matched by ``question_id`` when both have it, else by
  ``row_id``), or one run against a reference answers file - ``pairs_from_runs``, ``pairs_from_run``.

``judge_folder(pairs, out, settings)`` runs the judge stage on them under ``run_stage`` (journaled:
a killed ``vidcap judge`` run, rerun with the same arguments, judges only the pairs it had not
finished) and writes into ``out``::

    pairs.parquet                     the pairs (absolute media paths)
    shards/, stages/judge/, journal/judge/, stats/judge/    the stage's files (vidcap.io.run_dir layout)
    judge.csv, judge.parquet          one row per pair: the pair, scores, reasons, winner, errors
    categories.csv                    all + per category: n, failed, mean A, mean B, relative, 95 % CI

``estimate_folder`` projects cost and time before a run: statically from the rendered requests and the
configured prices and limits, or from ``sample`` pairs judged for real (``vidcap.judge.core.measure_judge``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from vidcap.errors import TableError
from vidcap.io.answers import read_answers
from vidcap.io.media_paths import media_base, resolve_media_path
from vidcap.io.prompt_files import read_prompt_file
from vidcap.io.results import ResultsError, results_dataset
from vidcap.io.run_dir import RunDir
from vidcap.io.shards import MEDIA_PATH, ROW_ID, make_shards
from vidcap.io.tables import cell_text, read_table, write_table
from vidcap.judge.columns import from_stage_table
from vidcap.judge.driver import estimate_judge, measure_judge
from vidcap.judge.summary import category_table
from vidcap.stages import get_stage
from vidcap.stages.base import read_rows, run_stage

log = logging.getLogger("vidcap.judge.run")

PAIR_COLUMNS = ("path", "question_id", "question", "category", "answer_a", "answer_b", "error_a", "error_b")
SHARD = "00000"




def _pairs(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
    return df.fillna("").astype(str)


def pairs_from_answers(answers_a: str | Path, answers_b: str | Path, questions: str | Path | None = None,
                       media_base_path: str | None = None, on_bad_line: str = "fail") -> pd.DataFrame:
    """Pairs for each question (prompt file order; without one, answers A's order, each question the
    ``prompt`` answers A, else answers B, carries). A question without an answer, or with a failed
    one, is a pair with ``error_a``/``error_b``. Without ``questions``, answers that carry no question
    (a ``{"response_id", "response"}`` file) are refused: TableError naming the files and the count,
    as a judge shown an empty question scores the answers against nothing."""

    a = read_answers(answers_a, on_bad_line).table
    b = read_answers(answers_b, on_bad_line).table
    by_a = {r["question_id"]: r for r in a.to_dict("records")}
    by_b = {r["question_id"]: r for r in b.to_dict("records")}
    if questions is not None:
        q = read_prompt_file(questions, media_base_path=media_base_path, on_bad_line=on_bad_line).table
        qs = [{"question_id": r["question_id"], "question": r["prompt"], "category": r["category"], "path": r["path"]}
              for r in q.to_dict("records")]
    else:
        qs = [{"question_id": r["question_id"], "question": r["prompt"] or (by_b.get(r["question_id"]) or {}).get("prompt") or "",
               "category": r["category"] or (by_b.get(r["question_id"]) or {}).get("category") or "", "path": ""}
              for r in a.to_dict("records")]
        empty = [q["question_id"] for q in qs if not str(q["question"] or "").strip()]
        if empty:
            raise TableError(
                f"{answers_a} and {answers_b}: {len(empty)} of {len(qs)} answers carry no question (first: question_id "
                f"{empty[0]}; a {{\"response_id\", \"response\"}} file has none), so the judge would compare them "
                "against an empty question; give the questions with --questions QUESTIONS.jsonl")
    rows = []
    for q in qs:
        qid = q["question_id"]
        ra, rb = by_a.get(qid), by_b.get(qid)
        rows.append({**q, "answer_a": ra["text"] if ra else "", "answer_b": rb["text"] if rb else "",
                     "error_a": (ra["error"] and f"answer A failed: {ra['error']}") if ra else f"no answer A for {qid}",
                     "error_b": (rb["error"] and f"answer B failed: {rb['error']}") if rb else f"no answer B for {qid}"})
    return _pairs(rows)


def pairs_from_table(table: str | Path | pd.DataFrame, column_a: str, column_b: str, question_column: str | None = None,
                     category_column: str = "category", key_column: str | None = None,
                     error_a: str | None = None, error_b: str | None = None, media_root: str | None = None) -> pd.DataFrame:
    """Pairs from two columns of one table (CSV, Parquet, prompt file or a DataFrame); relative media
    paths resolve against ``media_root`` or the table's folder."""

    if isinstance(table, pd.DataFrame):
        df, base = table, media_root or ""
    else:
        df, base = read_table(table, required=()), media_base(table, media_root)
    for col in (column_a, column_b, question_column, key_column, error_a, error_b):
        if col and col not in df.columns:
            raise TableError(f"{'table' if isinstance(table, pd.DataFrame) else table}: no column {col!r}")
    rows = []
    for i, r in enumerate(df.to_dict("records")):
        path = cell_text(r.get("path"))
        rows.append({"path": resolve_media_path(path, base) if path and base else path,
                     "question_id": cell_text(r.get(key_column)) if key_column else str(i),
                     "question": cell_text(r.get(question_column)) if question_column else "",
                     "category": cell_text(r.get(category_column)), "answer_a": cell_text(r.get(column_a)),
                     "answer_b": cell_text(r.get(column_b)),
                     "error_a": cell_text(r.get(error_a)) if error_a else "", "error_b": cell_text(r.get(error_b)) if error_b else ""})
    return _pairs(rows)


def _run_table(run_dir: str | Path) -> tuple[pd.DataFrame, str]:
    run = RunDir.at(run_dir)
    try:
        table = results_dataset(run.root).to_table()
    except ResultsError as exc:
        raise TableError(f"{run.root}: no merged table ({exc})") from None
    try:
        base = run.shard_info().get("media_base", "")
    except FileNotFoundError:
        base = ""
    return table.to_pandas(), base


def pairs_from_runs(run_a: str | Path, run_b: str | Path, column: str = "text", question_column: str = "prompt") -> pd.DataFrame:
    """Pairs from two finished runs: ``column`` of each merged table, rows matched by ``question_id``
    when both tables have it, else by ``row_id`` (same manifest and media_root give the same ids). The
    caption errors of each run fail their pairs. Rows of A missing from B are pairs with an error."""
    a, base = _run_table(run_a)
    b, _ = _run_table(run_b)
    key = "question_id" if "question_id" in a.columns and "question_id" in b.columns else ROW_ID
    for name, df in (("A", a), ("B", b)):
        if column not in df.columns:
            raise TableError(f"run {name}: no column {column!r}")
    by_b = {cell_text(r[key]): r for r in b.to_dict("records")}
    rows = []
    for r in a.to_dict("records"):
        k = cell_text(r[key])
        rb = by_b.get(k)
        path = cell_text(r.get("path"))
        rows.append({"path": resolve_media_path(path, base) if path and base else path, "question_id": k,
                     "question": cell_text(r.get(question_column)), "category": cell_text(r.get("category")),
                     "answer_a": cell_text(r.get(column)), "answer_b": cell_text(rb.get(column)) if rb else "",
                     "error_a": cell_text(r.get("caption_error")) and f"run A caption failed: {cell_text(r.get('caption_error'))}",
                     "error_b": (cell_text(rb.get("caption_error")) and f"run B caption failed: {cell_text(rb.get('caption_error'))}")
                     if rb else f"no row {k} in run B"})
    return _pairs(rows)


def pairs_from_run(run: str | Path, reference: str | Path, column: str = "text", question_column: str = "prompt",
                   on_bad_line: str = "fail") -> pd.DataFrame:
    """Pairs from one finished run (answer B: ``column``) and a reference answers file (answer A),
    matched by ``question_id``."""

    df, base = _run_table(run)
    if "question_id" not in df.columns:
        raise TableError(f"{run}: the merged table has no question_id to match reference answers by")
    ref = {r["question_id"]: r for r in read_answers(reference, on_bad_line).table.to_dict("records")}
    rows = []
    for r in df.to_dict("records"):
        qid = cell_text(r["question_id"])
        ra = ref.get(qid)
        path = cell_text(r.get("path"))
        rows.append({"path": resolve_media_path(path, base) if path and base else path, "question_id": qid,
                     "question": cell_text(r.get(question_column)) or (ra["prompt"] if ra else ""),
                     "category": cell_text(r.get("category")) or (ra["category"] if ra else ""),
                     "answer_a": ra["text"] if ra else "", "answer_b": cell_text(r.get(column)),
                     "error_a": (ra["error"] and f"reference answer failed: {ra['error']}") if ra
                     else f"no reference answer for {qid}",
                     "error_b": cell_text(r.get("caption_error")) and f"caption failed: {cell_text(r.get('caption_error'))}"})
    return _pairs(rows)


# ------------------------------------------------------------------------------------------ running


def stage_params(settings: dict | None) -> dict:
    """The judge stage's settings for a pairs table: ``settings`` (a ``stages.judge`` block) with the
    pair columns filled in."""
    s = {k: v for k, v in (settings or {}).items() if k not in ("enabled", "resources", "reference_answers")}
    s.update(answer_a_column="answer_a", answer_b_column="answer_b", question_column="question",
             category_column="category", key_column="question_id", error_columns=["error_a", "error_b"])
    return s


def _prepare(pairs: pd.DataFrame, out: Path, settings: dict | None):
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise TableError(f"pairs table lacks column(s) {', '.join(missing)}")
    if pairs["question_id"].duplicated().any():
        dup = pairs["question_id"][pairs["question_id"].duplicated()].iloc[0]
        raise TableError(f"question_id {dup!r} appears twice: each pair needs its own id")
    out.mkdir(parents=True, exist_ok=True)
    write_table(pairs, out / "pairs.parquet")
    run = RunDir.at(out)
    make_shards(out / "pairs.parquet", run.shards_dir, max(1, len(pairs)))
    stage = get_stage("judge", stage_params(settings))
    return run, stage


def judge_folder(pairs: pd.DataFrame, out: str | Path, settings: dict | None = None, runner=None,
                 retry_failed: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judge ``pairs`` (``PAIR_COLUMNS``) into ``out`` (module docstring); returns (per-pair table,
    category table). ``runner``: a runner object to use instead of the configured one (benches, tests).
    A rerun on the same folder takes finished pairs from the journal."""

    out = Path(out)
    run, stage = _prepare(pairs, out, settings)
    if runner is not None:
        stage.runner = runner
    table = run_stage(stage, run.shard(SHARD), run.output("judge", SHARD), run.journal("judge", SHARD),
                      retry_failed=retry_failed, stats_path=run.stats("judge", SHARD)).to_pandas()
    shard = pd.read_parquet(run.shard(SHARD))
    rows = shard.drop(columns=[MEDIA_PATH, "_row_index"]).merge(table, on=ROW_ID, how="left", validate="one_to_one")
    write_table(rows, out / "judge.csv")
    write_table(rows, out / "judge.parquet")
    cats = category_table(from_stage_table(rows))
    write_table(cats, out / "categories.csv")
    return rows, cats


def estimate_folder(pairs: pd.DataFrame, out: str | Path, settings: dict | None = None, sample: int = 0,
                    seed: int = 0, runner=None) -> dict:
    """Cost and time of judging ``pairs`` before the run (``vidcap.judge.core.estimate_judge``): with
    ``sample`` > 0, that many pairs are judged for real first (``measure_judge``: latency, tokens,
    retries, the runner's own rate) and the projection uses what they measured; with 0 nothing is
    sent (prompt tokens from the rendered requests; time only from configured limits)."""

    run, stage = _prepare(pairs, Path(out), settings)
    rows = read_rows(stage, run.shard(SHARD))
    items = [stage.item(r) for r in rows]
    s = stage.settings
    block = s.get(stage.runner_name, {}) if stage.runner_name == "openai" else {}
    kw: dict[str, Any] = {"both_orders": bool(s["both_orders"]), "concurrency": int(block.get("concurrency") or 1),
          "price_per_1m_input": block.get("price_per_1m_input"), "price_per_1m_output": block.get("price_per_1m_output"),
          "requests_per_minute": block.get("requests_per_minute"), "tokens_per_minute": block.get("tokens_per_minute"),
          "output_tokens": float(s["generation"]["max_new_tokens"]) / 2}
    measured = None
    if sample > 0:
        if stage.attach_frames:
            stage._attach(items, rows)
        if runner is not None:
            stage.runner = runner
        stage._load()
        try:
            measured = measure_judge(stage.runner, items, sample=sample, seed=seed, rules=stage.rules,
                                     both_orders=kw["both_orders"])
        finally:
            stage.close()
        kw.update(prompt_token_ratio=measured["prompt_token_ratio"], retry_share=measured["strict_retry_share"] or 0.0)
        if measured["output_tokens"] is not None:
            kw["output_tokens"] = measured["output_tokens"]
        if stage.runner_name == "openai" and measured["latency_s"]:
            kw["latency_s"] = measured["latency_s"]
        elif measured["requests_per_s"]:
            kw["requests_per_s"] = measured["requests_per_s"]
    est = estimate_judge(items, stage.rules, **kw)
    est["measured"] = {k: v for k, v in measured.items() if k != "rows"} if measured else None
    est["assumed_output_tokens"] = None if measured and measured["output_tokens"] is not None else kw["output_tokens"]
    return est


def format_estimate(est: dict) -> str:
    def f(v, kind=""):
        if v is None:
            return "-"
        if kind == "usd":
            return f"${v:,.4f}"
        return f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"

    lines = ["| quantity | value |", "|---|---|",
             f"| pairs to judge | {f(est['pairs'])} ({f(est['skipped'])} cannot be judged: missing or failed answers) |",
             f"| requests | {f(est['requests'])} ({est['orders']} order(s) a pair) |",
             f"| prompt tokens | {f(est['prompt_tokens'])} |",
             f"| output tokens | {f(est['output_tokens'])}"
             + (f" (assumed {est['assumed_output_tokens']:.0f} a request)" if est.get("assumed_output_tokens") else "")
             + " |",
             f"| cost | {f(est['cost_usd'], 'usd')}" + ("" if est["cost_usd"] is not None else " (no prices configured)") + " |",
             f"| time | {f(est['seconds'])} s" + (f" (bound by {est['bound_by']})" if est["bound_by"] else
                                                   " (unknown: no latency measured and no limits set)") + " |",
             f"| cost / 1,000 pairs | {f(est['cost_per_1000_pairs'], 'usd')} |",
             f"| time / 1,000 pairs | {f(est['seconds_per_1000_pairs'])} s |"]
    m = est.get("measured")
    if m:
        lines.append(f"| measured on | {m['sample']} pairs, {m['requests']} requests, {m['wall_s']:.1f} s; "
                     f"errors {100 * (m['error_share'] or 0):.0f}%, stricter retries {100 * (m['strict_retry_share'] or 0):.0f}% |")
    return "\n".join(lines)
