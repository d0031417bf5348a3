"""The judge's items and requests: what one comparison is and how it is asked (llava-bench style).

* ``JudgeItem``: one question with the two answers to compare (``JUDGE_COLUMNS``: the row the judge
  gives back for it, ``vidcap.judge.driver``).
* **Requests** - ``judge_messages(item, rules, order, strict)`` gives the (system, user) texts for one
  pair in one order; ``judge_request`` wraps them in a ``vidcap.runners.base.Request`` (frames
  attached when the item has them, for a vision judge). The user text holds the optional context,
  the question, the two answers as "Assistant 1" / "Assistant 2", the category's rule
  (``vidcap.judge.rules``) and our answer format. ``judge_prompt_hash``: system + rule + answer
  format + template version.
* **Items** - ``items_from_answers`` (a prompt file joined with two answers files by
  ``question_id``), ``items_from_columns`` (two columns of one table), ``read_contexts``
  (llava-bench's context file).

The rest of the judge: ``vidcap.judge.parse`` (reading a verdict), ``vidcap.judge.driver`` (running
and estimating), ``vidcap.judge.columns`` (the judge stage's columns), ``vidcap.judge.summary``
(per-category table, order agreement).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pandas as pd

from vidcap.io.tables import cell_text
from vidcap.judge.rules import RULES, STRICT_FORMAT, SYSTEM, answer_format, rule_for
from vidcap.media.frames import Frames
from vidcap.runners.base import Request

TEMPLATE_VERSION = "1"
ORDERS = ("ab", "ba")
ID_SEP = "\x1f"   # between key, order and strict flag in a request id
JUDGE_COLUMNS = (
    "question_id", "category", "rule", "score_a", "score_b", "winner",
    "score_a_ab", "score_b_ab", "score_a_ba", "score_b_ba", "order_agree",
    "reason_ab", "reason_ba", "form_ab", "form_ba", "criteria",
    "judge_model", "judge_prompt_hash", "judge_requests", "judge_strict_retries",
    "prompt_tokens", "output_tokens", "cost_usd", "judge_error",
)
# Recommended generation settings for a judge: deterministic, room for a short reason.
JUDGE_GENERATION = {"max_new_tokens": 300, "temperature": 0.0}


@dataclass
class JudgeItem:
    """One question with the two answers to compare. ``error``: why this pair cannot be judged
    (an answer missing or failed upstream); such an item gets ``judge_error`` and no request.
    ``rule``: the rule key to judge with when it is not the category's (e.g. ``caption`` for every
    row of a caption comparison whose rows keep their own categories for the summary table)."""

    key: str
    question: str
    answer_a: str
    answer_b: str
    category: str = ""
    context: str = ""
    frames: Frames | None = None
    error: str = ""
    rule: str = ""

    @property
    def rule_category(self) -> str:
        """What the rule is looked up by: ``rule`` when set, else ``category``."""
        return self.rule or self.category


def winner(a: float, b: float) -> str:
    """``A``, ``B`` or ``tie``: which of two scores is higher."""
    return "A" if a > b else "B" if b > a else "tie"


# ------------------------------------------------------------------------------------- requests


def answer_block(n: int, text: str) -> str:
    """How answer ``n`` (1 or 2) appears in the judge's request."""
    return f"[Assistant {n}]\n{text.strip()}\n[End of Assistant {n}]"


def judge_messages(item: JudgeItem, rules: dict[str, str] = RULES, order: str = "ab",
                   strict: bool = False) -> tuple[str, str, str]:
    """(system text, user text, rule key) for ``item`` with its answers in ``order`` (``ab``: A is
    Assistant 1; ``ba``: B is Assistant 1). ``strict`` adds the stricter format instruction."""
    if order not in ORDERS:
        raise ValueError(f"order must be ab or ba; got {order!r}")
    rule_key, rule = rule_for(rules, item.rule_category)
    first, second = (item.answer_a, item.answer_b) if order == "ab" else (item.answer_b, item.answer_a)
    parts = []
    if item.context.strip():
        parts.append(f"[Context]\n{item.context.strip()}\n[End of Context]")
    if item.frames is not None:
        parts.append("The frames attached are from the clip the question is about.")
    parts += [f"[Question]\n{item.question.strip()}\n[End of Question]",
              answer_block(1, first), answer_block(2, second),
              f"[Task]\n{rule}", answer_format(rule_key)]
    if strict:
        parts.append(STRICT_FORMAT)
    return SYSTEM, "\n\n".join(parts), rule_key


def judge_prompt_hash(rules: dict[str, str], category: str) -> str:
    """Identifies the exact wording a category is judged with (not the per-row question/answers)."""
    rule_key, rule = rule_for(rules, category)
    blob = "\x00".join((TEMPLATE_VERSION, SYSTEM, rule_key, rule, answer_format(rule_key), STRICT_FORMAT))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _request_id(key: str, order: str, strict: bool) -> str:
    return ID_SEP.join((key, order, "strict" if strict else "first"))


def judge_request(item: JudgeItem, rules: dict[str, str] = RULES, order: str = "ab",
                  strict: bool = False) -> Request:
    system, user, rule_key = judge_messages(item, rules, order, strict)
    return Request(row_id=_request_id(item.key, order, strict), user=user, system=system, frames=item.frames,
                   meta={"key": item.key, "order": order, "strict": strict, "rule": rule_key})


# ------------------------------------------------------------------------------------ building items


def items_from_answers(questions: pd.DataFrame, answers_a: pd.DataFrame, answers_b: pd.DataFrame,
                       contexts: dict[str, str] | None = None, question_column: str = "prompt",
                       context_key: str = "path") -> list[JudgeItem]:
    """Items for each question (``vidcap.io.prompt_files.read_prompt_file`` table) joined by ``question_id`` with
    two answer tables (``vidcap.io.answers.read_answers``). A question without an answer, or whose answer
    carries an error, becomes an item with ``error`` (judged never, reported). ``contexts``: text per
    value of the question's ``context_key`` column (llava-bench: per image)."""
    a = {str(r["question_id"]): r for r in answers_a.to_dict("records")}
    b = {str(r["question_id"]): r for r in answers_b.to_dict("records")}
    items = []
    for q in questions.to_dict("records"):
        qid = str(q["question_id"])
        errs = []
        for name, table in (("A", a), ("B", b)):
            ans = table.get(qid)
            if ans is None:
                errs.append(f"no answer {name} for question_id {qid}")
            elif cell_text(ans.get("error")):
                errs.append(f"answer {name} failed: {cell_text(ans.get('error'))}")
        items.append(JudgeItem(
            key=qid, question=cell_text(q.get(question_column)), category=cell_text(q.get("category")),
            answer_a=cell_text(a.get(qid, {}).get("text")), answer_b=cell_text(b.get(qid, {}).get("text")),
            context=(contexts or {}).get(cell_text(q.get(context_key)), ""), error="; ".join(errs)))
    return items


def items_from_columns(df: pd.DataFrame, column_a: str, column_b: str, key_column: str = "row_id",
                       question: str | None = None, question_column: str | None = None,
                       category_column: str | None = None, category: str = "caption",
                       context_columns: tuple[str, ...] = (), error_columns: tuple[str, ...] = ()) -> list[JudgeItem]:
    """Items from two columns of one table (e.g. captions of two runs merged by row, or a caption and a
    reference). The question is ``question`` for every row or the row's ``question_column``; the
    category is the row's ``category_column`` or ``category``; ``context_columns`` become
    ``name: value`` lines of the context (e.g. ``cmotion``). A row whose answer is empty or whose
    ``error_columns`` hold an error becomes an item with ``error``."""
    if (question is None) == (question_column is None):
        raise ValueError("give exactly one of question and question_column")
    items = []
    for r in df.to_dict("records"):
        errs = [f"{c}: {cell_text(r.get(c))}" for c in error_columns if cell_text(r.get(c))]
        for name, col in (("A", column_a), ("B", column_b)):
            if not cell_text(r.get(col)).strip() and not errs:
                errs.append(f"answer {name} ({col}) is empty")
        ctx = "\n".join(f"{c}: {cell_text(r.get(c))}" for c in context_columns if cell_text(r.get(c)))
        items.append(JudgeItem(
            key=cell_text(r[key_column]), question=question if question is not None else cell_text(r.get(question_column)),
            answer_a=cell_text(r.get(column_a)), answer_b=cell_text(r.get(column_b)),
            category=cell_text(r.get(category_column)) if category_column else category, context=ctx,
            error="; ".join(errs)))
    return items


def read_contexts(path) -> dict[str, str]:
    """llava-bench's context file (one JSON object a line, ``{"image": ..., "caption": ...}``) as
    {media name as written: context text}; keys ``video`` and ``context``/``text`` also accepted."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                key = obj.get("image") or obj.get("video") or obj.get("question_id") or obj.get("id")
                text = obj.get("caption") or obj.get("context") or obj.get("text")
            except (ValueError, AttributeError):
                raise ValueError(f"{path} line {number}: not a JSON object") from None
            if key is None or not isinstance(text, str):
                raise ValueError(f"{path} line {number}: needs image/video and caption/context")
            out[str(key)] = text
    return out
