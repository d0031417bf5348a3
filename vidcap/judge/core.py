"""An LLM judge that compares two answer sets (llava-bench style), through any runner.

Three independent parts, so any runner (API, vLLM, local transformers) can carry the requests:

* **Requests** - ``judge_messages(item, rules, order, strict)`` gives the (system, user) texts for one
  pair in one order; ``judge_request`` wraps them in a ``vidcap.runners.base.Request`` (frames
  attached when the item has them, for a vision judge). The user text holds the optional context,
  the question, the two answers as "Assistant 1" / "Assistant 2", the category's rule
  (``vidcap.judge.rules``) and our answer format.
* **Parsing** - ``vidcap.judge.parse.parse_verdict`` (JSON, "7 and 8", "Score: 7/10 ... 8/10", ...).
* **Driver** - ``iter_judge(runner, items)`` / ``run_judge``: every pair in order (A, B) and, unless
  ``both_orders=False``, in order (B, A); an unreadable reply (unparseable, refused, out of range)
  gets ONE retry with a stricter format instruction, then the row gets ``judge_error``. A request
  that fails in the runner (HTTP error after its own retries) fails the row at once. ``RunnerFatal``
  propagates. Scores of the (B, A) order are swapped back and the two orders averaged; a row whose
  one order failed has no ``score_a``/``score_b`` (its per-order scores stay visible) and carries
  the error: nothing is substituted.

Per row (``JUDGE_COLUMNS``): ``score_a``, ``score_b`` (averaged over orders), ``winner`` (A | B | tie),
per-order scores and reasons, ``order_agree`` (same winner in both orders), per-criterion scores
for the caption rubric (``criteria``, JSON ``{name: [A, B]}``), ``judge_model``,
``judge_prompt_hash`` (system + rule + answer format + template version), requests, strict retries,
tokens, cost, ``judge_error``.

Summaries: ``category_table`` (``vidcap.judge.summary``: mean A, mean B, relative score
100 × mean(B) / mean(A), the judge's position bias and the bias-corrected relative score, each with
a seeded 95 % bootstrap interval over rows; rows ``all`` and one per category), ``order_agreement``,
and ``estimate_judge`` / ``measure_judge`` for cost and time before a run.
"""
from __future__ import annotations

import hashlib
import json
import random
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vidcap.errors import RunnerFatal, describe_error
from vidcap.io.tables import cell_text
from vidcap.judge.parse import JudgeParseError, Verdict, parse_verdict
from vidcap.judge.rules import RULES, STRICT_FORMAT, SYSTEM, answer_format, rule_for
from vidcap.judge.summary import category_table, format_category_table  # noqa: F401  (re-exported)
from vidcap.media.frames import Frames
from vidcap.runners.base import Request

TEMPLATE_VERSION = "1"
ORDERS = ("ab", "ba")
_SEP = "\x1f"
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


@dataclass
class _State:
    item: JudgeItem
    verdicts: dict = field(default_factory=dict)     # order -> Verdict
    errors: dict = field(default_factory=dict)       # order -> message
    waiting: set = field(default_factory=set)        # orders with a request outstanding
    requests: int = 0
    strict: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    model: str = ""


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
    return _SEP.join((key, order, "strict" if strict else "first"))


def judge_request(item: JudgeItem, rules: dict[str, str] = RULES, order: str = "ab",
                  strict: bool = False) -> Request:
    system, user, rule_key = judge_messages(item, rules, order, strict)
    return Request(row_id=_request_id(item.key, order, strict), user=user, system=system, frames=item.frames,
                   meta={"key": item.key, "order": order, "strict": strict, "rule": rule_key})


# --------------------------------------------------------------------------------------- driver


def _account(st: _State, gen) -> None:
    st.prompt_tokens += int(gen.prompt_tokens or 0)
    st.output_tokens += int(gen.output_tokens or 0)
    cost = (gen.extra or {}).get("cost_usd")
    if cost is not None:
        st.cost = (st.cost or 0.0) + float(cost)
    served = (gen.extra or {}).get("model_served")
    if served and not st.model:
        st.model = served


def _swap(order: str, v: Verdict) -> tuple[float, float]:
    """(score of A, score of B) from a verdict given in ``order``."""
    return (v.score_1, v.score_2) if order == "ab" else (v.score_2, v.score_1)


def _winner(a: float, b: float) -> str:
    return "A" if a > b else "B" if b > a else "tie"


def _row(st: _State, rules, orders, model: str) -> dict:
    item = st.item
    rule_key, _ = rule_for(rules, item.rule_category)
    row = {c: None for c in JUDGE_COLUMNS}
    row.update(question_id=item.key, category=item.category, rule=rule_key,
               judge_model=st.model or model, judge_prompt_hash=judge_prompt_hash(rules, item.rule_category),
               judge_requests=st.requests, judge_strict_retries=st.strict,
               prompt_tokens=st.prompt_tokens, output_tokens=st.output_tokens, cost_usd=st.cost,
               judge_error="")
    per = {}
    crit: dict[str, list[list[float]]] = {}
    for order in orders:
        v = st.verdicts.get(order)
        if v is None:
            continue
        a, b = _swap(order, v)
        per[order] = (a, b)
        row[f"score_a_{order}"], row[f"score_b_{order}"] = a, b
        row[f"reason_{order}"], row[f"form_{order}"] = v.reason, v.form
        for name, pair in v.criteria.items():
            crit.setdefault(name, []).append(list(pair) if order == "ab" else [pair[1], pair[0]])
    if "ab" in per and "ba" in per:
        row["order_agree"] = _winner(*per["ab"]) == _winner(*per["ba"])
    errors = [f"order {o[0].upper()},{o[1].upper()}: {st.errors[o]}" for o in orders if o in st.errors]
    if item.error:
        errors = [item.error]
    if errors:
        row["judge_error"] = "; ".join(errors)
        return row
    row["score_a"] = float(np.mean([per[o][0] for o in orders]))
    row["score_b"] = float(np.mean([per[o][1] for o in orders]))
    row["winner"] = _winner(row["score_a"], row["score_b"])
    if crit:
        row["criteria"] = json.dumps({k: [float(np.mean([p[0] for p in v])), float(np.mean([p[1] for p in v]))]
                                      for k, v in sorted(crit.items()) if len(v) == len(orders)})
    return row


def iter_judge(runner, items: Iterable[JudgeItem], rules: dict[str, str] = RULES, both_orders: bool = True,
               strict_retry: bool = True) -> Iterator[tuple[str, dict]]:
    """Judge every item; yield ``(key, row)`` (``JUDGE_COLUMNS``) as each finishes, every key once.

    ``runner``: a loaded ``vidcap.runners.base.Runner`` (its generation settings apply; see
    ``JUDGE_GENERATION``). First pass: all requests; second pass: the stricter retries. Keys must be
    unique (ValueError otherwise).
    """
    orders = ORDERS if both_orders else ORDERS[:1]
    model = (runner.provenance() or {}).get("model", "") if runner is not None else ""
    states: dict[str, _State] = {}
    for item in items:
        if item.key in states:
            raise ValueError(f"judge: key {item.key!r} appears twice")
        states[item.key] = _State(item)

    for st in states.values():   # pairs that cannot be judged: answered at once, no request
        if st.item.error:
            yield st.item.key, _row(st, rules, orders, model)

    def first_pass():
        for st in states.values():
            if st.item.error:
                continue
            for order in orders:
                st.waiting.add(order)
                st.requests += 1
                yield judge_request(st.item, rules, order)

    retries: list[Request] = []

    def take(results, strict: bool):
        for rid, gen in results:
            key, order, _ = rid.split(_SEP)
            st = states[key]
            st.waiting.discard(order)
            if isinstance(gen, BaseException):
                if isinstance(gen, RunnerFatal):
                    raise gen
                st.errors[order] = describe_error(gen)
            else:
                _account(st, gen)
                try:
                    st.verdicts[order] = parse_verdict(gen.text)
                except JudgeParseError as exc:
                    if strict_retry and not strict:
                        st.waiting.add(order)
                        st.requests += 1
                        st.strict += 1
                        retries.append(judge_request(st.item, rules, order, strict=True))
                    else:
                        after = " (after a stricter retry)" if strict else ""
                        st.errors[order] = f"{exc.kind}: {exc}{after}"
            if not st.waiting:
                yield key, _row(st, rules, orders, model)

    if not any(not st.item.error for st in states.values()):
        return   # nothing to send (``runner`` may then be None)
    if runner is None:
        raise ValueError("judge: items to judge but no runner")
    yield from take(runner.run(first_pass()), strict=False)
    if retries:
        yield from take(runner.run(iter(retries)), strict=True)


def run_judge(runner, items: Iterable[JudgeItem], rules: dict[str, str] = RULES, both_orders: bool = True,
              strict_retry: bool = True) -> pd.DataFrame:
    """``iter_judge`` collected into a table in the items' order (``JUDGE_COLUMNS``)."""
    items = list(items)
    rows = dict(iter_judge(runner, items, rules, both_orders, strict_retry))
    return pd.DataFrame([rows[it.key] for it in items], columns=list(JUDGE_COLUMNS))


# ------------------------------------------------------------------------- the judge stage's columns

# JUDGE_COLUMNS -> the judge stage's column (prefixed, so they never clash with other stages' in the
# merged table); ``question_id`` is the row itself (``row_id``) and has none.
STAGE_COLUMNS = {c: (c if c.startswith("judge_") else f"judge_{c}") for c in JUDGE_COLUMNS if c != "question_id"}


def to_stage_row(row: dict) -> dict:
    """A ``JUDGE_COLUMNS`` row with the judge stage's column names (``STAGE_COLUMNS``)."""
    return {STAGE_COLUMNS[k]: v for k, v in row.items() if k in STAGE_COLUMNS}


def from_stage_table(df: pd.DataFrame, key_column: str = "row_id") -> pd.DataFrame:
    """The judge stage's columns of a table (a stage output or the merged table) back under
    ``JUDGE_COLUMNS`` names (``question_id`` from ``key_column``), for ``category_table`` and
    ``order_agreement``. Rows the stage never saw (no ``judge_requests`` and no ``judge_error``) are
    dropped; null errors become ''."""
    have = {k: v for k, v in STAGE_COLUMNS.items() if v in df.columns}
    out = pd.DataFrame({k: df[v].astype(object).where(df[v].notna(), None) for k, v in have.items()})
    out.insert(0, "question_id", df[key_column].astype(str).to_numpy() if key_column in df.columns else "")
    for c in JUDGE_COLUMNS:
        if c not in out.columns:
            out[c] = None
    out["judge_error"] = out["judge_error"].fillna("").astype(str)
    out["category"] = out["category"].fillna("").astype(str)
    for c in ("score_a", "score_b", "score_a_ab", "score_b_ab", "score_a_ba", "score_b_ba", "cost_usd"):
        out[c] = pd.to_numeric(out[c], errors="coerce")
    seen = out["judge_requests"].notna() | (out["judge_error"] != "")
    return out[seen][list(JUDGE_COLUMNS)].reset_index(drop=True)


# ------------------------------------------------------------------------------------ building items


def items_from_answers(questions: pd.DataFrame, answers_a: pd.DataFrame, answers_b: pd.DataFrame,
                       contexts: dict[str, str] | None = None, question_column: str = "prompt",
                       context_key: str = "path") -> list[JudgeItem]:
    """Items for each question (``vidcap.io.neva.read_prompt_file`` table) joined by ``question_id`` with
    two answer tables (``vidcap.io.neva.read_answers``). A question without an answer, or whose answer
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


# ------------------------------------------------------------------------------------- summaries


def order_agreement(rows: pd.DataFrame) -> dict:
    """Over rows judged in both orders: ``pairs``, ``agree`` (same winner in both orders, ties
    included as a winner), ``share``, and ``first_position_wins``: how often the answer shown first
    won (a position-biased judge is above half of the decided verdicts)."""
    both = rows.dropna(subset=["score_a_ab", "score_b_ab", "score_a_ba", "score_b_ba"])
    pairs = len(both)
    agree = int(sum(_winner(r.score_a_ab, r.score_b_ab) == _winner(r.score_a_ba, r.score_b_ba)
                    for r in both.itertuples()))
    first = decided = 0
    for r in both.itertuples():
        for s1, s2 in ((r.score_a_ab, r.score_b_ab), (r.score_b_ba, r.score_a_ba)):   # (first shown, second)
            if s1 != s2:
                decided += 1
                first += s1 > s2
    return {"pairs": pairs, "agree": agree, "share": agree / pairs if pairs else None,
            "first_position_wins": first / decided if decided else None, "decided_verdicts": decided}


# ------------------------------------------------------------------------------------ cost and time


def _tokens(text: str) -> int:
    return (len(text) + 3) // 4   # the openai runner's estimate (vidcap.runners.openai_api.text_tokens)


def estimate_judge(items: Iterable[JudgeItem], rules: dict[str, str] = RULES, both_orders: bool = True,
                   output_tokens: float = 120, price_per_1m_input: float | None = None,
                   price_per_1m_output: float | None = None, concurrency: int = 16,
                   latency_s: float | None = None, requests_per_s: float | None = None,
                   requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                   image_tokens: int = 85, prompt_token_ratio: float = 1.0, retry_share: float = 0.0) -> dict:
    """Cost and time of judging ``items`` before any request: pairs × orders requests; prompt tokens
    from the rendered requests (4 characters a token × ``prompt_token_ratio``, which ``measure_judge``
    calibrates; ``image_tokens`` per attached frame, OpenAI's low-detail count); ``output_tokens`` a
    request (assumed, or measured). Time = requests / the lowest of concurrency / latency (API; never
    less than one latency),
    ``requests_per_s`` (a local runner's measured rate), RPM/60 and TPM/60 / tokens a request (None
    when none is known). ``retry_share``: stricter retries per first request (``measure_judge``'s
    ``strict_retry_share``; 0 = none assumed): they add requests and tokens, and a second wave of
    requests (one more latency) when any are expected."""
    orders = 2 if both_orders else 1
    pairs = skipped = 0
    prompt = 0.0
    for item in items:
        if item.error:
            skipped += 1
            continue
        pairs += 1
        system, user, _ = judge_messages(item, rules, "ab")
        n_img = len(item.frames.frames) if item.frames is not None else 0
        prompt += (_tokens(system) + _tokens(user) + 8) * prompt_token_ratio + n_img * image_tokens
    first = pairs * orders
    grow = 1.0 + max(0.0, float(retry_share or 0.0))
    requests = round(first * grow)
    prompt_total = prompt * orders * grow
    out_total = first * grow * float(output_tokens)
    cost = None
    if price_per_1m_input is not None or price_per_1m_output is not None:
        cost = (prompt_total * float(price_per_1m_input or 0) + out_total * float(price_per_1m_output or 0)) / 1e6
    limits = {}
    if latency_s:
        limits["concurrency"] = concurrency / latency_s
    if requests_per_s:
        limits["measured_rate"] = float(requests_per_s)
    if requests_per_minute:
        limits["requests_per_minute"] = requests_per_minute / 60.0
    if tokens_per_minute and requests:
        limits["tokens_per_minute"] = tokens_per_minute / 60.0 / ((prompt_total + out_total) / requests)
    rate = min(limits.values()) if limits else None
    waves = 2 if retry_share and requests > first else 1
    seconds = (max(requests / rate, waves * (latency_s or 0.0)) if rate and requests
               else (0.0 if not requests else None))
    per_1000 = 1000.0 / pairs if pairs else None
    return {"pairs": pairs, "skipped": skipped, "orders": orders, "requests": requests,
            "prompt_tokens": round(prompt_total), "output_tokens": round(out_total),
            "cost_usd": cost, "seconds": seconds, "bound_by": min(limits, key=limits.get) if limits else None,
            "requests_per_s": rate,
            "cost_per_1000_pairs": cost * per_1000 if cost is not None and per_1000 else None,
            "seconds_per_1000_pairs": seconds * per_1000 if seconds is not None and per_1000 else None}


def measure_judge(runner, items: list[JudgeItem], sample: int = 8, seed: int = 0, rules: dict[str, str] = RULES,
                  both_orders: bool = True) -> dict:
    """Judge ``sample`` random items for real and return what ``estimate_judge`` needs: measured
    prompt-token ratio (server count / our 4-characters estimate), output tokens a request, latency
    a request (API runners: from the client's timings; else None), requests/s of the sample (for
    local runners), cost per pair, strict-retry and error shares, and the sample's rows."""
    pool = [it for it in items if not it.error]
    picked = random.Random(seed).sample(pool, min(sample, len(pool)))
    t0 = time.monotonic()
    rows = run_judge(runner, picked, rules, both_orders)
    wall = time.monotonic() - t0
    req = rows["judge_requests"].sum()
    est = sum((_tokens(s) + _tokens(u) + 8) for it in picked
              for s, u, _ in [judge_messages(it, rules, "ab")]) * (2 if both_orders else 1)
    stats = getattr(getattr(runner, "client", None), "stats", None)   # the openai runner's ChatClient
    seconds = list(stats.request_seconds)[-int(req):] if stats is not None and req else []   # send -> answer
    cost = pd.to_numeric(rows["cost_usd"], errors="coerce")
    return {"sample": len(picked), "requests": int(req), "wall_s": wall,
            "prompt_token_ratio": float(rows["prompt_tokens"].sum() / est) if est else 1.0,
            "output_tokens": float(rows["output_tokens"].sum() / req) if req else None,
            "latency_s": statistics.fmean(seconds) if seconds else None,
            "requests_per_s": float(req / wall) if req and wall > 0 else None,
            "cost_per_pair": float(cost.mean()) if cost.notna().any() else None,
            "strict_retry_share": float(rows["judge_strict_retries"].sum() / (req - rows["judge_strict_retries"].sum()))
            if req else None,
            "error_share": float((rows["judge_error"] != "").mean()) if len(rows) else None,
            "rows": rows}
