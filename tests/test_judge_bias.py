"""The judge's position bias and the bias-corrected relative score (``vidcap.judge.summary``).

A scripted judge on 127.0.0.1 (``vidcap.dev.chat_server``) that adds +2 to whichever answer it sees
first, capped at 10: the table must report the bias and a corrected score that recovers the true
100 × B / A within its interval where the raw score's interval does not; through ``run_judge`` and
through ``vidcap judge``.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from tests.test_judge import KEY, KEY_VAR, judge
from vidcap.dev.chat_server import ChatServer
from vidcap.io.answers import write_answers
from vidcap.judge.core import JudgeItem
from vidcap.judge.summary import category_table, format_category_table

STAGE_KEY_VAR, STAGE_KEY = "VIDCAP_TEST_JUDGE_BIAS_KEY", "sk-judgeBiasFAKE-90d1"


def stage_openai(srv) -> dict:
    return {"base_url": srv.url, "api_key_env": STAGE_KEY_VAR, "model": "judge-test", "concurrency": 4,
            "timeout_s": 5, "backoff_s": 0.05, "max_backoff_s": 0.2, "max_tries": 3}


def prompt_file(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path



def _worth(text: str, n: int) -> int:
    block = re.search(rf"\[Assistant {n}\]\n(.*?)\n\[End of Assistant {n}\]", text, re.S).group(1)
    return int(re.search(r"worth (\d+)", block).group(1))


def first_seen_plus_two(body: dict) -> str:
    """A scripted judge with a known position bias: each answer's true score is written in it
    ("worth N"); the answer shown first gets +2, capped at the scale's 10."""
    text = "\n".join(m["content"] for m in body["messages"] if isinstance(m["content"], str))
    return f"{min(10, _worth(text, 1) + 2)} {_worth(text, 2)}"


def biased_items() -> tuple[list[JudgeItem], dict[str, float]]:
    """Category ``mid``: A 6-7, B 5-6 (true 100 × B/A about 83); ``top``: A 9-10, B 7-8, where the +2
    also hits the 10 ceiling. Returns the items and the true relative score per category and ``all``."""
    rng = np.random.default_rng(7)
    items, sums = [], {"mid": [0, 0], "top": [0, 0], "all": [0, 0]}
    for i in range(40):
        cat = "mid" if i % 2 else "top"
        a = int(rng.integers(6, 8)) if cat == "mid" else int(rng.integers(9, 11))
        b = a - 1 if cat == "mid" else a - 2
        items.append(JudgeItem(f"q{i}", f"question {i}", f"answer A{i} worth {a}", f"answer B{i} worth {b}", cat))
        for k in (cat, "all"):
            sums[k][0] += a
            sums[k][1] += b
    return items, {k: 100.0 * b / a for k, (a, b) in sums.items()}


def test_position_bias_estimated_and_corrected_score_recovers_the_truth(monkeypatch):
    """A judge that adds +2 to whichever answer it sees first: averaging both orders pulls 100 × B/A
    toward 100, and more where the bias hits the ceiling. The table reports the bias per run and per
    category, and a corrected score whose interval holds the true ratio where the raw one's does not."""
    monkeypatch.setenv(KEY_VAR, KEY)
    items, truth = biased_items()
    with ChatServer(api_key=KEY, reply=first_seen_plus_two, verbatim=True) as srv:
        rows = judge(srv, items)
    assert (rows["judge_error"] == "").all()
    table = category_table(rows, n_boot=2000, seed=3).set_index("category")
    for cat in ("all", "mid", "top"):
        r = table.loc[cat]
        assert r.relative > truth[cat] + 1 and not (r.ci_low <= truth[cat] <= r.ci_high), (cat, r.relative, truth[cat])
        assert r.relative_corrected == pytest.approx(truth[cat], abs=1e-9), "the disfavoured-position scores are exact"
        assert r.corrected_ci_low <= truth[cat] <= r.corrected_ci_high
        assert r.n_bias == r.n
    assert table.loc["mid", "position_bias"] == pytest.approx(2.0), "no ceiling: the full +2"
    assert table.loc["mid", "bias_ci_low"] == table.loc["mid", "bias_ci_high"] == pytest.approx(2.0)
    assert 0 < table.loc["top", "position_bias"] < 2.0, "the ceiling hides part of the bias"
    again = category_table(rows, n_boot=2000, seed=3)
    assert again.equals(category_table(rows, n_boot=2000, seed=3)), "seeded: the same intervals every time"
    text = format_category_table(table.reset_index())
    assert "position bias" in text and "corrected relative (%)" in text
    mid = next(line for line in text.splitlines() if line.startswith("| mid |"))
    assert f"| +2.00 | 2.00 - 2.00 | {truth['mid']:.1f} |" in mid


def test_position_bias_unbiased_judge_and_one_order():
    """No bias: corrected = raw. One order only: no bias estimate, no corrected score."""
    base = {"judge_error": "", "category": "c", "score_a_ab": 6.0, "score_b_ab": 5.0}
    rows = pd.DataFrame([{**base, "question_id": f"q{i}", "score_a": 6.0 + i % 2, "score_b": 5.0,
                          "score_a_ba": 6.0 + i % 2, "score_b_ba": 5.0, "score_a_ab": 6.0 + i % 2} for i in range(4)])
    t = category_table(rows).set_index("category")
    assert t.loc["all", "position_bias"] == 0.0 and t.loc["all", "relative_corrected"] == t.loc["all", "relative"]
    one = rows.assign(score_a_ba=None, score_b_ba=None)
    t = category_table(one).set_index("category")
    assert t.loc["all", "n_bias"] == 0 and pd.isna(t.loc["all", "position_bias"])
    assert pd.isna(t.loc["all", "relative_corrected"]) and pd.isna(t.loc["all", "corrected_ci_low"])
    assert "| all | 4 | 0 | 6.50 | 5.00 | 76.9 |" in format_category_table(t.reset_index())


def _worth_stage(text: str, n: int) -> int:
    block = re.search(rf"\[Assistant {n}\]\n(.*?)\n\[End of Assistant {n}\]", text, re.S).group(1)
    return int(re.search(r"worth (\d+)", block).group(1))


def plus_two_first(body: dict) -> str:
    """A judge with a known position bias: +2 to the answer it sees first (capped at 10)."""
    text = "\n".join(m["content"] for m in body["messages"] if isinstance(m["content"], str))
    return f"{min(10, _worth_stage(text, 1) + 2)} {_worth_stage(text, 2)}"


def test_judge_command_reports_position_bias_and_corrected_score(tmp_path, monkeypatch, capsys):
    """``vidcap judge`` with a judge that adds +2 to the first-seen answer: the printed table and
    categories.csv carry the bias (+2 per category and run) and a corrected relative score equal to
    the true 100 × B/A (83.3), whose interval holds it; the raw score (85.7) does not."""
    from vidcap.cli import main

    monkeypatch.setenv(STAGE_KEY_VAR, STAGE_KEY)
    n = 16
    a_true = [6 + i % 2 for i in range(n)]
    prompt_file(tmp_path / "q.jsonl", [{"image": f"{i}.jpg", "text": f"Question {i}?", "question_id": i,
                                         "category": "conv" if i % 2 else "detail"} for i in range(n)])
    write_answers(pd.DataFrame({"question_id": [str(i) for i in range(n)],
                                "text": [f"ans-a-{i} worth {a}" for i, a in enumerate(a_true)]}), tmp_path / "a.jsonl",
                  model_id="model-a")
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"response_id": i, "response": f"ans-b-{i} worth {a - 1}"}) + "\n"
                                              for i, a in enumerate(a_true)))
    truth = 100.0 * sum(a - 1 for a in a_true) / sum(a_true)
    with ChatServer(api_key=STAGE_KEY, reply=plus_two_first, verbatim=True) as srv:
        (tmp_path / "judge.yaml").write_text(json.dumps({"stages": {"judge": {"openai": stage_openai(srv)}}}))
        args = ["judge", "--answers-a", str(tmp_path / "a.jsonl"), "--answers-b", str(tmp_path / "b.jsonl"),
                "--configfile", str(tmp_path / "judge.yaml"), "-o", str(tmp_path / "out")]
        assert main(args) == 2, "no questions anywhere: refused before any request"
        err = capsys.readouterr().err
        assert f"{n} of {n} answers carry no question" in err and "--questions" in err and str(tmp_path / "b.jsonl") in err
        assert srv.chat_records() == []
        assert main([*args, "--questions", str(tmp_path / "q.jsonl")]) == 0
    printed = capsys.readouterr().out
    cats = pd.read_csv(tmp_path / "out" / "categories.csv").set_index("category")
    for cat in ("all", "conv", "detail"):
        r = cats.loc[cat]
        t = truth if cat == "all" else 100.0 * (sum(a - 1 for a in a_true[cat == "conv"::2]) / sum(a_true[cat == "conv"::2]))
        assert r.position_bias == pytest.approx(2.0) and r.relative_corrected == pytest.approx(t)
        assert r.corrected_ci_low <= t + 1e-9 and t - 1e-9 <= r.corrected_ci_high
        assert r.relative > t + 1 and not (r.ci_low <= t <= r.ci_high)
    assert "position bias" in printed and f"| +2.00 | 2.00 - 2.00 | {truth:.1f} |" in printed
