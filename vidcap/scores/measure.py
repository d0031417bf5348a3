"""The CPU scores of one row, from a ``vidcap.scores.decode.Scan`` (grey frames + motion vectors).

Units: EasyAnimate's (and Data-Juicer's) Farneback motion score compares frames ``gap = int(fps / 2)``
apart (2 frames a second) at the source resolution. ``pair_offsets(n, fps, pairs, step)`` picks
``pairs`` frame pairs spread evenly over the range, each ``round(step * gap)`` frames apart (at least 1):
a shorter step keeps fast motion inside Farneback's reach (3 pyramid levels follow about 20 px; over a
whole interval a fast pan is lost and EasyAnimate's own score saturates, ``bench/scores``).
``scores(scan, offsets, knobs)`` then gives:

* ``motion_flow``: mean Farneback flow magnitude of the pairs (EasyAnimate's parameters: pyramid 0.5,
  3 levels, window 15, 3 iterations, poly_n 5, sigma 1.2), computed on frames shrunk to
  ``flow_short_side`` and scaled back to source pixels and to the ``gap`` interval (linearly): pixels of
  the source resolution per ``int(fps / 2)`` frames, the units of EasyAnimate's ``motion_score`` (its
  filter keeps >= 2).
* ``motion_mv``: the codec's own motion vectors, mean length over every inter frame of the range,
  times the same ``int(fps / 2)``: the same units, no optical flow; null when the codec exports none.
* ``laplacian_var``: mean variance of the Laplacian over the pairs' first frames (source resolution;
  NeMo Curator's blur score: lower = blurrier).
* ``brightness`` (mean grey level 0-255), ``dark_share`` / ``overexposed_share`` (share of pixels at or
  below ``dark_level`` / at or above ``overexposed_level``).
* ``still``: ``static`` (nothing moves in most pairs — the median pair flow is below ``still_flow`` — and
  the sampled frames look alike), ``slideshow`` (nothing moves inside most pairs but the frames change
  between them by ``still_change`` grey levels: stills cut together; a pair across a cut is outvoted),
  ``moving``; ``image`` for a one-frame row. A range shorter than the gap uses the pair (first, last)
  and scales its flow to the gap; a single-frame range has no motion (null) and ``still`` ``image``.
"""
from __future__ import annotations

import numpy as np

FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5,
             "poly_sigma": 1.2, "flags": 0}


def gap_frames(fps: float) -> int:
    """EasyAnimate's frame interval for 2 frames a second: ``int(fps / 2)``, at least 1."""
    return max(1, int(fps / 2))


def pair_offsets(n: int, fps: float, pairs: int, step: float = 1.0) -> list[tuple[int, int]]:
    """Up to ``pairs`` (a, b) frame pairs of a range of ``n`` frames, ``round(step * gap_frames(fps))``
    apart (at least 1; less when the range is shorter), spread evenly; none for one frame."""
    if n < 2:
        return []
    gap = min(max(1, round(step * gap_frames(fps))), n - 1)
    starts = sorted({int(round(v)) for v in np.linspace(0, n - 1 - gap, max(1, pairs))})
    return [(a, a + gap) for a in starts]


def shrink(grey: np.ndarray, short_side: int | None) -> tuple[np.ndarray, float]:
    """(frame shrunk so its shorter side is at most ``short_side``, source px per working px)."""
    import cv2

    h, w = grey.shape
    if not short_side or min(h, w) <= short_side:
        return grey, 1.0
    f = short_side / min(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA), w / size[0]


def flow_magnitude(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Farneback flow magnitude from ``a`` to ``b`` (grey uint8, same size), in their pixels."""
    import cv2

    flow = cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK)
    mag, _ = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    return float(np.mean(mag))


def laplacian_var(grey: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def scores(scan, offsets: list[tuple[int, int]], knobs: dict) -> dict:
    """The CPU score columns of one row (see the module docstring)."""
    firsts = [scan.frames[a] for a, _ in offsets] or [scan.frames[min(scan.frames)]]
    grey = np.stack([f.ravel() for f in firsts])
    out: dict = {
        "laplacian_var": float(np.mean([laplacian_var(f) for f in firsts])),
        "brightness": float(grey.mean()),
        "dark_share": float((grey <= knobs["dark_level"]).mean()),
        "overexposed_share": float((grey >= knobs["overexposed_level"]).mean()),
        "motion_flow": None, "motion_mv": None, "still": "image",
    }
    if not offsets:
        return out
    gap = gap_frames(scan.fps)
    flows, smalls = [], []
    for a, b in offsets:
        fa, scale = shrink(scan.frames[a], knobs["flow_short_side"])
        fb, _ = shrink(scan.frames[b], knobs["flow_short_side"])
        flows.append(flow_magnitude(fa, fb) * scale * gap / (b - a))
        smalls.append(fa)
    out["motion_flow"] = float(np.mean(flows))
    if scan.mv_lengths:
        out["motion_mv"] = float(np.mean(scan.mv_lengths)) * gap
    out["still"] = still(flows, smalls, knobs)
    return out


def still(flows: list[float], smalls: list[np.ndarray], knobs: dict) -> str:
    """``static`` | ``slideshow`` | ``moving`` from the pairs' flows and the pairs' first frames."""
    if float(np.median(flows)) >= knobs["still_flow"]:
        return "moving"
    changes = [float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16)))) for a, b in zip(smalls, smalls[1:])]
    return "slideshow" if changes and max(changes) >= knobs["still_change"] else "static"
