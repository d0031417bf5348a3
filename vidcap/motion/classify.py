"""Camera-motion classification: pan / tilt / zoom labels from sampled frames.

Contract
--------
``classify_path(path, **knobs)`` reads frames of a video through ``vidcap.media.frames`` (``num_frames`` evenly
spaced, then more where the camera moves fast; never a repeated frame) and returns a dict with exactly
the keys of ``OUTPUT_COLUMNS``; ``classify_frames(frames, **knobs)`` does the same for an ``(N, H, W, 3)``
uint8 RGB array of distinct frames in clip order (no frames can be added). Keys:

* ``cmotion``: ``static``, ``unclassified``, or a ``+``-joined, sorted set of ``pan_left``/``pan_right``,
  ``tilt_up``/``tilt_down``, ``zoom_in``/``zoom_out`` (at most one per axis), e.g. ``pan_left+tilt_up``.
* ``motion_pan``: net horizontal camera motion over the clip, as a fraction of the frame's shorter side
  (the summed shift of the dominant background at the frame centre); ``+`` = pan right (the scene moves
  LEFT in the frame).
* ``motion_tilt``: same for the vertical axis; ``+`` = tilt up (the scene moves DOWN in the frame).
* ``motion_zoom``: ``ln(total magnification)`` of the dominant background; ``+`` = zoom in. 0.0953 =
  1.10x, -0.0953 = 1/1.10x.
* ``motion_fit``: 0..1, median over frame pairs of the share of detected corners that were tracked and
  agree with the fitted camera motion (1 = every feature explained by pan/tilt/zoom).
* ``motion_reason``: ``''`` when a label was decided, else why the clip is ``unclassified``:
  ``'too few frames'`` (fewer than 3 distinct frames), ``'low texture'``, ``'scene cut'`` (a cut, a
  dissolve or a dip to black), ``'inconsistent motion'``, ``'rotation'``.

An axis moves when ``|motion_pan|`` or ``|motion_tilt|`` reaches ``threshold`` (0.25 of the shorter side)
or the magnification reaches ``1 + zoom_threshold`` (1.10x) or ``1 / (1 + zoom_threshold)``.
Never raises on content; unreadable files raise ``vidcap.errors.FrameError`` (from ``vidcap.media.frames``).
Method and knobs: ``docs/motion.md``; tracking core: ``vidcap.motion.track``.
"""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from vidcap.camera_text import append_motion_to_caption, camera_motion_phrase  # noqa: F401 - the labels' sentences
from vidcap.media import frames as vf
from vidcap.motion import track as mt

MOTION_LABELS = (
    "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "static", "unclassified",
)
OUTPUT_COLUMNS = ("cmotion", "motion_pan", "motion_tilt", "motion_zoom", "motion_fit", "motion_reason")
# Fewer distinct frames than this cannot show a cut from a camera move: 'too few frames'.
MIN_FRAMES = 3
# Content score (vidcap.motion.track.content_score) of two views of the same, registered content.
CONTENT_SAME = 0.8

DEFAULTS: dict[str, Any] = {
    # Net pan / tilt over the clip, as a fraction of the frame's shorter side, that counts (Open-Sora's 0.25).
    "threshold": 0.25,
    # Total scale change that counts as a zoom: magnification >= 1 + this (in) or <= 1 / (1 + this) (out).
    "zoom_threshold": 0.10,
    # Frames first sampled evenly over the clip (first and last included); at least 4.
    "num_frames": 10,
    # Most frames read per clip, counting the frames added where the camera moves fast.
    "max_frames": 40,
    # A frame pair whose fitted motion moves a frame corner by more than this fraction of the shorter side
    # (or that no camera motion explains) gets the frame halfway between them, while max_frames allows.
    "max_step": 0.2,
    # Working resolution: frames are downscaled (INTER_AREA) so their shorter side is at most this.
    "short_side": 128,
    # Most corners tracked per frame, and their minimum spacing in working px (non-maximum suppression).
    "max_features": 120,
    "min_distance": 6,
    # Corners are spread over a grid x grid layout, each cell keeping at most max_features / grid^2.
    "grid": 4,
    # Texture floor relative to noise: on the contrast-normalised frame a corner counts when its
    # min-eigenvalue response is at least this many times the largest that noise of the frame's level
    # produces (pure noise of std s reaches 4.4e-5 * s^2); the level is the larger of the measured noise
    # and the 8-bit quantisation error (0.3 grey levels) amplified by the normalisation.
    "texture_snr": 2.5,
    # A frame with fewer corners than this is low texture (a clip whose frames are, is unclassified).
    "min_features": 8,
    # Forward-backward LK check: a track is kept when it returns within this many working px.
    "fb_max_error": 1.5,
    # RANSAC inlier threshold for the similarity fit, in working px.
    "ransac_reproj": 1.5,
    # A frame pair is explained when inliers / detected corners >= this (and >= min_inliers inliers).
    "min_inlier_ratio": 0.15,
    "min_inliers": 6,
    # The last frame compared with the earliest frame it overlaps must look like it moved (75th percentile
    # of local correlations >= this); less, while each stretch of the clip agrees with itself, means the
    # content was replaced: a dissolve.
    "min_content": 0.35,
    # Net roll in degrees above which the clip is 'rotation' (unclassified).
    "max_rotation": 8.0,
    # Motion both ways along one axis, each at least this times its threshold -> 'inconsistent motion'.
    "max_reversal": 1.0,
}

_AXES = (("motion_pan", "pan_right", "pan_left"), ("motion_tilt", "tilt_up", "tilt_down"),
         ("motion_zoom", "zoom_in", "zoom_out"))


def _knobs(overrides: dict) -> dict:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown motion knob(s): {sorted(unknown)}")
    k = {**DEFAULTS, **overrides}
    if int(k["num_frames"]) < 4:
        raise ValueError(f"num_frames must be >= 4, got {k['num_frames']}")
    return k


def _result(label: str, pan=0.0, tilt=0.0, zoom=0.0, fit=0.0, reason="") -> dict:
    return {"cmotion": label, "motion_pan": float(pan), "motion_tilt": float(tilt), "motion_zoom": float(zoom),
            "motion_fit": float(fit), "motion_reason": reason}


# ------------------------------------------------------------------------------------------- reading

def read_motion_frames(path, num_frames: int = DEFAULTS["num_frames"],
                       short_side: int = DEFAULTS["short_side"]) -> np.ndarray:
    """Up to ``num_frames`` distinct frames evenly spaced over the clip at ``path`` (first and last
    included; fewer when the clip has fewer frames), downscaled so the shorter side is ``short_side`` (never
    upscaled): (N, H, W, 3) uint8 RGB. Raises ``FrameError`` on unreadable input."""

    got = vf.sample_frames(path, num_frames=max(4, int(num_frames)), policy="uniform", resize_short=short_side,
                           unique=True)
    return np.asarray(got.frames)


def classify_path(path, time_range: tuple[float | None, float | None] | None = None, **knobs) -> dict:
    """Classify the clip at ``path`` (see the module docstring). Frames come from ``vidcap.media.frames``:
    ``num_frames`` evenly spaced first, then, round by round, the frame halfway between any two samples
    whose motion is large or unexplained, up to ``max_frames`` in all. ``time_range``: (start, end)
    seconds (either None = the file's edge): only frames inside ``[start, end)`` are looked at."""

    k = _knobs(knobs)
    size = int(k["short_side"])
    got = vf.sample_frames(path, num_frames=int(k["num_frames"]), policy="uniform", resize_short=size, unique=True,
                           time_range=time_range)
    idx, frames = list(got.indices), list(got.frames)

    def more(want: list[int]) -> list[np.ndarray]:
        return list(vf.read_frames(path, want, resize_short=size).frames)

    return _classify(idx, frames, more, k)


def classify_frames(frames: np.ndarray, **knobs) -> dict:
    """Classify ``frames`` ((N, H, W, 3) or (N, H, W) uint8, distinct frames in clip order); no frames can
    be added between them, so a pair that moves too far for tracking stays unexplained."""
    k = _knobs(knobs)
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or len(frames) < MIN_FRAMES or min(frames.shape[1:3]) < 8:
        return _result("unclassified", reason="too few frames")
    if frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    if frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    return _classify(list(range(len(frames))), list(frames), None, k)


# ---------------------------------------------------------------------------------------- classification

def _usable(order: list[int], preps: dict, k: dict) -> list[int] | str:
    """The frames to measure: leading/trailing frames without texture are dropped when they are blank or
    look like the nearest textured frame (a fade from/to black), else the content changed ('scene cut');
    a blank frame between textured ones is a dip to black ('scene cut'), a low-texture one 'low texture'."""
    ok = [not preps[i].blank and preps[i].textured for i in order]
    if not any(ok):
        return "low texture"
    first, last = ok.index(True), len(ok) - 1 - ok[::-1].index(True)
    inner = order[first:last + 1]
    for i, good in zip(inner, ok[first:last + 1], strict=True):
        if not good:
            return "scene cut" if preps[i].blank else "low texture"
    if len(inner) < MIN_FRAMES or inner[-1] - inner[0] < 0.5 * (order[-1] - order[0]):
        return "low texture"
    for edge, nearest in ((first - 1, order[first]), (last + 1, order[last])):
        if 0 <= edge < len(order) and not preps[order[edge]].blank:
            a, b = preps[nearest], preps[order[edge]]
            scores = [mt.content_score(a, b, m) for m in (np.eye(3), mt.phase_prior(a.gray, b.gray))]
            if max((x for x in scores if x is not None), default=-1.0) < float(k["min_content"]):
                return "scene cut"
    return inner


def _overlap(m: np.ndarray, shape) -> float:
    """Share of the frame covered by the frame moved by ``m``."""
    h, w = shape
    rect = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    moved = cv2.perspectiveTransform(rect.reshape(-1, 1, 2), m).reshape(-1, 2).astype(np.float32)
    area, _ = cv2.intersectConvexConvex(rect, moved)
    return float(area) / float(w * h)


def _earliest_score(jp: int, use: list[int], preps: dict, cum: list[np.ndarray]) -> float | None:
    """Content score of frame ``use[jp]`` against the earliest non-adjacent earlier frame that overlaps it
    by half or more at a similar scale (None when there is none)."""
    shape = preps[use[0]].gray.shape
    inv_j = cum[jp]
    for ip in range(jp - 1):
        m = inv_j @ np.linalg.inv(cum[ip])
        ls, _ = mt.decompose(m)
        if abs(ls) > math.log(2.0) or _overlap(m, shape) < 0.5:
            continue
        score = mt.content_score(preps[use[ip]], preps[use[jp]], m)
        if score is not None:
            return score
    return None


def _content_changed(use: list[int], preps: dict, cum: list[np.ndarray], k: dict) -> bool:
    """A dissolve (or a cut the pairs missed): the last frame agrees with the frame two samples before it
    (its content is stable and registered) and the early frames agreed with the first, but the last frame
    disagrees with the earliest frame it overlaps (< ``min_content``): the content was replaced."""
    n = len(use)
    if n < 4:
        return False
    last = n - 1
    local = mt.content_score(preps[use[last - 2]], preps[use[last]], cum[last] @ np.linalg.inv(cum[last - 2]))
    if local is None or local < CONTENT_SAME:
        return False
    far = _earliest_score(last, use, preps, cum)
    if far is None or far >= float(k["min_content"]):
        return False
    early = _earliest_score(2, use, preps, cum)
    return early is not None and early >= CONTENT_SAME


def _classify(indices: list[int], frames: list[np.ndarray], more, k: dict) -> dict:
    if len(indices) < MIN_FRAMES:
        return _result("unclassified", reason="too few frames")
    preps = {}

    def add(idx, frs):
        for i, f in zip(idx, frs, strict=True):
            preps[i] = mt.prepare(f, i, k)

    add(indices, frames)
    fits: dict[tuple[int, int], mt.PairFit] = {}
    short = float(min(preps[indices[0]].gray.shape))
    max_step = float(k["max_step"]) * short
    first = set(indices)
    while True:
        use = _usable(sorted(preps), preps, k)
        if isinstance(use, str):
            return _result("unclassified", reason=use)
        steps = []
        prior, prior_gap = None, 1
        for a, b in zip(use[:-1], use[1:], strict=True):
            fit = fits.get((a, b))
            if fit is None:
                guess: np.ndarray | None = None if prior is None else mt.power(prior, (b - a) / prior_gap)
                fit = fits[(a, b)] = mt.pair_motion(preps[a], preps[b], guess, k)
            if fit.matrix is not None:
                prior, prior_gap = fit.matrix, b - a
                steps.append(mt.corner_step(fit.matrix, preps[a].gray.shape))
            else:
                steps.append(math.inf)
        # Split a pair that moves too far; split an unexplained pair once, and again only while a pair
        # next to it moves fast (a fast pan), not when its neighbours are calm (a cut).
        need = []
        for p, (a, b) in enumerate(zip(use[:-1], use[1:], strict=True)):
            if b - a < 2 or steps[p] <= max_step:
                continue
            if math.isinf(steps[p]) and not (a in first and b in first):
                near = [steps[q] for q in (p - 1, p + 1) if 0 <= q < len(steps) and not math.isinf(steps[q])]
                if max(near, default=0.0) <= 0.5 * max_step:
                    continue
            need.append((-steps[p], (a + b) // 2))
        room = int(k["max_frames"]) - len(preps)
        if not need or more is None or room <= 0:
            break
        want = sorted({mid for _, mid in sorted(need)[:room]} - set(preps))
        if not want:
            break
        add(want, more(want))

    pairs = [fits[(a, b)] for a, b in zip(use[:-1], use[1:], strict=True)]
    fit_q = float(np.median([p.ratio for p in pairs]))
    broken = sum(p.matrix is None for p in pairs)
    if broken:
        # one or a few unexplained pairs among good ones: a cut; mostly unexplained: chaos
        reason = "scene cut" if broken <= max(1, len(pairs) // 4) else "inconsistent motion"
        return _result("unclassified", fit=fit_q, reason=reason)

    frames_used = [preps[i] for i in use]
    cum, _ = mt.chain(frames_used, [p.matrix for p in pairs if p.matrix is not None], k)  # none is None: `broken` is 0
    h, w = frames_used[0].gray.shape
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0])
    dxs, dys, dlogs, drot = [], [], [], []
    for j in range(1, len(cum)):
        d = cum[j] @ np.linalg.inv(cum[j - 1])
        moved = d @ centre
        dxs.append(moved[0] - centre[0])
        dys.append(moved[1] - centre[1])
        ls, rot = mt.decompose(d)
        dlogs.append(ls)
        drot.append(rot)
    dx, dy, dlog = np.array(dxs), np.array(dys), np.array(dlogs)
    pan, tilt, zoom = -dx.sum() / short, dy.sum() / short, float(dlog.sum())
    if _content_changed(use, preps, cum, k):
        return _result("unclassified", pan, tilt, zoom, fit_q, "scene cut")
    if abs(float(np.sum(drot))) > float(k["max_rotation"]):
        return _result("unclassified", pan, tilt, zoom, fit_q, "rotation")
    thr = float(k["threshold"])
    zthr = math.log1p(float(k["zoom_threshold"]))
    rev = float(k["max_reversal"])
    for moves, t in ((-dx / short, thr), (dy / short, thr), (dlog, zthr)):
        if min(moves[moves > 0].sum(), -moves[moves < 0].sum()) >= rev * t:
            return _result("unclassified", pan, tilt, zoom, fit_q, "inconsistent motion")
    parts = []
    for (_, plus, minus), v, t in zip(_AXES, (pan, tilt, zoom), (thr, thr, zthr), strict=True):
        if v >= t:
            parts.append(plus)
        elif v <= -t:
            parts.append(minus)
    return _result("+".join(sorted(parts)) if parts else "static", pan, tilt, zoom, fit_q)
