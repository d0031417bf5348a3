"""Every stage that reads media honours a row's ``start`` / ``end`` in the workflow: a ranged row of a
longer file gets exactly what the same stage gives the cut-out clip (cut losslessly with PyAV, so both
decode to the same pixels). One real Snakemake run holds both rows. A stage added to the registry with
``reads_media`` must be added to ``COMPARED`` below (``test_every_media_stage_is_compared`` fails
until it is)."""
from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from tests.helpers import run_snakemake, write_config
from vidcap.dev import synth
from vidcap.dev.chat_server import ChatServer, _images
from vidcap.dev.tiny import tiny_model
from vidcap.io.tables import write_table
from vidcap.stages import REGISTRY

pytestmark = pytest.mark.e2e

KEY_VAR, KEY = "VIDCAP_RANGES_TEST_KEY", "sk-ranges-test"
# stage -> its columns that must match between the ranged row and the cut-out clip
COMPARED = {
    "probe": ["num_frames", "fps", "width", "height", "duration", "codec", "probe_error"],
    "caption": ["text", "output_tokens", "finish_reason", "caption_error"],
    "motion": ["cmotion", "motion_pan", "motion_tilt", "motion_zoom", "motion_fit", "motion_reason", "motion_error"],
    "judge": ["judge_score_a", "judge_score_b", "judge_winner", "judge_error"],
    # not motion_mv: the cut-out clip is a new encoding (x264 qp 0), its motion vectors are its encoder's
    "scores": ["motion_flow", "laplacian_var", "brightness", "dark_share", "overexposed_share", "still",
               "scores_error"],
}
# shots runs alone, as the first step (stages.shots on): it keeps or cuts a row's range into clips,
# checked by tests/test_shots_workflow.py; its clips then run through the stages compared here
NOT_COMPARED = {"shots"}
FPS, N = 24, 48   # frames 0-23 static, 24-47 a pan: the whole file and its second second differ


def media_stages() -> set[str]:
    return {s.name for s in REGISTRY if s.load().reads_media}


def test_every_media_stage_is_compared():
    assert media_stages() == set(COMPARED) | NOT_COMPARED


def _cut_lossless(src: Path, dst: Path, first: int, last: int) -> None:
    """Frames ``[first, last)`` of ``src`` re-encoded losslessly (x264 qp 0, same pixel format)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for i, frame in enumerate(inp.decode(video=0)):
            if first <= i < last:
                planes = frame.to_ndarray(format="yuv420p")   # the decoded pixels, unchanged
                copy = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                copy.pts, copy.time_base = i - first, Fraction(1, FPS)
                for packet in stream.encode(copy):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _verdict(body: dict) -> str:
    """Scores that depend on the attached frames: equal frames, equal scores."""
    digest = hashlib.sha256(json.dumps(_images(body), sort_keys=True).encode()).digest()
    return f"{1 + digest[0] % 9} {1 + digest[1] % 9}"


def test_every_media_stage_reads_only_the_rows_range(tmp_path, monkeypatch):
    media = tmp_path / "media"
    pan = synth.camera_frames(160, 120, N - FPS, pan=0.5, seed=4)
    synth.write_video(media / "long.mp4", num_frames=N, width=160, height=120, fps=FPS,
                      frames=lambda i: pan(0) if i < FPS else pan(i - FPS))
    _cut_lossless(media / "long.mp4", media / "cut.mp4", FPS, N)
    write_table(pd.DataFrame({"path": ["long.mp4", "cut.mp4"], "start": ["1.0", ""], "end": ["2.0", ""],
                              "ref": ["a reference answer", "a reference answer"]}), media / "m.csv")
    monkeypatch.setenv(KEY_VAR, KEY)
    res = {"mem_mb": 2000, "runtime": 30, "threads": 1, "gpu": 0}
    with ChatServer(api_key=KEY, reply=_verdict) as srv:
        stages = {
            "probe": {"enabled": True},
            "motion": {"enabled": True},
            "scores": {"enabled": True},
            "clean": {"enabled": False},
            "caption": {"enabled": True, "prompt": "video_short", "decode_workers": 0, "batch_size": 1,
                        "frames": {"num_frames": 4, "resize_short": 48}, "generation": {"max_new_tokens": 4},
                        "transformers": {"model": str(tiny_model("qwen2_5_vl"))}, "resources": res},
            "judge": {"enabled": True, "answer_a_column": "ref", "attach_frames": True,
                      "frames": {"num_frames": 2, "resize_short": 32},
                      "openai": {"base_url": srv.url, "api_key_env": KEY_VAR, "model": "judge-test",
                                 "timeout_s": 10, "max_tries": 2}},
        }
        cfg = write_config(tmp_path, name="r", manifest=str(media / "m.csv"), shard_size=2,
                           report={"enabled": False}, stages=stages)
        run_snakemake(tmp_path, cfg, timeout=600)
        sent = [len(_images(r["body"])) for r in srv.chat_records()]
    assert sent and all(n == 2 for n in sent), "the judge saw the frames"
    out = pd.read_parquet(tmp_path / "results" / "r.parquet")
    ranged, cut = out.iloc[0], out.iloc[1]
    assert ranged["path"].endswith("long.mp4") and ranged["num_frames"] == FPS
    assert ranged["source_num_frames"] == N, "the file's own facts stay"
    for stage, columns in COMPARED.items():
        for c in columns:
            a, b = ranged[c], cut[c]
            same = (pd.isna(a) and pd.isna(b)) or (isinstance(a, float) and np.isclose(a, b, atol=1e-9)) or a == b
            assert same, f"{stage}: {c} of the ranged row {a!r} != the cut-out clip's {b!r}"
