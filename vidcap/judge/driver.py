"""Running the judge and estimating it: any runner (API, vLLM, local transformers) carries the requests.

* **Driver** - ``iter_judge(runner, items)`` / ``run_judge``: every pair in order (A, B) and, unless
  ``both_orders=False``, in order (B, A); an unreadable reply (unparseable, refused, out of range;
  ``vidcap.judge.parse.parse_verdict``) gets ONE retry with a stricter format instruction, then the
  row gets ``judge_error``. A request that fails in the runner (HTTP error after its own retries)
  fails the row at once. ``RunnerFatal`` propagates. Scores of the (B, A) order are swapped back and
  the two orders averaged; a row whose one order failed has no ``score_a``/``score_b`` (its
  per-order scores stay visible) and carries the error: nothing is substituted.

Per row (``vidcap.judge.core.JUDGE_COLUMNS``): ``score_a``, ``score_b`` (averaged over orders),
``winner`` (A | B | tie), per-order scores and reasons, ``order_agree`` (same winner in both
orders), per-criterion scores for the caption rubric (``criteria``, JSON ``{name: [A, B]}``),
``judge_model``, ``judge_prompt_hash`` (system + rule + answer format + template version), requests,
strict retries, tokens, cost, ``judge_error``.

* **Cost and time** - ``estimate_judge`` / ``measure_judge``: before a run, from the rendered
  requests and prices, or from a sample judged for real.
"""
from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vidcap.errors import RunnerFatal, describe_error
from vidcap.judge.core import (
    ID_SEP,
    JUDGE_COLUMNS,
    ORDERS,
    JudgeItem,
    judge_messages,
    judge_prompt_hash,
    judge_request,
    winner,
)
from vidcap.judge.parse import JudgeParseError, Verdict, parse_verdict
from vidcap.judge.rules import RULES, rule_for
from vidcap.runners.base import Request


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


def _row(st: _State, rules, orders, model: str) -> dict:
    item = st.item
    rule_key, _ = rule_for(rules, item.rule_category)
    row: dict[str, Any] = {c: None for c in JUDGE_COLUMNS}
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
        row["order_agree"] = winner(*per["ab"]) == winner(*per["ba"])
    errors = [f"order {o[0].upper()},{o[1].upper()}: {st.errors[o]}" for o in orders if o in st.errors]
    if item.error:
        errors = [item.error]
    if errors:
        row["judge_error"] = "; ".join(errors)
        return row
    row["score_a"] = float(np.mean([per[o][0] for o in orders]))
    row["score_b"] = float(np.mean([per[o][1] for o in orders]))
    row["winner"] = winner(row["score_a"], row["score_b"])
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
            key, order, _ = rid.split(ID_SEP)
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
    limits: dict[str, float] = {}
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
            "cost_usd": cost, "seconds": seconds, "bound_by": min(limits, key=lambda k: limits[k]) if limits else None,
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
