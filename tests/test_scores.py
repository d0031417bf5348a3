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
    assert measure.pair_offsets(3, 24, 4, 1.0) == [(0, 2, 2)]
    assert measure.pair_offsets(100, 24, 4, 0.25) == [(0, 3, 12), (29, 32, 41), (58, 61, 70), (87, 90, 99)]
    assert all(c < 100 for _, _, c in measure.pair_offsets(100, 60, 7, 1.0))


def test_unreadable_files_fail_their_row_and_images_have_no_motion(tmp_path):
    stage = ScoresStage({})
    with pytest.raises(Exception, match="decode|open|invalid|not a video"):
        stage.process_row(_row(write_corrupt_mp4(tmp_path / "bad.mp4")))
    out = stage.process_row(_row(synth.write_image(tmp_path / "i.png", width=W, height=H)))
    assert out["still"] == "image" and out["motion_flow"] is None and out["laplacian_var"] > 0


def test_model_scores_load_real_classes_from_folders(tmp_path):
    """A tiny random CLIPModel folder and a head in LAION's layout, through the same loading code as the
    real checkpoints; RapidOCR's bundled detector finds the text drawn on a frame."""
    import cv2

    from vidcap.dev.tiny.clip import tiny_clip

    folder, head = tiny_clip()
    text = synth.texture(H, W, seed=5) // 4 + 160
    cv2.putText(text, "SALE 50%", (8, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3)
    clip = synth.write_video(tmp_path / "t.mp4", num_frames=12, width=W, height=H, fps=FPS, frames=lambda i: text)
    plain = synth.write_video(tmp_path / "p.mp4", num_frames=12, width=W, height=H, fps=FPS,
                              frames=lambda i: synth.texture(H, W, seed=6) // 4 + 160)
    stage = ScoresStage({"clip": {"model": str(folder)}, "aesthetic": {"enabled": True, "head": str(head)},
                         "caption_match": {"enabled": True, "text_column": "text"}, "ocr": {"enabled": True}})
    stage.setup()
    try:
        with_text = stage.process_row(_row(clip, text="a sign in a shop window"))
        without = stage.process_row(_row(plain, text=""))
    finally:
        stage.close()
    assert isinstance(with_text["aesthetic"], float) and -1 <= with_text["clip_match"] <= 1
    assert without["clip_match"] is None, "no text, no match"
    assert 0.02 < with_text["text_area"] < 0.5 and without["text_area"] == 0.0
    assert with_text["motion_flow"] is not None


def test_model_score_settings_are_checked_by_the_plan(tmp_path):
    import copy

    from vidcap import workflow
    from vidcap.config import validate_config
    from vidcap.errors import ConfigError

    (tmp_path / "m.csv").write_text("path\na.mp4\n")
    base = {"manifest": str(tmp_path / "m.csv"), "results_dir": str(tmp_path / "r")}
    on = {"scores": {"enabled": True, "aesthetic": {"enabled": True, "head": str(tmp_path / "none.pth")},
                     "clip": {"model": "x"}}}
    with pytest.raises(ConfigError, match="stages.scores.aesthetic.head"):
        workflow.Plan(validate_config({**base, "stages": copy.deepcopy(on)}))
    with pytest.raises(ConfigError, match="stages.scores.clip.model"):
        workflow.Plan(validate_config({**base, "stages": {"scores": {"enabled": True, "caption_match": {"enabled": True}}}}))
    with pytest.raises(ConfigError, match="stages.scores.caption_match.text_column"):
        workflow.Plan(validate_config({**base, "stages": {"scores": {"enabled": True, "clip": {"model": "x"},
                                                                      "caption_match": {"enabled": True}}}}))
    plan = workflow.Plan(validate_config({**base, "stages": {"caption": {"enabled": True},
                                                             "scores": {"enabled": True, "clip": {"model": "x"},
                                                                        "caption_match": {"enabled": True}}}}))
    assert plan.settings("scores")["caption_match"]["text_column"] == "text", "the caption's column"
    assert plan.upstream("scores") == ["caption"]
