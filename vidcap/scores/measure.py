"""The CPU scores of one row, from a ``vidcap.scores.decode.Scan`` (grey frames + motion vectors).

Units: EasyAnimate's (and Data-Juicer's) Farneback motion score compares frames ``gap = int(fps / 2)``
apart (2 frames a second) at the source resolution. ``pair_offsets(n, fps, pairs, step)`` picks
``pairs`` frame triples ``(a, a + short, a + long)`` spread evenly over the range: ``short`` =
``round(step * gap)`` frames (at least 1), ``long`` = ``gap`` (both less when the range is shorter).
Each pair's flow is measured over the short step (fast motion stays inside Farneback's reach: 3 pyramid
levels follow about 20 px; over a whole interval a fast pan is lost and EasyAnimate's own score
saturates, ``bench/scores``); when the short step predicts less than ``LONG_PAIR_PX`` working pixels over
the whole interval, the long pair is measured instead (slow motion is then above the noise).
``scores(scan, triples, knobs)`` gives:

* ``motion_flow``: the median over pixels of the Farneback flow magnitude (EasyAnimate's parameters:
  pyramid 0.5, 3 levels, window 15, 3 iterations, poly_n 5, sigma 1.2), on frames shrunk to
  ``flow_short_side``, scaled back to source pixels and (linearly) to the ``gap`` interval, averaged over
  the pairs: source pixels per ``int(fps / 2)`` frames, EasyAnimate's units (its filter keeps >= 2).
  The median, not EasyAnimate's mean: the motion of most of the frame, which a small fast object,
  noise or a flash does not decide (on ``bench/scores``' dev split the mean followed crossing objects).
* ``motion_mv``: the codec's own motion vectors in the same units, no optical flow: per inter frame the
  median vector length divided by its distance to the reference (the previous / next I or P frame in
  display order, which is exact for one reference frame), averaged over frames, times ``gap``; null
  when the codec exports none (``vidcap.scores.decode``).
* ``laplacian_var``: mean variance of the Laplacian over the pairs' first frames (source resolution;
  NeMo Curator's blur score: lower = blurrier).
* ``brightness`` (mean grey level 0-255), ``dark_share`` / ``overexposed_share`` (share of pixels at or
  below ``dark_level`` / at or above ``overexposed_level``).
* ``still``: ``static`` (nothing moves in most pairs — the median short-step flow is below ``still_flow`` — and
  the sampled frames look alike), ``slideshow`` (nothing moves inside most pairs but the frames change
  between them by ``still_change`` grey levels: stills cut together; a pair across a cut is outvoted),
  ``moving``; ``image`` for a one-frame row or range (no motion: null).
"""
from __future__ import annotations

import numpy as np

# pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags (EasyAnimate's)
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)
LONG_PAIR_PX = 8.0   # working pixels over the whole interval below which the long pair is measured


def gap_frames(fps: float) -> int:
    """EasyAnimate's frame interval for 2 frames a second: ``int(fps / 2)``, at least 1."""
    return max(1, int(fps / 2))


def pair_offsets(n: int, fps: float, pairs: int, step: float = 1.0) -> list[tuple[int, int, int]]:
    """Up to ``pairs`` triples ``(a, a + short, a + long)`` of a range of ``n`` frames (module docstring),
    spread evenly; none for one frame."""
    if n < 2:
        return []
    long = min(gap_frames(fps), n - 1)
    short = min(max(1, round(step * gap_frames(fps))), long)
    starts = sorted({int(round(v)) for v in np.linspace(0, n - 1 - long, max(1, pairs))})
    return [(a, a + short, a + long) for a in starts]


def shrink(grey: np.ndarray, short_side: int | None) -> tuple[np.ndarray, float]:
    """(frame shrunk so its shorter side is at most ``short_side``, source px per working px)."""
    import cv2  # heavy/optional library: loaded only when this runs

    h, w = grey.shape
    if not short_side or min(h, w) <= short_side:
        return grey, 1.0
    f = short_side / min(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = grey
    while min(small.shape) >= 2 * short_side:   # halvings first: 4x cheaper than one INTER_AREA from the top
        small = cv2.pyrDown(small)
    return cv2.resize(small, size, interpolation=cv2.INTER_AREA), w / size[0]


def flow_magnitude(a: np.ndarray, b: np.ndarray) -> float:
    """Median Farneback flow magnitude from ``a`` to ``b`` (grey uint8, same size), in their pixels."""
    import cv2  # heavy/optional library: loaded only when this runs

    flow = cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK)  # type: ignore[call-overload]
    mag, _ = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    return float(np.median(mag))


def laplacian_var(grey: np.ndarray) -> float:
    import cv2  # heavy/optional library: loaded only when this runs

    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))   # 8-bit in: |value| <= 1020 fits
    return float(std[0, 0]) ** 2


def pair_flow(scan, triple: tuple[int, int, int], short_side: int | None, gap: int) -> tuple[float, float, np.ndarray]:
    """(the pair's flow in motion_flow units, the short step's alone, its first frame at working size)."""
    a, b, c = triple
    fa, scale = shrink(scan.frames[a], short_side)
    short = working = flow_magnitude(fa, shrink(scan.frames[b], short_side)[0]) / (b - a)   # working px a frame
    if c > b and working * (c - a) < LONG_PAIR_PX:
        working = flow_magnitude(fa, shrink(scan.frames[c], short_side)[0]) / (c - a)
    return working * scale * gap, short * scale * gap, fa


def mv_speed(records: list[tuple[int, str, np.ndarray, np.ndarray]]) -> float | None:
    """Codec motion in source px per frame: per frame the median of vector length / reference distance
    (past vectors to the previous I/P frame, future ones to the next), averaged over frames."""
    anchors = sorted(off for off, kind, _, _ in records if kind in ("I", "P"))
    values = []
    for off, _, past, future in records:
        before = [x for x in anchors if x < off]
        after = [x for x in anchors if x > off]
        parts = []
        if len(past) and before:
            parts.append(past / (off - before[-1]))
        if len(future) and after:
            parts.append(future / (after[0] - off))
        if parts:
            values.append(float(np.median(np.concatenate(parts))))
    return float(np.mean(values)) if values else None


def scores(scan, triples: list[tuple[int, int, int]], knobs: dict) -> dict:
    """The CPU score columns of one row (see the module docstring)."""
    firsts = [scan.frames[t[0]] for t in triples] or [scan.frames[min(scan.frames)]]
    grey = np.stack([f.ravel() for f in firsts])
    out: dict = {
        "laplacian_var": float(np.mean([laplacian_var(f) for f in firsts])),
        "brightness": float(grey.mean()),
        "dark_share": float((grey <= knobs["dark_level"]).mean()),
        "overexposed_share": float((grey >= knobs["overexposed_level"]).mean()),
        "motion_flow": None, "motion_mv": None, "still": "image",
    }
    if not triples:
        return out
    gap = gap_frames(scan.fps)
    measured = [pair_flow(scan, t, knobs["flow_short_side"], gap) for t in triples]
    out["motion_flow"] = float(np.mean([f for f, _, _ in measured]))
    speed = mv_speed(scan.mv_records)
    if speed is not None:
        out["motion_mv"] = speed * gap
    # stills are judged on the short steps: a long pair is more likely to span a slideshow's cut
    out["still"] = still([f for _, f, _ in measured], [s for _, _, s in measured], knobs)
    return out


def still(flows: list[float], smalls: list[np.ndarray], knobs: dict) -> str:
    """``static`` | ``slideshow`` | ``moving`` from the pairs' flows and the pairs' first frames."""
    if float(np.median(flows)) >= knobs["still_flow"]:
        return "moving"
    changes = [float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16)))) for a, b in zip(smalls, smalls[1:])]
    return "slideshow" if changes and max(changes) >= knobs["still_change"] else "static"
