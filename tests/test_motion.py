"""Camera-motion classifier (vidcap.motion): labels, captions, and a small subset of the benchmark clips.

The clip subset uses bench/motion/clips.py (scikit-image photographs when installed, procedural textures
otherwise), encodes real H.264 .mp4 files and reads them back through read_motion_frames.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcap import motion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench" / "motion"))
import clips  # noqa: E402

AXES = [("pan_left", "pan_right"), ("tilt_up", "tilt_down"), ("zoom_in", "zoom_out")]
# every non-empty set with at most one direction per axis: 6 singles + 12 pairs + 8 triples
ALL_COMBOS = sorted({"+".join(sorted(choice[a] for a in axes))
                     for r in (1, 2, 3) for axes in itertools.combinations(range(3), r)
                     for choice in itertools.product(*AXES)})


def _spec(label_vals, nuisance="clean", seed=3, frames=48, photo=0, **extra):
    pan, tilt, zoom = label_vals
    label = clips.expected_label(pan, tilt, zoom)
    return clips.ClipSpec(f"t{seed}", label, nuisance, "+" in label, pan, tilt, zoom, num_frames=frames,
                          photo=photo, seed=seed, extra=extra)


def _classify_rendered(spec):
    frames = np.stack(clips.render_clip(spec))
    idx = np.round(np.linspace(0, len(frames) - 1, motion.DEFAULTS["num_frames"])).astype(int)
    return motion.classify_frames(frames[idx])


# ------------------------------------------------------------------------------------------ unit: labels

def test_labels_and_defaults():
    assert len(motion.MOTION_LABELS) == 8
    assert set(motion.MOTION_LABELS) == {"pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in",
                                         "zoom_out", "static", "unclassified"}
    assert motion.DEFAULTS["threshold"] == 0.25
    with pytest.raises(TypeError):
        motion.classify_frames(np.zeros((4, 32, 32, 3), np.uint8), no_such_knob=1)


def test_output_columns_exact():
    res = motion.classify_frames(np.zeros((4, 64, 64, 3), np.uint8))
    assert tuple(res) == motion.OUTPUT_COLUMNS
    assert isinstance(res["cmotion"], str) and isinstance(res["motion_reason"], str)
    for key in ("motion_pan", "motion_tilt", "motion_zoom", "motion_fit"):
        assert isinstance(res[key], float)


@pytest.mark.parametrize("vals,label", [
    ((0.6, 0, 0), "pan_right"), ((-0.6, 0, 0), "pan_left"),
    ((0, 0.6, 0), "tilt_up"), ((0, -0.6, 0), "tilt_down"),
    ((0, 0, 0.55), "zoom_in"), ((0, 0, -0.55), "zoom_out"),
])
def test_each_single_direction(vals, label):
    res = _classify_rendered(_spec(vals, photo=2))
    assert res["cmotion"] == label, res
    # signed values follow the documented conventions
    axis = {"pan": "motion_pan", "tilt": "motion_tilt", "zoom": "motion_zoom"}[label.split("_")[0]]
    assert res[axis] == pytest.approx(sum(vals), abs=0.12)


def test_combination_sorted_and_joined():
    res = _classify_rendered(_spec((0.5, 0.5, -0.5), photo=5))
    assert res["cmotion"] == "pan_right+tilt_up+zoom_out"
    res = _classify_rendered(_spec((-0.5, -0.5, 0), photo=1))
    assert res["cmotion"] == "pan_left+tilt_down"
    parts = res["cmotion"].split("+")
    assert parts == sorted(parts)


def test_static_with_moving_foreground_is_static():
    for seed in (11, 12):
        res = _classify_rendered(_spec((0, 0, 0), nuisance="foreground", seed=seed, photo=seed % 10))
        assert res["cmotion"] == "static", res


def test_below_threshold_motion_is_static():
    res = _classify_rendered(_spec((0.08, -0.06, 0.05), photo=3))
    assert res["cmotion"] == "static", res


def test_low_texture_is_unclassified():
    flat = np.full((10, 90, 160, 3), 128, np.uint8)
    noise = np.random.default_rng(0).normal(0, 3, flat.shape)
    res = motion.classify_frames(np.clip(flat + noise, 0, 255).astype(np.uint8))
    assert res["cmotion"] == "unclassified" and res["motion_reason"] == "low texture"
    res = _classify_rendered(_spec((0.6, 0, 0), nuisance="low_texture", seed=5))
    assert res["cmotion"] == "unclassified", res


def test_too_few_frames():
    one = np.zeros((1, 64, 64, 3), np.uint8)
    res = motion.classify_frames(one)
    assert res["cmotion"] == "unclassified" and res["motion_reason"] == "too few frames"


def test_rotation_and_cut_are_unclassified():
    spec = _spec((0, 0, 0), photo=4)
    spec.rotation = 40.0
    spec.label, spec.nuisance = "unclassified", "rotation"
    res = _classify_rendered(spec)
    assert (res["cmotion"], res["motion_reason"]) == ("unclassified", "rotation"), res
    spec = _spec((0.5, 0, 0), nuisance="cut", photo=1, cut_at=0.5, photo2=6, vals2=[0, 0.5, 0])
    res = _classify_rendered(spec)
    assert (res["cmotion"], res["motion_reason"]) == ("unclassified", "scene cut"), res


def test_flicker_noise_and_jitter_do_not_create_motion():
    for nuisance in ("flicker", "noise", "jitter"):
        res = _classify_rendered(_spec((0, 0, 0), nuisance=nuisance, seed=21, photo=7))
        assert res["cmotion"] == "static", (nuisance, res)


# ----------------------------------------------------------------------------------------- unit: phrases

def test_phrase_every_combination():
    assert len(ALL_COMBOS) == 26
    for label in ALL_COMBOS:
        phrase = motion.camera_motion_phrase(label)
        assert phrase.startswith("The camera ") and phrase.endswith("."), label
        for part in label.split("+"):
            verb = part.split("_")[0]
            assert verb in phrase and part.split("_")[1] in phrase, (label, phrase)
        # order-insensitive input
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


# ------------------------------------------------------------------------------- benchmark clip subset

def test_benchmark_subset_accuracy(tmp_path):
    """24 benchmark clips (seed 7, neither the tune seed 0 nor the test seed 1), through real .mp4 files."""
    cv2.setNumThreads(1)
    specs = clips.make_specs(24, seed=7)
    correct = 0
    wrong = []
    for spec in specs:
        path = clips.write_clip(spec, tmp_path / f"{spec.name}.mp4")
        res = motion.classify_path(path)
        if res["cmotion"] == spec.label:
            correct += 1
        else:
            wrong.append((spec.name, spec.nuisance, spec.label, res["cmotion"], res["motion_reason"]))
    assert correct / len(specs) >= 0.9, wrong


def test_read_motion_frames(tmp_path):
    spec = _spec((0.5, 0, 0), frames=40)
    path = clips.write_clip(spec, tmp_path / "c.mp4")
    frames = motion.read_motion_frames(path, 10, 160)
    assert frames.shape == (10, 160, 284, 3) and frames.dtype == np.uint8
