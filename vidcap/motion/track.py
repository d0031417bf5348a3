"""Tracking core of the camera-motion classifier (``vidcap.motion.classify``): frames in, camera transforms out.

* ``prepare(frame, index, knobs)`` -> ``Prepared``: the frame as grey at working resolution, normalised to
  a fixed mean and contrast, its noise level, its corners (above a floor set by that noise), whether it
  is blank (no contrast at all: a black or flat frame) and whether it has enough corners to track.
* ``pair_motion(a, b, prior, knobs)`` -> ``PairFit``: the similarity transform (shift, uniform scale,
  roll) taking ``a`` to ``b``, fitted on tracked corners; ``None`` when the pair is not explained.
* ``chain(frames, pair_models, knobs)`` -> cumulative transforms (first frame -> each frame): corners are
  tracked from a key frame over several frames and the transform is fitted key -> current, so layers at
  different depths separate over the longer baseline instead of being averaged pair by pair.
* ``content_score(a, b, transform)``: how much of ``b`` looks like ``a`` moved by ``transform`` (0..1,
  the best quarter of local correlations over their overlap); a dissolve or cut gives ~0.

Transforms are 3x3 float64 matrices in working-pixel coordinates. Nothing here raises on content.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# Pure sensor noise of std s gives cv2.cornerMinEigenVal (blockSize 3, ksize 3) local maxima up to
# about NOISE_EIG * s**2 (measured: 3.5e-5 at the 99th percentile, 4.4e-5 at the maximum).
NOISE_EIG = 4.4e-5
# A frame whose grey levels vary less than this (std, 0-255, working resolution) is blank: black, white
# or flat. Night footage can vary by only 1-2 grey levels and still track after normalisation.
BLANK_STD = 0.5
# Corner floor on the normalised frame (std 40) whatever the noise.
MIN_EIG = 3e-5
NORM_STD = 40.0
# Grey-level error of an 8-bit, compressed frame (rounding plus codec smoothing), in grey levels before
# normalisation: a dim frame's quantisation steps are amplified with its contrast and are not texture.
QUANT_STD = 0.3
# content_score ignores cells whose grey levels (normalised frame, std 40 overall) vary less than this.
CELL_TEXTURE_STD = 8.0

_LK: dict[str, Any] = {"winSize": (17, 17), "maxLevel": 3,
       "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


@dataclass
class Prepared:
    index: int                 # frame number in the clip
    gray: np.ndarray           # normalised grey, uint8, working resolution
    corners: np.ndarray        # (M, 1, 2) float32 (x, y)
    blank: bool
    noise: float               # noise std estimated on the normalised frame
    textured: bool = False     # at least min_features corners


@dataclass
class PairFit:
    matrix: np.ndarray | None  # 3x3 a -> b, None when unexplained
    inliers: int
    detected: int

    @property
    def ratio(self) -> float:
        return self.inliers / self.detected if self.detected else 0.0


def to_gray(frame: np.ndarray, short_side: int) -> np.ndarray:
    """Grey uint8 frame downscaled (INTER_AREA) so its shorter side is at most ``short_side``."""
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    h, w = gray.shape
    if min(h, w) > short_side:
        f = short_side / min(h, w)
        gray = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray)


def prepare(frame: np.ndarray, index: int, k: dict) -> Prepared:
    gray = to_gray(frame, int(k["short_side"]))
    means, stds = cv2.meanStdDev(gray)
    std = float(stds[0, 0])
    if std < BLANK_STD:
        return Prepared(index, gray, np.zeros((0, 1, 2), np.float32), True, 0.0)
    mean = float(means[0, 0])
    scale = NORM_STD / std
    norm = cv2.convertScaleAbs(gray, alpha=scale, beta=128.0 - scale * mean)
    lap = cv2.filter2D(norm.astype(np.float32), -1, _IMMERKAER)[1:-1, 1:-1]
    noise = float(np.median(np.abs(lap))) / (0.6745 * 6.0)
    sigma = max(noise, scale * QUANT_STD)
    floor = max(MIN_EIG, float(k["texture_snr"]) * NOISE_EIG * sigma * sigma)
    corners = _corners(norm, floor, k)
    return Prepared(index, norm, corners, False, noise, len(corners) >= int(k["min_features"]))


def _corners(gray: np.ndarray, floor: float, k: dict) -> np.ndarray:
    """Local maxima of the min-eigenvalue response at least ``min_distance`` apart and above ``floor``,
    at most ``max_features / grid**2`` per cell of a grid x grid layout (strongest first)."""
    eig = cv2.cornerMinEigenVal(gray, 3, ksize=3)
    d = 2 * int(k["min_distance"]) + 1
    peaks = (eig >= cv2.dilate(eig, np.ones((d, d), np.uint8))) & (eig >= floor)
    b = 4
    peaks[:b] = peaks[-b:] = False
    peaks[:, :b] = peaks[:, -b:] = False
    ys, xs = np.nonzero(peaks)
    if len(xs) == 0:
        return np.zeros((0, 1, 2), np.float32)
    h, w = gray.shape
    g = max(1, int(k["grid"]))
    cell = (ys * g // h) * g + (xs * g // w)
    order = np.lexsort((-eig[ys, xs], cell))
    sc = cell[order]
    rank = np.arange(len(order)) - np.searchsorted(sc, sc, side="left")
    sel = order[rank < max(1, int(k["max_features"]) // (g * g))]
    return np.stack([xs[sel], ys[sel]], axis=1).astype(np.float32).reshape(-1, 1, 2)


# ------------------------------------------------------------------------------------------ transforms

def to3(m2: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(m2, np.float64), [0.0, 0.0, 1.0]])


def decompose(m: np.ndarray) -> tuple[float, float]:
    """(ln scale, roll in degrees) of a similarity."""
    return math.log(max(math.hypot(m[0, 0], m[1, 0]), 1e-9)), math.degrees(math.atan2(m[1, 0], m[0, 0]))


def power(m: np.ndarray, t: float) -> np.ndarray:
    """The similarity ``m`` applied a fraction ``t`` of the way (scale, roll and shift interpolated)."""
    ls, rot = decompose(m)
    s, r = math.exp(ls * t), math.radians(rot * t)
    out = np.array([[s * math.cos(r), -s * math.sin(r), m[0, 2] * t],
                    [s * math.sin(r), s * math.cos(r), m[1, 2] * t], [0, 0, 1.0]])
    return out


def corner_step(m: np.ndarray, shape) -> float:
    """Largest displacement of the four frame corners under ``m``, in working px."""
    h, w = shape
    pts = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], np.float64).T
    moved = m @ pts
    return float(np.max(np.hypot(moved[0] - pts[0], moved[1] - pts[1])))


# ------------------------------------------------------------------------------------------- fitting

def _score(src: np.ndarray, mask: np.ndarray, shape) -> tuple[int, int]:
    """(cells of an 8x8 grid holding inliers, those on the outer ring counting twice; inliers): the
    camera's background is spread over the frame and reaches its borders, a foreground object or a
    subject the camera follows is compact and away from most borders."""
    h, w = shape
    pts = src[mask]
    r = np.clip((pts[:, 1] * 8 // h).astype(int), 0, 7)
    c = np.clip((pts[:, 0] * 8 // w).astype(int), 0, 7)
    cells = np.unique(r * 8 + c)
    ring = int(np.count_nonzero((cells // 8 == 0) | (cells // 8 == 7) | (cells % 8 == 0) | (cells % 8 == 7)))
    return len(cells) + ring, int(mask.sum())


def fit_similarity(src: np.ndarray, dst: np.ndarray, shape, k: dict):
    """RANSAC similarity src -> dst; the largest consensus and the largest among the rest compete and the
    one whose inliers cover more of the frame wins. Returns (3x3 or None, inlier mask over src)."""
    n = len(src)
    best, best_mask, best_key = None, np.zeros(n, bool), (-1, -1)
    remaining = np.arange(n)
    for _ in range(2):
        if len(remaining) < max(3, int(k["min_inliers"])):
            break
        m, inl = cv2.estimateAffinePartial2D(src[remaining], dst[remaining], method=cv2.RANSAC,
                                             ransacReprojThreshold=float(k["ransac_reproj"]), maxIters=500,
                                             confidence=0.995, refineIters=10)
        if m is None or inl is None:
            break
        local = inl.ravel().astype(bool)
        mask = np.zeros(n, bool)
        mask[remaining[local]] = True
        key = _score(src, mask, shape)
        if key > best_key:
            best, best_mask, best_key = to3(m), mask, key
        remaining = remaining[~local]
    return best, best_mask


def phase_shifts(a: np.ndarray, b: np.ndarray, peaks: int = 2) -> list[np.ndarray]:
    """Global shifts a -> b from the ``peaks`` strongest peaks of the phase correlation (half resolution),
    as 3x3 matrices: a background and a large subject moving differently give one peak each."""
    x = cv2.resize(a, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA).astype(np.float32)
    y = cv2.resize(b, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA).astype(np.float32)
    win = cv2.createHanningWindow((x.shape[1], x.shape[0]), cv2.CV_32F)
    fa, fb = np.fft.rfft2((x - x.mean()) * win), np.fft.rfft2((y - y.mean()) * win)
    cross = fb * np.conj(fa)
    corr = np.fft.irfft2(cross / (np.abs(cross) + 1e-6), s=x.shape)
    h, w = corr.shape
    out = []
    for _ in range(peaks):
        iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
        dy, dx = (iy if iy <= h // 2 else iy - h), (ix if ix <= w // 2 else ix - w)
        out.append(np.array([[1.0, 0.0, 2.0 * dx], [0.0, 1.0, 2.0 * dy], [0.0, 0.0, 1.0]]))
        for yy in range(iy - 2, iy + 3):       # suppress the peak (wrapping) before the next one
            corr[yy % h, [(xx % w) for xx in range(ix - 2, ix + 3)]] = -np.inf
    return out


def phase_prior(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The strongest global shift a -> b (see ``phase_shifts``)."""
    return phase_shifts(a, b, 1)[0]


def pair_motion(a: Prepared, b: Prepared, prior: np.ndarray | None, k: dict) -> PairFit:
    """Similarity a -> b from a's corners tracked into b. Each corner is tracked from several predicted
    motions in turn (``prior``, the two strongest phase-correlation shifts, no motion) until most corners
    track; a corner keeps the track that returns closest in the forward-backward check, so a background
    and a subject moving differently are both tracked before the fit chooses between them."""
    pts = a.corners
    n = len(pts)
    if n < int(k["min_inliers"]) or b.blank:
        return PairFit(None, 0, n)
    fb_max = float(k["fb_max_error"])
    best_dst = np.zeros((n, 2), np.float32)
    best_err = np.full(n, np.inf)
    candidates = [prior] if prior is not None else []
    tried: list = []
    for cand in candidates + ["phase"]:
        guesses = phase_shifts(a.gray, b.gray) + [np.eye(3)] if isinstance(cand, str) else [cand]
        for g in guesses:
            if any(np.abs(g - t).max() < 1.0 for t in tried):
                continue
            tried.append(g)
            guess = cv2.transform(pts, g[:2]).astype(np.float32)
            dst, err = _lk_err(a.gray, b.gray, pts, guess)
            better = err < best_err
            best_dst[better], best_err[better] = dst[better], err[better]
            if np.count_nonzero(best_err < fb_max) >= 0.6 * n:
                break
        if np.count_nonzero(best_err < fb_max) >= 0.6 * n:
            break
    ok = best_err < fb_max
    if ok.sum() < int(k["min_inliers"]):
        return PairFit(None, int(ok.sum()), n)
    m, mask = fit_similarity(pts.reshape(-1, 2)[ok], best_dst[ok], a.gray.shape, k)
    inl = int(mask.sum())
    if m is None or inl < int(k["min_inliers"]) or inl / n < float(k["min_inlier_ratio"]):
        return PairFit(None, inl, n)
    return PairFit(m, inl, n)


def _lk_err(a: np.ndarray, b: np.ndarray, pts: np.ndarray, guess: np.ndarray):
    """Forward LK from ``guess`` and back: (positions in b, forward-backward error; inf when lost)."""
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, guess.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK)
    bwd, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, fwd, pts.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK)
    err = np.linalg.norm((bwd - pts).reshape(-1, 2), axis=1)
    err[(st1.ravel() != 1) | (st2.ravel() != 1)] = np.inf
    return fwd.reshape(-1, 2), err


def chain(frames: list[Prepared], pair_models: list[np.ndarray], k: dict) -> tuple[list[np.ndarray], list[float]]:
    """Cumulative transforms first frame -> frame j for every j, and the share of the key frame's corners
    that fit the key -> j transform at each step.

    The pair models decide which motion is the camera's; the chain refines it over longer baselines:
    corners of a key frame are tracked frame to frame (each step started from the pair's model), and the
    transform key -> current is fitted on the tracks that agree with the pair models composed since the
    key (within ``4 * ransac_reproj`` px), so a near layer or a subject cannot take over. The current frame
    becomes the new key when fewer than half of the key's corners are still tracked or agree, or when
    the fit fails (then the pair's model is used).
    """
    shape = frames[0].gray.shape
    tol = 4.0 * float(k["ransac_reproj"])
    need = max(int(k["min_inliers"]), 3)
    cum = [np.eye(3)]
    ratios = []
    key = 0
    predicted = np.eye(3)                      # pair models composed since the key
    kp = frames[0].corners.reshape(-1, 2)
    cur = kp.copy()
    alive = np.ones(len(kp), bool)
    for j in range(1, len(frames)):
        pair = pair_models[j - 1]
        predicted = pair @ predicted
        idx = np.flatnonzero(alive)
        fit = None
        if len(idx) >= need:
            pts = cur[idx].reshape(-1, 1, 2).astype(np.float32)
            guess = cv2.transform(pts, pair[:2]).astype(np.float32)
            # forward only: the agreement with the pair models below rejects tracks that slipped
            dst, st, _ = cv2.calcOpticalFlowPyrLK(frames[j - 1].gray, frames[j].gray, pts, guess.copy(),
                                                  flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK)
            dst, ok = dst.reshape(-1, 2), st.ravel() == 1
            cur[idx[ok]] = dst[ok]
            alive[idx[~ok]] = False
            pred = cv2.transform(kp.reshape(-1, 1, 2).astype(np.float32), predicted[:2]).reshape(-1, 2)
            alive &= np.linalg.norm(cur - pred, axis=1) < tol
            live = np.flatnonzero(alive)
            if len(live) >= need:
                m, mask = fit_similarity(kp[live], cur[live], shape, k)
                if m is not None and mask.sum() >= need:
                    fit = m
                    ratios.append(float(mask.sum()) / max(len(kp), 1))
        if fit is None:
            cum.append(pair @ cum[j - 1])
            ratios.append(0.0)
        else:
            cum.append(fit @ cum[key])
        if fit is None or alive.sum() < 0.5 * len(kp):
            key = j
            predicted = np.eye(3)
            kp = frames[j].corners.reshape(-1, 2)
            cur = kp.copy()
            alive = np.ones(len(kp), bool)
    return cum, ratios


def content_score(a: Prepared, b: Prepared, m: np.ndarray) -> float | None:
    """Agreement of ``b`` with ``a`` moved by ``m`` (a -> b): the 75th percentile of the normalised
    cross-correlation over the cells of a 4x4 grid that lie inside the overlap and have texture in both
    frames (a plain cell correlates noise). None when fewer than 4 such cells."""
    h, w = b.gray.shape
    warped = cv2.warpAffine(a.gray, m[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)
    inside = cv2.warpAffine(np.full(a.gray.shape, 255, np.uint8), m[:2], (w, h), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    x = cv2.GaussianBlur(warped, (0, 0), 1.2).astype(np.float32)
    y = cv2.GaussianBlur(b.gray, (0, 0), 1.2).astype(np.float32)
    scores = []
    for r in range(4):
        for c in range(4):
            ys, xs = slice(r * h // 4, (r + 1) * h // 4), slice(c * w // 4, (c + 1) * w // 4)
            if inside[ys, xs].min() == 0:
                continue
            p, q = x[ys, xs], y[ys, xs]
            p, q = p - p.mean(), q - q.mean()
            vp, vq = float((p * p).mean()), float((q * q).mean())
            if min(vp, vq) < CELL_TEXTURE_STD ** 2:
                continue
            scores.append(float((p * q).mean()) / math.sqrt(vp * vq))
    if len(scores) < 4:
        return None
    return float(np.percentile(scores, 75))
