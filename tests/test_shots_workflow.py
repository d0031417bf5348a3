"""From raw videos to clips through the workflow: the shots step, the clip table, and the stages on the
clips (time ranges), in one `vidcap run`; kill and resume of the shots stage. Real Snakemake runs."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import REPO, journal_ids, kill_when_journaled, run_snakemake, write_config
from vidcap.dev import synth
from vidcap.dev.tiny import tiny_model
from vidcap.io.tables import write_table

pytestmark = pytest.mark.e2e

DATA = Path(__file__).parent / "data"
BIKES_CLIPS = [(0, 30), (30, 76), (76, 137), (137, 187), (187, 242)]   # tests/test_shots.py: test_bikes_smoke


def _media(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "bikes.mp4", root / "bikes.mp4")
    synth.write_video(root / "long.mp4", num_frames=96, width=96, height=64, fps=24, seed=3)
    synth.write_image(root / "still.png", width=80, height=60)
    df = pd.DataFrame({"path": ["bikes.mp4", "long.mp4", "missing.mp4", "still.png"],
                       "start": ["", "1.0", "", ""], "end": ["", "2.5", "", ""],   # long.mp4: already cut
                       "note": ["raw", "cut", "gone", "image"]})
    write_table(df, root / "m.csv")
    return root / "m.csv"


def test_vidcap_run_cuts_then_runs_the_stages_on_the_clips(tmp_path):
    manifest = _media(tmp_path / "media")
    caption = {"enabled": True, "prompt": "video_short", "decode_workers": 0, "batch_size": 4,
               "frames": {"num_frames": 4, "resize_short": 48}, "generation": {"max_new_tokens": 4},
               "transformers": {"model": str(tiny_model("qwen2_5_vl"))},
               "resources": {"mem_mb": 2000, "runtime": 30, "threads": 1, "gpu": 0}}
    cfg = write_config(tmp_path, name="raw", manifest=str(manifest), shard_size=2, report={"enabled": False},
                       stages={"shots": {"enabled": True}, "motion": {"enabled": False}, "caption": caption})
    proc = subprocess.run([sys.executable, "-m", "vidcap", "run", "--configfile", str(cfg), "--", "--directory",
                           str(tmp_path), "-c2"], capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "step 2 of 2" in proc.stderr

    results = tmp_path / "results"
    clips = pd.read_parquet(results / "raw.clips.parquet")
    failed = pd.read_csv(results / "raw.clips_failed.csv", dtype=str, keep_default_na=False)
    # every source row accounted for: its clips, or an error
    assert set(clips["note"]) | set(failed["note"]) == {"raw", "cut", "gone", "image"}
    assert failed["note"].tolist() == ["gone"] and "file not found" in failed["shots_error"].iloc[0]
    bikes = clips[clips["note"] == "raw"]
    assert list(zip(bikes["start_frame"], bikes["end_frame"])) == BIKES_CLIPS
    assert clips["clip_id"].is_unique
    cut = clips[clips["note"] == "cut"].iloc[0]
    assert (cut["start_frame"], cut["end_frame"]) == (24, 60), "an already-cut row is kept as one clip"
    assert clips[clips["note"] == "image"].shape[0] == 1

    # step 2: one row per clip; probe and caption see only the clip's range
    out = pd.read_csv(results / "raw_clips.csv", dtype=str, keep_default_na=False)
    assert out["clip_id"].tolist() == clips["clip_id"].tolist()
    assert (out["probe_error"] == "").all() and (out["caption_error"] == "").all()
    videos = out[out["note"] != "image"]
    assert videos["num_frames"].astype(int).tolist() == \
        (clips.loc[clips["note"] != "image", "end_frame"] - clips.loc[clips["note"] != "image", "start_frame"]).tolist()
    for _, row in videos.iterrows():
        idx = json.loads(row["caption_frame_indices"])
        assert all(int(row["start_frame"]) <= i < int(row["end_frame"]) for i in idx), (row["clip_id"], idx)
    assert (videos.loc[videos["note"] == "raw", "source_num_frames"] == "250").all()


def test_shots_stage_kill_and_resume(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for i in range(6):
        shutil.copy(DATA / "bikes.mp4", media / f"b{i}.mp4")
    write_table(pd.DataFrame({"path": [f"b{i}.mp4" for i in range(6)]}), media / "m.csv")
    cfg = write_config(tmp_path, name="k", manifest=str(media / "m.csv"), shard_size=6,
                       stages={"shots": {"enabled": True}})
    before = kill_when_journaled(tmp_path, cfg, "shots", 2, env={"VIDCAP_FAULT_ROW_DELAY": "1.0"})
    n_before = sum(len(v) for v in before.values())
    assert 2 <= n_before < 6
    run_snakemake(tmp_path, cfg, "--unlock")
    run_snakemake(tmp_path, cfg, "--rerun-incomplete")
    ids = journal_ids(tmp_path / "results" / "k", "shots")["00000"]
    assert ids[:n_before] == before["00000"] and len(ids) == len(set(ids)) == 6
    stats = json.loads((tmp_path / "results" / "k" / "stats" / "shots" / "00000.json").read_text())
    assert (stats["reused"], stats["processed"], stats["output_rows"]) == (n_before, 6 - n_before, 30)
    clips = pd.read_parquet(tmp_path / "results" / "k.clips.parquet")
    assert len(clips) == 30 and clips["clip_id"].is_unique
    assert yaml.safe_load(cfg.read_text())["stages"]["shots"]["enabled"]
    # the clip table has the columns docs/shots.md lists for it (and no shots_error: failures are elsewhere)
    doc = (REPO / "docs" / "shots.md").read_text()
    listed = doc[doc.index("**The clip table**"):doc.index("(and with\n`export.enabled`")]
    named = re.findall(r"`([a-z_]+)`", listed.split("), then ", 1)[1])
    assert clips.columns.tolist() == ["path", *named], (clips.columns.tolist(), named)
    assert "shots_error" not in clips.columns and "not wired" not in doc
    assert "not wired" not in (REPO / "vidcap" / "schema" / "stages" / "shots.yaml").read_text()


def test_shots_stage_in_proxy_mode_finds_the_known_transitions(tmp_path):
    """proxy.enabled through a real run: the clips equal those of a full pass, every true transition of
    the generated video bounds a clip; a GPU decoder that is not there falls back with its reason."""
    from vidcap.dev import cuts
    from vidcap.io.shards import MEDIA_PATH, ROW_ID
    from vidcap.shots import detect as shots

    media = tmp_path / "media"
    spec = cuts.make_spec(3001, n_shots=5)  # a cut, two fades, a dissolve (test seeds, not the bench's)
    cuts.write_video(spec, media / "multi.mp4", 320, 180)
    write_table(pd.DataFrame({"path": ["multi.mp4"]}), media / "m.csv")
    settings = {"enabled": True, "proxy": {"enabled": True, "skip": "nonref"}, "decode": {"hwaccel": "cuda"}}
    cfg = write_config(tmp_path, name="px", manifest=str(media / "m.csv"), stages={"shots": settings})
    proc = run_snakemake(tmp_path, cfg)
    clips = pd.read_parquet(tmp_path / "results" / "px.clips.parquet")
    starts = clips["start_frame"].tolist()
    for t in spec.transitions:
        assert any(abs(s - t.cut) <= 2 for s in starts), (t, starts)
    full = shots.clip_rows({ROW_ID: "x", MEDIA_PATH: str(media / "multi.mp4")})
    assert list(zip(clips["start_frame"], clips["end_frame"], strict=True)) == \
        [(c["start_frame"], c["end_frame"]) for c in full]
    logs = "".join(p.read_text() for p in (tmp_path / "results" / "px").rglob("*.log")) + proc.stderr
    from av.codec.hwaccel import hwdevices_available

    if "cuda" in hwdevices_available() and "decoding on the CPU instead" not in logs:
        return  # a machine where CUDA decoding works
    assert "stages.shots.decode.hwaccel = cuda:" in logs and "decoding on the CPU instead" in logs
