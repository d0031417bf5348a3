"""The caption stage's feed (``vidcap.caption.feed``): frames decoded and wire-encoded in worker processes,
real HTTP servers on 127.0.0.1 (``vidcap.dev.chat_server``), the job's stats; engine replicas
(``vidcap.runners.replicas``) and the engine's host-work knobs on the command line."""
from __future__ import annotations

import base64
import io
import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.helpers import one_shard
from vidcap.caption.feed import auto_workers
from vidcap.caption.stage import CaptionStage
from vidcap.dev import synth
from vidcap.dev.chat_server import ChatServer
from vidcap.llm.client import ChatClient, ChatFatal, ChatJob
from vidcap.llm.engine import server_command
from vidcap.media.frames import sample_frames
from vidcap.media.images import Wire, WireFrames, encode_frames
from vidcap.runners.base import Request
from vidcap.runners.engine import VLLMRunner
from vidcap.runners.replicas import split_gpus, spread
from vidcap.stages.base import run_stage

KEY_VAR = "VIDCAP_TEST_FEED_KEY"


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("feed-media")
    out = {f"v{i}": str(synth.write_video(root / f"v{i}.mp4", num_frames=30 + 7 * i, width=160, height=96, seed=i))
           for i in range(4)}
    bad = root / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(600))
    out["corrupt"] = str(bad)
    out["missing"] = str(root / "gone.mp4")
    return out


def _images(record: dict) -> list[str]:
    return [p["image_url"]["url"] for m in record["body"]["messages"] if isinstance(m["content"], list)
            for p in m["content"] if p.get("type") == "image_url"]


def _caption(tmp_path, media, workers: int, tag: str):
    """The openai runner through the caption stage, ``feed_workers`` = ``workers``: (rows, stats, records)."""
    names = ["v0", "v1", "corrupt", "v2", "missing", "v3", "v0"]
    shard = one_shard(tmp_path / tag, [media[n] for n in names], name=names)
    with ChatServer() as srv:
        os.environ[KEY_VAR] = ""
        stage = CaptionStage({"runner": "openai", "feed_workers": workers, "prefetch": 2,
                              "frames": {"num_frames": 4, "resize_short": 64},
                              "openai": {"base_url": srv.url, "api_key_env": KEY_VAR, "model": "m",
                                         "max_image_side": 48, "jpeg_quality": 90, "concurrency": 3}})
        stats = tmp_path / tag / "stats.json"
        table = run_stage(stage, shard, tmp_path / tag / "out.parquet", tmp_path / tag / "j.jsonl",
                          stats_path=stats)
        records = srv.complete_records()
    names_by_id = pd.read_parquet(shard).set_index("row_id")["name"]
    df = table.to_pandas()
    df["name"] = df["row_id"].map(names_by_id)
    return df, json.loads(stats.read_text()), records


def test_feed_workers_encode_ahead_every_row_once_errors_per_row_same_bytes(tmp_path, media):
    rows, stats, records = _caption(tmp_path, media, 2, "workers")
    inline_rows, inline_stats, inline_records = _caption(tmp_path, media, 0, "inline")
    for df in (rows, inline_rows):
        assert len(df) == 7 and df["row_id"].is_unique, "every row exactly once"
        err = df.set_index("name")["caption_error"]
        assert err[["corrupt", "missing"]].notna().all() and err.drop(["corrupt", "missing"]).isna().all()
    # the workers encoded what the runner itself would have: the same JPEG bytes reach the server, per clip
    sent = sorted(tuple(_images(r)) for r in records)
    sent_inline = sorted(tuple(_images(r)) for r in inline_records)
    assert len(sent) == 5 and sent == sent_inline
    first = Image.open(io.BytesIO(base64.b64decode(sent[0][0].split(",", 1)[1])))
    assert first.format == "JPEG" and max(first.size) == 48
    # where the time went, in the job's stats file (the old stage wrote none of these)
    assert stats["feed_workers"] == 2 and inline_stats["feed_workers"] == 0
    assert stats["wire"] == {"fmt": "jpeg", "quality": 90, "max_side": 48, "full_chroma": False}
    for s in (stats, inline_stats):
        assert s["decode_s"] > 0 and s["encode_s"] > 0 and s["resize_s"] > 0, s
        assert s["response_s"] > 0 and s["request_s"] >= 0 and s["main_cpu_s"] > 0, s


def test_the_vllm_path_sends_jpeg_frames_by_default_and_uses_what_the_workers_encoded(media):
    runner = VLLMRunner({"model": "m", "num_frames": 4})
    runner.video = True
    assert runner.wire() == Wire("jpeg", 95, None, full_chroma=True)
    fr = sample_frames(media["v1"], num_frames=4, resize_short=64, unique=True)
    ahead = encode_frames(fr, runner.wire())
    assert isinstance(ahead, WireFrames) and ahead.frames.shape == (4, 0, 0, 3), "no pixels travel with them"
    msgs_ahead, _ = runner.messages(Request("r", "say", frames=ahead))
    msgs_here, _ = runner.messages(Request("r", "say", frames=fr))
    assert msgs_ahead == msgs_here
    url = msgs_here[-1]["content"][0]["video_url"]["url"]
    frames = url.split(",", 1)[1].split(",")
    assert url.startswith("data:video/jpeg;base64,") and len(frames) == 4
    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(frames[0]))).convert("RGB"), dtype=np.float64)
    psnr = 10 * np.log10(255 ** 2 / np.mean((back - fr.frames[0]) ** 2))
    assert psnr > 35, psnr
    assert runner.video_metadata(Request("r", "say", frames=ahead))["num_frames"] == 4
    png = VLLMRunner({"model": "m", "frame_format": "png"})
    png.video = True
    first = png.messages(Request("r", "say", frames=fr))[0][-1]["content"][0]["video_url"]["url"]
    assert base64.b64decode(first.split(",", 1)[1].split(",")[0]).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="encoded as"):   # pixels encoded for another wire are gone
        png.messages(Request("r", "say", frames=ahead))


def test_feed_workers_auto_is_the_jobs_cpus_less_one():
    assert auto_workers() == max(1, len(os.sched_getaffinity(0)) - 1)
    assert CaptionStage({"runner": "openai"}).feed.workers == auto_workers()
    assert CaptionStage({"runner": "transformers", "decode_workers": 3}).feed.workers == 3


def test_replicas_take_every_request_exactly_once_spread_over_servers(monkeypatch):
    monkeypatch.setenv(KEY_VAR, "")
    with ChatServer(latency=0.02) as a, ChatServer(latency=0.02) as b:
        clients = [ChatClient({"base_url": s.url, "api_key_env": KEY_VAR, "model": "m", "concurrency": 4})
                   for s in (a, b)]
        try:
            jobs = [ChatJob(f"k{i}", [{"role": "user", "content": f"row {i}"}]) for i in range(40)]
            got = [k for k, res in spread(clients, iter(jobs)) if not isinstance(res, BaseException)]
        finally:
            for c in clients:
                c.close()
        assert sorted(got) == sorted(j.key for j in jobs)
        assert len(a.complete_records()) + len(b.complete_records()) == 40
        assert min(len(a.complete_records()), len(b.complete_records())) >= 5, "both replicas served"


def test_a_replica_refusing_the_key_stops_the_run(monkeypatch):
    monkeypatch.setenv(KEY_VAR, "sk-wrong")
    with ChatServer() as a, ChatServer(api_key="sk-other") as b:
        clients = [ChatClient({"base_url": s.url, "api_key_env": KEY_VAR, "model": "m", "concurrency": 2,
                               "max_tries": 1}) for s in (a, b)]
        try:
            with pytest.raises(ChatFatal):
                list(spread(clients, iter([ChatJob(i, [{"role": "user", "content": "x"}]) for i in range(20)])))
        finally:
            for c in clients:
                c.close()


def test_gpus_are_shared_out_between_replicas():
    assert split_gpus(["0", "1", "2", "3"], 2, None) == [["0", "1"], ["2", "3"]]
    assert split_gpus(["0", "1"], 2, None) == [["0"], ["1"]]
    assert split_gpus([], 3, None) == [[], [], []]
    assert split_gpus(["0"], 2, 0.45) == [["0"], ["0"]]
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        split_gpus(["0"], 2, None)
    with pytest.raises(ValueError, match="does not divide"):
        split_gpus(["0", "1", "2"], 2, None)


def test_engine_host_work_knobs_reach_the_vllm_command_line():
    cmd = server_command("vllm", {"model": "/m", "api_server_count": 4, "mm_processor_cache_gb": 0}, "/py", 8000, 1)
    assert cmd[:2] == ["/py", "-c"] and "ServeSubcommand" in cmd[2] and cmd[3:5] == ["serve", "/m"]
    assert cmd[cmd.index("--api-server-count") + 1] == "4"
    assert cmd[cmd.index("--mm-processor-cache-gb") + 1] == "0"
    plain = server_command("vllm", {"model": "/m"}, "/py", 8000, 1)
    assert plain[2:5] == ["vllm.entrypoints.openai.api_server", "--model", "/m"]
    assert "--api-server-count" not in plain and "--mm-processor-cache-gb" not in plain
