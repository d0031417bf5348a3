"""The per-frame detectors of ``vidcap.shots.detect``: hard cuts (PySceneDetect), fades, dissolves, the flash check.

``detectors(settings, fps) -> (cut, fade, dissolve)``: the hard-cut detector (``AdaptiveDetector`` or
``ContentDetector`` with the settings' knobs), the fade detector (``ThresholdDetector``, None when
off) and ``vidcap.shots.dissolve.DissolveDetector`` (None when off). The hard-cut detectors compute
PySceneDetect's frame score (the weighted mean absolute HSV difference between neighbouring frames)
with one OpenCV call per frame (``absdiff`` + ``sumElems`` over the three channels) instead of three
numpy reductions on int32 copies: the same integer sums, the same scores and cuts, about a tenth of
the time (edges, a stats manager: PySceneDetect's own code).

Each detector also takes a batch of frames at once (``process_batch``; the hard-cut detector's in two
halves, ``score`` a batch at a time and ``cuts`` once over many batches: what ``vidcap.shots.detect``
uses): the same cuts as PySceneDetect's ``process_frame`` frame after frame, without its
per-frame Python (a ``FrameTimecode`` per frame, the detector's buffers): the hard-cut scores of a
batch from one colour conversion, ``AdaptiveDetector``'s ratio for every frame of the batch in numpy
(the same float operations in the same order, so the same values), and the threshold tests' state
followed only where it changes (a fade's state changes only where the frame mean crosses the
threshold). A detector is fed either frame by frame or batch by batch, not both.

``FlashCheck``: drops hard cuts after which the picture comes back to what it was before the cut.
"""
from __future__ import annotations

import bisect
from collections import deque
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from vidcap.shots.decode import tiny
from vidcap.shots.dissolve import DissolveDetector

FLASH_RATIO = 0.5


def thumbnails(frames: np.ndarray, size: tuple[int, int] = (8, 5)) -> np.ndarray:
    """``vidcap.shots.decode.tiny`` of each frame of a batch ((n, h, w, 3) BGR uint8) -> (n, h', w', 3)
    float32, in one OpenCV call: the frames are stacked into one tall image, whose blocks (whole
    numbers of pixels, as ``tiny`` crops them) never straddle two frames, so every value is the same."""
    n, h, w = frames.shape[:3]
    hh, ww = h - h % size[1], w - w % size[0]
    if n == 0 or hh == 0 or ww == 0:  # smaller than the thumbnail: one frame at a time (``tiny``)
        return np.stack([tiny(f, size) for f in frames]) if n else np.zeros((0, size[1], size[0], 3), np.float32)
    crop = frames if (hh, ww) == (h, w) else np.ascontiguousarray(frames[:, :hh, :ww])
    out = cv2.resize(crop.reshape(n * hh, ww, 3), (size[0], size[1] * n), interpolation=cv2.INTER_AREA)
    return out.reshape(n, size[1], size[0], 3).astype(np.float32)


class _FastScore:
    """Mixin over PySceneDetect's ContentDetector (and so AdaptiveDetector): the same frame score from
    one OpenCV call (exact: the sums of absolute differences are integers)."""

    # set by ContentDetector, which follows this mixin in the detector classes' MRO
    _weights: Any
    stats_manager: Any
    # (frame numbers scored, their scores, cuts found) since ``cuts`` last ran
    _due: tuple[list[int], list[float], list[int]] | None = None

    def _calculate_frame_score(self, timecode, frame_img):
        if self._weights.delta_edges > 0.0 or self.stats_manager is not None:
            return super()._calculate_frame_score(timecode, frame_img)  # type: ignore[misc]  # mixin: ContentDetector's
        scores = getattr(self, "_scores", None)
        if scores:  # computed by ``score`` for this frame, handed over by ``cuts``
            return scores.popleft()
        return self._score(cv2.cvtColor(frame_img, cv2.COLOR_BGR2HSV))

    def batch_scores(self, frames: np.ndarray) -> list[float]:
        """The frame scores of a batch of frames ((n, h, w, 3) BGR, following the last frame scored),
        from one colour conversion (only without edges and a stats manager)."""
        n, h, w = frames.shape[:3]
        hsv = cv2.cvtColor(frames.reshape(n * h, w, 3), cv2.COLOR_BGR2HSV).reshape(n, h, w, 3)
        return [self._score(hsv[k]) for k in range(n)]

    def process_batch(self, indices: list[int], frames: np.ndarray) -> list[int]:
        """The cuts (frame numbers) ``process_frame`` reports for these frames ((n, h, w, 3) BGR, frame
        numbers ``indices``), fed one after the other: ``score`` then ``cuts``."""
        self.score(indices, frames)
        return self.cuts()

    def score(self, indices: list[int], frames: np.ndarray) -> None:
        """The per-pixel half of ``process_batch``: the frame scores of these frames ((n, h, w, 3) BGR,
        frame numbers ``indices``, following the last frames scored). ``cuts`` reports the cuts of every
        frame scored since its last call, so that a caller can score batch after batch and look for
        cuts once over many."""
        if self._due is None:
            self._due = ([], [], [])
        due = self._due
        if self._weights.delta_edges > 0.0 or self.stats_manager is not None:  # PySceneDetect's own code
            from scenedetect import FrameTimecode  # heavy: only when shots are detected

            fps = getattr(self, "batch_fps", None) or 24
            due[2].extend(c.frame_num for i, f in zip(indices, frames, strict=True)
                          for c in self.process_frame(FrameTimecode(i, fps=fps), f))  # type: ignore[attr-defined]
            return
        due[0].extend(indices)
        due[1].extend(self.batch_scores(frames))

    def cuts(self) -> list[int]:
        """The cuts ``process_frame`` reports for the frames ``score`` got since the last call, fed one
        after the other: AdaptiveDetector's test over the scores at once (``_adaptive_batch``), or
        ContentDetector's (its flash filter) frame by frame on them."""
        indices, scores, cuts = self._due or ([], [], [])
        self._due = None
        if not indices:
            return cuts
        if hasattr(self, "adaptive_threshold"):
            return cuts + self._adaptive_batch(indices, scores)
        from scenedetect import FrameTimecode  # heavy: only when shots are detected

        if getattr(self, "_scores", None) is None:
            self._scores: deque[float] = deque()
        self._scores.extend(scores)  # ``_calculate_frame_score`` takes them in turn
        fps = getattr(self, "batch_fps", None) or 24
        det: Any = self
        return cuts + [c.frame_num for i in indices for c in det.process_frame(FrameTimecode(i, fps=fps), None)]

    def _adaptive_batch(self, indices: list[int], scores: list[float]) -> list[int]:
        """AdaptiveDetector.process_frame over a batch of frame scores: a frame ``window_width`` frames
        back is a cut when its score is ``adaptive_threshold`` times the mean of its ``window_width``
        neighbours on each side (255 when that mean is 0) and at least ``min_content_val``, and it is
        ``min_scene_len`` frames or more after the last cut (the first frame at the start)."""
        a: Any = self
        ww = int(a.window_width)
        hist_idx, hist = getattr(self, "_hist", ([], []))
        if getattr(self, "_last_cut_index", None) is None:
            self._last_cut_index = indices[0]
        idx, seq = hist_idx + list(indices), hist + list(scores)
        keep = 2 * ww
        self._hist = (idx[-keep:], seq[-keep:]) if keep else ([], [])
        m = len(seq) - 2 * ww  # windows that end in this batch (targets at positions ww .. ww + m - 1)
        if m <= 0:
            return []
        s = np.asarray(seq, np.float64)
        total = None  # PySceneDetect: sum(score for i, (_, score) in enumerate(buffer) if i != window_width)
        for i in range(2 * ww + 1):
            if i != ww:
                total = s[i:i + m] if total is None else total + s[i:i + m]
        target = s[ww:ww + m]
        avg = (total if total is not None else np.zeros(m)) / (2.0 * ww)
        zero = np.abs(avg) < 0.00001
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(zero, np.where(target >= a.min_content_val, 255.0, 0.0),
                             np.minimum(target / np.where(zero, 1.0, avg), 255.0))
        met = np.flatnonzero((ratio >= a.adaptive_threshold) & (target >= a.min_content_val))
        cuts = []
        for j in met.tolist():
            t = idx[ww + j]
            if t - self._last_cut_index >= a.min_scene_len:
                self._last_cut_index = t
                cuts.append(t)
        return cuts

    def _score(self, hsv: np.ndarray) -> float:
        """The frame score of a frame (HSV) against the previous one (0.0 for the first frame)."""
        last, self._last_hsv = getattr(self, "_last_hsv", None), hsv
        if last is None:
            return 0.0
        sums = cv2.sumElems(cv2.absdiff(hsv, last))
        n = float(hsv.shape[0] * hsv.shape[1])
        w = self._weights
        return (sums[0] / n * w.delta_hue + sums[1] / n * w.delta_sat + sums[2] / n * w.delta_lum) / \
            sum(abs(x) for x in w)


def _fast_threshold():
    """PySceneDetect's ThresholdDetector with ``process_batch`` (defined when shots are detected)."""
    # heavy: PySceneDetect, only when shots are detected
    from scenedetect import FrameTimecode
    from scenedetect.detectors import ThresholdDetector

    class FastThreshold(ThresholdDetector):
        def process_batch(self, indices: list[int], levels: np.ndarray) -> list[int]:
            """The cuts ``process_frame`` reports for frames ``indices`` whose means are ``levels`` (as
            ``numpy.mean`` of each frame gives them), fed one after the other. Only where the frame
            mean crosses the threshold does anything change: the state's fade type is "out" exactly
            when the last frame was below the threshold."""
            if self.method != ThresholdDetector.Method.FLOOR or self.stats_manager is not None or not indices:
                fps = getattr(self, "batch_fps", None) or 24
                return [c.frame_num for i, v in zip(indices, levels, strict=True)
                        for c in self.process_frame(FrameTimecode(i, fps=fps), np.full(1, v, levels.dtype))]
            fps = getattr(self, "batch_fps", None) or 24
            below = (levels < self.threshold).tolist()
            k0 = 0
            if not getattr(self, "processed_frame", False):
                first = FrameTimecode(indices[0], fps=fps)
                self.last_scene_cut = first
                self.last_fade["frame"] = first
                self.last_fade["type"] = "out" if below[0] else "in"
                self.processed_frame = True
                k0 = 1
            was = self.last_fade["type"] == "out"
            cuts: list[int] = []
            for k in range(k0, len(below)):
                if below[k] == was:
                    continue
                was = below[k]
                t = indices[k]
                if was:  # in -> out
                    self.last_fade["type"] = "out"
                    self.last_fade["frame"] = FrameTimecode(t, fps=fps)
                    continue
                f_out = self.last_fade["frame"].frame_num
                if t - self.last_scene_cut.frame_num >= self.min_scene_len and t - f_out >= self.min_out_length:
                    cuts.append(f_out + round((t - f_out) * (1.0 + self.fade_bias) / 2.0))
                    self.last_scene_cut = FrameTimecode(t, fps=fps)
                self.last_fade["type"] = "in"
                self.last_fade["frame"] = FrameTimecode(t, fps=fps)
            return cuts

    return FastThreshold


def detectors(settings: dict, fps: Fraction):
    """(hard-cut detector, fade detector or None, dissolve detector or None) for ``stages.shots`` settings."""
    # heavy: PySceneDetect (and OpenCV), only when shots are detected
    from scenedetect.detectors import AdaptiveDetector, ContentDetector

    class FastAdaptive(_FastScore, AdaptiveDetector):
        pass

    class FastContent(_FastScore, ContentDetector):
        pass

    min_len = max(1, int(round(settings["min_scene_s"] * float(fps))))
    if settings["detector"] == "adaptive":
        a = settings["adaptive"]
        cut = FastAdaptive(adaptive_threshold=a["adaptive_threshold"], min_scene_len=min_len,
                           window_width=a["window_width"], min_content_val=a["min_content_val"],
                           luma_only=a["luma_only"])
    else:
        c = settings["content"]
        cut = FastContent(threshold=c["threshold"], min_scene_len=min_len, luma_only=c["luma_only"])
    cut.batch_fps = fps
    fade = None
    if settings["fades"]["enabled"]:
        fade = _fast_threshold()(threshold=settings["fades"]["threshold"], min_scene_len=min_len, fade_bias=0.0)
        fade.batch_fps = fps
    dissolve = None
    if settings["dissolves"]["enabled"]:
        d = settings["dissolves"]
        dissolve = DissolveDetector(min_change=d["min_change"], max_ratio=d["max_ratio"],
                                    min_contrast=d["min_contrast"])
    return cut, fade, dissolve


class FlashCheck:
    """Drops hard cuts after which the picture comes back to what it was before the cut, within
    ``after`` frames (flashes, a brief occlusion): compares block-mean thumbnails (``tiny``) of the last
    frame before the cut with the frames after it; a cut stays when none of them is closer to the frame
    before than ``FLASH_RATIO`` times the jump at the cut."""

    def __init__(self, after: int, keep: int):
        self.after = max(0, int(after))
        self.keep = keep
        self.idx: list[int] = []
        self.thumbs: dict[int, np.ndarray] = {}
        self.pending: list[int] = []
        self.kept: list[int] = []

    def push(self, index: int, thumb) -> None:
        self.idx.append(index)
        self.thumbs[index] = thumb
        while self.pending and self.pending[0] + self.after <= index:
            self._check(self.pending.pop(0))
        while len(self.idx) > self.keep:
            del self.thumbs[self.idx.pop(0)]

    def push_batch(self, indices: list[int], thumbs) -> None:
        """``push`` each frame of a batch (cuts ``add``-ed after it are checked at the next batch or at
        ``finish``: the same decisions, taken up to a batch later)."""
        self.idx += indices
        self.thumbs.update(zip(indices, thumbs, strict=True))
        last = indices[-1]
        while self.pending and self.pending[0] + self.after <= last:
            self._check(self.pending.pop(0))
        extra = len(self.idx) - self.keep
        if extra > 0:
            for i in self.idx[:extra]:
                del self.thumbs[i]
            del self.idx[:extra]

    def add(self, cuts: list[int]) -> None:
        if self.after == 0:
            self.kept += cuts
        else:
            self.pending += cuts

    def finish(self) -> list[int]:
        for c in self.pending:
            self._check(c)
        self.pending = []
        return self.kept

    def _check(self, c: int) -> None:
        k = bisect.bisect_left(self.idx, c)
        if k == 0 or k >= len(self.idx) or self.idx[k] != c:
            self.kept.append(c)
            return
        before = self.thumbs[self.idx[k - 1]]
        jump = float(np.mean(np.abs(self.thumbs[c] - before)))
        later = [self.thumbs[i] for i in self.idx[k + 1:] if i <= c + self.after]
        back = min((float(np.mean(np.abs(t - before))) for t in later), default=jump)
        if back >= FLASH_RATIO * jump:
            self.kept.append(c)
