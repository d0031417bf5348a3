"""Dense-flow BASELINE: the Open-Sora-style heuristic, for comparison only.

As described for Open-Sora's older camera-motion tool: Farneback optical flow (OpenCV, parameters
0.5, 3, 15, 3, 5, 1.2, 0) at full resolution on every 15th frame pair (frames i, i+1 for i = 0, 15, 30,
...), each pair classified by its MEDIAN flow magnitude and MEDIAN flow angle, then a majority vote over
the pairs. A pair is a zoom when the median radial component of the flow (outward from the centre) is
larger than the median tangential motion; otherwise the median angle picks one of the four pan/tilt
directions. One label per clip, so it can never output a combination (nor ``unclassified``, except for
clips too short to form a pair).

Thresholds are put on the same footing as the bench's ground truth: per-pair motion (px/frame)
extrapolated to the whole clip ``(num_frames - 1) * px_per_frame`` must reach ``threshold * short_side``
for pan/tilt; for zoom, the per-pair log-scale (median radial flow / median radius) extrapolated the same
way must reach ``zoom_threshold`` (ln of the total magnification; the old corner-displacement rule when
it is None).
"""
from __future__ import annotations

import math
from collections import Counter

import av
import cv2
import numpy as np

STEP = 15


def read_pairs(path) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Decode every frame (single thread) and keep the grey pairs (i, i+1) for i % STEP == 0."""
    pairs, prev, n = [], None, 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        for i, frame in enumerate(container.decode(stream)):
            n += 1
            if i % STEP == 0 or i % STEP == 1:
                gray = frame.to_ndarray(format="gray")
                if i % STEP == 0:
                    prev = gray
                elif prev is not None:
                    pairs.append((prev, gray))
                    prev = None
    return pairs, n


def classify_pair(prev: np.ndarray, nxt: np.ndarray, num_frames: int, threshold: float,
                  zoom_threshold: float | None = None) -> str:
    flow = cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    h, w = prev.shape
    mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    med_mag = float(np.median(mag))
    need = threshold * min(h, w) / max(num_frames - 1, 1)        # px per frame
    # zoom: median radial component (+ outward) vs the median translation
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rx, ry = xx - (w - 1) / 2, yy - (h - 1) / 2
    rn = np.sqrt(rx * rx + ry * ry) + 1e-6
    radial = (flow[..., 0] * rx + flow[..., 1] * ry) / rn
    med_radial = float(np.median(radial))
    half_diag = 0.5 * math.hypot(w, h)
    zoom_px = med_radial / float(np.median(rn)) * half_diag   # radial px/frame at the frame corner
    med_dx, med_dy = float(np.median(flow[..., 0])), float(np.median(flow[..., 1]))
    if zoom_threshold is not None:
        zoom_big = abs(med_radial / float(np.median(rn))) * max(num_frames - 1, 1) >= zoom_threshold
    else:
        zoom_big = abs(zoom_px) >= need
    if zoom_big and abs(med_radial) > math.hypot(med_dx, med_dy):
        return "zoom_in" if med_radial > 0 else "zoom_out"
    if med_mag < need:
        return "static"
    angle = math.degrees(float(np.median(ang)))  # 0 = scene moves right, 90 = scene moves down (image y)
    if angle < 45 or angle >= 315:
        return "pan_left"        # scene moves right
    if angle < 135:
        return "tilt_up"         # scene moves down
    if angle < 225:
        return "pan_right"       # scene moves left
    return "tilt_down"           # scene moves up


def classify_path(path, threshold: float = 0.25, zoom_threshold: float | None = None) -> str:
    pairs, n = read_pairs(path)
    if not pairs:
        return "unclassified"
    votes = Counter(classify_pair(a, b, n, threshold, zoom_threshold) for a, b in pairs)
    return votes.most_common(1)[0][0]
