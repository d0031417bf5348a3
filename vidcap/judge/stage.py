"""Judge stage: an LLM compares two answers per row (A = the reference, B = the answer judged).

Per row: answer A from a column (``answer_a_column``) or a reference answers file
(``reference_answers``, NeVA/llava-bench shape, joined on ``key_column``); answer B from
``answer_b_column`` (the workflow sets the caption stage's output column); the question from
``question_column`` or ``question``; the category from ``category_column`` or ``category``; context
lines from ``context_columns`` and a llava-bench ``contexts_file``; the clip's frames when
``attach_frames`` (a vision judge). The pair goes through ``vidcap.judge.core.iter_judge`` (both orders
averaged, one stricter retry for an unreadable reply) with any runner: ``openai`` (API, vLLM, SGLang)
or ``transformers`` (``text_transformers`` for a local chat model, the vision ``transformers`` runner
when frames are attached).

A row whose answer is missing, empty or failed upstream (``error_columns``), whose question is
empty, or whose frames cannot be decoded gets ``judge_error`` without a request. A row whose
judging failed (both tries unreadable, HTTP error) gets ``judge_error`` and keeps the order that
worked in its per-order columns; nothing is substituted. Rows are journaled as each pair finishes,
so a killed judge job resumes with the pairs it has not judged.

Columns: ``vidcap.judge.core.STAGE_COLUMNS`` (``judge_score_a``, ``judge_score_b``, ``judge_winner``,
per-order scores, reasons and forms, ``judge_criteria``, ``judge_model``, ``judge_prompt_hash``,
requests, tokens, cost; ``judge_category`` and ``judge_rule`` used) plus ``judge_answer_a`` /
``judge_answer_b`` (the texts compared, for the report's side-by-side). The per-category table
(relative score with a bootstrap interval) is made by ``vidcap gather`` from these columns.

``params`` (the journal fingerprint): runner and model settings, the columns and texts used, a hash
of the reference answers, rules and contexts files' contents, orders, retry, frames, generation.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from vidcap.config import stage_settings
from vidcap.errors import ConfigError, StageRowError, describe_error
from vidcap.io.answers import read_answers
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.io.tables import cell_text
from vidcap.judge.columns import STAGE_COLUMNS, to_stage_row
from vidcap.judge.core import JudgeItem, read_contexts
from vidcap.judge.driver import iter_judge
from vidcap.judge.rules import load_rules
from vidcap.media.frames import sample_frames
from vidcap.media.timerange import row_range
from vidcap.runners import get_runner, result_settings, runner_for
from vidcap.stages.base import Stage

if TYPE_CHECKING:  # runners and frames load with the model, not at plan time
    from vidcap.media.frames import Frames
    from vidcap.runners.base import Runner

log = logging.getLogger("vidcap.judge.stage")

DEFAULT_QUESTION = "Describe this video."
_FLOAT = ("judge_score_a", "judge_score_b", "judge_score_a_ab", "judge_score_b_ab", "judge_score_a_ba",
          "judge_score_b_ba", "judge_cost_usd")
_INT = ("judge_requests", "judge_strict_retries", "judge_prompt_tokens", "judge_output_tokens")


def _file_hash(path: str | None, what: str) -> str | None:
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise ConfigError(f"config key 'stages.judge.{what}': cannot read {path}: {exc.strerror or exc}") from None


class JudgeStage(Stage):
    name = "judge"
    version = "2"

    def __init__(self, params: dict | None = None):
        s = stage_settings(self.name, params)
        self.settings = s
        self.runner_name = s["runner"]
        self.batch_size = int(s["batch_size"])
        self.a_column = s["answer_a_column"]
        self.b_column = s["answer_b_column"] or "text"
        self.key_column = s["key_column"]
        self.question_column = s["question_column"]
        self.question = s["question"] or DEFAULT_QUESTION
        self.category_column = s["category_column"]
        self.error_columns = tuple(s["error_columns"])
        self.context_columns = tuple(s["context_columns"])
        self.attach_frames = bool(s["attach_frames"])
        self.reads_media = self.attach_frames   # a vision judge decodes the row's range
        if not self.a_column and not s["reference_answers"]:
            raise ConfigError("config key 'stages.judge': give answer A: answer_a_column or reference_answers")
        if self.a_column and s["reference_answers"]:
            raise ConfigError("config key 'stages.judge': answer_a_column and reference_answers both set; give one")
        self.rules = load_rules(s["rules_file"])
        if s["rule"] and s["rule"] not in self.rules:
            raise ConfigError(f"config key 'stages.judge.rule': no rule {s['rule']!r}; known: "
                              f"{', '.join(sorted(self.rules))}")
        self.reference: dict[str, dict] | None = None
        ref_hash = _file_hash(s["reference_answers"], "reference_answers")
        ctx_hash = _file_hash(s["contexts_file"], "contexts_file")
        self.contexts: dict[str, str] = {}
        if s["contexts_file"]:
            try:
                self.contexts = read_contexts(s["contexts_file"])
            except ValueError as exc:
                raise ConfigError(f"config key 'stages.judge.contexts_file': {exc}") from None
        self.columns = {c: pa.string() for c in STAGE_COLUMNS.values() if c != "judge_error"}
        self.columns.update({c: pa.float64() for c in _FLOAT})
        self.columns.update({c: pa.int64() for c in _INT})
        self.columns["judge_order_agree"] = pa.bool_()
        self.columns.update({"judge_answer_a": pa.string(), "judge_answer_b": pa.string()})
        wanted = [ROW_ID, MEDIA_PATH, "path", self.b_column, self.key_column, self.category_column,
                  *self.error_columns, *self.context_columns]
        wanted += [c for c in (self.a_column, self.question_column) if c]
        self.input_columns = tuple(dict.fromkeys(wanted))
        block = dict(result_settings(self.runner_name, s.get(self.runner_name, {})))
        super().__init__({
            "runner": self.runner_name, self.runner_name: block,
            "answer_a_column": self.a_column, "reference_answers_sha": ref_hash, "key_column": self.key_column,
            "answer_b_column": self.b_column, "error_columns": list(self.error_columns),
            "question_column": self.question_column, "question": self.question,
            "category_column": self.category_column, "category": s["category"], "rule": s["rule"],
            "rules": hashlib.sha256(json.dumps(self.rules, sort_keys=True).encode()).hexdigest()[:16],
            "context_columns": list(self.context_columns), "contexts_sha": ctx_hash,
            "both_orders": bool(s["both_orders"]), "strict_retry": bool(s["strict_retry"]),
            "frames": dict(s["frames"]) if self.attach_frames else None,
            "generation": dict(s["generation"]),
        })
        self.runner: Runner | None = None
        self.provenance: dict = {}

    # ---------------------------------------------------------------------------------- runner

    def runner_kind(self) -> str:
        """The ``vidcap.runners`` name: frames attached need a vision runner, else a text one."""

        return runner_for(self.runner_name, media=self.attach_frames)

    def runner_settings(self) -> dict:
        s = self.settings
        block = dict(s.get(self.runner_name, {}))
        if block.get("response_format") == "none":
            block.pop("response_format")
        out = {**block, "generation": dict(s["generation"]), "batch_size": self.batch_size}
        if self.attach_frames:
            out["frames"] = {**s["frames"], "single": "middle", "decoder": "pyav"}
        return out

    def setup(self) -> None:
        """Nothing up front: the runner loads in ``process_stream`` only when a pair needs a request."""

    def _load(self) -> None:
        if self.runner is None:   # a runner set beforehand (tests, benches) is used as given
            self.runner = get_runner(self.runner_kind(), self.runner_settings())
        self.runner.load()
        self.provenance = self.runner.provenance()
        log.info("judge: runner %s, model %s, both orders %s, %s", self.runner_kind(), self.provenance.get("model"),
                 self.settings["both_orders"], "with frames" if self.attach_frames else "text only")

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()

    # ------------------------------------------------------------------------------------ rows

    def load_reference(self) -> dict[str, dict]:
        """The reference answers by ``question_id`` (read once; bad lines stop the job, listed)."""
        if self.reference is None:
            table = read_answers(self.settings["reference_answers"]).table
            self.reference = {str(r["question_id"]): r for r in table.to_dict("records")}
        return self.reference

    def _context(self, row: dict) -> str:
        lines = []
        if self.contexts:
            path = cell_text(row.get("path"))
            ctx = self.contexts.get(path) or self.contexts.get(Path(path).name) if path else None
            if ctx:
                lines.append(ctx)
        lines += [f"{c}: {cell_text(row.get(c))}" for c in self.context_columns if cell_text(row.get(c))]
        return "\n".join(lines)

    def item(self, row: dict) -> JudgeItem:
        """The pair to judge for one row; ``error`` says why it cannot be judged (no request then)."""
        errs = [f"{c}: {cell_text(row.get(c))}" for c in self.error_columns if cell_text(row.get(c))]
        if self.a_column:
            if self.a_column not in row:
                errs.append(f"no column {self.a_column!r} (answer A)")
            a = cell_text(row.get(self.a_column))
        else:
            key = cell_text(row.get(self.key_column))
            ref = self.load_reference().get(key) if key else None
            a = cell_text(ref["text"]) if ref else ""
            if not key:
                errs.append(f"no {self.key_column} to find the reference answer by")
            elif ref is None:
                errs.append(f"no reference answer for {self.key_column} {key}")
            elif ref.get("error"):
                errs.append(f"reference answer failed: {ref['error']}")
        if self.b_column not in row:
            errs.append(f"no column {self.b_column!r} (answer B)")
        b = cell_text(row.get(self.b_column))
        for name, col, text in (("A", self.a_column or "reference", a), ("B", self.b_column, b)):
            if not text.strip() and not errs:
                errs.append(f"answer {name} ({col}) is empty")
        question = cell_text(row.get(self.question_column)) if self.question_column else ""
        category = cell_text(row.get(self.category_column)) or self.settings["category"]
        return JudgeItem(key=row[ROW_ID], question=question.strip() or self.question, answer_a=a, answer_b=b,
                         category=category, context=self._context(row), error="; ".join(errs),
                         rule=self.settings["rule"] or "")

    def _attach(self, items: list[JudgeItem], rows: list[dict]) -> None:
        """Frames for every item still to judge, one decode per clip; a failure fails the item."""

        f = self.settings["frames"]
        cache: dict[tuple, Frames | BaseException] = {}
        for item, row in zip(items, rows, strict=True):
            if item.error:
                continue
            path = row.get(MEDIA_PATH) or ""
            try:
                span = row_range(row)  # a clip of a longer file: frames inside [start, end) only
            except StageRowError as exc:
                item.error = f"frames: {exc}"
                continue
            key = (path, *span)
            if key not in cache:
                self.stats["decodes"] = self.stats.get("decodes", 0) + 1
                try:
                    cache[key] = sample_frames(path, int(f["num_frames"]), f["policy"], resize_short=f["resize_short"],
                                               unique=True, time_range=span)
                except Exception as exc:  # noqa: BLE001 - FrameError etc.: this row's own failure
                    cache[key] = exc
            got = cache[key]
            if isinstance(got, BaseException):
                item.error = f"frames: {describe_error(got)}"
            else:
                item.frames = got

    def process_stream(self, rows: list[dict]):
        items = [self.item(r) for r in rows]
        if self.attach_frames:
            self._attach(items, rows)
        by_key = {it.key: it for it in items}
        try:
            if any(not it.error for it in items) and (self.runner is None or not self.provenance):
                self._load()
            s = self.settings
            for key, out in iter_judge(self.runner, items, self.rules, bool(s["both_orders"]), bool(s["strict_retry"])):
                yield key, self._result(out, by_key[key])
        finally:
            if self.runner is not None:
                self.stats.update(getattr(self.runner, "stats", {}) or {})

    @staticmethod
    def _result(out: dict, item: JudgeItem) -> dict:
        rec = to_stage_row(out)
        rec["judge_answer_a"], rec["judge_answer_b"] = item.answer_a, item.answer_b
        for c in _INT:
            rec[c] = None if rec.get(c) is None else int(rec[c])
        return rec
