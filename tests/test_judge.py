"""The LLM judge: parsing, requests, both orders, retries, the per-category table, estimates.

Judge replies come from ``vidcap.dev.chat_server`` (real HTTP on 127.0.0.1) with scripted answers,
through the ``openai`` runner; one test drives a tiny local model through ``text_transformers``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vidcap.dev.chat_server import ChatServer
from vidcap.dev.tiny import tiny_model
from vidcap.errors import ConfigError, RunnerFatal
from vidcap.io.answers import read_answers, write_answers
from vidcap.io.prompt_files import read_prompt_file
from vidcap.judge.core import (
    JUDGE_COLUMNS,
    JudgeItem,
    answer_block,
    items_from_answers,
    items_from_columns,
    judge_messages,
    judge_prompt_hash,
    read_contexts,
)
from vidcap.judge.driver import estimate_judge, measure_judge, run_judge
from vidcap.judge.parse import JudgeParseError, parse_verdict
from vidcap.judge.rules import RULES, STRICT_FORMAT, SYSTEM, load_rules, rule_for
from vidcap.judge.summary import category_table, format_category_table, order_agreement
from vidcap.runners import get_runner
from vidcap.runners.openai_api import OpenAIRunner

KEY_VAR = "VIDCAP_TEST_JUDGE_KEY"
KEY = "sk-judgeFAKE-5be1c0"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    with ChatServer(api_key=KEY) as srv:
        yield srv


def runner_for(srv, **over):
    settings = {"base_url": srv.url, "api_key_env": KEY_VAR, "model": "judge-test", "concurrency": 8,
                "timeout_s": 5, "backoff_s": 0.05, "max_backoff_s": 0.2, "max_tries": 3,
                "price_per_1m_input": 1.0, "price_per_1m_output": 4.0, "max_new_tokens": 300, **over}
    return OpenAIRunner(settings)


def judge(srv, items, **kw):
    runner = runner_for(srv)
    try:
        return run_judge(runner, items, **kw).set_index("question_id", drop=False)
    finally:
        runner.close()


def script_orders(srv, item: JudgeItem, ab: list[str], ba: list[str]) -> None:
    """Replies for the item's (A, B) requests and (B, A) requests (one per request, in order)."""
    srv.answer(answer_block(1, item.answer_a), ab)
    srv.answer(answer_block(1, item.answer_b), ba)


def request_text(record: dict) -> str:
    return "\n".join(str(m.get("content")) for m in record["body"].get("messages", []))


def requests_for(srv, text: str) -> list[dict]:
    return [r for r in srv.chat_records() if text in request_text(r)]


# ------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize("reply, scores, form", [
    ('{"assistant_1": 7, "assistant_2": 8, "reason": "B names the car."}', (7, 8), "json"),
    ('Sure.\n```json\n{"score_1": "6/10", "score_2": 9.5, "explanation": "x"}\n```', (6, 9.5), "json"),
    ('{"scores": [3, 4]}', (3, 4), "json"),
    ("7 and 8", (7, 8), "pair_line"),
    ("7 8\nAssistant 2 also names the colour.", (7, 8), "pair_line"),
    ("Scores: 9, 2", (9, 2), "pair_line"),
    ("Score: 7/10 for the first answer; the second gets 8/10.", (7, 8), "out_of_10"),
    ("Assistant 1: 6\nAssistant 2: 9\nThe second is complete.", (6, 9), "labels"),
    ("Assistant 1 receives a score of 4 and Assistant 2 a score of 10.", (4, 10), "labels"),
    ("Score: 5. Score: 3.", (5, 3), "score_labels"),
    ("I would give them 7 and 8.", (7, 8), "one_line"),
])
def test_parse_forms(reply, scores, form):
    v = parse_verdict(reply)
    assert (v.score_1, v.score_2) == scores and v.form == form


@pytest.mark.parametrize("reply, kind", [
    ("", "empty"),
    ("I'm sorry, but I can't compare these answers.", "refused"),
    ("As an AI, I am unable to evaluate images.", "refused"),
    ("11 4", "out_of_range"),
    ("0 and 5", "out_of_range"),
    ('{"assistant_1": 12, "assistant_2": 3}', "out_of_range"),
    ("85/100 and 90/100", "unparseable"),
    ("Both answers are fine.", "unparseable"),
    ('{"assistant_1": 7}', "unparseable"),                       # one score only: never guessed
    ('{"assistant_1": "good", "assistant_2": 8}', "unparseable"),
    ("Assistant 1 is better than Assistant 2: 7 and 5", "unparseable"),   # ambiguous: a retry, not a guess
    ("Assistant 1 made 3 errors. Assistant 1: 7. Assistant 2: 8", "unparseable"),
])
def test_parse_failures(reply, kind):
    with pytest.raises(JudgeParseError) as err:
        parse_verdict(reply)
    assert err.value.kind == kind


# ------------------------------------------------------------------------------ requests and rules


def test_request_text_orders_rules_and_hash(tmp_path):
    item = JudgeItem("q1", "What colour is the car?", "It is red.", "It is blue.", "conv", context="A red car.")
    system, ab, key = judge_messages(item, RULES, "ab")
    _, ba, _ = judge_messages(item, RULES, "ba")
    assert system == SYSTEM and key == "conv"
    assert ab.index("[Context]\nA red car.") < ab.index("[Question]") < ab.index(answer_block(1, "It is red.")) \
        < ab.index(answer_block(2, "It is blue.")) < ab.index(RULES["conv"])
    assert answer_block(1, "It is blue.") in ba and answer_block(2, "It is red.") in ba
    assert STRICT_FORMAT not in ab and STRICT_FORMAT in judge_messages(item, RULES, "ab", strict=True)[1]
    # user rules: llava-bench's rule.json form (JSON) and plain text (YAML); ours stay for other categories
    (tmp_path / "rule.json").write_text(json.dumps({"llava_bench_conv": {"role": "Assistant", "prompt": "Be strict."}}))
    (tmp_path / "rules.yaml").write_text("detail: Count the details.\n")
    rules = load_rules(tmp_path / "rule.json")
    assert rule_for(rules, "conv") == ("conv", RULES["conv"]), "an exact key beats llava_bench_<category>"
    del rules["conv"]
    assert rule_for(rules, "conv") == ("llava_bench_conv", "Be strict.")
    assert "Be strict." in judge_messages(item, rules, "ab")[1]
    assert judge_prompt_hash(rules, "conv") != judge_prompt_hash(RULES, "conv")
    assert judge_prompt_hash(RULES, "conv") == judge_prompt_hash(RULES, "conv")
    assert load_rules(tmp_path / "rules.yaml")["detail"] == "Count the details."
    assert rule_for(RULES, "no-such-category") == ("default", RULES["default"])
    (tmp_path / "bad.yaml").write_text("conv: [1, 2]\n")
    with pytest.raises(ConfigError, match="bad.yaml.*conv"):
        load_rules(tmp_path / "bad.yaml")


# ---------------------------------------------------------------------- scripted judge over HTTP


def test_both_orders_are_averaged_and_agreement_counted(server):
    agree = JudgeItem("agree", "Q1?", "answer-A-1", "answer-B-1", "conv")
    disagree = JudgeItem("disagree", "Q2?", "answer-A-2", "answer-B-2", "conv")
    script_orders(server, agree, ['{"assistant_1": 6, "assistant_2": 8, "reason": "B is right"}'], ["7 5"])
    script_orders(server, disagree, ["Assistant 1: 8\nAssistant 2: 6"], ["8 and 6"])   # first shown wins twice
    rows = judge(server, [agree, disagree])
    assert list(rows.columns) == list(JUDGE_COLUMNS)
    a = rows.loc["agree"]
    # (A, B) order: A=6, B=8; (B, A) order "7 5" means B=7, A=5 -> A=(6+5)/2=5.5, B=(8+7)/2=7.5
    assert (a.score_a_ab, a.score_b_ab, a.score_a_ba, a.score_b_ba) == (6, 8, 5, 7)
    assert (a.score_a, a.score_b, a.winner, a.order_agree) == (5.5, 7.5, "B", True)
    assert a.reason_ab == "B is right" and a.form_ab == "json" and a.form_ba == "pair_line"
    d = rows.loc["disagree"]
    # (A, B): A=8, B=6; (B, A): B=8, A=6 -> both 7.0, a tie, and the orders disagree
    assert (d.score_a, d.score_b, d.winner, d.order_agree) == (7.0, 7.0, "tie", False)
    assert order_agreement(rows) == {"pairs": 2, "agree": 1, "share": 0.5, "first_position_wins": 0.75,
                                     "decided_verdicts": 4}
    assert (rows["judge_requests"] == 2).all() and (rows["judge_model"] == "judge-test").all()
    assert len(server.chat_records()) == 4
    # one order only
    server.reset()
    script_orders(server, agree, ["6 8"], ["7 5"])
    one = judge(server, [agree], both_orders=False).loc["agree"]
    assert (one.score_a, one.score_b, one.judge_requests) == (6, 8, 1)
    assert pd.isna(one.score_a_ba) and one.order_agree is None and len(server.chat_records()) == 1


def test_malformed_refusal_out_of_range_and_429(server):
    fixed = JudgeItem("fixed", "Q?", "ans-fixed-A", "ans-fixed-B", "detail")
    refuses = JudgeItem("refuses", "Q?", "ans-refuses-A", "ans-refuses-B", "detail")
    too_high = JudgeItem("high", "Q?", "ans-high-A", "ans-high-B", "detail")
    limited = JudgeItem("limited", "Q?", "ans-limited-A", "ans-limited-B", "detail")
    script_orders(server, fixed, ["The second one is better.", '{"assistant_1": 4, "assistant_2": 9}'], ["9 4"])
    script_orders(server, refuses, ["6 7"], ["I'm sorry, I can't judge this.", "I'm sorry, I can't judge this."])
    script_orders(server, too_high, ["Scores: 15 and 7", "15 7"], ["7 6"])
    script_orders(server, limited, ["5 6"], ["6 5"])
    server.script(answer_block(1, limited.answer_a), ["429:0.3", "429:0.3", "ok"])
    rows = judge(server, [fixed, refuses, too_high, limited])

    f = rows.loc["fixed"]
    assert (f.score_a, f.score_b, f.judge_error, f.judge_requests, f.judge_strict_retries) == (4, 9, "", 3, 1)
    strict = requests_for(server, answer_block(1, fixed.answer_a))
    assert len(strict) == 2 and STRICT_FORMAT not in request_text(strict[0]) \
        and STRICT_FORMAT in request_text(strict[1]), "the retry is the stricter request"

    r = rows.loc["refuses"]
    assert r.judge_error.startswith("order B,A: refused: the judge refused: I'm sorry")
    assert r.judge_error.endswith("(after a stricter retry)")
    assert pd.isna(r.score_a) and pd.isna(r.score_b) and pd.isna(r.winner)
    assert (r.score_a_ab, r.score_b_ab) == (6, 7), "the order that worked stays visible"
    assert r.judge_requests == 3 and r.judge_strict_retries == 1

    h = rows.loc["high"]
    assert h.judge_error == ("order A,B: out_of_range: score out of range 1-10: 15 (read as pair_line: 15, 7) "
                             "(after a stricter retry)")

    lim = rows.loc["limited"]
    assert (lim.score_a, lim.score_b, lim.judge_error, lim.judge_requests) == (5, 6, "", 2)
    tries = requests_for(server, answer_block(1, limited.answer_a))
    assert [t["action"] for t in tries] == ["429:0.3", "429:0.3", "ok"]
    assert tries[2]["t"] - tries[0]["t"] >= 0.55, "Retry-After honoured"

    # tokens and cost add up over the row's requests (server: 4 characters a token)
    assert f.prompt_tokens > 0 and f.output_tokens > 0
    assert f.cost_usd == pytest.approx((f.prompt_tokens * 1.0 + f.output_tokens * 4.0) / 1e6)


def test_transport_errors_fail_the_row_or_stop_the_job(server):
    ok = JudgeItem("ok", "Q?", "ans-ok-A", "ans-ok-B")
    bad = JudgeItem("bad", "Q?", "ans-bad-A", "ans-bad-B")
    script_orders(server, ok, ["7 7"], ["7 7"])
    script_orders(server, bad, ["7 7"], ["7 7"])
    server.script(answer_block(1, bad.answer_b), ["400"])
    rows = judge(server, [ok, bad])
    assert rows.loc["ok", "winner"] == "tie"
    assert rows.loc["bad", "judge_error"] == "order B,A: ChatError: HTTP 400: injected error 400"
    assert len(requests_for(server, answer_block(1, bad.answer_b))) == 1, "no stricter retry for a transport error"
    server.reset()
    server.script(answer_block(1, ok.answer_a), ["401"])
    with pytest.raises(RunnerFatal, match="authentication failed"):
        judge(server, [ok])


def test_relative_score_table_checked_by_hand(server):
    """Scores per row (both orders give the same, so the averages are these):

        q1 conv    A 8  B 7
        q2 conv    A 6  B 9
        q3 detail  A 5  B 4
        q4 detail  judge refuses both tries in order (A, B)  -> failed, not in the means
        q5 complex A 4  B 6

    conv:    mean A (8+6)/2 = 7, mean B (7+9)/2 = 8, relative 100*8/7 = 114.2857.
             Bootstrap of 2 rows: resamples {q1,q1} -> 100*7/8 = 87.5, {q2,q2} -> 100*9/6 = 150, mixed
             -> 114.29; each extreme has probability 1/4 > 2.5 %, so the 95 % interval is [87.5, 150].
    detail:  n 1 (q3), failed 1 (q4): 5, 4, relative 80.0, no interval (n < 2).
    complex: 4, 6, relative 150.0, no interval.
    all:     n 4, failed 1; mean A (8+6+5+4)/4 = 5.75, mean B (7+9+4+6)/4 = 6.5, relative
             100*6.5/5.75 = 113.0435. Any resample's relative score lies between the smallest and
             largest per-row ratio (80 and 150): a ratio of sums is between its terms' ratios.
    """
    scores = {"q1": ("conv", 8, 7), "q2": ("conv", 6, 9), "q3": ("detail", 5, 4), "q5": ("complex", 4, 6)}
    items = []
    for key, (cat, a, b) in scores.items():
        item = JudgeItem(key, f"question {key}", f"answer-A-{key}", f"answer-B-{key}", cat)
        script_orders(server, item, [f"{a} {b}"], [f'{{"assistant_1": {b}, "assistant_2": {a}}}'])
        items.append(item)
    q4 = JudgeItem("q4", "question q4", "answer-A-q4", "answer-B-q4", "detail")
    script_orders(server, q4, ["I cannot help with that."] * 2, ["5 5"])
    items.insert(3, q4)
    rows = judge(server, items)
    assert rows["judge_error"].ne("").tolist() == [False, False, False, True, False]

    table = category_table(rows, n_boot=4000, seed=1).set_index("category")
    assert table.index.tolist() == ["all", "complex", "conv", "detail"]
    assert table.loc["conv", ["n", "failed", "mean_a", "mean_b"]].tolist() == [2, 0, 7.0, 8.0]
    assert table.loc["conv", "relative"] == pytest.approx(114.2857, abs=1e-4)
    assert (table.loc["conv", "ci_low"], table.loc["conv", "ci_high"]) == (87.5, 150.0)
    assert table.loc["detail", ["n", "failed", "mean_a", "mean_b", "relative"]].tolist() == [1, 1, 5.0, 4.0, 80.0]
    assert pd.isna(table.loc["detail", "ci_low"]) and table.loc["complex", "relative"] == 150.0
    al = table.loc["all"]
    assert (al.n, al.failed, al.mean_a, al.mean_b) == (4, 1, 5.75, 6.5)
    assert al.relative == pytest.approx(113.0435, abs=1e-4)
    assert 80.0 <= al.ci_low < al.relative < al.ci_high <= 150.0
    again = category_table(rows, n_boot=4000, seed=1)
    assert again.equals(category_table(rows, n_boot=4000, seed=1)), "seeded: same interval every time"
    text = format_category_table(table.reset_index(), "ref", "new")
    assert "| conv | 2 | 0 | 7.00 | 8.00 | 114.3 | 87.5 - 150.0 |" in text
    assert "| detail | 1 | 1 | 5.00 | 4.00 | 80.0 | - |" in text and "relative (new/ref, %)" in text


def test_caption_rubric_criteria_swapped_back(server):
    item = JudgeItem("clip-1", "Describe this video.", "A dog runs left.", "A cat sleeps.", "caption",
                     context="cmotion: pan_left")
    ab = json.dumps({"assistant_1": 8, "assistant_2": 3, "criteria": {
        "accuracy": [8, 2], "detail": [6, 5], "hallucination": [9, 2], "camera_motion": [7, 1]}, "reason": "r"})
    ba = json.dumps({"assistant_1": 2, "assistant_2": 8, "criteria": {
        "accuracy": [3, 8], "detail": [5, 6], "hallucination": [2, 9], "camera_motion": [1, 7]}, "reason": "r"})
    script_orders(server, item, [ab], [ba])
    rows = judge(server, [item])
    row = rows.loc["clip-1"]
    assert (row.score_a, row.score_b, row.rule) == (8.0, 2.5, "caption")
    assert json.loads(row.criteria) == {"accuracy": [8.0, 2.5], "camera_motion": [7.0, 1.0],
                                        "detail": [6.0, 5.0], "hallucination": [9.0, 2.0]}
    body = request_text(requests_for(server, answer_block(1, item.answer_a))[0])
    assert "camera and motion" in body and "cmotion: pan_left" in body


def test_answer_files_end_to_end(server, tmp_path):
    """llava-bench layout: a question file, a context file, answers A (question_id shape, written by
    us, one failed) and answers B (response_id shape, one missing)."""
    qs = [{"image": f"{i:03d}.jpg", "text": f"Question {i}?", "category": c, "question_id": i}
          for i, c in enumerate(["conv", "detail", "complex", "conv"])]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    (tmp_path / "context.jsonl").write_text("".join(
        json.dumps({"id": f"{i:03d}", "image": f"{i:03d}.jpg", "caption": f"Scene {i}."}) + "\n" for i in range(4)))
    a = pd.DataFrame({"question_id": ["0", "1", "2", "3"], "prompt": [q["text"] for q in qs],
                      "text": ["A0", "A1", "A2", None], "err": [None, None, None, "CUDA out of memory"]})
    write_answers(a, tmp_path / "a.jsonl", model_id="model-a", error_column="err")
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"response_id": i, "response": f"B{i}"}) + "\n"
                                              for i in (0, 2, 3)))
    questions = read_prompt_file(tmp_path / "questions.jsonl").table
    contexts = {str(tmp_path / k): v for k, v in read_contexts(tmp_path / "context.jsonl").items()}
    items = items_from_answers(questions, read_answers(tmp_path / "a.jsonl").table,
                               read_answers(tmp_path / "b.jsonl").table, contexts=contexts)
    assert [it.error for it in items] == ["", "no answer B for question_id 1", "",
                                          "answer A failed: CUDA out of memory"]
    for it, scores in zip(items, [(6, 8), None, (7, 5), None], strict=True):
        if scores:
            script_orders(server, it, [f"{scores[0]} {scores[1]}"], [f"{scores[1]} {scores[0]}"])
    rows = judge(server, items)
    assert rows["score_a"].tolist()[0::2] == [6.0, 7.0] and rows["score_b"].tolist()[0::2] == [8.0, 5.0]
    assert rows.loc["1", "judge_error"] == "no answer B for question_id 1" and rows.loc["1", "judge_requests"] == 0
    assert len(server.chat_records()) == 4, "pairs that cannot be judged send nothing"
    body = request_text(requests_for(server, answer_block(1, "A0"))[0])
    assert "Scene 0." in body and "Question 0?" in body
    table = category_table(rows).set_index("category")
    assert table.loc["all", ["n", "failed"]].tolist() == [2, 2]


def test_items_from_columns_and_estimate():
    df = pd.DataFrame({"row_id": ["r1", "r2", "r3"], "text_a": ["cap a1", "cap a2", ""],
                       "text_b": ["cap b1", "cap b2", "cap b3"], "cmotion": ["static", "", "pan_left"],
                       "caption_error": ["", "", ""]})
    items = items_from_columns(df, "text_a", "text_b", question="Describe this video.",
                               context_columns=("cmotion",), error_columns=("caption_error",))
    assert [it.category for it in items] == ["caption"] * 3
    assert [it.context for it in items] == ["cmotion: static", "", "cmotion: pan_left"]
    assert [it.error for it in items] == ["", "", "answer A (text_a) is empty"]
    est = estimate_judge(items, output_tokens=100, price_per_1m_input=2.0, price_per_1m_output=8.0,
                         concurrency=4, latency_s=2.0)
    # 2 pairs x 2 orders = 4 requests; prompt tokens from the rendered texts (4 characters a token, + 8)
    per = [(len(s) + 3) // 4 + (len(u) + 3) // 4 + 8 for s, u, _ in (judge_messages(i, RULES, "ab") for i in items[:2])]
    assert (est["pairs"], est["skipped"], est["requests"]) == (2, 1, 4)
    assert est["prompt_tokens"] == 2 * sum(per) and est["output_tokens"] == 400
    assert est["cost_usd"] == pytest.approx((2 * sum(per) * 2.0 + 400 * 8.0) / 1e6)
    assert est["cost_per_1000_pairs"] == pytest.approx(est["cost_usd"] * 500)
    # 4 requests at 4 in flight and 2 s each: one wave, 2 s; 1,000 pairs: 2,000 requests / 2 per s
    assert est["seconds"] == 2.0 and est["bound_by"] == "concurrency"
    limited = estimate_judge(items, latency_s=2.0, concurrency=4, requests_per_minute=30)
    assert limited["bound_by"] == "requests_per_minute" and limited["seconds"] == 8.0
    assert estimate_judge(items)["seconds"] is None and estimate_judge(items)["cost_usd"] is None


def test_measure_then_estimate_from_a_real_sample(server):
    items = [JudgeItem(f"m{i}", f"Q{i}?", f"ans-m{i}-A", f"ans-m{i}-B") for i in range(6)]
    for it in items:
        script_orders(server, it, ["5 6"], ["6 5"])
    server.latency = 0.1
    runner = runner_for(server)
    try:
        m = measure_judge(runner, items, sample=4, seed=3)
    finally:
        runner.close()
    assert m["sample"] == 4 and m["requests"] == 8 and m["error_share"] == 0.0
    assert 0.1 <= m["latency_s"] < 1.0 and m["output_tokens"] == 2.0
    assert m["prompt_token_ratio"] == pytest.approx(1.0, abs=0.05)   # the server counts 4 characters a token
    est = estimate_judge(items, output_tokens=m["output_tokens"], latency_s=m["latency_s"],
                         prompt_token_ratio=m["prompt_token_ratio"], price_per_1m_input=1.0, price_per_1m_output=4.0)
    assert est["cost_usd"] / 6 == pytest.approx(m["cost_per_pair"], rel=0.05)


# --------------------------------------------------------------------------------- local runner


def test_local_tiny_model_judge_never_guesses():
    """A random-weight chat model through text_transformers: the driver runs unchanged; its replies
    are random text, so a row has scores only if a reply really parsed, else an error after exactly
    one stricter retry per unreadable order."""
    runner = get_runner("text_transformers", {"model": str(tiny_model("qwen2")), "batch_size": 4,
                                              "generation": {"max_new_tokens": 6}})
    runner.load()
    items = [JudgeItem(f"t{i}", "What is shown?", f"A dog {i}.", f"A cat {i}.", "conv") for i in range(2)]
    try:
        rows = run_judge(runner, items)
    finally:
        runner.close()
    assert rows["question_id"].tolist() == ["t0", "t1"]
    assert (rows["judge_requests"] == 2 + rows["judge_strict_retries"]).all()
    assert (rows["judge_model"] == str(tiny_model("qwen2"))).all()
    for r in rows.itertuples():
        if r.judge_error:
            assert pd.isna(r.score_a) and "(after a stricter retry)" in r.judge_error
            assert r.judge_strict_retries >= 1
        else:
            assert 1 <= r.score_a <= 10 and 1 <= r.score_b <= 10
    assert (rows["prompt_tokens"] > 0).all()
    assert np.isfinite(rows["output_tokens"].astype(float)).all()


def test_chat_server_scripted_answers_then_reply_and_verbatim_mode(monkeypatch):
    from vidcap.llm.client import ChatClient

    monkeypatch.setenv(KEY_VAR, KEY)

    def reply(body):
        return "7 8\nsecond line"

    for verbatim, expect in ((False, "7 8 second line"), (True, "7 8\nsecond line")):
        with ChatServer(api_key=KEY, reply=reply, verbatim=verbatim) as srv:
            srv.answer("q-1", ["first\n  scripted", "second"])
            with ChatClient({"base_url": srv.url, "api_key_env": KEY_VAR, "model": "m", "concurrency": 1}) as client:
                texts = [client.complete([{"role": "user", "content": "about q-1"}]).text for _ in range(3)]
                other = client.complete([{"role": "user", "content": "something else"}]).text
        assert texts == ["first\n  scripted", "second", expect], "scripted answers verbatim, in order, then reply"
        assert other == expect
