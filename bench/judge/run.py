"""Judge bench: order agreement, position bias, and time and cost per 1,000 pairs.

    .venv/bin/python bench/judge/run.py                    # scripted judge unless $OPENAI_API_KEY is set
    .venv/bin/python bench/judge/run.py --pairs 200 --latency 1 --concurrency 16
    OPENAI_API_KEY=... .venv/bin/python bench/judge/run.py --model gpt-4o-mini --price-in 0.15 --price-out 0.6

Which judge: a real OpenAI-compatible API when the variable named by ``--key-env`` (default
``OPENAI_API_KEY``) is set and not empty (``--base-url`` for other providers; the key is never
printed), else the **scripted judge**: ``vidcap.dev.chat_server`` on 127.0.0.1 answering after
``--latency`` seconds with a simulated reviewer (``scripted_reply``: scores from the facts of the
context each answer states or contradicts, plus a fixed +1 for the answer shown first, plus ±1
noise; replies in mixed forms, a few unreadable or refusing). The output says which.

Data: ``bench/judge/data.py``, frozen; the ``test`` split is reported, the ``dev`` split is used only
for the pre-run estimate's sample. Rows printed, all from this one run:

* vidcap judge: both orders, ``--concurrency`` requests in flight.
* baseline: one order, one request at a time (the pattern of NeMo's ``mixtral_eval.py``), on
  ``--serial-pairs`` pairs of the same split; the ratio column is pairs/s over it.
* the estimate made before the run (``measure_judge`` on ``--estimate-pairs`` dev pairs, then
  ``estimate_judge`` for the test split) next to what the run measured.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

data = importlib.import_module("data")   # bench/judge/data.py (importable once the path is set)

SCRIPT_KEY_VAR = "VIDCAP_JUDGE_BENCH_KEY"
FIRST_POSITION_BONUS = 1.0        # the scripted judge's position bias (points to the answer shown first)
FORM_SHARES = [("json", 0.60), ("pair_line", 0.20), ("out_of_10", 0.10), ("junk", 0.06), ("refusal", 0.04)]


# ------------------------------------------------------------------------------------ scripted judge


def _between(text: str, start: str, end: str) -> str:
    m = re.search(re.escape(start) + r"\n(.*?)\n" + re.escape(end), text, re.S)
    return m.group(1) if m else ""


def _quality(answer: str, context: str) -> float:
    """Facts of the context the answer states (+1.6 each) and wrong or invented things it states (-3 each)."""
    low, ctx = answer.lower(), context.lower()
    vocab = data.SUBJECTS + data.ACTIONS + data.SETTINGS + data.OBJECTS + data.CAMERA
    right = sum(1 for v in vocab if v in low and v in ctx)
    wrong = sum(1 for v in data.SUBJECTS + data.SETTINGS + data.INVENTED if v in low and v not in ctx)
    return 2.0 + 1.6 * right - 3.0 * wrong


def scripted_reply(body: dict) -> str:
    """A simulated reviewer with a known position bias; deterministic per request text."""
    from vidcap.judge.rules import STRICT_FORMAT

    text = "\n".join(str(m.get("content")) for m in body.get("messages", []))
    ctx = _between(text, "[Context]", "[End of Context]")
    a1 = _between(text, "[Assistant 1]", "[End of Assistant 1]")
    a2 = _between(text, "[Assistant 2]", "[End of Assistant 2]")
    h = hashlib.blake2b(text.encode(), digest_size=8).digest()
    noise = [(h[0] % 3) - 1, (h[1] % 3) - 1]
    s1 = min(10, max(1, round(_quality(a1, ctx) + FIRST_POSITION_BONUS + noise[0])))
    s2 = min(10, max(1, round(_quality(a2, ctx) + noise[1])))
    reason = "The answer that states more of the scene correctly and invents nothing is better."
    if STRICT_FORMAT in text:
        return json.dumps({"assistant_1": s1, "assistant_2": s2, "reason": reason})
    u, acc = h[2] / 256.0, 0.0
    form = FORM_SHARES[-1][0]
    for name, share in FORM_SHARES:
        acc += share
        if u < acc:
            form = name
            break
    if form == "json":
        return json.dumps({"assistant_1": s1, "assistant_2": s2, "reason": reason})
    if form == "pair_line":
        return f"{s1} {s2}\n{reason}"
    if form == "out_of_10":
        return f"Assistant 1 deserves {s1}/10. Assistant 2 deserves {s2}/10. {reason}"
    if form == "junk":
        return "Both answers have merits; the second one reads more naturally overall."
    return "I'm sorry, but I can't help with comparing these answers."


# ---------------------------------------------------------------------------------------- runs


def _runner(settings: dict, concurrency: int):
    from vidcap.judge.core import JUDGE_GENERATION
    from vidcap.runners.openai_api import OpenAIRunner

    return OpenAIRunner({**settings, **JUDGE_GENERATION, "concurrency": concurrency})


def _run(settings, items, concurrency: int, both_orders: bool):
    from vidcap.judge.driver import run_judge

    runner = _runner(settings, concurrency)
    runner.load()
    try:
        t0 = time.monotonic()
        rows = run_judge(runner, items, both_orders=both_orders)
        return rows, time.monotonic() - t0
    finally:
        runner.close()


def _truth_share(rows, truth: dict, column_a: str, column_b: str) -> tuple[float | None, int]:
    """Share of pairs with a better answer (truth A or B) whose winner by these columns is it."""
    hits = n = 0
    for r in rows.itertuples():
        t = truth[r.question_id]
        a, b = getattr(r, column_a), getattr(r, column_b)
        if t == "tie" or a != a or b != b:    # NaN: not scored
            continue
        n += 1
        hits += (a > b) if t == "A" else (b > a)
    return (hits / n if n else None), n


def _money(v) -> str:
    return "-" if v is None or v != v else f"${v:,.4f}"


def _secs(v) -> str:
    return "-" if v is None or v != v else f"{v:,.0f} s"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=None, help="test pairs (default 200 scripted, 40 real API)")
    p.add_argument("--serial-pairs", type=int, default=8)
    p.add_argument("--estimate-pairs", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--latency", type=float, default=1.0, help="scripted judge: seconds a request")
    p.add_argument("--key-env", default="OPENAI_API_KEY")
    p.add_argument("--model", default="gpt-4o-mini")
    p.add_argument("--base-url", default=None)
    p.add_argument("--price-in", type=float, default=None, help="$ per 1M input tokens")
    p.add_argument("--price-out", type=float, default=None, help="$ per 1M output tokens")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    from vidcap.dev.chat_server import ChatServer
    from vidcap.judge.driver import estimate_judge, measure_judge
    from vidcap.judge.summary import category_table, format_category_table, order_agreement

    real = bool(os.environ.get(args.key_env, "").strip())
    server = None
    if real:
        settings = {"api_key_env": args.key_env, "model": args.model, "base_url": args.base_url}
        where = f"real API: model {args.model} at {args.base_url or 'api.openai.com'} (key from ${args.key_env})"
        n = args.pairs or 40
    else:
        os.environ[SCRIPT_KEY_VAR] = "sk-judge-bench-local"
        server = ChatServer(latency=args.latency, api_key=os.environ[SCRIPT_KEY_VAR], reply=scripted_reply,
                            verbatim=True).start()
        settings = {"api_key_env": SCRIPT_KEY_VAR, "model": "scripted-judge", "base_url": server.url}
        where = (f"SCRIPTED judge (vidcap.dev.chat_server, {args.latency:g} s a request; simulated reviewer with a "
                 f"+{FIRST_POSITION_BONUS:g} first-position bias): order agreement and accuracy describe the "
                 f"simulation, not a model")
        n = args.pairs or 200
    settings.update({"price_per_1m_input": args.price_in, "price_per_1m_output": args.price_out,
                     "timeout_s": 120, "max_tries": 6})
    lines = [f"judge: {where}", f"data: bench/judge/data.py, test split, {n} pairs"]
    try:
        test = data.make_pairs(n, "test")
        items = [t[0] for t in test]
        truth = {t[0].key: t[2] for t in test}
        dev = [t[0] for t in data.make_pairs(max(args.estimate_pairs, 1) * 4, "dev")]

        # estimate before running, from a small dev sample
        runner = _runner(settings, args.concurrency)
        runner.load()
        try:
            m = measure_judge(runner, dev, sample=args.estimate_pairs, seed=0)
        finally:
            runner.close()
        est = estimate_judge(items, output_tokens=m["output_tokens"] or 120, latency_s=m["latency_s"],
                             prompt_token_ratio=m["prompt_token_ratio"], concurrency=args.concurrency,
                             retry_share=m["strict_retry_share"] or 0.0,
                             price_per_1m_input=args.price_in, price_per_1m_output=args.price_out)

        rows, wall = _run(settings, items, args.concurrency, both_orders=True)
        serial_items = items[: args.serial_pairs]
        srows, swall = _run(settings, serial_items, 1, both_orders=False)
    finally:
        if server is not None:
            server.stop()

    agree = order_agreement(rows)
    ties = [r for r in rows.itertuples() if truth[r.question_id] == "tie" and r.score_a_ab == r.score_a_ab
            and r.score_a_ba == r.score_a_ba]
    acc_one, n_dec = _truth_share(rows, truth, "score_a_ab", "score_b_ab")
    acc_both, _ = _truth_share(rows, truth, "score_a", "score_b")
    acc_serial, n_ser = _truth_share(srows, truth, "score_a_ab", "score_b_ab")
    cost = rows["cost_usd"].astype(float)
    scost = srows["cost_usd"].astype(float)
    rate, srate = len(rows) / wall, len(srows) / swall
    errors = int((rows["judge_error"] != "").sum())

    head = ["run", "pairs", "requests", "strict retries", "errors", "order agreement", "first shown wins",
            "winner = truth (A,B order alone)", "winner = truth (judged)", "time / 1,000 pairs",
            "cost / 1,000 pairs", "pairs/s", "ratio"]
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table.append("| " + " | ".join([
        f"vidcap judge, both orders, concurrency {args.concurrency}", str(len(rows)),
        str(int(rows.judge_requests.sum())), str(int(rows.judge_strict_retries.sum())), str(errors),
        f"{_pct(agree['share'])} of {agree['pairs']}", _pct(agree["first_position_wins"]),
        f"{_pct(acc_one)} of {n_dec}", f"{_pct(acc_both)} of {n_dec}",
        _secs(1000 * wall / len(rows)), _money(1000 * cost.mean()) if cost.notna().any() else "-",
        f"{rate:.2f}", f"{rate / srate:.1f}x"]) + " |")
    table.append("| " + " | ".join([
        "baseline: one order, one request at a time", str(len(srows)), str(int(srows.judge_requests.sum())),
        str(int(srows.judge_strict_retries.sum())), str(int((srows.judge_error != '').sum())), "-", "-",
        f"{_pct(acc_serial)} of {n_ser}", "-", _secs(1000 * swall / len(srows)),
        _money(1000 * scost.mean()) if scost.notna().any() else "-", f"{srate:.2f}", "1.0x"]) + " |")
    tie_first = sum(1 for r in ties if (r.score_a_ab > r.score_b_ab) and (r.score_b_ba > r.score_a_ba))
    lines += ["", *table, "",
              f"tie pairs (B restates A) scored in both orders: {len(ties)}; the first-shown answer won in both "
              f"orders in {tie_first}; after averaging {sum(1 for r in ties if r.winner == 'tie')} are ties.",
              "", "estimate before the run (measure_judge on "
              f"{m['sample']} dev pairs, then estimate_judge) vs measured:",
              "| quantity | estimated | measured |", "|---|---|---|",
              f"| time / 1,000 pairs | {_secs(est['seconds_per_1000_pairs'])} | {_secs(1000 * wall / len(rows))} |",
              f"| cost / 1,000 pairs | {_money(est['cost_per_1000_pairs'])} | "
              f"{_money(1000 * cost.mean()) if cost.notna().any() else '-'} |",
              f"| prompt tokens, all requests | {est['prompt_tokens']:,} | {int(rows.prompt_tokens.sum()):,} |",
              "", "per category (A = reference answers, B = model answers):",
              format_category_table(category_table(rows, seed=0), "A", "B")]
    if errors:
        top = rows.loc[rows.judge_error != "", "judge_error"].str.replace(r"\d+(\.\d+)?", "N", regex=True)
        lines += ["", "errors: " + "; ".join(f"{k} ({v})" for k, v in top.value_counts().head(3).items())]
    if args.price_in is None and args.price_out is None:
        lines += ["", "cost: no prices given (--price-in/--price-out $ per 1M tokens); tokens are in the rows"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
