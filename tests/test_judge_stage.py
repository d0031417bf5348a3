"""The judge stage and the ``vidcap judge`` command: rows, reference answers, frames, the plan's checks,
kill -9 and resume (through ``run_stage`` journaling, and through real Snakemake).

Judge replies come from ``vidcap.dev.chat_server`` (real HTTP on 127.0.0.1) through the ``openai``
runner; answers come from the tiny random-weight caption model where a stage makes them.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO, journal_ids, kill_when_journaled, run_snakemake, write_config
from vidcap.dev import synth
from vidcap.dev.chat_server import ChatServer
from vidcap.dev.tiny import tiny_model
from vidcap.errors import ConfigError, TableError
from vidcap.io.answers import read_answers, write_answers
from vidcap.io.shards import make_shards
from vidcap.io.tables import write_table
from vidcap.judge.columns import STAGE_COLUMNS
from vidcap.judge.core import answer_block
from vidcap.judge.stage import JudgeStage
from vidcap.stages.base import run_stage
from vidcap.workflow import Plan

KEY_VAR = "VIDCAP_TEST_JUDGE_STAGE_KEY"
KEY = "sk-judgeStageFAKE-41c9"
VERDICT = '{"assistant_1": 6, "assistant_2": 8, "reason": "B names more of the scene."}'


def verdict(body: dict) -> str:
    return VERDICT


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    with ChatServer(api_key=KEY, reply=verdict) as srv:
        yield srv


def openai_block(srv, **over) -> dict:
    return {"base_url": srv.url, "api_key_env": KEY_VAR, "model": "judge-test", "concurrency": 4, "timeout_s": 5,
            "backoff_s": 0.05, "max_backoff_s": 0.2, "max_tries": 3, "price_per_1m_input": 1.0,
            "price_per_1m_output": 4.0, **over}


def texts(record: dict) -> str:
    out = []
    for m in record["body"]["messages"]:
        c = m["content"]
        out += [c] if isinstance(c, str) else [p.get("text", "") for p in c if p.get("type") == "text"]
    return "\n".join(out)


def images(record: dict) -> int:
    return sum(1 for m in record["body"]["messages"] if isinstance(m["content"], list)
               for p in m["content"] if p.get("type") == "image_url")


def prompt_file(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------- stage, one shard


def test_stage_reference_answers_columns_errors_and_frames(tmp_path, server):
    """A prompt-file manifest (two questions on one clip, a corrupt clip), a caption-like column as B and
    reference answers as A: scores per row, failures in their rows without a request, frames attached
    once per clip for a vision judge."""
    synth.write_video(tmp_path / "a.mp4", num_frames=12, width=64, height=48, seed=1)
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 500)
    prompt_file(tmp_path / "q.jsonl", [
        {"video": "a.mp4", "text": "What moves?", "category": "conv", "question_id": 0},
        {"video": "a.mp4", "text": "Describe the scene.", "category": "detail", "question_id": 1},
        {"video": "bad.mp4", "text": "What colour?", "category": "conv", "question_id": 2},
        {"video": "a.mp4", "text": "No reference for this one.", "category": "conv", "question_id": 3},
        {"video": "a.mp4", "text": "Caption failed here.", "category": "conv", "question_id": 4},
    ])
    write_answers(pd.DataFrame({"question_id": ["0", "1", "2", "4"], "text": ["ref-0", "ref-1", "ref-2", "ref-4"]}),
                  tmp_path / "ref.jsonl", model_id="gpt-ref")
    make_shards(tmp_path / "q.jsonl", tmp_path / "shards", 100)
    shard = pd.read_parquet(tmp_path / "shards" / "00000.parquet")
    assert shard["_media_path"].tolist()[0] == str(tmp_path / "a.mp4"), "prompt-file paths resolve like a CSV's"
    caption = pd.DataFrame({"row_id": shard["row_id"], "text": ["cap-0", "cap-1", "cap-2", "cap-3", None],
                            "caption_error": [None, None, None, None, "CUDA out of memory"]})
    write_table(caption, tmp_path / "caption.parquet")
    params = {"reference_answers": str(tmp_path / "ref.jsonl"), "question_column": "prompt",
              "error_columns": ["caption_error"], "openai": openai_block(server)}

    stage = JudgeStage(params)
    out = run_stage(stage, tmp_path / "shards" / "00000.parquet", tmp_path / "out.parquet", tmp_path / "j.jsonl",
                    upstream={"caption": tmp_path / "caption.parquet"}, stats_path=tmp_path / "stats.json").to_pandas()
    assert out.columns.tolist() == ["row_id", *stage.columns, "judge_error"]
    assert set(STAGE_COLUMNS.values()) <= set(out.columns)
    ok = out.iloc[:3]
    assert ok["judge_error"].isna().all()
    # (A, B) order: A 6, B 8; (B, A): the same reply means B 6, A 8 -> averaged 7 and 7
    assert ok["judge_score_a_ab"].tolist() == [6.0] * 3 and ok["judge_score_b_ba"].tolist() == [6.0] * 3
    assert (ok["judge_score_a"] == 7.0).all() and (ok["judge_winner"] == "tie").all()
    assert ok["judge_category"].tolist() == ["conv", "detail", "conv"] and ok["judge_rule"].tolist() == ["conv", "detail", "conv"]
    assert ok["judge_answer_a"].tolist() == ["ref-0", "ref-1", "ref-2"] and ok["judge_answer_b"].tolist() == ["cap-0", "cap-1", "cap-2"]
    assert out.loc[3, "judge_error"] == "no reference answer for question_id 3" and out.loc[3, "judge_requests"] == 0
    assert out.loc[4, "judge_error"] == "caption_error: CUDA out of memory"
    assert len(server.chat_records()) == 6, "two requests for each judged pair, none for the failed ones"
    body = texts(next(r for r in server.chat_records() if "cap-1" in texts(r)))
    assert "Describe the scene." in body and (answer_block(1, "ref-1") in body or answer_block(2, "ref-1") in body)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["requests_ok"] == 6 and stats["cost_usd"] > 0

    # a vision judge: frames attached, decoded once per clip; an undecodable clip fails its row only
    server.reset()
    vision = JudgeStage({**params, "attach_frames": True, "frames": {"num_frames": 2, "resize_short": 32}})
    assert vision.fingerprint() != stage.fingerprint()
    out2 = run_stage(vision, tmp_path / "shards" / "00000.parquet", tmp_path / "out2.parquet", tmp_path / "j2.jsonl",
                     upstream={"caption": tmp_path / "caption.parquet"}, stats_path=tmp_path / "stats2.json").to_pandas()
    assert out2["judge_error"].isna().tolist() == [True, True, False, False, False]
    assert out2.loc[2, "judge_error"].startswith("frames: ")
    assert all(images(r) == 2 for r in server.chat_records()) and len(server.chat_records()) == 4
    assert json.loads((tmp_path / "stats2.json").read_text())["decodes"] == 2, "a.mp4 once, bad.mp4 once"


def test_stage_settings_are_checked():
    with pytest.raises(ConfigError, match="answer_a_column or reference_answers"):
        JudgeStage({})
    with pytest.raises(ConfigError, match="both set"):
        JudgeStage({"answer_a_column": "x", "reference_answers": "y.jsonl"})
    with pytest.raises(ConfigError, match="stages.judge.rule': no rule 'nope'"):
        JudgeStage({"answer_a_column": "x", "rule": "nope"})
    with pytest.raises(ConfigError, match="stages.judge.reference_answers': cannot read"):
        JudgeStage({"reference_answers": "/no/such/answers.jsonl"})
    a, b = JudgeStage({"answer_a_column": "x"}), JudgeStage({"answer_a_column": "x", "openai": {"concurrency": 2}})
    assert a.fingerprint() == b.fingerprint(), "speed settings do not change results"
    assert a.fingerprint() != JudgeStage({"answer_a_column": "x", "both_orders": False}).fingerprint()
    assert a.runner_kind() == "openai"
    assert JudgeStage({"answer_a_column": "x", "runner": "transformers"}).runner_kind() == "text_transformers"
    assert JudgeStage({"answer_a_column": "x", "runner": "transformers", "attach_frames": True}).runner_kind() == "transformers"


# ------------------------------------------------------------------------------------ the plan


def _cfg(tmp_path: Path, manifest: Path, **stages) -> dict:
    from vidcap.config import validate_config

    base = {"probe": {"enabled": False}, "motion": {"enabled": False}, "clean": {"enabled": False}}
    return validate_config({"manifest": str(manifest), "results_dir": str(tmp_path / "results"), "name": "p",
                            "stages": {**base, **stages}})


def test_plan_prompt_file_bad_lines_and_judge_wiring(tmp_path, capsys):
    bad = prompt_file(tmp_path / "q.jsonl", [
        {"video": "a.mp4", "text": "Q0?", "question_id": 0},
        {"video": "a.mp4", "text": "Q1?", "question_id": 0},      # line 2: repeated id
        {"text": "no media", "question_id": 2},                    # line 3
    ])
    with pytest.raises(TableError, match=r"2 bad line\(s\): line 2: question_id 0 already used on line 1; line 3: no media"):
        Plan(_cfg(tmp_path, bad))
    config = _cfg(tmp_path, bad)
    config["prompt_file_bad_lines"] = "report"
    plan = Plan(config)
    assert plan.rows == 1
    assert "2 bad line(s) skipped" in capsys.readouterr().err
    from vidcap.io.shards import make_shards  # the shard rule passes the mode on (--bad-lines)

    make_shards(bad, tmp_path / "shards", 10, bad_lines="report")
    info = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert info["rows"] == 1 and [b["line"] for b in info["bad_lines"]] == [2, 3]

    good = prompt_file(tmp_path / "good.jsonl", [{"video": "a.mp4", "text": "Q0?", "question_id": 0, "category": "c"}])
    write_answers(pd.DataFrame({"question_id": ["0"], "text": ["r"]}), tmp_path / "ref.jsonl", model_id="m")
    caption = {"enabled": True, "prompt": "question", "prompt_column": "prompt"}
    plan = Plan(_cfg(tmp_path, good, caption=caption,
                     judge={"enabled": True, "reference_answers": str(tmp_path / "ref.jsonl")}))
    s = plan.settings("judge")
    assert (s["answer_b_column"], s["question_column"], s["error_columns"]) == ("text", "prompt", ["caption_error"])
    assert plan.upstream("judge") == ["caption"]
    opts = plan.gather_options()
    assert opts[opts.index("--answers") + 1] == str(tmp_path / "results" / "p.answers.jsonl")
    assert opts[opts.index("--answers-prompt-column") + 1] == "prompt"
    assert opts[opts.index("--answers-id-column") + 1] == "question_id"
    assert opts[opts.index("--judge-table") + 1] == str(tmp_path / "results" / "p.judge.csv")
    # a CSV manifest: no answers file unless asked; the judge's question is the caption prompt's wording
    write_table(pd.DataFrame({"path": ["a.mp4"], "ref": ["r"]}), tmp_path / "m.csv")
    plan = Plan(_cfg(tmp_path, tmp_path / "m.csv", caption={"enabled": True},
                     judge={"enabled": True, "answer_a_column": "ref"}))
    assert "--answers" not in plan.gather_options()
    assert plan.settings("judge")["question"].startswith("Describe this video in detail")
    for judge, match in (({"enabled": True}, "answer_a_column or reference_answers"),
                         ({"enabled": True, "answer_a_column": "nope"}, "answer_a_column': no column 'nope'"),
                         ({"enabled": True, "reference_answers": str(tmp_path / "none.jsonl")}, "no file")):
        with pytest.raises(ConfigError, match=match):
            Plan(_cfg(tmp_path, tmp_path / "m.csv", caption={"enabled": True}, judge=judge))
    with pytest.raises(ConfigError, match="prompt_column': the manifest has no column 'question'"):
        Plan(_cfg(tmp_path, tmp_path / "m.csv", caption={"enabled": True, "prompt_column": "question"}))
    with pytest.raises(ConfigError, match="unknown NeVA inference key.*greedyy"):   # before any job starts
        Plan(_cfg(tmp_path, tmp_path / "m.csv", caption={"enabled": True, "neva_inference": {"greedyy": True}}))


# ---------------------------------------------------------------------- the command, kill and resume


def _vidcap(*args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "vidcap", *args], cwd=REPO, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def test_judge_command_answers_files_estimate_kill_and_resume(tmp_path, server):
    """``vidcap judge`` on two answers files, killed with SIGKILL mid-run, rerun: the pairs in the journal are
    not judged again, every pair is in judge.csv once, the category table is written."""
    n = 12
    prompt_file(tmp_path / "q.jsonl", [{"image": f"{i}.jpg", "text": f"Question {i}?", "category": "conv" if i % 2 else "detail",
                                         "question_id": i} for i in range(n)])
    write_answers(pd.DataFrame({"question_id": [str(i) for i in range(n)], "text": [f"ans-a-{i}" for i in range(n)]}),
                  tmp_path / "a.jsonl", model_id="model-a")
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"response_id": i, "response": f"ans-b-{i}"}) + "\n"
                                              for i in range(n)))
    (tmp_path / "judge.yaml").write_text(json.dumps({"stages": {"judge": {"openai": openai_block(server, concurrency=1)}}}))
    out = tmp_path / "out"
    args = ["judge", "--answers-a", str(tmp_path / "a.jsonl"), "--answers-b", str(tmp_path / "b.jsonl"),
            "--questions", str(tmp_path / "q.jsonl"), "--configfile", str(tmp_path / "judge.yaml"), "-o", str(out)]

    est = _vidcap(*args, "--estimate", "2")
    stdout, stderr = est.communicate(timeout=120)
    assert est.returncode == 0, stderr
    assert "| requests | 24 (2 order(s) a pair) |" in stdout and "measured on | 2 pairs, 4 requests" in stdout
    assert len(server.chat_records()) == 4 and not (out / "judge.csv").exists()
    server.reset()

    proc = _vidcap(*args, env={"VIDCAP_FAULT_DELAY": "0.3"})
    journal = out / "journal" / "judge" / "00000.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) - 1 >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    server.wait_idle(30)   # a request the kill cut mid-send is recorded (incomplete) before the rerun starts
    before = journal_ids(out, "judge")["00000"]
    assert 3 <= len(before) < n, "killed mid-run"
    sent_before = len(server.chat_records())

    again = _vidcap(*args)
    stdout, stderr = again.communicate(timeout=180)
    assert again.returncode == 0, stderr
    after = journal_ids(out, "judge")["00000"]
    assert after[: len(before)] == before and len(after) == len(set(after)) == n, "journaled pairs kept, none twice"
    shard = pd.read_parquet(out / "shards" / "00000.parquet").set_index("row_id")
    # what the rerun sent, whole or cut mid-send (the raw bytes then): no journaled pair's answers in it
    later = [r["raw"] if r["incomplete"] else texts(r) for r in server.chat_records()[sent_before:]]
    assert later, "the rerun sent the pairs not journaled"
    for qid in shard.loc[before, "question_id"]:
        mine = re.compile(rf"ans-[ab]-{qid}(?!\d)")
        assert not any(mine.search(t) for t in later), f"pair {qid} was journaled, yet sent again"
    rows = pd.read_csv(out / "judge.csv", dtype=str, keep_default_na=False)
    assert rows["question_id"].tolist() == [str(i) for i in range(n)]
    assert (rows["judge_score_a"] == "7.0").all() and (rows["judge_error"] == "").all()
    cats = pd.read_csv(out / "categories.csv").set_index("category")
    assert cats.loc["all", "n"] == n and cats.loc["conv", "n"] == n // 2 and cats.loc["all", "relative"] == 100.0
    assert "| all | 12 | 0 | 7.00 | 7.00 | 100.0 |" in stdout
    stats = json.loads((out / "stats" / "judge" / "00000.json").read_text())
    assert stats["reused"] == len(before) and stats["processed"] == n - len(before)


# ----------------------------------------------------------------- the workflow, end to end


@pytest.mark.e2e
def test_snakemake_prompt_file_caption_judge_kill_resume(tmp_path, server):
    """Real Snakemake on a NeVA prompt file with a bad line (report mode): the tiny model answers each question
    (frames decoded once per clip), the judge (chat server) compares with reference answers; killed with
    SIGKILL mid-judge and resumed: every row once; answers JSONL and the per-category table at the end."""
    media = tmp_path / "media"
    for i in range(3):
        synth.write_video(media / f"c{i}.mp4", num_frames=8, width=64, height=48, seed=i)
    lines = [json.dumps({"video": f"c{i}.mp4", "text": f"Question {q} about clip {i}?", "category": ["conv", "detail"][q],
                         "question_id": f"{i}-{q}"}) for i in range(3) for q in range(2)]
    lines.insert(3, "{this line is broken")
    (media / "q.jsonl").write_text("\n".join(lines) + "\n")
    write_answers(pd.DataFrame({"question_id": [f"{i}-{q}" for i in range(3) for q in range(2)],
                                "text": [f"reference {i}-{q}" for i in range(3) for q in range(2)]}),
                  tmp_path / "ref.jsonl", model_id="gpt-ref")
    cfg = write_config(
        tmp_path, name="qa", manifest=str(media / "q.jsonl"), shard_size=3, prompt_file_bad_lines="report",
        report={"enabled": False},
        stages={"probe": {"enabled": False}, "motion": {"enabled": False}, "clean": {"enabled": False},
                "caption": {"enabled": True, "prompt": "question", "prompt_column": "prompt", "batch_size": 2,
                            "decode_workers": 1, "frames": {"num_frames": 2, "resize_short": 48},
                            "generation": {"max_new_tokens": 4},
                            "transformers": {"model": str(tiny_model("qwen2_5_vl"))}},
                "judge": {"enabled": True, "reference_answers": str(tmp_path / "ref.jsonl"),
                          "openai": openai_block(server, concurrency=1)}})
    run = tmp_path / "results" / "qa"
    before = kill_when_journaled(tmp_path, cfg, "judge", 2, env={"VIDCAP_FAULT_DELAY": "0.4"})
    n_before = sum(map(len, before.values()))
    assert 2 <= n_before < 6, "killed mid-judge"
    run_snakemake(tmp_path, cfg, "--unlock")
    run_snakemake(tmp_path, cfg, "--rerun-incomplete")
    after = journal_ids(run, "judge")
    for shard, ids in after.items():
        assert ids[: len(before.get(shard, []))] == before.get(shard, []), "journaled judge rows kept"
        assert len(ids) == len(set(ids)) == 3, "no pair judged twice"
    info = json.loads((run / "shards" / "manifest.json").read_text())
    assert info["rows"] == 6 and info["bad_lines"] == [{"line": 4, "reason": info["bad_lines"][0]["reason"]}]
    assert info["bad_lines"][0]["reason"].startswith("not JSON")
    decodes = [json.loads(p.read_text()).get("decodes") for p in sorted((run / "stats" / "caption").glob("*.json"))]
    assert sum(d for d in decodes if d) <= 4, "3 clips over 2 shards: at most one decode per clip and shard"
    out = pd.read_parquet(tmp_path / "results" / "qa.parquet")
    assert out["question_id"].tolist() == [f"{i}-{q}" for i in range(3) for q in range(2)]
    assert out["caption_error"].isna().all() and out["judge_error"].isna().all()
    assert (out["judge_score_a"] == 7.0).all() and (out["judge_answer_a"] == out["question_id"].map("reference {}".format)).all()
    answers = read_answers(tmp_path / "results" / "qa.answers.jsonl").table
    assert answers["question_id"].tolist() == out["question_id"].tolist()
    assert answers["text"].tolist() == out["text"].tolist() and answers["prompt"].tolist() == out["prompt"].tolist()
    assert (answers["model_id"] == str(tiny_model("qwen2_5_vl"))).all()
    cats = pd.read_csv(tmp_path / "results" / "qa.judge.csv").set_index("category")
    assert cats.loc["all", "n"] == 6 and cats.loc["conv", "n"] == 3 and cats.loc["detail", "relative"] == 100.0


def test_stage_with_a_local_chat_model(tmp_path):
    """runner transformers: a tiny random-weight chat model through text_transformers; its replies are
    random, so each row either parsed for real or carries judge_error after one stricter retry."""
    write_table(pd.DataFrame({"path": ["", ""], "ref": ["A dog runs.", "A red car."], "text": ["A cat.", "A bus."]}),
                tmp_path / "m.csv")
    make_shards(tmp_path / "m.csv", tmp_path / "shards", 10)
    stage = JudgeStage({"runner": "transformers", "answer_a_column": "ref", "batch_size": 4,
                        "generation": {"max_new_tokens": 6}, "transformers": {"model": str(tiny_model("qwen2"))}})
    out = run_stage(stage, tmp_path / "shards" / "00000.parquet", tmp_path / "o.parquet", tmp_path / "j.jsonl",
                    stats_path=tmp_path / "s.json").to_pandas()
    assert (out["judge_model"] == str(tiny_model("qwen2"))).all()
    assert (out["judge_requests"] == 2 + out["judge_strict_retries"]).all()
    for r in out.itertuples():
        if r.judge_error:
            assert pd.isna(r.judge_score_a) and "(after a stricter retry)" in r.judge_error
        else:
            assert 1 <= r.judge_score_a <= 10 and r.judge_winner in ("A", "B", "tie")
    assert json.loads((tmp_path / "s.json").read_text())["device"] == "cpu"


def test_pairs_from_a_table_two_runs_and_a_run_against_a_reference(tmp_path):
    """The other inputs of ``vidcap judge``: rows matched by question_id (else row_id), media paths made
    absolute from the run's media base, failed captions and missing rows carried as pair errors."""
    from vidcap.judge import run as judge_run

    def run(name, texts, errors, qids=True):
        root = tmp_path / "results" / name
        (root / "shards").mkdir(parents=True)
        (root / "shards" / "manifest.json").write_text(json.dumps({"media_base": "/data", "shards": []}))
        df = pd.DataFrame({"path": [f"c{i}.mp4" for i in range(len(texts))], "row_id": [f"r{i}" for i in range(len(texts))],
                           "prompt": [f"Q{i}?" for i in range(len(texts))], "text": texts, "caption_error": errors})
        if qids:
            df.insert(1, "question_id", [f"q{i}" for i in range(len(texts))])
        write_table(df, tmp_path / "results" / f"{name}.parquet")
        return root

    a = run("a", ["a0", "a1", None], [None, None, "FrameError: bad"])
    b = run("b", ["b0", None], [None, "timed out"])
    p = judge_run.pairs_from_runs(a, b)
    assert p["question_id"].tolist() == ["q0", "q1", "q2"] and p["path"].tolist()[0] == "/data/c0.mp4"
    assert p["question"].tolist() == ["Q0?", "Q1?", "Q2?"] and p["answer_b"].tolist() == ["b0", "", ""]
    assert p["error_a"].tolist() == ["", "", "run A caption failed: FrameError: bad"]
    assert p["error_b"].tolist() == ["", "run B caption failed: timed out", "no row q2 in run B"]
    by_row = judge_run.pairs_from_runs(run("c", ["c0"], [None], qids=False), run("d", ["d0"], [None], qids=False))
    assert by_row["question_id"].tolist() == ["r0"] and by_row["answer_b"].tolist() == ["d0"]
    write_answers(pd.DataFrame({"question_id": ["q0", "q2"], "text": ["ref0", "ref2"]}), tmp_path / "ref.jsonl", model_id="m")
    r = judge_run.pairs_from_run(a, tmp_path / "ref.jsonl")
    assert r["answer_a"].tolist() == ["ref0", "", "ref2"] and r["answer_b"].tolist() == ["a0", "a1", ""]
    assert r["error_a"].tolist() == ["", "no reference answer for q1", ""]
    assert r["error_b"].tolist()[2] == "caption failed: FrameError: bad"
    write_table(pd.DataFrame({"path": ["x.mp4", ""], "id": ["7", "8"], "human": ["h0", "h1"], "model": ["m0", "m1"]}),
                tmp_path / "t.csv")
    t = judge_run.pairs_from_table(tmp_path / "t.csv", "human", "model", key_column="id")
    assert t["question_id"].tolist() == ["7", "8"] and t["path"].tolist() == [str(tmp_path / "x.mp4"), ""]
    assert t["answer_a"].tolist() == ["h0", "h1"] and t["answer_b"].tolist() == ["m0", "m1"]
    with pytest.raises(TableError, match="no column 'nope'"):
        judge_run.pairs_from_table(tmp_path / "t.csv", "human", "nope")


def test_vision_judge_frames_come_from_the_row_time_range(tmp_path):
    """Rows that are clips of one file (start/end) get frames from inside their own range, one decode per
    range; a range outside the video fails its row only."""
    from vidcap.io.shards import MEDIA_PATH
    from vidcap.judge.core import JudgeItem

    path = str(synth.write_video(tmp_path / "long.mp4", num_frames=48, width=64, height=48, fps=24))
    stage = JudgeStage({"answer_a_column": "x", "attach_frames": True,
                        "frames": {"num_frames": 2, "resize_short": 32}})
    rows = [{MEDIA_PATH: path, "start": "0", "end": "1.0"}, {MEDIA_PATH: path, "start": 1.0, "end": None},
            {MEDIA_PATH: path, "start": "0", "end": "1.0"}, {MEDIA_PATH: path, "start": "9", "end": None}]
    items = [JudgeItem(key=str(i), question="q", answer_a="a", answer_b="b") for i in range(len(rows))]
    stage._attach(items, rows)
    first, second, again, outside = items
    assert all(0 <= i < 24 for i in first.frames.indices) and first.frames.indices == again.frames.indices
    assert all(24 <= i < 48 for i in second.frames.indices), second.frames.indices
    assert outside.frames is None and outside.error.startswith("frames: range starts at 9 s"), outside.error
    assert stage.stats["decodes"] == 3, "one decode per (file, range)"
