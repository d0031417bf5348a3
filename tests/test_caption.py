"""Caption stage with tiny random-weight models of every family, loaded through the real from_pretrained.

Random weights write random text: the tests assert rows, columns, counts and provenance, not wording.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.helpers import (
    REPO,
    journal_ids,
    kill_when_journaled,
    one_shard,
    run_snakemake,
    small_clip_manifest,
    write_config,
    write_corrupt_mp4,
)
from vidcap.caption.stage import CaptionStage
from vidcap.dev import synth
from vidcap.dev.tiny import CURRENT_FAMILIES, FAMILIES, tiny_model
from vidcap.errors import RunnerFatal
from vidcap.prompts import Prompt, prompt_hash
from vidcap.stages.base import run_stage
from vidcap.text import clean_caption

COLUMNS = ["text", "finish_reason", "output_tokens", "prompt_tokens", "caption_model", "caption_revision",
           "caption_prompt", "caption_prompt_hash", "caption_frame_indices", "caption_frame_times",
           "caption_tries", "caption_cost_usd", "caption_error"]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, str]:
    """Videos of different sizes and lengths, an image and a corrupt file."""
    root = tmp_path_factory.mktemp("capmedia")
    files = {
        "v0": synth.write_video(root / "v0.mp4", num_frames=16, width=96, height=64, seed=0),
        "v1": synth.write_video(root / "v1.mp4", num_frames=24, width=96, height=64, seed=1),
        "v2": synth.write_video(root / "v2.webm", num_frames=20, width=64, height=96, codec="vp9", seed=2),
        "img": synth.write_image(root / "still.png", width=80, height=60),
    }
    files["corrupt"] = write_corrupt_mp4(root / "corrupt.mp4")
    return {k: str(v) for k, v in files.items()}


def _run(tmp_path: Path, stage: CaptionStage, shard: Path) -> pd.DataFrame:
    table = run_stage(stage, shard, tmp_path / "out.parquet", tmp_path / "j.jsonl")
    assert table.column_names == ["row_id"] + COLUMNS
    return table.to_pandas()


def _stage(model: Path, **kw) -> CaptionStage:
    params = {"transformers": {"model": str(model)}, "batch_size": 3, "decode_workers": 0,
              "generation": {"max_new_tokens": 6}, "frames": {"num_frames": 4, "resize_short": 64}}
    for k, v in kw.items():
        params[k] = {**params[k], **v} if isinstance(v, dict) and k in params else v
    return CaptionStage(params)


@pytest.mark.parametrize("family", FAMILIES + CURRENT_FAMILIES)
def test_family_mixed_batch_with_corrupt_file(tmp_path, media, family):
    names = ["v0", "img", "corrupt", "v1", "v2", "v0"]
    shard = one_shard(tmp_path, [media[n] for n in names], name=names)
    model = tiny_model(family)
    workers = 1 if family == "qwen2_5_vl" else 0  # background decoding once, inline for the others
    df = _run(tmp_path, _stage(model, decode_workers=workers), shard)
    ids = pq.read_table(shard).column("row_id").to_pylist()
    assert df["row_id"].tolist() == ids, "one row per shard row, in shard order"
    bad = df[[n == "corrupt" for n in names]]
    good = df[[n != "corrupt" for n in names]]
    assert bad["caption_error"].notna().all() and bad["text"].isna().all() and bad["output_tokens"].isna().all()
    assert good["caption_error"].isna().all(), good["caption_error"].tolist()
    assert good["text"].map(lambda t: isinstance(t, str)).all()
    assert (good["output_tokens"] >= 1).all() and (good["output_tokens"] <= 6).all()
    assert (good["prompt_tokens"] > good["output_tokens"]).all()
    assert set(good["finish_reason"]) <= {"stop", "length"}
    assert (good.loc[good["finish_reason"] == "length", "output_tokens"] == 6).all()
    assert (good["caption_model"] == str(model)).all()
    assert (good["caption_prompt"] == "video_detailed").all()
    assert good["caption_prompt_hash"].nunique() == 1 and good["caption_tries"].isna().all()
    for name, idx, times in zip(names, df["caption_frame_indices"], df["caption_frame_times"]):
        if name == "corrupt":
            assert idx is None
        elif name == "img":
            assert list(idx) == [0] and list(times) == [0.0]
        else:
            assert len(idx) == 4 and len(times) == 4 and list(idx) == sorted(idx)


def test_injected_oom_splits_batch_and_loses_no_row(tmp_path, media, monkeypatch, caplog):
    names = ["v0", "v1", "v0", "v1"]
    shard = one_shard(tmp_path, [media[n] for n in names])
    monkeypatch.setenv("VIDCAP_FAULT_OOM", "1")
    with caplog.at_level(logging.WARNING, logger="vidcap.runners.hf"):
        df = _run(tmp_path, _stage(tiny_model("qwen2_vl"), batch_size=4), shard)
    assert df["caption_error"].isna().all() and df["text"].notna().all()
    assert "out of memory on a batch of 4 rows: splitting into 2 + 2" in caplog.text


def test_context_check_fails_clearly_then_reduce_fits(tmp_path, media):
    model = tiny_model("qwen2_5_vl", max_position_embeddings=128)
    shard = one_shard(tmp_path, [media["v1"], media["v0"]])
    big = {"frames": {"num_frames": 16}, "generation": {"max_new_tokens": 64}, "prompt": "video_short"}
    with pytest.raises(RunnerFatal) as err:
        run_stage(_stage(model, **big), shard, tmp_path / "out.parquet", tmp_path / "j.jsonl")
    msg = str(err.value)
    assert "16 frames" in msg and "max_position_embeddings 128" in msg and "fit_context: reduce" in msg
    assert not (tmp_path / "out.parquet").exists()

    stage = _stage(model, transformers={"fit_context": "reduce"}, **big)
    df = _run(tmp_path, stage, shard)
    assert df["caption_error"].isna().all()
    assert stage.frames["num_frames"] < 16
    assert all(len(i) == stage.frames["num_frames"] for i in df["caption_frame_indices"])
    report = stage.runner.fit_report
    assert report["needed"] <= 128 < report["reduced_from"]["needed"]


def test_text_prompt_rewrites_existing_caption_without_frames(tmp_path, media):
    texts = ["The video shows a dog on a beach.", "", "A red car drives\nat night."]
    shard = one_shard(tmp_path, [media["v0"], media["v1"], media["corrupt"]], text=texts)
    stage = _stage(tiny_model("llava_onevision"), prompt="rewrite_structured", decode_workers=2)
    df = _run(tmp_path, stage, shard)
    assert df["caption_error"].isna().tolist() == [True, False, True], "empty hint fails; corrupt file unread"
    assert "text column" in df["caption_error"][1]
    ok = df[df["caption_error"].isna()]
    assert ok["caption_frame_indices"].isna().all() and ok["caption_frame_times"].isna().all()
    assert (ok["caption_prompt"] == "rewrite_structured").all() and (ok["output_tokens"] >= 1).all()
    assert stage.params["frames"] is None, "frame settings do not change a text prompt's results"


def test_params_fingerprint_only_result_changing_settings(tmp_path):
    base = {"transformers": {"model": "m"}}
    a = CaptionStage(base)
    same = CaptionStage({**base, "batch_size": 64, "decode_workers": 0, "prefetch": 3,
                         "transformers": {"model": "m", "attn_implementation": "eager"},
                         "openai": {"concurrency": 99}})
    assert a.fingerprint() == same.fingerprint()
    for change in ({"generation": {"max_new_tokens": 5}}, {"frames": {"num_frames": 8}},
                   {"prompt": "video_short"}, {"transformers": {"model": "other"}}, {"strip_openings": False}):
        assert CaptionStage({**base, **change}).fingerprint() != a.fingerprint(), change
    custom = {"user": "Say what moves.", "kind": "video"}
    s = CaptionStage({**base, "prompt": "mine", "prompt_spec": custom})
    assert s.prompt.user == "Say what moves." and s.params["prompt_hash"] == prompt_hash(Prompt("mine", **custom))
    assert s.fingerprint() != CaptionStage({**base, "prompt": "mine",
                                            "prompt_spec": {**custom, "user": "Other."}}).fingerprint()


def test_clean_caption():
    assert clean_caption("The video shows a dog\nrunning.\n\n  Fast.", True) == "A dog running. Fast."
    assert clean_caption("In this video, a man walks.", True) == "A man walks."
    assert clean_caption("This video depicts the sea.", True) == "The sea."
    assert clean_caption("The video shows a dog.", False) == "The video shows a dog."
    assert clean_caption("The videographer walks.", True) == "The videographer walks."
    assert clean_caption("The video shows", True) == "The video shows"
    assert clean_caption(None, True) == ""


_SLOT_SCRIPT = (
    "import logging, os, sys, time\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "from vidcap.gpu import acquire_gpus\n"
    "got = acquire_gpus()\n"
    "print(os.environ['CUDA_VISIBLE_DEVICES'], flush=True)\n"
    "time.sleep(float(sys.argv[1]))\n"
)


def test_two_jobs_take_two_different_gpu_slots(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    env.update(VIDCAP_GPU_SLOTS="2", VIDCAP_LOCK_DIR=str(tmp_path / "locks"), VIDCAP_GPUS_PER_JOB="1",
               PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", _SLOT_SCRIPT, "2"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    devices = sorted(o[0].strip() for o in outs)
    assert devices == ["0", "1"], outs
    assert all("took slot" in o[1] for o in outs)
    # a third job, after they exit, gets a slot again (locks die with their process)
    third = subprocess.run([sys.executable, "-c", _SLOT_SCRIPT, "0"], capture_output=True, text=True, env=env,
                           timeout=60)
    assert third.stdout.strip() in ("0", "1")
    # an assigned CUDA_VISIBLE_DEVICES (SLURM) is used as is
    slurm = subprocess.run([sys.executable, "-c", _SLOT_SCRIPT, "0"], capture_output=True, text=True, timeout=60,
                           env={**env, "CUDA_VISIBLE_DEVICES": "3", "SLURM_JOB_ID": "7"})
    assert slurm.stdout.strip() == "3" and "assigned by SLURM" in slurm.stderr


@pytest.mark.e2e
def test_snakemake_user_prompt_kill_mid_shard_then_resume(tmp_path):
    """Real Snakemake: a user prompt from config, kill -9 mid-shard, resume: every row once."""
    media = tmp_path / "media"
    n = 12
    small_clip_manifest(media, n)
    model = tiny_model("qwen2_5_vl")
    mine = {"user": "Say in a few words what moves in this clip.", "system": "Be brief.", "kind": "video"}
    cfg = write_config(
        tmp_path, name="cap", manifest=str(media / "m.csv"), shard_size=6, prompts={"mine": mine},
        stages={"probe": {"enabled": False}, "motion": {"enabled": False},
                "caption": {"enabled": True, "prompt": "mine", "batch_size": 2, "decode_workers": 1,
                            "frames": {"num_frames": 2, "resize_short": 48},
                            "generation": {"max_new_tokens": 4},
                            "transformers": {"model": str(model)}}})
    run = tmp_path / "results" / "cap"
    before = kill_when_journaled(tmp_path, cfg, "caption", 4, env={"VIDCAP_FAULT_DELAY": "0.4"})
    n_before = sum(map(len, before.values()))
    assert 4 <= n_before < n, "killed mid-run"

    run_snakemake(tmp_path, cfg, "--unlock")
    run_snakemake(tmp_path, cfg, "--rerun-incomplete")
    after = journal_ids(run, "caption")
    for shard, ids in after.items():
        assert ids[: len(before.get(shard, []))] == before.get(shard, []), "journaled rows kept"
        assert len(ids) == len(set(ids)) == 6, "no row captioned twice"
    out = pd.read_parquet(tmp_path / "results" / "cap.parquet", dtype_backend="pyarrow")
    assert out["k"].astype(str).tolist() == [str(i) for i in range(n)]
    assert out["caption_error"].isna().all() and out["text"].notna().all()
    assert (out["caption_prompt"] == "mine").all()
    assert (out["caption_prompt_hash"] == prompt_hash(Prompt("mine", **mine))).all()
    assert (out["caption_model"] == str(model)).all()
    logs = " ".join(p.read_text() for p in (run / "logs" / "caption").glob("*.log"))
    assert "CUDA_VISIBLE_DEVICES=''" in logs, "gpu: 0 jobs hide GPUs"
