"""The scores stage through the workflow, and ``vidcap filter`` on the run's real merged table: a real
Snakemake run over synthetic clips (panning fast and slowly, still, a slideshow, blurred, dark, an
image, an unreadable file), then the filter's output taken by the sharder as the next run's manifest."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from tests.helpers import run_snakemake, write_config, write_corrupt_mp4
from vidcap.dev import synth
from vidcap.io.tables import write_table

pytestmark = pytest.mark.e2e
W, H, N, FPS = 192, 144, 36, 24


def _clips(media):
    tex = synth.texture(H, W, seed=3)
    clips = {
        "fast.mp4": synth.camera_frames(W, H, N, pan=1.0, seed=1),
        "slow.mp4": synth.camera_frames(W, H, N, pan=0.1, seed=2),
        "still.mp4": lambda i: tex,
        "slides.mp4": lambda i: synth.texture(H, W, seed=10 + i // 18),   # a new still every 0.75 s
        "blurred.mp4": lambda i: cv2.GaussianBlur(tex, (0, 0), 3.0),
        "dark.mp4": lambda i: (tex // 16).astype(np.uint8),
    }
    for name, frames in clips.items():
        synth.write_video(media / name, num_frames=N, width=W, height=H, fps=FPS, frames=frames)
    synth.write_image(media / "photo.png", width=W, height=H)
    write_corrupt_mp4(media / "broken.mp4")
    names = [*clips, "photo.png", "broken.mp4"]
    write_table(pd.DataFrame({"path": names, "k": range(len(names))}), media / "m.csv")
    return media / "m.csv"


def _vidcap(*args):
    return subprocess.run([sys.executable, "-m", "vidcap", *args], capture_output=True, text=True)


def test_scores_through_the_workflow_then_filter_as_the_next_manifest(tmp_path):
    manifest = _clips(tmp_path / "media")
    cfg = write_config(tmp_path, name="s", manifest=str(manifest), report={"enabled": False},
                       stages={"scores": {"enabled": True}, "motion": {"enabled": True}, "probe": {"enabled": False},
                               "clean": {"enabled": False}})
    run_snakemake(tmp_path, cfg, timeout=300)
    out = pd.read_parquet(tmp_path / "results" / "s.parquet").set_index("path")
    assert list(out.index) == ["fast.mp4", "slow.mp4", "still.mp4", "slides.mp4", "blurred.mp4", "dark.mp4",
                               "photo.png", "broken.mp4"]
    speed = lambda pan: pan * H / (N - 1) * int(FPS / 2)   # noqa: E731 - source px per int(fps/2) frames
    assert out.loc["fast.mp4", "motion_flow"] == pytest.approx(speed(1.0), rel=0.15)
    assert out.loc["slow.mp4", "motion_flow"] == pytest.approx(speed(0.1), rel=0.15)
    assert out.loc["fast.mp4", "motion_mv"] == pytest.approx(speed(1.0), rel=0.15)
    assert out.loc["still.mp4", "still"] == "static" and out.loc["slides.mp4", "still"] == "slideshow"
    assert out.loc["fast.mp4", "still"] == "moving" and out.loc["photo.png", "still"] == "image"
    assert pd.isna(out.loc["photo.png", "motion_flow"])
    assert out.loc["blurred.mp4", "laplacian_var"] < 0.2 * out.loc["still.mp4", "laplacian_var"]
    assert out.loc["dark.mp4", "brightness"] < 20 and out.loc["dark.mp4", "dark_share"] > 0.5
    assert out.loc["still.mp4", "dark_share"] < 0.2
    assert "decode" in out.loc["broken.mp4", "scores_error"] or out.loc["broken.mp4", "scores_error"]
    assert out["aesthetic"].isna().all() and out["text_area"].isna().all(), "model scores are off by default"

    kept = tmp_path / "kept.parquet"
    proc = _vidcap("filter", str(tmp_path / "results" / "s"), "-o", str(kept),
                   "--where", "motion_flow >= 2 and still == 'moving' and cmotion != 'unclassified'")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_parquet(kept)
    assert [p.rsplit("/", 1)[-1] for p in got["path"]] == ["fast.mp4", "slow.mp4"]
    assert all(p.startswith("/") for p in got["path"]), "relative paths made absolute: a manifest anywhere"
    report = json.loads((tmp_path / "kept.filter.json").read_text())
    assert report["rows"] == 8 and report["kept"] == 2
    # in order: motion_flow >= 2 drops the static, blurred and dark clips, the image and the broken file
    # (null = not kept); the slideshow's cuts look like motion to the flow, and `still` drops it
    assert [t["removed"] for t in report["terms"]] == [5, 1, 0]
    assert "motion_flow >= 2" in proc.stdout and "removed" in proc.stdout

    proc = _vidcap("filter", str(tmp_path / "results" / "s.parquet"), "-o", str(tmp_path / "x.parquet"),
                   "--where", "aesthetics >= 4.5")
    assert proc.returncode == 2 and "unknown column(s) 'aesthetics'" in proc.stderr and "motion_flow" in proc.stderr
    proc = _vidcap("filter", str(tmp_path / "results" / "s"), "-o", str(tmp_path / "x.parquet"),
                   "--where", "__import__('os').system('true')")
    assert proc.returncode == 2 and "not a condition" in proc.stderr
    assert not (tmp_path / "x.parquet").exists()

    # the kept rows are a manifest: the sharder takes them as they are, from another folder
    proc = _vidcap("shard", "--manifest", str(kept), "--outdir", str(tmp_path / "next"), "--shard-size", "10")
    assert proc.returncode == 0, proc.stderr
    shard = pd.read_parquet(tmp_path / "next" / "00000.parquet")
    assert [p.rsplit("/", 1)[-1] for p in shard["_media_path"]] == ["fast.mp4", "slow.mp4"]
    assert all((tmp_path / "media" / p.rsplit("/", 1)[-1]).samefile(p) for p in shard["_media_path"])
