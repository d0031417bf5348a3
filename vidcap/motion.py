"""Camera-motion classification: pan / tilt / zoom from a few sampled frames.

Contract
--------
``classify_frames(frames, **knobs)`` takes an ``(N, H, W, 3)`` uint8 RGB array of frames evenly spaced over
a clip (``read_motion_frames`` produces one) and returns a dict with exactly the keys of ``OUTPUT_COLUMNS``:

* ``cmotion``: ``static``, ``unclassified``, or a ``+``-joined, sorted set of ``pan_left``/``pan_right``,
  ``tilt_up``/``tilt_down``, ``zoom_in``/``zoom_out`` (at most one per axis), e.g. ``pan_left+tilt_up``.
* ``motion_pan``: signed accumulated horizontal camera motion as a fraction of the frame's shorter side;
  ``+`` = pan right (the scene moves LEFT in the frame).
* ``motion_tilt``: same for the vertical axis; ``+`` = tilt up (the scene moves DOWN in the frame).
* ``motion_zoom``: ``ln(total magnification) * half_diagonal / shorter_side``; ``+`` = zoom in (the scene
  grows from the centre). To first order this is how far a point in the frame's corner moves radially, as a
  fraction of the shorter side, so the same ``threshold`` applies to all three axes.
* ``motion_fit``: 0..1, median over frame pairs of the fraction of detected corners that were tracked and
  agree with the fitted camera model (1 = every feature explained by pan/tilt/zoom).
* ``motion_reason``: ``''`` when a label was decided, else why the clip is ``unclassified``:
  ``'too few frames'``, ``'low texture'``, ``'scene cut'``, ``'inconsistent motion'``, ``'rotation'``.

Method: every sampled frame is downscaled to ``short_side`` pixels, corners (min-eigenvalue maxima above an
absolute texture floor, capped per grid cell) are tracked between consecutive samples with pyramidal
Lucas-Kanade started from the previous pair's motion (else a phase-correlation shift, else zero) and
forward-backward checked; a similarity transform (translation, uniform scale, rotation) is fitted with
RANSAC so independently moving foreground objects become outliers (when a second consensus exists, the
one whose inliers cover more of the frame wins: a foreground object is compact); the per-pair translation
of the frame centre, log-scale and rotation are summed over the clip.
Frames are normalised to a fixed mean/contrast before tracking so brightness flicker does not move
features; the net (summed) motion cancels hand-held jitter.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

MOTION_LABELS = (
    "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "static", "unclassified",
)
DIRECTION_LABELS = MOTION_LABELS[:6]
OUTPUT_COLUMNS = ("cmotion", "motion_pan", "motion_tilt", "motion_zoom", "motion_fit", "motion_reason")

DEFAULTS = {
    # Accumulated motion over the sampled span, as a fraction of the frame's shorter side, that counts as
    # camera motion (Open-Sora's default). Applies to |motion_pan|, |motion_tilt| and |motion_zoom|.
    "threshold": 0.25,
    # Frames sampled evenly over the clip by read_motion_frames (the classifier uses whatever it is given).
    "num_frames": 10,
    # Working resolution: frames are downscaled (INTER_AREA) so their shorter side is at most this.
    "short_side": 160,
    # Most corners tracked per frame, and their minimum spacing in working px (non-maximum suppression).
    "max_features": 150,
    "min_distance": 6,
    # Corners are spread over a grid x grid layout, each cell keeping at most max_features / grid^2.
    "grid": 4,
    # Absolute texture floor: a corner counts only if its min-eigenvalue response (cv2.cornerMinEigenVal,
    # blockSize 3, on the un-normalised grey frame) is at least this. Guards against tracking noise.
    "min_corner_strength": 0.0004,
    # A frame with fewer corners above the floor than this makes the clip 'low texture' (unclassified).
    "min_features": 20,
    # Forward-backward LK check: a track is kept when it returns within this many working px.
    "fb_max_error": 1.0,
    # RANSAC inlier threshold for the similarity fit, in working px.
    "ransac_reproj": 1.5,
    # A frame pair is explained when inliers / detected corners >= this (and >= min_inliers inliers);
    # an unexplained pair means a cut or non-rigid chaos -> unclassified.
    "min_inlier_ratio": 0.15,
    "min_inliers": 6,
    # Accumulated |rotation| in degrees above which the clip is 'rotation' (unclassified).
    "max_rotation": 8.0,
    # Motion that goes both ways along an axis by at least this fraction of `threshold` in each direction
    # (e.g. a fast pan right then left) is 'inconsistent motion' rather than a net label.
    "max_reversal": 1.0,
}

_AXES = (("motion_pan", "pan_right", "pan_left"), ("motion_tilt", "tilt_up", "tilt_down"),
         ("motion_zoom", "zoom_in", "zoom_out"))


def _knobs(overrides: dict) -> dict:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown motion knob(s): {sorted(unknown)}")
    return {**DEFAULTS, **overrides}


def _result(label: str, pan=0.0, tilt=0.0, zoom=0.0, fit=0.0, reason="") -> dict:
    return {"cmotion": label, "motion_pan": float(pan), "motion_tilt": float(tilt), "motion_zoom": float(zoom),
            "motion_fit": float(fit), "motion_reason": reason}


def _to_gray_small(frame: np.ndarray, short_side: int) -> np.ndarray:
    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    h, w = gray.shape
    short = min(h, w)
    if short > short_side:
        f = short_side / short
        gray = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return gray


def _normalise(gray: np.ndarray) -> np.ndarray:
    """Fixed mean 128 / std 40 so gain and offset flicker between frames does not bias LK."""
    mean, std = cv2.meanStdDev(gray)
    scale = 40.0 / max(float(std[0, 0]), 1.0)
    return cv2.convertScaleAbs(gray, alpha=scale, beta=128.0 - scale * float(mean[0, 0]))


def _corners(gray: np.ndarray, k: dict) -> np.ndarray:
    """Corners (local maxima of the min-eigenvalue response, cv2.cornerMinEigenVal blockSize 3, at least
    min_distance apart) above the absolute texture floor, spread over a grid x grid layout: each cell keeps
    at most max_features / grid^2, strongest first, so a textured foreground object cannot dominate.
    Returns (M, 1, 2) float32 (x, y)."""
    eig = cv2.cornerMinEigenVal(gray, 3, 3)
    d = 2 * int(k["min_distance"]) + 1
    peaks = (eig >= cv2.dilate(eig, np.ones((d, d), np.uint8))) & (eig >= k["min_corner_strength"])
    border = 4
    peaks[:border] = peaks[-border:] = False
    peaks[:, :border] = peaks[:, -border:] = False
    ys, xs = np.nonzero(peaks)
    if len(xs) == 0:
        return np.zeros((0, 1, 2), np.float32)
    h, w = gray.shape
    g = max(1, int(k["grid"]))
    cell = (ys * g // h) * g + (xs * g // w)
    order = np.lexsort((-eig[ys, xs], cell))          # by cell, strongest first within a cell
    sorted_cells = cell[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_cells, sorted_cells, side="left")
    sel = order[rank < max(1, int(k["max_features"]) // (g * g))]
    return np.stack([xs[sel], ys[sel]], axis=1).astype(np.float32).reshape(-1, 1, 2)


_LK = {"winSize": (11, 11), "maxLevel": 3,
       "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}


def _phase_prior(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Global translation prev->next by phase correlation at half resolution, as a 2x3 matrix."""
    a = cv2.resize(prev, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA).astype(np.float32)
    b = cv2.resize(nxt, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA).astype(np.float32)
    win = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (sx, sy), _ = cv2.phaseCorrelate(a, b, win)
    return np.array([[1.0, 0.0, 2 * sx], [0.0, 1.0, 2 * sy]])


def _track_fit(prev, nxt, pts, prior, k):
    """LK from ``prior``-predicted positions, forward-backward check, RANSAC similarity.

    Returns (matrix or None, (cells covered by inliers, inliers))."""
    shape = prev.shape
    guess = cv2.transform(pts, prior).astype(np.float32)
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(prev, nxt, pts, guess.copy(),
                                           flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK)
    bwd, st2, _ = cv2.calcOpticalFlowPyrLK(nxt, prev, fwd, pts.copy(),
                                           flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK)
    fb = np.linalg.norm((bwd - pts).reshape(-1, 2), axis=1)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < k["fb_max_error"])
    if ok.sum() < max(3, k["min_inliers"]):
        return None, (0, 0)
    src, dst = pts[ok].reshape(-1, 2), fwd[ok].reshape(-1, 2)
    best, best_key = None, (-1, -1)
    # Largest consensus first; then the largest consensus among the rest. A big textured foreground object
    # can out-number the background's corners, but its inliers are compact: the model whose inliers cover
    # more of the frame (cells of an 8x8 grid) is the camera.
    for _ in range(2):
        if len(src) < max(3, k["min_inliers"]):
            break
        m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                             ransacReprojThreshold=k["ransac_reproj"], maxIters=500,
                                             confidence=0.995, refineIters=10)
        if m is None or inl is None:
            break
        mask = inl.ravel().astype(bool)
        h, w = shape
        cells = np.unique((src[mask, 1] * 8 // h).astype(int) * 8 + (src[mask, 0] * 8 // w).astype(int))
        key = (len(cells), int(mask.sum()))
        if key > best_key:
            best, best_key = m, key
        src, dst = src[~mask], dst[~mask]
    if best is None:
        return None, (0, 0)
    return best, best_key


def _pair_motion(prev, nxt, pts: np.ndarray, last, k: dict):
    """Similarity prev->next fitted on tracked corners: (matrix or None, inliers, detected).

    Tracking starts from the previous pair's motion (``last``, smooth camera paths), then from a
    phase-correlation translation and from no motion when that does not explain the pair well."""
    n = len(pts)
    if n == 0:
        return None, 0, 0
    good = max(k["min_inliers"], 0.6 * n)
    best, best_key = None, (-1, -1)
    priors = ([last] if last is not None else []) + ["phase", np.eye(2, 3)]
    for prior in priors:
        if isinstance(prior, str):
            prior = _phase_prior(prev, nxt)
        m, key = _track_fit(prev, nxt, pts, prior, k)
        if key > best_key:
            best, best_key = m, key
        if best_key[1] >= good:
            break
    return best, max(best_key[1], 0), n


def classify_frames(frames: np.ndarray, **knobs) -> dict:
    """Classify the camera motion of ``frames`` ((N, H, W, 3) uint8 RGB, evenly spaced over one clip).

    Returns a dict with the keys of ``OUTPUT_COLUMNS`` (see the module docstring). ``knobs`` override
    ``DEFAULTS`` (unknown names raise TypeError). Never raises on content: degenerate input gives
    ``unclassified`` with a reason.
    """
    k = _knobs(knobs)
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or len(frames) < 2 or min(frames.shape[1:3]) < 8:
        return _result("unclassified", reason="too few frames")
    if frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    if frames.shape[-1] == 1:
        frames = frames[..., 0]
    grays = [_to_gray_small(f, int(k["short_side"])) for f in frames]
    h, w = grays[0].shape
    short = float(min(h, w))
    half_diag = 0.5 * math.hypot(h, w)
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0])

    corners = [_corners(g, k) for g in grays]
    if min(len(c) for c in corners) < k["min_features"]:
        return _result("unclassified", reason="low texture")
    norm = [_normalise(g) for g in grays]

    dx, dy, dlog, drot, ratios = [], [], [], [], []
    failed = 0
    last = None
    for i in range(len(grays) - 1):
        m, inliers, detected = _pair_motion(norm[i], norm[i + 1], corners[i], last, k)
        last = m
        ratio = inliers / detected if detected else 0.0
        ratios.append(ratio)
        if m is None or inliers < k["min_inliers"] or ratio < k["min_inlier_ratio"]:
            failed += 1
            continue
        moved = m @ centre
        dx.append(moved[0] - centre[0])
        dy.append(moved[1] - centre[1])
        dlog.append(math.log(max(math.hypot(m[0, 0], m[1, 0]), 1e-6)))
        drot.append(math.degrees(math.atan2(m[1, 0], m[0, 0])))
    fit = float(np.median(ratios)) if ratios else 0.0

    pairs = len(grays) - 1
    if failed:
        # One or a few broken pairs among good ones look like a cut; mostly broken means chaos.
        reason = "scene cut" if failed <= max(1, pairs // 4) else "inconsistent motion"
        return _result("unclassified", fit=fit, reason=reason)

    dx, dy, dlog = np.array(dx), np.array(dy), np.array(dlog)
    pan = -dx.sum() / short
    tilt = dy.sum() / short
    zoom = dlog.sum() * half_diag / short
    rot = float(np.sum(drot))
    thr = float(k["threshold"])
    if abs(rot) > k["max_rotation"]:
        return _result("unclassified", pan, tilt, zoom, fit, "rotation")
    rev = k["max_reversal"] * thr
    for steps in (-dx / short, dy / short, dlog * half_diag / short):
        if min(steps[steps > 0].sum(), -steps[steps < 0].sum()) >= rev:
            return _result("unclassified", pan, tilt, zoom, fit, "inconsistent motion")

    values = {"motion_pan": pan, "motion_tilt": tilt, "motion_zoom": zoom}
    parts = []
    for key, plus, minus in _AXES:
        v = values[key]
        if v >= thr:
            parts.append(plus)
        elif v <= -thr:
            parts.append(minus)
    label = "+".join(sorted(parts)) if parts else "static"
    return _result(label, pan, tilt, zoom, fit)


# ----------------------------------------------------------------------------------------------- captions

_VERB = {"pan_left": ("pans left", "panning left"), "pan_right": ("pans right", "panning right"),
         "tilt_up": ("tilts up", "tilting up"), "tilt_down": ("tilts down", "tilting down"),
         "zoom_in": ("zooms in", "zooming in"), "zoom_out": ("zooms out", "zooming out")}
_ORDER = {name: i for i, name in enumerate(("pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out"))}


def camera_motion_phrase(cmotion: str) -> str:
    """English sentence for a ``cmotion`` label, or ``''`` for ``unclassified``/empty/unknown parts.

    ``static`` -> "The camera is static."; one direction -> "The camera pans left."; combinations (any
    order, ``+``-joined) -> "The camera pans left while tilting up and zooming in." (pan, tilt, zoom order).
    """
    label = (cmotion or "").strip()
    if label == "static":
        return "The camera is static."
    parts = [p.strip() for p in label.split("+") if p.strip()]
    if not parts or any(p not in _VERB for p in parts):
        return ""
    parts = sorted(set(parts), key=_ORDER.__getitem__)
    first = _VERB[parts[0]][0]
    rest = [_VERB[p][1] for p in parts[1:]]
    if not rest:
        return f"The camera {first}."
    tail = rest[0] if len(rest) == 1 else ", ".join(rest[:-1]) + " and " + rest[-1]
    return f"The camera {first} while {tail}."


def append_motion_to_caption(text: str, cmotion: str) -> str:
    """``text`` followed by the camera-motion sentence (one space between); ``text`` unchanged when the
    label gives no sentence (``unclassified``, empty, unknown)."""
    phrase = camera_motion_phrase(cmotion)
    text = text or ""
    if not phrase:
        return text
    stripped = text.rstrip()
    return f"{stripped} {phrase}" if stripped else phrase


# ----------------------------------------------------------------------------------------------- frames

def read_motion_frames(path, num_frames: int = DEFAULTS["num_frames"],
                       short_side: int = DEFAULTS["short_side"]) -> np.ndarray:
    """``num_frames`` frames evenly spaced over the clip at ``path`` (first and last included), downscaled so
    the shorter side is ``short_side`` (never upscaled): (N, H, W, 3) uint8 RGB.

    Uses ``vidcap.frames.sample_frames(policy="uniform")`` when that module provides it, else a built-in
    single-threaded PyAV reader. Raises ``vidcap.frames.FrameError`` (or ``ValueError`` with the built-in
    reader) on unreadable input or a file without video.
    """
    try:
        from vidcap import frames as _frames  # teammate's module; optional
        sample = getattr(_frames, "sample_frames", None)
    except ImportError:
        sample = None
    if sample is not None:
        return np.asarray(sample(path, num_frames=num_frames, policy="uniform", resize_short=short_side).frames)
    return _pyav_uniform_frames(path, num_frames, short_side)


def _pyav_uniform_frames(path, num_frames: int, short_side: int) -> np.ndarray:
    import av

    path = Path(path)
    try:
        container = av.open(str(path))
    except Exception as exc:  # av raises many error types
        raise ValueError(f"cannot open {path}: {exc}") from exc
    with container:
        if not container.streams.video:
            raise ValueError(f"no video stream in {path}")
        stream = container.streams.video[0]
        total = int(stream.frames or 0)
        if total <= 0:  # container does not say: count packets (demux only, no decoding)
            total = sum(1 for p in container.demux(stream) if p.size)
            container.seek(0)
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        n = max(1, min(int(num_frames), max(total, 1)))
        targets = np.unique(np.round(np.linspace(0, max(total - 1, 0), n)).astype(int))
        want = {int(t): j for j, t in enumerate(targets)}
        out: list = [None] * len(targets)
        last = None
        size = None
        try:
            for i, frame in enumerate(container.decode(stream)):
                last = frame
                if size is None:
                    size = _small_size(frame.width, frame.height, short_side)
                j = want.get(i)
                if j is not None:
                    out[j] = frame.reformat(width=size[0], height=size[1], format="rgb24",
                                            interpolation="AREA").to_ndarray()
                    if j == len(targets) - 1:
                        break
        except av.error.FFmpegError as exc:
            if last is None:
                raise ValueError(f"cannot decode {path}: {exc}") from exc
        if last is None:
            raise ValueError(f"no decodable frames in {path}")
        got = [f for f in out if f is not None]
        if len(got) < len(out):  # header over-counted frames: close with the last decoded one
            got.append(last.reformat(width=size[0], height=size[1], format="rgb24",
                                     interpolation="AREA").to_ndarray())
        return np.stack(got)


def _small_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    short = min(width, height)
    if short <= short_side:
        return width, height
    f = short_side / short
    return max(2, round(width * f)), max(2, round(height * f))


def classify_path(path, **knobs) -> dict:
    """Read ``knobs['num_frames']`` frames of ``path`` at ``knobs['short_side']`` and classify them."""
    k = _knobs(knobs)
    frames = read_motion_frames(path, k["num_frames"], k["short_side"])
    return classify_frames(frames, **knobs)
