"""Camera-motion classifier (vidcap.motion.classify) and stage: labels on real encoded clips, edge cases, captions.

Clips are rendered by the benchmark's frozen generator (bench/motion/gen.py: a virtual camera over
scikit-image photographs and procedural images, depth layers, movers, optics), written as H.264 .mp4
and read back through vidcap.media.frames, small (288x160) so the whole file runs in about a minute.
"""
from __future__ import annotations

import itertools
import math
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcap.config import stage_settings
from vidcap.dev import synth
from vidcap.errors import ConfigError
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.motion import classify as motion
from vidcap.motion.stage import MotionStage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench" / "motion"))
import gen  # noqa: E402

AXES = [("pan_left", "pan_right"), ("tilt_up", "tilt_down"), ("zoom_in", "zoom_out")]
# every non-empty set with at most one direction per axis: 6 singles + 12 pairs + 8 triples
ALL_COMBOS = sorted({"+".join(sorted(choice[a] for a in axes))
                     for r in (1, 2, 3) for axes in itertools.combinations(range(3), r)
                     for choice in itertools.product(*AXES)})
SIGN = {"pan_right": ("pan", 1), "pan_left": ("pan", -1), "tilt_up": ("tilt", 1), "tilt_down": ("tilt", -1),
        "zoom_in": ("zoom", 1), "zoom_out": ("zoom", -1)}
SOURCES = ("astronaut", "coffee", "brick", "grass", "proc:shapes:102", "camera", "page", "moon")

cv2.setNumThreads(1)


def spec(pan=0.0, tilt=0.0, zoom=0.0, *, nuisances=(), frames=36, source="astronaut", seed=1, group="t",
         width=288, height=160, **params) -> gen.Spec:
    """A clip spec: pan/tilt in short sides, zoom as ln(magnification)."""
    params = {"profile": "linear", "crf": 20, "gop": 30, "view": 0.5, **params}
    return gen.Spec(f"t{seed}", "dev", group, gen.expected_label(pan, tilt, zoom), pan, tilt, zoom,
                    frames=frames, width=width, height=height, fps=24, source=source, seed=seed,
                    nuisances=tuple(nuisances), params=params)


def classify(s: gen.Spec, tmp_path: Path, **knobs) -> dict:
    path = gen.write_clip(s, tmp_path / f"{s.name}_{abs(hash((s.pan, s.tilt, s.zoom, s.nuisances)))}.mp4")
    return motion.classify_path(path, **knobs)


def values_for(label: str, size: float = 2.0) -> dict:
    v = {"pan": 0.0, "tilt": 0.0, "zoom": 0.0}
    for part in label.split("+"):
        axis, sign = SIGN[part]
        v[axis] = sign * size * (gen.ZOOM_LN if axis == "zoom" else gen.REF_PAN)
    return v


# --------------------------------------------------------------------------------------------- labels

def test_labels_and_defaults():
    assert set(motion.MOTION_LABELS) == {"pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in",
                                         "zoom_out", "static", "unclassified"}
    assert motion.DEFAULTS["threshold"] == 0.25 and motion.DEFAULTS["zoom_threshold"] == 0.10
    with pytest.raises(TypeError):
        motion.classify_frames(np.zeros((4, 32, 32, 3), np.uint8), no_such_knob=1)
    res = motion.classify_frames(np.zeros((4, 64, 64, 3), np.uint8))
    assert tuple(res) == motion.OUTPUT_COLUMNS
    assert isinstance(res["cmotion"], str) and isinstance(res["motion_reason"], str)
    assert all(isinstance(res[c], float) for c in ("motion_pan", "motion_tilt", "motion_zoom", "motion_fit"))


@pytest.mark.parametrize("label", ALL_COMBOS)
def test_every_label_and_combination(label, tmp_path):
    """Each of the 26 direction sets, at 2x the threshold on its axes, through a real .mp4."""
    k = ALL_COMBOS.index(label)
    v = values_for(label)
    res = classify(spec(**v, source=SOURCES[k % len(SOURCES)], seed=k), tmp_path)
    assert res["cmotion"] == label, res
    # signed values follow the documented units and conventions
    assert res["motion_pan"] == pytest.approx(v["pan"], abs=0.1)
    assert res["motion_tilt"] == pytest.approx(v["tilt"], abs=0.1)
    assert res["motion_zoom"] == pytest.approx(v["zoom"], abs=0.05)


def test_static_with_noise_flicker_and_jitter(tmp_path):
    for k, nuis in enumerate(("clean", "noise", "flicker", "jitter")):
        res = classify(spec(nuisances=(nuis,), source=SOURCES[k], seed=20 + k), tmp_path)
        assert res["cmotion"] == "static", (nuis, res)


@pytest.mark.parametrize("axis,below,above", [("pan", 0.7, 1.4), ("tilt", 0.7, 1.4), ("zoom", 0.7, 1.4)])
def test_near_threshold_both_sides(axis, below, above, tmp_path):
    """0.7x the threshold is static, 1.4x moves: pan/tilt 0.175 vs 0.35 short sides, zoom 1.07x vs 1.14x."""
    ref = gen.ZOOM_LN if axis == "zoom" else gen.REF_PAN
    lo = classify(spec(**{axis: -below * ref}, source="coffee", seed=31), tmp_path)
    hi = classify(spec(**{axis: -above * ref}, source="coffee", seed=32), tmp_path)
    assert lo["cmotion"] == "static", lo
    assert hi["cmotion"] == {"pan": "pan_left", "tilt": "tilt_down", "zoom": "zoom_out"}[axis], hi


def test_zoom_threshold_is_in_scale_terms(tmp_path):
    """A 1.16x zoom over 2 s is a zoom; raising zoom_threshold to 0.25 makes the same clip static."""
    s = spec(zoom=math.log(1.16), frames=48, source="brick", seed=41)
    assert classify(s, tmp_path)["cmotion"] == "zoom_in"
    assert classify(s, tmp_path, zoom_threshold=0.25)["cmotion"] == "static"
    res = classify(spec(pan=0.5, zoom=-math.log(1.16), source="camera", seed=42), tmp_path)
    assert res["cmotion"] == "pan_right+zoom_out", res
    assert res["motion_zoom"] == pytest.approx(-math.log(1.16), abs=0.03)


# ----------------------------------------------------------------------------------------- real scenes

def test_parallax_dominant_layer_decides(tmp_path):
    """Three or four depth layers: the dominant plane decides, near layers moving faster do not make a
    label of their own, and depth does not read as rotation."""
    res = classify(spec(pan=0.7, nuisances=("parallax",), frames=48, source="coffee", seed=51), tmp_path)
    assert res["cmotion"] == "pan_right", res
    res = classify(spec(tilt=-0.15, nuisances=("parallax",), frames=48, source="astronaut", seed=52), tmp_path)
    assert res["cmotion"] == "static", res  # near layers move up to 2.2 x 0.15 = 0.33 short sides


def test_followed_subject_background_decides(tmp_path):
    res = classify(spec(pan=-0.6, nuisances=("followed",), frames=48, source="grass", seed=61), tmp_path)
    assert res["cmotion"] == "pan_left", res


def test_moving_object_on_a_static_shot_is_static(tmp_path):
    for k, mover in enumerate(("foreground", "crowd")):
        res = classify(spec(nuisances=(mover,), frames=48, source="brick", seed=71 + k), tmp_path)
        assert res["cmotion"] == "static", (mover, res)


def test_dim_night_scene_tracks(tmp_path):
    res = classify(spec(pan=0.6, nuisances=("dim",), frames=48, source="astronaut", seed=81), tmp_path)
    assert res["cmotion"] == "pan_right", res


def test_night_frames_of_one_or_two_grey_levels_track():
    """A pan over a scene whose grey levels spread by about 1.3 levels (std) is tracked on the
    contrast-normalised frames, not taken for blank frames (a dip to black)."""
    rng = np.random.default_rng(5)
    img = cv2.cvtColor(gen.source_image("astronaut"), cv2.COLOR_RGB2GRAY).astype(np.float64)
    img = (img - img.mean()) / img.std()
    frames = []
    for i in range(10):
        x = 40 + 8 * i                       # 72 px of 160: 0.45 short sides, pan right
        crop = img[100:260, x:x + 288]
        frames.append(np.clip(np.round(8.0 + 1.35 * crop + rng.normal(0, 0.2, crop.shape)), 0, 255).astype(np.uint8))
    frames = np.stack(frames)
    assert 1.0 < float(frames[0].std()) < 1.5
    res = motion.classify_frames(frames)
    assert res["cmotion"] == "pan_right", res
    assert 0.35 < res["motion_pan"] < 0.55, res


def test_long_fast_pan_is_sampled_adaptively(tmp_path):
    """A tilt of six short sides in 300 frames: ten evenly spaced frames do not overlap (unclassified),
    classify_path reads frames in between and labels it."""
    s = spec(tilt=-6.0, frames=300, source="proc:shapes:102", seed=91, profile="ease")
    path = gen.write_clip(s, tmp_path / "long.mp4")
    res = motion.classify_path(path)
    assert res["cmotion"] == "tilt_down", res
    assert res["motion_tilt"] == pytest.approx(-6.0, rel=0.1)
    ten = motion.read_motion_frames(path, 10, 160)
    assert motion.classify_frames(ten)["cmotion"] == "unclassified"


def test_cut_and_dissolve_are_unclassified(tmp_path):
    cut = spec(pan=0.5, frames=48, source="coffee", seed=101, group="cut", at=0.5, second=("brick", "texture"),
               vals2={"pan": 0.5, "tilt": 0.0, "zoom": 0.0})
    res = classify(cut, tmp_path)
    assert (res["cmotion"], res["motion_reason"]) == ("unclassified", "scene cut"), res
    dis = replace(cut, group="dissolve", seed=102, frames=72, params={**cut.params, "length_s": 1.0})
    res = classify(dis, tmp_path)
    assert (res["cmotion"], res["motion_reason"]) == ("unclassified", "scene cut"), res


def test_row_time_range_classifies_each_shot_of_a_cut_video(tmp_path):
    """A pan right, a hard cut at 1.0 s, then a pan left: the whole file is a scene cut; rows with
    start/end (clips of it, as the shots stage writes them) get each shot's own label."""
    cut = spec(pan=1.2, frames=48, source="coffee", seed=101, group="cut", at=0.5, second=("brick", "texture"),
               vals2={"pan": -1.2, "tilt": 0.0, "zoom": 0.0})
    path = str(gen.write_clip(cut, tmp_path / "two_shots.mp4"))
    stage = MotionStage({})
    whole = stage.process_row({ROW_ID: "r", MEDIA_PATH: path})
    assert (whole["cmotion"], whole["motion_reason"]) == ("unclassified", "scene cut"), whole
    first = stage.process_row({ROW_ID: "a", MEDIA_PATH: path, "start": "0", "end": "1.0"})
    second = stage.process_row({ROW_ID: "b", MEDIA_PATH: path, "start": 1.0, "end": None})
    assert first["cmotion"] == "pan_right" and first["motion_pan"] == pytest.approx(0.6, abs=0.1), first
    assert second["cmotion"] == "pan_left" and second["motion_pan"] == pytest.approx(-0.6, abs=0.1), second


def test_low_texture_and_rotation_are_unclassified(tmp_path):
    res = classify(spec(pan=0.6, nuisances=("low_texture",), source="coffee", seed=111, flat="flat"), tmp_path)
    assert (res["cmotion"], res["motion_reason"]) == ("unclassified", "low texture"), res
    rot = replace(spec(source="astronaut", seed=112), roll=40.0)
    res = classify(rot, tmp_path)
    assert (res["cmotion"], res["motion_reason"]) == ("unclassified", "rotation"), res


# --------------------------------------------------------------------------------- few frames, images

@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_frame_videos_are_unclassified(n, tmp_path):
    path = synth.write_video(tmp_path / f"f{n}.mp4", num_frames=n, width=192, height=144,
                             frames=synth.camera_frames(192, 144, n, pan=0.5, seed=3))
    assert len(motion.read_motion_frames(path)) == n   # no repeated frames
    res = motion.classify_path(path)
    assert (res["cmotion"], res["motion_reason"]) == ("unclassified", "too few frames"), res
    assert res["motion_fit"] == 0.0
    assert motion.append_motion_to_caption("A cat.", res["cmotion"]) == "A cat."
    row = MotionStage({}).process_row({ROW_ID: "r", MEDIA_PATH: str(path)})
    assert (row["cmotion"], row["motion_reason"]) == ("unclassified", "too few frames")


def test_short_clip_frames_are_distinct(tmp_path):
    path = synth.write_video(tmp_path / "f5.mp4", num_frames=5, width=192, height=144)
    frames = motion.read_motion_frames(path, 10, 160)
    assert len(frames) == 5
    assert len({f.tobytes() for f in frames}) == 5


def test_stage_image_and_settings(tmp_path):
    img = synth.write_image(tmp_path / "still.png")
    row = MotionStage({}).process_row({ROW_ID: "r", MEDIA_PATH: str(img)})
    assert (row["cmotion"], row["motion_reason"]) == ("unclassified", "image (one frame)")
    stage = MotionStage({"zoom_threshold": 0.2, "append_to_text": True})
    assert stage.params["zoom_threshold"] == 0.2 and "append_to_text" not in stage.params
    assert set(stage.params) == set(motion.DEFAULTS)
    assert "append_to_text" not in stage_settings("motion", {})   # a workflow key (config.WORKFLOW_KEYS)
    with pytest.raises(ConfigError, match="stages.motion.num_frames"):
        MotionStage({"num_frames": 2})
    with pytest.raises(ConfigError, match="stages.motion.min_corner_strength"):
        MotionStage({"min_corner_strength": 0.1})


# ------------------------------------------------------------------------------------------ phrases

def test_phrase_every_combination():
    assert len(ALL_COMBOS) == 26
    for label in ALL_COMBOS:
        phrase = motion.camera_motion_phrase(label)
        assert phrase.startswith("The camera ") and phrase.endswith("."), label
        for part in label.split("+"):
            verb = part.split("_")[0]
            assert verb in phrase and part.split("_")[1] in phrase, (label, phrase)
        assert motion.camera_motion_phrase("+".join(reversed(label.split("+")))) == phrase


def test_phrase_examples():
    assert motion.camera_motion_phrase("pan_left") == "The camera pans left."
    assert motion.camera_motion_phrase("pan_left+tilt_up+zoom_in") == \
        "The camera pans left while tilting up and zooming in."
    assert motion.camera_motion_phrase("tilt_down+zoom_out") == "The camera tilts down while zooming out."
    assert motion.camera_motion_phrase("static") == "The camera is static."
    assert motion.camera_motion_phrase("unclassified") == ""
    assert motion.camera_motion_phrase("") == ""
    assert motion.camera_motion_phrase("pan_left+bogus") == ""


def test_append_motion_to_caption():
    assert motion.append_motion_to_caption("A cat sleeps.", "static") == "A cat sleeps. The camera is static."
    assert motion.append_motion_to_caption("A cat sleeps. ", "pan_right+zoom_in") == \
        "A cat sleeps. The camera pans right while zooming in."
    assert motion.append_motion_to_caption("A cat sleeps.", "unclassified") == "A cat sleeps."
    assert motion.append_motion_to_caption("", "tilt_up") == "The camera tilts up."
    for label in ALL_COMBOS:
        assert motion.append_motion_to_caption("X.", label) == "X. " + motion.camera_motion_phrase(label)
