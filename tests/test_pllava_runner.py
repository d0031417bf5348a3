"""The ``pllava`` caption runner inside the caption machinery, with a tiny PLLaVA checkpoint.

The checkpoint is built offline in the released key layout (sharded safetensors, LoRA weights) and read
through ``load_weights`` exactly as a real one. Random weights write random text: the tests assert rows,
columns, counts, limits and provenance, never wording. Token limits are set small (``max_new_tokens``)
to keep generation short on a CPU.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.helpers import (
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
from vidcap.dev.tiny_pllava import build_tiny_pllava
from vidcap.errors import RunnerFatal
from vidcap.media.frames import frame_indices, sample_frames
from vidcap.models.pllava import generate_captions, stretch_positions
from vidcap.models.pllava_checkpoint import load_pllava
from vidcap.models.pllava_prompts import pllava_prompt, row_fraction
from vidcap.stages.base import run_stage
from vidcap.summary import summarize, summary_rows
from vidcap.text import clean_caption

LIMITS = {"long": 12, "short": 5}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_pllava(tmp_path_factory.mktemp("pllava") / "tiny")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """Clips of several sizes and lengths (one of 3 frames: shorter than 4), two images, a corrupt file."""
    root = tmp_path_factory.mktemp("plmedia")
    synth.write_video(root / "v0.mp4", num_frames=40, width=96, height=64, seed=0)
    synth.write_video(root / "v1.webm", num_frames=20, width=64, height=96, codec="vp9", seed=1)
    synth.write_video(root / "short.mp4", num_frames=3, width=96, height=64, seed=2)
    synth.write_image(root / "still.png", width=80, height=60, seed=3)
    synth.write_image(root / "still2.jpg", width=50, height=90, seed=4)
    write_corrupt_mp4(root / "corrupt.mp4")
    return root


def _shard(tmp_path: Path, media: Path, names: list[str]) -> Path:
    return one_shard(tmp_path, [str(media / n) for n in names], name=names)


def _half_short(ids: list[str]) -> float:
    """A ratio giving the first half of ``ids`` (by their fraction) short captions and the rest long ones."""
    fr = sorted(row_fraction(i) for i in ids)
    return (fr[len(fr) // 2 - 1] + fr[len(fr) // 2]) / 2


def _stage(tiny: Path, batch_size: int = 8, **pllava) -> CaptionStage:
    block = {"weight_dir": str(tiny), "max_new_tokens": LIMITS, **pllava}
    return CaptionStage({"runner": "pllava", "pllava": block, "batch_size": batch_size, "decode_workers": 0})


def _run(tmp_path: Path, stage: CaptionStage, shard: Path) -> pd.DataFrame:
    return run_stage(stage, shard, tmp_path / "out.parquet", tmp_path / "j.jsonl").to_pandas()


def test_mixed_batch_of_clips_and_images_with_a_corrupt_file(tmp_path, tiny, media, caplog):
    names = ["v0.mp4", "still.png", "corrupt.mp4", "v1.webm", "short.mp4", "still2.jpg", "v0.mp4"]
    shard = _shard(tmp_path, media, names)
    ids = pq.read_table(shard).column("row_id").to_pylist()
    ratio = _half_short([i for i, n in zip(ids, names) if n != "corrupt.mp4"])
    stage = _stage(tiny, short_caption_ratio=ratio)
    with caplog.at_level(logging.INFO, logger="vidcap.caption.stage"):
        df = _run(tmp_path, stage, shard)
    # the job log names the prompts the rows use (PLLaVA's), not the stage's unused default
    assert "prompt pllava:general per row" in caplog.text and "video_detailed" not in caplog.text

    assert df["row_id"].tolist() == ids, "one row per shard row, in shard order"
    lines = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()[1:]]
    assert sorted(r["row_id"] for r in lines) == sorted(ids), "each row journaled exactly once"
    bad, good = df[[n == "corrupt.mp4" for n in names]], df[[n != "corrupt.mp4" for n in names]]
    assert bad["caption_error"].str.contains("cannot open").all() and bad["text"].isna().all()
    assert bad["caption_prompt"].isna().all()
    assert good["caption_error"].isna().all(), good["caption_error"].tolist()
    assert good["text"].map(lambda t: isinstance(t, str) and "\n" not in t).all()
    assert (good["caption_model"] == str(tiny)).all()

    # each row's prompt comes from its id; long and short rows shared one batch, each cut at its own limit
    want = {i: pllava_prompt(i, "general", ratio, LIMITS) for i in good["row_id"]}
    assert good["caption_prompt"].tolist() == [want[i].key for i in good["row_id"]]
    assert good["caption_prompt_hash"].tolist() == [want[i].provenance["prompt_hash"] for i in good["row_id"]]
    assert set(good["caption_prompt"]) == {"pllava:general:long", "pllava:general:short"}
    assert stage.stats["batches"] == 1
    for row in good.itertuples():
        limit = want[row.row_id].max_new_tokens
        assert 0 <= row.output_tokens <= limit
        assert row.finish_reason == ("length" if row.output_tokens == limit else "stop")
        assert row.prompt_tokens > 16, "16 pooled visual tokens (4-2-2) + the prompt"

    # frames: segment policy (4 of each clip, never repeated), images one frame, the 3-frame clip all 3
    for name, idx in zip(names, df["caption_frame_indices"]):
        if name == "corrupt.mp4":
            assert idx is None
        elif name.startswith("still"):
            assert list(idx) == [0]
        else:
            total = {"v0.mp4": 40, "v1.webm": 20, "short.mp4": 3}[name]
            assert list(idx) == sorted(set(frame_indices(total, 4, "segment")))
    assert stage.frames == {**stage.frames, "num_frames": 4, "policy": "segment", "resize_short": 672}

    # a short row in the mixed batch = that row generated alone with its own limit
    model, proc = load_pllava(tiny, device="cpu")
    row = next(r for r, n in zip(good.itertuples(), [n for n in names if n != "corrupt.mp4"])
               if want[r.row_id].length == "short" and n != "short.mp4")
    path = media / names[ids.index(row.row_id)]
    p = want[row.row_id]
    frames = sample_frames(path, 4, "segment", resize_short=672, unique=True).frames
    alone = generate_captions(model, proc, [frames], [proc.prompt(p.system, p.user)], p.max_new_tokens)[0]
    assert (clean_caption(alone.text, True), alone.output_tokens) == (row.text, row.output_tokens)


def test_injected_oom_splits_the_batch_and_loses_no_row(tmp_path, tiny, media, monkeypatch, caplog):
    names = ["v0.mp4", "v1.webm", "still.png", "short.mp4"]
    shard = _shard(tmp_path, media, names)
    monkeypatch.setenv("VIDCAP_FAULT_OOM", "1")
    stage = CaptionStage({"runner": "pllava", "batch_size": 4, "decode_workers": 1,
                          "pllava": {"weight_dir": str(tiny), "max_new_tokens": LIMITS, "short_caption_ratio": 1}})
    with caplog.at_level(logging.WARNING, logger="vidcap.runners.local"):
        df = _run(tmp_path, stage, shard)
    assert "out of memory on a batch of 4 rows: splitting into 2 + 2" in caplog.text
    assert df["caption_error"].isna().all() and df["text"].notna().all()
    assert len(df) == df["row_id"].nunique() == 4
    assert stage.stats["batches"] == 2 and (df["caption_prompt"] == "pllava:general:short").all()


def test_short_or_long_is_fixed_by_row_id_across_runs(tmp_path, tiny, media):
    """Another batch size and the reverse order: every row gets the same prompt and (greedy) the same caption."""
    names = ["v0.mp4", "v1.webm", "still.png", "still2.jpg"]
    first = _run(tmp_path / "a", _stage(tiny, template="person", short_caption_ratio=0.5),
                 _shard(tmp_path / "a", media, names))
    stage = _stage(tiny, batch_size=1, template="person", short_caption_ratio=0.5)
    again = _run(tmp_path / "b", stage, _shard(tmp_path / "b", media, names[::-1]))
    assert stage.stats["batches"] == 4
    a = first.set_index("row_id").sort_index()
    b = again.set_index("row_id").sort_index()
    assert a.index.tolist() == b.index.tolist()
    assert a["caption_prompt"].tolist() == [pllava_prompt(i, "person", 0.5).key for i in a.index]
    assert stage.runner.batch_size == 1
    for col in ("caption_prompt", "caption_prompt_hash", "text", "output_tokens"):
        assert a[col].tolist() == b[col].tolist(), col


def test_context_preflight_counts_pooled_tokens_before_the_weights_load(tmp_path, tiny, media):
    """Only config + tokenizer: a request that does not fit stops with the numbers; one that fits gets as far
    as the weights (and stops there: this folder has none)."""
    _, proc = load_pllava(tiny, device="cpu")
    short = pllava_prompt("x", "general", 1.0)
    long = pllava_prompt("x", "general", 0.0)
    text_short = proc.count_tokens(proc.prompt(short.system, short.user)) - 16
    text_long = proc.count_tokens(proc.prompt(long.system, long.user)) - 16
    ctx = 16 + text_short + 128   # exactly what a short caption needs at 4-2-2 pooling
    assert 16 + text_long + 256 > ctx
    noweights = tmp_path / "noweights"
    shutil.copytree(tiny, noweights, ignore=shutil.ignore_patterns("*.safetensors*"))
    cfg = json.loads((noweights / "config.json").read_text())
    cfg["text_config"]["max_position_embeddings"] = ctx
    (noweights / "config.json").write_text(json.dumps(cfg))
    shard = _shard(tmp_path, media, ["v0.mp4"])

    def fails(**pllava) -> str:
        stage = CaptionStage({"runner": "pllava", "decode_workers": 0,
                              "pllava": {"weight_dir": str(noweights), **pllava}})
        with pytest.raises(RunnerFatal) as err:
            run_stage(stage, shard, tmp_path / "out.parquet", tmp_path / "j.jsonl")
        assert not (tmp_path / "out.parquet").exists()
        return str(err.value)

    msg = fails(short_caption_ratio=0.5)   # long rows can occur: 256 new tokens do not fit
    assert (f"16 visual tokens (pooling 4-2-2 of 4 frames) + {text_long} prompt tokens + 256 new tokens "
            f"(general, long caption) = {16 + text_long + 256} tokens > max_position_embeddings {ctx}") in msg
    assert "no PLLaVA weights" in fails(short_caption_ratio=1.0), "short only: fits, so the weights are next"
    msg = fails(short_caption_ratio=1.0, pooling_shape="4-4-4")   # 64 pooled tokens instead of 16
    assert f"64 visual tokens (pooling 4-4-4 of 4 frames) + {text_short} prompt tokens + 128 new" in msg
    assert "pllava.weight_dir" in fails(weight_dir=None)
    stage = CaptionStage({"runner": "pllava", "prompt": "rewrite_structured", "pllava": {"weight_dir": str(tiny)}})
    with pytest.raises(RunnerFatal, match="must be a video prompt"):
        stage.setup()
    stage.close()


def test_processor_stretches_short_clips_and_repeats_images(tiny):
    """Repetition lives in the model's input (the sampler never repeats): an image fills every frame slot, a
    clip shorter than num_frames is stretched in time, each frame an equal share, every frame used."""
    _, proc = load_pllava(tiny, device="cpu")
    clip = np.stack([np.full((40, 60, 3), 60 * i, np.uint8) for i in range(3)])
    pixels = proc(text=[proc.prompt("", "x")], videos=[clip], stretch=True)["pixel_values"]
    means = [round(float(f.mean()), 3) for f in pixels]
    assert means[0] == means[1] and len(set(means)) == 3
    assert stretch_positions(3, 4) == [0, 0, 1, 2] and stretch_positions(10, 16)[-1] == 9
    assert all(sorted(set(stretch_positions(n, 16))) == list(range(n)) for n in range(1, 17))
    with pytest.raises(ValueError, match="or fewer with stretch"):
        proc(text=[proc.prompt("", "x")], videos=[clip])


def test_summary_counts_dropped_failed_captions():
    df = pd.DataFrame({"caption_error": [None, None], "text": ["a", "b"]})
    s = summarize(df, dropped_failed_captions=3)
    assert s["rows"] == 2 and s["dropped_failed_captions"] == 3
    assert {"section": "dropped_failed_captions", "key": "", "value": "", "count": 3} in summary_rows(s)
    assert "dropped_failed_captions" not in summarize(df)


@pytest.mark.e2e
def test_snakemake_kill_mid_shard_then_resume(tmp_path, tiny):
    """Real Snakemake with the pllava runner: kill -9 mid-shard, resume; every row once, none lost, each
    row's prompt the one its id picks; clean's tokenizer: auto is the PLLaVA tokenizer. One shard: each job
    imports torch (most of its time on a small CPU)."""
    media = tmp_path / "media"
    n = 8
    small_clip_manifest(media, n)
    limits = {"long": 6, "short": 3}
    cfg = write_config(
        tmp_path, name="pl", manifest=str(media / "m.csv"), shard_size=n, report={"enabled": False},
        stages={"probe": {"enabled": False}, "motion": {"enabled": False},
                "caption": {"enabled": True, "runner": "pllava", "batch_size": 2, "decode_workers": 1,
                            "pllava": {"weight_dir": str(tiny), "short_caption_ratio": 0.5,
                                       "max_new_tokens": limits}}})
    run = tmp_path / "results" / "pl"
    before = kill_when_journaled(tmp_path, cfg, "caption", 3, env={"VIDCAP_FAULT_DELAY": "0.5"})
    n_before = sum(map(len, before.values()))
    assert 3 <= n_before < n, "killed mid-run"

    run_snakemake(tmp_path, cfg, "--unlock")
    run_snakemake(tmp_path, cfg, "--rerun-incomplete")
    after = journal_ids(run, "caption")
    assert list(before) == list(after) == ["00000"]
    ids = after["00000"]
    assert ids[:n_before] == before["00000"], "journaled rows kept"
    assert len(ids) == len(set(ids)) == n, "no row captioned twice, none lost"
    out = pd.read_parquet(tmp_path / "results" / "pl.parquet", dtype_backend="pyarrow")
    assert out["k"].astype(str).tolist() == [str(i) for i in range(n)]
    assert out["caption_error"].isna().all() and out["text"].notna().all()
    assert out["caption_prompt"].tolist() == [pllava_prompt(i, "general", 0.5).key for i in out["row_id"]]
    assert (out["caption_model"] == str(tiny)).all()
    assert out["caption_tokens"].notna().all(), "clean counted tokens with the PLLaVA tokenizer"
