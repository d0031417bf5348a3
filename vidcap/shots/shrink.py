"""Decoded frames -> small BGR frames for shot detection, without making full-resolution RGB.

``Shrinker(w, h, batch, interpolation, shrink, pictures)`` takes decoded PyAV frames one at a time
(``add(j, frame)``, soon after decoding: ``vidcap.shots.decode.scan_blocks``) into ``pictures``
batches of ``batch`` frames, and hands each batch over as an (n, h, w, 3) BGR uint8 array
(``take(b, n)``, as PySceneDetect's detectors expect). Three ways to shrink (``SHRINKS``):

* ``"spread"`` (default): the decoded picture's Y, U and V planes are read in place (numpy views, no
  copy) through a view of every ``step``-th row (``step`` = the plane's height over twice the analysis
  height, at least 2; ``spread_rows``), and each is shrunk by OpenCV (``INTER_LINEAR``: a 2-tap
  bilinear filter on an evenly spaced grid) into one small 4:2:0 picture per batch, which swscale then
  converts to BGR in one unscaled call (its own YUV -> RGB arithmetic: OpenCV's gives different
  saturation noise and so different hard-cut scores). The two rows the filter averages for an output
  pixel lie half that pixel's height apart (rows 2 and 6 of its 8 at 720p) instead of next to each
  other: samples further apart share less of the encoder's noise (block artefacts, ringing), which
  lowers the frame-to-frame noise of the hard-cut score. Cheaper than ``swscale``
  (bench/shots/README.md). Planes of less than four times the analysis height are read whole, as by
  ``planes``.
* ``"planes"``: as ``spread``, every row (the two rows averaged are neighbours): as many rows read,
  the same cost, a noisier hard-cut score (it misses a borderline cut of ``tests/data/bikes.mp4``).
* ``"swscale"``: swscale converts each frame straight to BGR at the small size (``interpolation``,
  ``FAST_BILINEAR`` by default), one context per scan, one thread. Dearer; its frames differ from
  the planes modes' by a few 8-bit levels per block mean, which moves some boundaries by a frame or
  two.

``planes`` and ``spread`` are used for 8-bit ``yuv420p`` frames (limited range, colorspace unspecified
or BT.601); any other frame takes the swscale path.
"""
from __future__ import annotations

from typing import Any

import numpy as np

SHRINKS = ("spread", "planes", "swscale")
# AVColorSpace values whose YUV -> RGB matrix is BT.601 (what OpenCV's 4:2:0 conversion uses):
# unspecified (2, swscale's default), BT470BG (5), SMPTE170M (6)
_BT601 = (2, 5, 6)
_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: full range


def plane_rows(plane: Any) -> np.ndarray:
    """A PyAV plane as a (height, line_size) uint8 array over its own memory (no copy; the rows are
    padded to ``line_size``)."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)


def spread_rows(height: int, out: int) -> slice:
    """The rows ``shrink="spread"`` reads of a plane ``height`` rows high that it shrinks to ``out`` rows:
    every ``step``-th row (a view, no copy; ``step`` = height // (2 * out)), so that the filter's two rows
    lie half an output pixel apart instead of next to each other; all rows when the plane is less than
    four times ``out`` high."""
    if height < 4 * out:
        return slice(None)
    step = height // (2 * out)
    return slice(step // 2, None, step)


class Shrinker:
    """Decoded frames -> (n, h, w, 3) BGR uint8 batches: ``add(j, frame)`` for j = 0, 1, ... below
    ``batch * pictures`` (frame j goes to batch ``j // batch``), then ``take(b, n)`` for batch b's first
    n frames. The batches' memory is reused: a batch taken is a new array; its small picture is written
    over by the next ``add`` of that batch's positions."""

    def __init__(self, w: int, h: int, batch: int, interpolation: str, shrink: str, pictures: int = 1):
        # heavy: PyAV, only when a file is decoded or written
        import av
        from av.video.reformatter import VideoReformatter

        if shrink not in SHRINKS:
            raise ValueError(f"shrink must be one of {SHRINKS}, got {shrink!r}")
        self.w, self.h, self.batch, self.interpolation = w, h, batch, interpolation
        self.planes = shrink != "swscale"  # the planes shrunk in place (``planes``, ``spread``)
        self.reformat = VideoReformatter().reformat  # one swscale context for the whole scan
        self.other: dict[int, np.ndarray] = {}  # frames shrunk by swscale (BGR), by position j
        self.spread = shrink == "spread"  # every few rows only (``spread_rows``)
        self.views: dict[tuple[int, int, int, int], tuple] = {}  # ``_view`` by plane geometry
        # heavy: OpenCV, only when frames are processed
        import cv2

        self.resize, self.linear = cv2.resize, cv2.INTER_LINEAR
        self.pics: list[Any] = []
        self.dst: list[list[np.ndarray]] = [[], [], []]  # per plane: the view of position j's rows
        if self.planes:
            # each batch as one small 4:2:0 picture of ``batch`` frames stacked (h is even, so each frame's
            # chroma rows are its own), into whose planes each frame's planes are shrunk
            for _ in range(max(1, pictures)):
                pic = av.VideoFrame(w, h * batch, "yuv420p")
                self.pics.append(pic)
                for q, plane in enumerate(pic.planes):
                    ph, pw = (h, w) if q == 0 else (h // 2, w // 2)
                    rows = plane_rows(plane)
                    self.dst[q] += [rows[k * ph:(k + 1) * ph, :pw] for k in range(batch)]

    def _swscale(self, frame) -> np.ndarray:
        return self.reformat(frame, width=self.w, height=self.h, format="bgr24",
                             interpolation=self.interpolation, threads=1).to_ndarray()

    def add(self, j: int, frame) -> None:
        if not self.planes or frame.format.name != "yuv420p" or frame.color_range == _JPEG_RANGE \
                or frame.colorspace not in _BT601:
            self.other[j] = self._swscale(frame)
            return
        for q, (plane, dst) in enumerate(zip(frame.planes, self.dst, strict=True)):
            key = (q, plane.height, plane.width, plane.line_size)
            shape, offset, strides, size = self.views.get(key) or self._view(key, dst[0].shape)
            rows = np.ndarray(shape, np.uint8, plane, offset, strides)  # a view of the plane's memory
            self.resize(rows, size, dst=dst[j], interpolation=self.linear)

    def _view(self, key: tuple[int, int, int, int], out: tuple[int, int]) -> tuple:
        """(shape, offset, strides, dsize) of the rows of a plane (``key``: index, height, width,
        line size) that are shrunk to ``out`` (h, w) rows and columns: ``spread_rows`` or all."""
        _, height, width, line = key
        rows = range(height)[spread_rows(height, out[0]) if self.spread else slice(None)]
        self.views[key] = ((len(rows), width), rows.start * line, (rows.step * line, 1), (out[1], out[0]))
        return self.views[key]

    def take(self, b: int, n: int) -> np.ndarray:
        """Batch ``b``'s first ``n`` frames, (n, h, w, 3) BGR uint8."""
        first = b * self.batch
        other: dict[int, np.ndarray] = {}  # by position in the batch: the frames swscale shrank
        if self.other:
            other = {j - first: self.other.pop(j) for j in range(first, first + n) if j in self.other}
        if len(other) == n:  # no frame in the planes (or planes not used)
            return np.stack([other[k] for k in range(n)])
        # swscale's own YUV -> BGR conversion (unscaled), as the swscale path's
        out = self.reformat(self.pics[b], format="bgr24", threads=1).to_ndarray()
        out = out.reshape(self.batch, self.h, self.w, 3)[:n]
        for k, bgr in other.items():
            out[k] = bgr
        return out
