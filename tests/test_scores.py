"""The scores stage on real decoded clips: motion in EasyAnimate's units, the codec's motion vectors
(and none for codecs without them), a row's range, unreadable files and images."""
from __future__ import annotations

import pytest

from tests.helpers import write_corrupt_mp4
from vidcap.dev import synth
from vidcap.scores import measure
from vidcap.scores.stage import ScoresStage

W, H, N, FPS = 160, 120, 48, 24


def _row(path, **extra):
    return {"row_id": "r", "_media_path": str(path), **extra}


def test_motion_in_source_pixels_per_half_second(tmp_path):
    stage = ScoresStage({})
    pan = synth.write_video(tmp_path / "pan.mp4", num_frames=N, width=W, height=H, fps=FPS,
                            frames=synth.camera_frames(W, H, N, pan=0.5, seed=1))
    out = stage.process_row(_row(pan))
    true = 0.5 * H / (N - 1) * (FPS // 2)
    assert out["motion_flow"] == pytest.approx(true, rel=0.1)
    assert out["motion_mv"] == pytest.approx(true, rel=0.3)   # x264 ultrafast: coarse motion search
    assert out["still"] == "moving" and set(out) == set(ScoresStage.columns)
    # the same clip where the codec keeps no motion vectors (VP9): flow, no motion_mv
    vp9 = synth.write_video(tmp_path / "pan.webm", num_frames=N, width=W, height=H, fps=FPS, codec="vp9",
                            frames=synth.camera_frames(W, H, N, pan=0.5, seed=1))
    out = stage.process_row(_row(vp9))
    assert out["motion_flow"] == pytest.approx(true, rel=0.1) and out["motion_mv"] is None


def test_a_rows_range_is_all_it_reads(tmp_path):
    pan = synth.camera_frames(W, H, N // 2, pan=0.5, seed=2)
    path = synth.write_video(tmp_path / "long.mp4", num_frames=N, width=W, height=H, fps=FPS,
                             frames=lambda i: pan(0) if i < N // 2 else pan(i - N // 2))
    stage = ScoresStage({})
    first = stage.process_row(_row(path, start="0", end="1.0"))
    second = stage.process_row(_row(path, start="1.0", end=None))
    assert first["still"] == "static" and first["motion_flow"] < 0.2
    assert second["still"] == "moving" and second["motion_flow"] == pytest.approx(0.5 * H / (N // 2 - 1) * 12, rel=0.15)


def test_pairs_stay_inside_short_ranges():
    assert measure.pair_offsets(1, 24, 4) == []
    assert measure.pair_offsets(3, 24, 4, 1.0) == [(0, 2)]
    assert measure.pair_offsets(100, 24, 4, 0.25) == [(0, 3), (32, 35), (64, 67), (96, 99)]
    assert all(b < 100 for _, b in measure.pair_offsets(100, 60, 7, 1.0))


def test_unreadable_files_fail_their_row_and_images_have_no_motion(tmp_path):
    stage = ScoresStage({})
    with pytest.raises(Exception, match="decode|open|invalid|not a video"):
        stage.process_row(_row(write_corrupt_mp4(tmp_path / "bad.mp4")))
    out = stage.process_row(_row(synth.write_image(tmp_path / "i.png", width=W, height=H)))
    assert out["still"] == "image" and out["motion_flow"] is None and out["laplacian_var"] > 0
