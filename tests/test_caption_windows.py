"""Windowed captions (``stages.caption.windows``): the window math, the frames of each window, timed texts,
the summary by a text model, failures that fail their row, exactly-once and resume after a kill.

Captions come from a tiny random-weight Qwen2.5-VL and the summary from a tiny Qwen2 (random text: spans,
frames, counts and provenance are asserted, not wording), or from the dev OpenAI-compatible server on
127.0.0.1, whose echo answers make exact texts and request counts checkable.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.helpers import REPO, one_shard, write_corrupt_mp4
from vidcap.caption import windows as cw
from vidcap.caption.stage import CaptionStage
from vidcap.dev import synth
from vidcap.dev.chat_server import ChatServer, _texts
from vidcap.dev.tiny import tiny_model
from vidcap.errors import ConfigError, FrameError
from vidcap.io.tables import write_table
from vidcap.media.frames import sample_frames
from vidcap.prompts import BUILTIN, prompt_hash
from vidcap.runners.hf_text import TextTransformersRunner
from vidcap.stages.base import run_stage

FPS = 8
KEY_VAR = "VIDCAP_TEST_WINDOWS_KEY"
KEY = "sk-vidcapWINDOWStest-0b1c2d3e"
FRAMES = {"num_frames": 4, "resize_short": 48}
SUMMARY_COLUMNS = list(cw.SUMMARY_COLUMNS)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, str]:
    """A 12 s clip and a 3 s clip at 8 fps, an image, a corrupt file, a 10 s clip at 1 fps."""
    root = tmp_path_factory.mktemp("winmedia")
    files = {
        "long": synth.write_video(root / "long.mp4", num_frames=12 * FPS, width=64, height=48, fps=FPS, seed=3),
        "short": synth.write_video(root / "short.mp4", num_frames=3 * FPS, width=64, height=48, fps=FPS, seed=4),
        "img": synth.write_image(root / "still.png", width=64, height=48),
        "sparse": synth.write_video(root / "sparse.mp4", num_frames=10, width=64, height=48, fps=1, seed=5),
    }
    files["corrupt"] = write_corrupt_mp4(root / "corrupt.mp4")
    return {k: str(v) for k, v in files.items()}


def _vlm_params(windows: dict, **over) -> dict:
    return {"transformers": {"model": str(tiny_model("qwen2_5_vl"))}, "prompt": "video_short", "batch_size": 3,
            "decode_workers": 0, "generation": {"max_new_tokens": 6}, "frames": FRAMES, "windows": windows,
            **over}


def _api_params(srv: ChatServer, windows: dict, **over) -> dict:
    api = {"base_url": srv.url, "api_key_env": KEY_VAR, "model": "test-vlm", "concurrency": 1, "backoff_s": 0.05,
           "timeout_s": 10, "price_per_1m_input": 1.0, "price_per_1m_output": 2.0}
    return {"runner": "openai", "openai": api, "prompt": "video_short", "decode_workers": 0, "frames": FRAMES,
            "generation": {"max_new_tokens": 40}, "windows": windows, **over}


def _summary_api(srv: ChatServer, **over) -> dict:
    return {"enabled": True, "runner": "openai", "batch_size": 1,
            "openai": {"base_url": srv.url, "api_key_env": KEY_VAR, "model": "test-summary", "backoff_s": 0.05,
                       "timeout_s": 10, "price_per_1m_input": 1.0, "price_per_1m_output": 2.0},
            "generation": {"max_new_tokens": 60}, **over}


def _spans(cell) -> list[tuple[float, float]]:
    return [(w["start"], w["end"]) for w in cell]


def _check_frames(path: str, windows, indices, times, n: int = 4):
    """Each window's frames are the ones sample_frames picks inside it; all of them in the row's columns."""
    expect = []
    for w in windows:
        got = sample_frames(path, n, "uniform", resize_short=48, unique=True, time_range=(w["start"], w["end"]))
        assert all(w["start"] * FPS <= i < w["end"] * FPS for i in got.indices), (w, got.indices)
        expect += got.indices
    assert list(indices) == expect
    assert list(times) == pytest.approx([i / FPS for i in expect])


# ------------------------------------------------------------------------------------ window math


def test_plan_windows():
    assert cw.plan_windows(0.0, 12.0, 5, 1) == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    assert cw.plan_windows(0.0, 12.0, 5, 2.5) == [(0.0, 5.0), (5.0, 12.0)], "2 s remainder < 2.5 merges"
    assert cw.plan_windows(0.0, 12.0, 5, cw.min_window(5, None)) == [(0.0, 5.0), (5.0, 12.0)]
    assert cw.plan_windows(0.0, 10.0, 5, 1) == [(0.0, 5.0), (5.0, 10.0)]
    assert cw.plan_windows(0.0, 5.0, 5, 1) == [(0.0, 5.0)], "not longer than a window: whole"
    assert cw.plan_windows(0.0, 6.0, 5, 2) == [(0.0, 6.0)], "merged into one window"
    assert cw.plan_windows(3.0, 15.5, 5, 1) == [(3.0, 8.0), (8.0, 13.0), (13.0, 15.5)]
    assert cw.plan_windows(0.0, 0.9, 0.3, 0.1) == [(0.0, 0.3), (0.3, 0.6), (0.6, 0.9)], "no float slivers"
    assert cw.timed_text([{"start": 2.0, "end": 7.0, "text": "A."}, {"start": 7.0, "end": 9.0, "text": "B."}],
                         2.0) == "[0.0-5.0 s] A. [5.0-7.0 s] B."


def test_decode_windows_frames_match_sample_frames(media):
    frames = {"policy": "uniform", "single": "middle", "resize_short": 48, "decoder": "pyav"}
    got = cw.decode_windows(media["long"], (None, None), frames, 5.0, 1.0, 4)
    assert [(w.start, w.end) for w in got] == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    for w in got:
        ref = sample_frames(media["long"], 4, "uniform", resize_short=48, unique=True, time_range=(w.start, w.end))
        assert w.frames.indices == ref.indices and np.array_equal(w.frames.frames, ref.frames)
        assert w.frames.timestamps == pytest.approx(ref.timestamps)
    inside = cw.decode_windows(media["long"], (2.0, 9.0), frames, 5.0, 1.0, 4)
    assert [(w.start, w.end) for w in inside] == [(2.0, 7.0), (7.0, 9.0)]
    assert all(2 * FPS <= i < 9 * FPS for w in inside for i in w.frames.indices)
    assert cw.decode_windows(media["short"], (None, None), frames, 5.0, 1.0, 4) is None, "short clip: whole"
    assert cw.decode_windows(media["img"], (None, None), frames, 5.0, 1.0, 4) is None, "image: whole"
    with pytest.raises(FrameError, match="holds no frame"):   # 1 fps, half-second windows
        cw.decode_windows(media["sparse"], (None, None), frames, 0.5, 0.0, 4)
    with pytest.raises(FrameError):
        cw.decode_windows(media["corrupt"], (None, None), frames, 5.0, 1.0, 4)


def test_config_checks_and_fingerprint():
    base = _vlm_params({})
    off = CaptionStage(base)
    assert "windows" not in off.params and "caption_windows" not in off.columns, "off: as before"
    on = CaptionStage(_vlm_params({"seconds": 10}))
    assert on.params["windows"]["min_seconds"] == 5.0 and "caption_windows" in on.columns
    assert not set(SUMMARY_COLUMNS) & set(on.columns)
    prints = {off.fingerprint(), on.fingerprint()}
    for change in ({"seconds": 5}, {"seconds": 10, "min_seconds": 1}, {"seconds": 10, "frames_per_window": 2},
                   {"seconds": 10, "summary": {"enabled": True}},
                   {"seconds": 10, "summary": {"enabled": True, "transformers": {"model": "other"}}},
                   {"seconds": 10, "summary": {"enabled": True, "generation": {"max_new_tokens": 9}}}):
        prints.add(CaptionStage(_vlm_params(change)).fingerprint())
    assert len(prints) == 8, "every windows setting changes the fingerprint"
    same = CaptionStage(_vlm_params({"seconds": 10, "summary": {"enabled": True, "batch_size": 64,
                                                                "transformers": {"attn_implementation": "eager"}}}))
    assert same.fingerprint() == CaptionStage(_vlm_params({"seconds": 10, "summary": {"enabled": True}})).fingerprint()
    with pytest.raises(ConfigError, match="windows.min_seconds"):
        CaptionStage(_vlm_params({"seconds": 5, "min_seconds": 6}))
    with pytest.raises(ConfigError, match="kind text"):
        CaptionStage(_vlm_params({"seconds": 5}, prompt="rewrite_structured"))
    with pytest.raises(ConfigError, match="windows.summary.prompt"):
        CaptionStage(_vlm_params({"seconds": 5, "summary": {"enabled": True, "prompt": "video_short"}}))
    with pytest.raises(ConfigError, match="windows.seconds"):
        CaptionStage(_vlm_params({"seconds": 0}))


# ------------------------------------------------------------------------------- tiny local models


def test_windowed_rows_with_tiny_vlm(tmp_path, media):
    """A 12 s clip in 5 s windows, the same clip's 2-9 s range, a short clip, an image, a corrupt file."""
    names = ["long", "short", "img", "corrupt", "long"]
    shard = one_shard(tmp_path, [media[n] for n in names], start=["", "", "", "", "2"], end=["", "", "", "", "9"])
    stage = CaptionStage(_vlm_params({"seconds": 5, "min_seconds": 1}, decode_workers=1))
    table = run_stage(stage, shard, tmp_path / "out.parquet", tmp_path / "j.jsonl")
    df = table.to_pandas()
    assert df["row_id"].tolist() == pq.read_table(shard).column("row_id").to_pylist(), "every row once, in order"
    assert table.column_names[-2:] == ["caption_windows", "caption_error"]
    long, short, img, bad, ranged = (df.iloc[i] for i in range(5))

    assert _spans(long["caption_windows"]) == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    assert long["text"] == cw.timed_text(list(long["caption_windows"]), 0.0)
    assert long["text"].startswith("[0.0-5.0 s] ") and " [5.0-10.0 s] " in long["text"]
    assert " [10.0-12.0 s]" in long["text"]
    assert all(isinstance(w["text"], str) and w["finish_reason"] in ("stop", "length") for w in long["caption_windows"])
    _check_frames(media["long"], long["caption_windows"], long["caption_frame_indices"], long["caption_frame_times"])
    assert 3 <= long["output_tokens"] <= 18 and long["prompt_tokens"] > long["output_tokens"]
    assert long["finish_reason"] == ("length" if any(w["finish_reason"] == "length" for w in long["caption_windows"])
                                     else "stop")

    assert _spans(ranged["caption_windows"]) == [(2.0, 7.0), (7.0, 9.0)], "windows inside the row's range"
    assert ranged["text"].startswith("[0.0-5.0 s] ") and " [5.0-7.0 s]" in ranged["text"], "clip-relative"
    _check_frames(media["long"], ranged["caption_windows"], ranged["caption_frame_indices"],
                  ranged["caption_frame_times"])

    assert short["caption_windows"] is None and len(short["caption_frame_indices"]) == 4
    assert not short["text"].startswith("[")
    assert img["caption_windows"] is None and list(img["caption_frame_indices"]) == [0]
    assert bad["caption_error"] and pd.isna(bad["text"]) and bad["caption_windows"] is None
    assert df.drop(index=3)["caption_error"].isna().all()
    assert stage.stats["decodes"] == 5

    write_table(table, tmp_path / "out.csv")   # list<struct> cells as JSON text in CSV
    cell = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)["caption_windows"][0]
    assert [(w["start"], w["end"]) for w in json.loads(cell)] == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]


class RecordingTextRunner(TextTransformersRunner):
    """The real text runner, keeping the requests it was given."""

    def __init__(self, settings):
        super().__init__(settings)
        self.seen = []

    def run(self, requests):
        requests = list(requests)
        self.seen += requests
        yield from super().run(requests)


def test_summary_by_tiny_text_model(tmp_path, media):
    names = ["long", "long", "short", "img"]
    shard = one_shard(tmp_path, [media[n] for n in names], start=["", "2", "", ""], end=["", "9", "", ""])
    text_model = str(tiny_model("qwen2"))
    summary = {"enabled": True, "batch_size": 2, "transformers": {"model": text_model},
               "generation": {"max_new_tokens": 5}}
    stage = CaptionStage(_vlm_params({"seconds": 5, "min_seconds": 1, "summary": summary}))
    stage.summarizer.runner = RecordingTextRunner(stage.summarizer.runner_settings())
    df = run_stage(stage, shard, tmp_path / "out.parquet", tmp_path / "j.jsonl").to_pandas()
    assert df["caption_error"].isna().all(), df["caption_error"].tolist()
    windowed, whole = df.iloc[:2], df.iloc[2:]
    assert [len(w) for w in windowed["caption_windows"]] == [3, 2]
    assert (windowed["caption_summary_model"] == text_model).all()
    assert (windowed["caption_summary_prompt"] == "window_summary").all()
    assert (windowed["caption_summary_prompt_hash"] == prompt_hash(BUILTIN["window_summary"])).all()
    assert ((windowed["caption_summary_output_tokens"] >= 1) & (windowed["caption_summary_output_tokens"] <= 5)).all()
    for _, row in windowed.iterrows():
        assert not row["text"].startswith("["), "the summary, not the timed window captions"
    seen = stage.summarizer.runner.seen
    assert len(seen) == 2, "one summary request per windowed row"
    by_row = {r.row_id: r.user for r in seen}
    for _, row in windowed.iterrows():
        origin = row["caption_windows"][0]["start"]
        assert cw.summary_input(list(row["caption_windows"]), origin) in by_row[row["row_id"]]
    assert "Video length: 12.0 s." in by_row[df["row_id"][0]] and "Video length: 7.0 s." in by_row[df["row_id"][1]]
    assert whole["caption_windows"].isna().all() and whole[SUMMARY_COLUMNS].isna().all().all()
    assert stage.stats["summary_batches"] == 1 and stage.stats["summary_output_tokens"] >= 2


# ------------------------------------------------------------------------ API runner: exact texts


def test_failed_window_or_summary_fails_its_row_api(tmp_path, media, monkeypatch):
    """Rows: the clip (its first window gets a 400), the 2-9 s range (its summary gets a 400), the clip."""
    monkeypatch.setenv(KEY_VAR, KEY)
    shard = one_shard(tmp_path, [media["long"]] * 3, start=["", "2", ""], end=["", "9", ""])
    with ChatServer(latency=0.01, api_key=KEY) as srv:
        srv.fail_first("400", 1)                       # the first request: row 0's first window
        srv.script("Video length: 7.0 s", ["400"])      # the ranged row's summary
        stage = CaptionStage(_api_params(srv, {"seconds": 5, "min_seconds": 1, "summary": _summary_api(srv)}))
        df = run_stage(stage, shard, tmp_path / "out.parquet", tmp_path / "j.jsonl").to_pandas()
        chat = srv.chat_records()
    first, ranged, ok = (df.iloc[i] for i in range(3))
    assert first["caption_error"].startswith("window 1/3 [0.0-5.0 s]: "), first["caption_error"]
    assert ranged["caption_error"].startswith("summary: "), ranged["caption_error"]
    for row in (first, ranged):   # a failed row shows nothing that could pass for a caption
        assert pd.isna(row["text"]) and row["caption_windows"] is None and pd.isna(row["caption_summary_model"])
    assert pd.isna(ok["caption_error"])
    assert len(chat) == 3 + 2 + 3 + 2, "3 + 2 + 3 windows, 2 summaries (the failed row gets none), no retries"
    windows = list(ok["caption_windows"])
    assert all(w["text"].startswith("A test caption with 4 images (detail low)") for w in windows)
    summaries = [r for r in chat if "Video length" in _texts(r["body"])]
    asked = [_texts(r["body"]) for r in summaries if cw.summary_input(windows, 0.0) in _texts(r["body"])]
    assert len(asked) == 1, "the summary was asked with the row's timed window captions"
    assert ok["text"].startswith("A test caption with 0 images") and ok["text"] != cw.timed_text(windows, 0.0)
    assert ok["caption_summary_model"] == "test-summary" and ok["caption_model"] == "test-vlm"
    assert ok["caption_tries"] == 3 and ok["caption_cost_usd"] > 0 and ok["caption_summary_cost_usd"] > 0
    _check_frames(media["long"], windows, ok["caption_frame_indices"], ok["caption_frame_times"])


def _journal_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    ids = []
    for line in path.read_text().splitlines()[1:]:
        try:
            ids.append(json.loads(line)["row_id"])
        except (json.JSONDecodeError, KeyError):
            pass
    return ids


def test_kill_then_resume_recaptions_no_finished_row(tmp_path, media, monkeypatch):
    """``vidcap caption`` killed (SIGKILL) after 2 journaled rows; the rerun sends requests only for the
    rest (3 windows + 1 summary each) and the output holds every row once."""
    monkeypatch.setenv(KEY_VAR, KEY)
    n = 5
    shard = one_shard(tmp_path, [media["long"]] * n, k=[str(i) for i in range(n)])
    journal, out = tmp_path / "j.jsonl", tmp_path / "out.parquet"
    with ChatServer(latency=0.01, api_key=KEY) as srv:
        params = _api_params(srv, {"seconds": 5, "min_seconds": 1, "summary": _summary_api(srv)})
        cmd = [sys.executable, "-m", "vidcap", "caption", "--shard", str(shard), "--out", str(out),
               "--journal", str(journal), "--params", json.dumps(params)]
        env = {**os.environ, KEY_VAR: KEY, "VIDCAP_FAULT_DELAY": "1.0", "PYTHONPATH": str(REPO)}
        with open(tmp_path / "job.log", "wb") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and len(_journal_ids(journal)) < 2:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        before = _journal_ids(journal)
        assert 2 <= len(before) < n, (tmp_path / "job.log").read_text()[-3000:]
        sent = len(srv.chat_records())

        stage = CaptionStage(params)
        df = run_stage(stage, shard, out, journal).to_pandas()
        resent = srv.chat_records()[sent:]
    after = _journal_ids(journal)
    assert after[: len(before)] == before and len(after) == len(set(after)) == n, "no row journaled twice"
    assert len(resent) == 4 * (n - len(before)), "only rows missing from the journal were captioned again"
    assert df["row_id"].tolist() == pq.read_table(shard).column("row_id").to_pylist()
    assert df["caption_error"].isna().all() and (df["caption_summary_model"] == "test-summary").all()
    assert all(_spans(w) == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)] for w in df["caption_windows"])
