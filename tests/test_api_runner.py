"""The ``openai`` runner and ``vidcap.llm.client`` against real HTTP servers on 127.0.0.1.

Our fault-injecting server (``vidcap.dev.chat_server``) for 429/500/timeouts/malformed/closed/401,
limits and concurrency; a real Snakemake run with ``runner: openai`` whose every written file is
searched for the key; and, when it can run here, ``transformers serve`` as an independent server.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vidcap.dev.chat_server import ChatServer
from vidcap.errors import RunnerFatal
from vidcap.llm.client import ChatClient, ChatError, ChatJob
from vidcap.llm.retry import Pacer
from vidcap.media.frames import Frames
from vidcap.redact import scrub
from vidcap.runners.base import Generation, Request
from vidcap.runners.openai_api import OpenAIRunner

KEY_VAR = "VIDCAP_TEST_API_KEY"
KEY = "sk-vidcapFAKEkey-7f3a9c1e5b2d4086"   # distinctive: searched for in every file a run writes


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    return KEY


@pytest.fixture
def server(key_env):
    with ChatServer(latency=0.05, api_key=KEY) as srv:
        yield srv


def settings(srv, **over):
    base = {"base_url": srv.url, "api_key_env": KEY_VAR, "model": "test-model", "concurrency": 8,
            "timeout_s": 5, "backoff_s": 0.2, "max_backoff_s": 1.0, "max_tries": 4,
            "price_per_1m_input": 2.5, "price_per_1m_output": 10.0, "max_new_tokens": 50}
    return {**base, **over}


def run_all(runner, requests):
    try:
        return list(runner.run(requests))
    finally:
        runner.close()


def frames(n=3, h=720, w=1280):
    rng = np.random.default_rng(0)
    return Frames(rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8), list(range(n)), [0.0] * n, n,
                  25.0, w, h, "video")


def tries_of(srv, marker):
    return [r for r in srv.chat_records() if marker in str(r["body"])]


# ------------------------------------------------------------------------------------- faults


def test_faults_every_row_exactly_once_with_configured_retries(server):
    plan = {
        "row-429": ["429:1", "ok"],            # Retry-After honoured (1 s, above the 0.2 s backoff)
        "row-500": ["500", "503", "ok"],       # 5xx twice
        "row-slow": ["slow:3", "ok"],          # past the 1 s timeout
        "row-junk": ["malformed", "ok"],       # 200 with a body that is not JSON
        "row-close": ["close", "ok"],          # connection dropped without an answer
        "row-bad": ["400"],                    # non-retryable: fails its row only, one try
        "row-dead": ["500"] * 10,              # tries exhausted
    }
    for marker, actions in plan.items():
        server.script(marker + ";", actions)
    names = list(plan) + [f"row-fine{i}" for i in range(13)]
    reqs = [Request(n, f"Describe {n};", system="sys") for n in names]
    t0 = time.monotonic()
    out = run_all(OpenAIRunner(settings(server, timeout_s=1, max_tries=3)), reqs)
    wall = time.monotonic() - t0

    ids = [rid for rid, _ in out]
    assert sorted(ids) == sorted(names) and len(ids) == len(set(ids)), "every row exactly once"
    res = dict(out)
    expect_tries = {"row-429": 2, "row-500": 3, "row-slow": 2, "row-junk": 2, "row-close": 2}
    for name, n in expect_tries.items():
        g = res[name]
        assert isinstance(g, Generation), (name, g)
        assert g.extra["tries"] == n, (name, g.extra)
        assert len(tries_of(server, name + ";")) == n
    for i in range(13):
        assert isinstance(res[f"row-fine{i}"], Generation) and res[f"row-fine{i}"].extra["tries"] == 1
    bad = res["row-bad"]
    assert isinstance(bad, ChatError) and "HTTP 400" in str(bad) and bad.tries == 1
    assert len(tries_of(server, "row-bad;")) == 1
    dead = res["row-dead"]
    assert isinstance(dead, ChatError) and "gave up after 3 tries" in str(dead) and "HTTP 500" in str(dead)
    assert len(tries_of(server, "row-dead;")) == 3

    # Retry-After: 1 s between the 429 and the next try (not the 0.1-0.2 s computed backoff)
    t429 = [r["t"] for r in tries_of(server, "row-429;")]
    assert 0.95 <= t429[1] - t429[0] <= 2.0, t429
    # timeout: the slow try was abandoned after ~1 s, then retried after a 0.1-0.2 s backoff
    slow = tries_of(server, "row-slow;")
    assert 1.0 <= slow[1]["t"] - slow[0]["t"] <= 2.0
    assert wall < 8, wall
    # usage and cost from the server's usage block and the configured prices
    g = res["row-fine0"]
    assert g.prompt_tokens > 0 and g.output_tokens > 0 and g.finish_reason == "stop"
    assert g.extra["cost_usd"] == pytest.approx((g.prompt_tokens * 2.5 + g.output_tokens * 10.0) / 1e6)


def test_backoff_doubles_with_jitter_and_cap(server):
    server.script("row-x;", ["500", "500", "500", "500", "ok"])
    out = run_all(OpenAIRunner(settings(server, backoff_s=0.4, max_backoff_s=1.0, max_tries=5)),
                  [Request("x", "row-x;")])
    assert out[0][1].extra["tries"] == 5
    t = [r["t"] for r in tries_of(server, "row-x;")]
    gaps = np.diff(t)
    # equal jitter: wait in [cap/2, cap], cap = min(max_backoff, backoff * 2**(k-1)) = 0.4, 0.8, 1.0, 1.0
    for gap, cap in zip(gaps, [0.4, 0.8, 1.0, 1.0]):
        assert cap / 2 - 0.02 <= gap <= cap + 0.25, (gaps, cap)


def test_429_without_retry_after_uses_backoff_and_pauses_everyone(server):
    server.script("row-a;", ["429", "ok"])
    out = run_all(OpenAIRunner(settings(server, backoff_s=0.6, concurrency=1)),
                  [Request("a", "row-a;"), Request("b", "row-b;")])
    assert {rid for rid, _ in out} == {"a", "b"}
    ta = [r["t"] for r in tries_of(server, "row-a;")]
    tb = [r["t"] for r in tries_of(server, "row-b;")]
    assert 0.28 <= ta[1] - ta[0] <= 0.9
    assert tb[0] - ta[0] >= 0.28, "a 429 pauses the other requests of the client too"


def test_401_stops_the_job_at_once_with_a_clear_message(key_env):
    with ChatServer(latency=0.05, api_key="sk-the-server-wants-another-key") as srv:
        runner = OpenAIRunner(settings(srv, concurrency=4))
        with pytest.raises(RunnerFatal) as err:
            run_all(runner, [Request(f"r{i}", f"row {i}") for i in range(200)])
        msg = str(err.value)
        assert "authentication failed (HTTP 401)" in msg and KEY_VAR in msg
        assert KEY not in msg
        assert len(srv.chat_records()) <= 8, "stopped at once instead of failing every row"


def test_missing_key_variable_is_fatal_and_names_the_variable(monkeypatch):
    monkeypatch.delenv("VIDCAP_NO_SUCH_KEY", raising=False)
    with pytest.raises(RunnerFatal, match="environment variable VIDCAP_NO_SUCH_KEY is not set"):
        OpenAIRunner({"api_key_env": "VIDCAP_NO_SUCH_KEY"}).load()


def test_key_is_scrubbed_from_errors_and_logs(server, caplog):
    server.script("row-echo;", ["echo"])
    caplog.set_level(logging.DEBUG)
    out = run_all(OpenAIRunner(settings(server)), [Request("e", "row-echo;")])
    err = out[0][1]
    assert isinstance(err, ChatError) and "HTTP 400" in str(err)
    assert KEY not in str(err) and "[REDACTED]" in str(err)
    assert KEY not in caplog.text
    assert server.chat_records()[0]["auth"] == f"Bearer {KEY}", "the key did go in the header"
    assert scrub(f"x {KEY} y") == "x [REDACTED] y"


# -------------------------------------------------------------------------- concurrency, limits


def test_concurrency_reached_and_never_exceeded(key_env):
    with ChatServer(latency=0.5, api_key=KEY) as srv:
        t0 = time.monotonic()
        out = run_all(OpenAIRunner(settings(srv, concurrency=16)), [Request(f"r{i}", f"row {i}") for i in range(64)])
        wall = time.monotonic() - t0
    assert len(out) == 64 and all(isinstance(g, Generation) for _, g in out)
    assert srv.max_in_flight == 16
    assert wall < 0.5 * 64 / 16 + 2.0, wall   # 4 waves of 0.5 s, not 32 s serially


def _max_in_window(times, window):
    times = sorted(times)
    j, best = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_requests_per_minute_respected(server):
    out = run_all(OpenAIRunner(settings(server, concurrency=32, requests_per_minute=600)),
                  [Request(f"r{i}", f"row {i}") for i in range(25)])
    assert len(out) == 25
    t = [r["t"] for r in server.chat_records()]
    # arrival times carry the machine's scheduling jitter (a loaded 2-core CI box delays some sends and
    # not others), so allow a few tenths of a second; unpaced, all 25 arrive within about 0.1 s
    assert max(t) - min(t) >= 24 * 0.1 - 0.4, "10 requests a second, paced"
    assert _max_in_window(t, 1.0) <= 10 + 3


def test_tokens_per_minute_respected(server):
    # each request: ~30 prompt tokens estimated + 20 max output tokens reserved; TPM 6000 = 100/s
    reqs = [Request(f"r{i}", f"row {i} " + "x" * 100) for i in range(10)]
    out = run_all(OpenAIRunner(settings(server, concurrency=32, tokens_per_minute=6000, max_new_tokens=20)), reqs)
    assert len(out) == 10
    recs = sorted(server.chat_records(), key=lambda r: r["t"])
    used = [g.prompt_tokens + g.output_tokens for _, g in out]
    span = recs[-1]["t"] - recs[0]["t"]
    # 10 requests of ~45-50 tokens at 100 tokens/s: about 4 s (unpaced: all at once)
    assert span >= (sum(used) - max(used) * 2) / 100.0 - 0.5, (span, used)
    for w in (2.0, 4.0):
        starts = [r["t"] for r in recs]
        assert _max_in_window(starts, w) * min(used) <= 100 * w + 2 * max(used)


def test_pacer_semantics():
    p = Pacer(60)  # one a second
    assert p.reserve(1, 100.0) == 0.0
    assert p.reserve(1, 100.0) == pytest.approx(1.0)
    assert p.reserve(1, 100.5) == pytest.approx(1.5)
    p.adjust(-1, 100.5)   # a reservation given back
    assert p.reserve(1, 100.5) == pytest.approx(1.5)


# ---------------------------------------------------------------------------------- requests


def test_frames_become_capped_jpeg_data_urls_and_prompt_placement(server):
    from PIL import Image

    runner = OpenAIRunner(settings(server, detail="high", max_image_side=256, prompt_role="system"))
    out = run_all(runner, [Request("v", "Describe the video.", system="You caption.", frames=frames())])
    body = server.chat_records()[0]["body"]
    assert body["messages"][0] == {"role": "system", "content": "You caption.\n\nDescribe the video."}
    parts = body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 3
    for p in parts:
        url = p["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,") and p["image_url"]["detail"] == "high"
        img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert img.format == "JPEG" and max(img.size) == 256 and img.size == (256, 144)
    assert body["max_tokens"] == 50 and body["temperature"] == 0.0
    assert isinstance(out[0][1], Generation)

    server.reset()
    runner = OpenAIRunner(settings(server, prompt_role="user", top_p=0.9, seed=7, top_k=5))
    run_all(runner, [Request("v", "Describe the video.", frames=frames(1, 100, 80))])
    body = server.chat_records()[0]["body"]
    assert body["messages"][0]["role"] == "user"
    assert body["messages"][0]["content"][0] == {"type": "text", "text": "Describe the video."}
    assert body["top_p"] == 0.9 and body["seed"] == 7 and body["top_k"] == 5  # self-hosted: extras sent


def test_text_only_rewrite_request_and_length_finish(server):
    from vidcap.prompts import get_prompt

    system, user = get_prompt("rewrite_structured").render("A dog runs on a beach at sunset.")
    out = run_all(OpenAIRunner(settings(server, max_new_tokens=4)), [Request("t", user, system=system)])
    body = server.chat_records()[0]["body"]
    assert body["messages"] == [{"role": "system", "content": system}, {"role": "user", "content": user}]
    g = out[0][1]
    assert g.finish_reason == "length" and g.output_tokens == 4 and len(g.text.split()) == 4


def test_chat_client_is_reusable_without_runner(server):
    with ChatClient(settings(server)) as client:
        res = client.complete([{"role": "user", "content": "tags for: a dog"}], max_tokens=30)
        assert res.text and res.tries == 1 and res.completion_tokens > 0
        got = dict(client.map(ChatJob(i, [{"role": "user", "content": f"q{i}"}]) for i in range(5)))
        assert sorted(got) == list(range(5))
        assert client.stats.items_ok == 6


def test_busy_time_is_time_with_a_request_in_flight_not_a_sum(key_env):
    """4 requests of 0.3 s at once are 0.3 s busy (not 1.2); idle time between maps never counts.
    Bounds are the walls measured around each map, so a loaded machine (slower waves) keeps them."""
    with ChatServer(latency=0.3, api_key=KEY) as srv, ChatClient(settings(srv, concurrency=4)) as client:
        assert client.busy_seconds() == 0.0
        t0 = time.monotonic()
        assert len(list(client.map(ChatJob(i, [{"role": "user", "content": f"a{i}"}]) for i in range(4)))) == 4
        wall_one = time.monotonic() - t0
        one_wave = client.busy_seconds()
        time.sleep(0.5)
        assert client.busy_seconds() == one_wave, "nothing in flight: busy time stands still"
        assert len(list(client.map(ChatJob(i, [{"role": "user", "content": f"b{i}"}]) for i in range(8)))) == 8
        wall = time.monotonic() - t0
        busy = client.busy_seconds()
    assert srv.max_in_flight == 4
    # a sum per request would be >= 4 x 0.3 s for the first wave, more than its wall when they overlap
    first = sorted(srv.chat_records(), key=lambda r: r["t"])[:4]
    summed = sum(r["t_end"] - r["t"] for r in first)
    assert 0.3 <= one_wave <= wall_one + 0.05, (one_wave, wall_one)
    assert one_wave < summed or summed <= wall_one, (one_wave, summed)
    assert 0.9 <= busy <= wall - 0.5 + 0.05, (busy, wall)     # the 0.5 s pause is not busy time


# ------------------------------------------------------------------- real workflow: key nowhere


@pytest.mark.e2e
def test_snakemake_run_with_openai_runner_key_in_no_file(tmp_path, key_env):
    from tests.helpers import read_result, run_snakemake, write_config
    from vidcap.dev import synth
    from vidcap.io.tables import write_table

    media = tmp_path / "media"
    media.mkdir()
    paths = [str(synth.write_video(media / f"c{i}.mp4", num_frames=12, width=96, height=64).name)
             for i in range(5)]
    paths.append("missing.mp4")
    write_table(pd.DataFrame({"path": paths}), media / "manifest.csv")
    with ChatServer(latency=0.1, api_key=KEY) as srv:
        srv.script("row-never", [])
        srv.fail_first("500", 2)
        cfg = write_config(tmp_path, name="api", manifest=str(media / "manifest.csv"), shard_size=3,
                           stages={"probe": {"enabled": True}, "motion": {"enabled": False},
                                   "caption": {"enabled": True, "runner": "openai", "decode_workers": 0,
                                               "frames": {"num_frames": 3},
                                               "openai": {"base_url": srv.url, "api_key_env": KEY_VAR,
                                                          "model": "test-model", "backoff_s": 0.1,
                                                          "price_per_1m_input": 2.5,
                                                          "price_per_1m_output": 10.0}}})
        run_snakemake(tmp_path, cfg, env={KEY_VAR: KEY})
        chat = srv.chat_records()
    out = read_result(tmp_path / "results" / "api.csv")
    assert out["path"].tolist() == paths
    ok = out[out["caption_error"] == ""]
    assert len(ok) == 5 and (ok["text"].str.len() > 0).all()
    assert "missing" in out[out["caption_error"] != ""]["path"].iloc[0]
    assert len(chat) == 5 + 2 and all(r["auth"] == f"Bearer {KEY}" for r in chat)
    assert sorted(ok["caption_tries"].astype(int)) == [1, 1, 1, 2, 2]
    assert (ok["caption_cost_usd"].astype(float) > 0).all()
    # the key: in no file the run wrote (outputs, journals, logs, benchmarks, Snakemake's own logs)
    offenders = [p for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert offenders == []
    cost = subprocess.run([sys.executable, "-m", "vidcap", "cost", "--json", str(tmp_path / "results" / "api")],
                          capture_output=True, text=True, check=True, env={**os.environ, KEY_VAR: ""})
    summary = json.loads(cost.stdout)
    assert [s["rows"] for s in summary["shards"]] == [3, 3]
    total = summary["total"]
    assert total["rows_done"] == 6 and total["failed"] == 1 and total["retries"] == 2
    assert total["cost_usd"] == pytest.approx(ok["caption_cost_usd"].astype(float).sum())
    assert total["prompt_tokens"] == ok["prompt_tokens"].astype(int).sum()

    # dry estimate: 3 sampled rows captioned for real, projected to the manifest's 6 rows
    with ChatServer(latency=0.2, api_key=KEY) as srv2:
        cfg2 = tmp_path / "est.yaml"
        text = cfg.read_text().replace(srv.url, srv2.url)
        cfg2.write_text(text)
        est = subprocess.run([sys.executable, "-m", "vidcap", "estimate", "--configfile", str(cfg2), "--sample", "3",
                              "--json"], capture_output=True, text=True, env={**os.environ, KEY_VAR: KEY})
        assert est.returncode == 0, est.stderr[-2000:]
        assert len(srv2.chat_records()) <= 3
    e = json.loads(est.stdout)
    assert e["sample_rows"] == 3 and e["manifest_rows"] == 6
    assert e["latency_s_mean"] >= 0.2 and e["bound_by"] == "concurrency"
    assert e["projected_cost_usd"] > 0 and e["projected_hours"] > 0
    assert KEY not in est.stdout + est.stderr


# ------------------------------------------------------------ an independent server from PyPI


@pytest.fixture
def transformers_server(tmp_path):
    """``transformers serve`` (FastAPI/uvicorn, PyPI) on 127.0.0.1 serving a tiny random Qwen2-VL."""
    import socket
    import urllib.request

    from vidcap.dev.tiny import build_tiny_model

    model = build_tiny_model("qwen2_vl", tmp_path / "qwen2_vl")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = Path(sys.executable).parent / "transformers"
    assert cli.exists(), f"{cli} missing: the test extras install transformers' serving deps (fastapi, uvicorn)"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TRANSFORMERS_VERBOSITY": "error"}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([str(cli), "serve", str(model), "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("transformers serve did not start:\n"
                                         + (tmp_path / "serve.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", str(model)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_runner_against_transformers_serve(transformers_server, key_env):
    url, model = transformers_server
    reqs = [Request("text", "Rewrite this caption: a dog runs on a beach.", system="Be brief."),
            Request("one", "Describe this image.", frames=frames(1, 64, 96)),
            Request("three", "Describe this video.", system="You caption videos.", frames=frames(3, 64, 96))]
    for role in ("system", "user"):
        runner = OpenAIRunner({"base_url": url, "api_key_env": KEY_VAR, "model": model, "max_new_tokens": 6,
                               "concurrency": 2, "timeout_s": 60, "max_tries": 2, "prompt_role": role,
                               "max_image_side": 64})
        out = dict(run_all(runner, reqs))
        assert sorted(out) == ["one", "text", "three"]
        for g in out.values():
            assert isinstance(g, Generation), g
            assert g.finish_reason in ("stop", "length") and g.extra["tries"] == 1
            assert 1 <= g.output_tokens <= 6 and g.prompt_tokens > 0
        # the server's own token counts show the images went through its processor
        assert out["three"].prompt_tokens > out["one"].prompt_tokens


@pytest.mark.e2e
def test_killed_api_job_loses_nothing_already_paid_for(tmp_path, key_env):
    """kill -9 mid-shard, resume: rows answered (paid) before the kill are never requested again."""
    import signal

    from tests.helpers import run_snakemake, snakemake_cmd, write_config
    from vidcap.dev import synth
    from vidcap.io.tables import write_table

    media = tmp_path / "media"
    n = 16
    for i in range(n):
        synth.write_video(media / f"c{i:02d}.mp4", num_frames=6, width=64, height=48, seed=i)
    write_table(pd.DataFrame({"path": [f"c{i:02d}.mp4" for i in range(n)]}), media / "m.csv")
    journal = tmp_path / "results" / "k" / "journal" / "caption" / "00000.jsonl"

    def journaled():
        if not journal.exists():
            return []
        return [json.loads(ln)["row_id"] for ln in journal.read_text().splitlines()[1:] if ln.endswith("}")]

    with ChatServer(latency=0.4, api_key=KEY) as srv:
        cfg = write_config(tmp_path, name="k", manifest=str(media / "m.csv"), shard_size=n,
                           stages={"motion": {"enabled": False},
                                   "caption": {"enabled": True, "runner": "openai", "decode_workers": 0,
                                               "frames": {"num_frames": 1},
                                               "openai": {"base_url": srv.url, "api_key_env": KEY_VAR,
                                                          "model": "m", "concurrency": 2}}})
        proc = subprocess.Popen(snakemake_cmd(tmp_path, cfg), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.time() + 90
        while len(journaled()) < 5 and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        paid = set(journaled())
        assert 5 <= len(paid) < n
        image = lambda r: r["body"]["messages"][-1]["content"][0]["image_url"]["url"]  # noqa: E731
        before = [image(r) for r in srv.chat_records()]
        run_snakemake(tmp_path, cfg, "--unlock")
        run_snakemake(tmp_path, cfg, "--rerun-incomplete")
        after = [image(r) for r in srv.chat_records()][len(before):]
    ids = journaled()
    assert sorted(ids) == sorted(set(ids)) and len(ids) == n, "every row once in the journal"
    # distinct clips -> distinct images. Requests sent before the kill = rows paid for (journaled) +
    # those in flight, never answered to us (at most concurrency=2). After the resume, only those in
    # flight may be sent again: a paid row never is.
    assert len(before) == len(set(before)) and len(set(after)) == len(after)
    in_flight = len(before) - len(paid)
    assert 0 <= in_flight <= 2
    assert len(set(after) & set(before)) == in_flight, "only unanswered requests are sent again"
    assert len(after) == n - len(paid)
