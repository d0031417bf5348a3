"""Sequential low-resolution decoding for shot detection (every frame, or every reference frame).

``open_video(path)`` probes the first video stream (``VideoInfo``); ``scan_batches(info, ...)`` yields
``(indices, frames)`` for the frames of ``[start, end)`` in presentation order, up to ``batch`` at a
time, each shrunk to ``width`` pixels wide (an (n, h, w, 3) BGR uint8 array, as PySceneDetect's
detectors expect); ``scan(info, ...)`` yields them one by one as ``(index, frame)``. Full-resolution
RGB is never made. Three ways to shrink (``shrink``):

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

Frame ``i`` is the ``i``-th frame in presentation order (the convention of ``vidcap.media.frames``): counted
while decoding from the start, derived from the timestamp (constant frame rate) after a seek or when
frames are skipped.

Speed knobs (the decoder still has to decode every reference frame; see docs/shots.md):

* ``skip="nonref"``: the decoder drops frames no other frame references (most B-frames of x264's
  default settings: about every other frame); cuts are then placed between the last frame seen of
  the old shot and the first frame seen of the new one.
* ``skip="nonkey"``: keyframes only (the proxy pass of ``vidcap.shots.proxy``); no truncation check.
* ``fast=True``: skip the in-loop deblocking filter (``skip_loop_filter=all``): small artefacts at
  block edges, invisible at analysis size.
* ``open_video(path, hwaccel="cuda")``: decode on a device (PyAV's ``HWAccel``; frames are copied
  back to memory). When the FFmpeg build lacks that device type, the device cannot be opened, or it
  cannot decode the stream, the file is decoded on the CPU instead and a warning says why (logged
  once per reason and process); ``VideoInfo.decoder`` says which decoder ran (``cpu``, ``cuda``, or
  ``cpu (cuda unavailable: <reason>)``).

Errors: ``FrameError`` (``vidcap.errors``) with a short reason for a missing/empty file, a file that
does not open, no video stream (``no video stream (audio only)``), a decode error, or a stream that
ends well before its header says (``truncated: ...``). Nothing is skipped silently.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from vidcap.errors import FrameError, MediaError
from vidcap.media.allocator import keep_freed_memory
from vidcap.media.files import check_file, media_source

log = logging.getLogger("vidcap.shots.detect")

SKIP_MODES = ("none", "nonref", "nonkey")
HWACCELS = ("none", "cuda", "vaapi", "qsv", "videotoolbox", "d3d11va")
_WARNED: set[str] = set()
# a stream may end this many frames (or this share of its header count) early before it is "truncated"
TRUNCATION_SLACK_FRAMES = 2
TRUNCATION_SLACK_SHARE = 0.005


@dataclass
class VideoInfo:
    path: str
    fps: Fraction
    num_frames: int | None  # header count (None when the container has none)
    width: int
    height: int
    codec: str
    time_base: Fraction
    start_pts: int
    container: Any = None  # the open av InputContainer (closed by ``close``)
    decoded: int = 0  # frames ``scan`` yielded
    decoder: str = "cpu"  # cpu | the hwaccel device type | cpu (<type> unavailable: <reason>)
    last_index: int = -1  # index of the last frame ``scan`` yielded

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


def _reason(exc: BaseException) -> str:
    text = (getattr(exc, "strerror", None) or str(exc)).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


def _open_hw(path: str, device: str):
    """(container, None) decoding on ``device``, or (None, reason) when that device cannot be used here."""
    # heavy: PyAV, only when a file is decoded or written
    import av
    from av.codec.hwaccel import HWAccel, hwdevices_available

    if device not in hwdevices_available():
        return None, f"not in this FFmpeg build (it has: {', '.join(hwdevices_available()) or 'none'})"
    try:
        container = av.open(media_source(path), metadata_errors="ignore", hwaccel=HWAccel(device, allow_software_fallback=True))
    except (av.error.FFmpegError, OSError, RuntimeError, ValueError) as exc:
        return None, f"the device does not open ({_reason(exc)}; no {device} device or driver here?)"
    stream = container.streams.video[0] if container.streams.video else None
    if stream is not None and not stream.codec_context.is_hwaccel:
        container.close()
        return None, f"it cannot decode this stream ({stream.codec_context.name})"
    return container, None


def open_video(path, hwaccel: str = "none") -> VideoInfo:
    """Open ``path`` and describe its first video stream; FrameError when it is not a usable video.

    ``hwaccel``: one of HWACCELS; a device that cannot be used falls back to the CPU with a warning.
    """
    # heavy: PyAV, only when a file is decoded or written
    import av

    if hwaccel not in HWACCELS:
        raise ValueError(f"hwaccel must be one of {HWACCELS}, got {hwaccel!r}")
    try:
        path = check_file(path)
    except MediaError as exc:
        raise FrameError(str(exc)) from None
    container, decoder = None, "cpu"
    if hwaccel != "none":
        container, reason = _open_hw(path, hwaccel)
        decoder = hwaccel if container is not None else f"cpu ({hwaccel} unavailable: {reason})"
        if container is None:
            _warn_once(f"stages.shots.decode.hwaccel = {hwaccel}: {reason}; decoding on the CPU instead")
    try:
        container = container or av.open(media_source(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise FrameError(f"cannot open as video: {_reason(exc)}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise FrameError(f"cannot open {path}: {_reason(exc)}") from None
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise FrameError(f"no video stream (found: {', '.join(kinds)})")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise FrameError("video stream has no frame rate")
        if not ctx.width or not ctx.height:
            raise FrameError("video stream has no frame size (undecodable stream)")
        frames = int(stream.frames or 0) or None
        return VideoInfo(path, Fraction(rate), frames, int(ctx.width), int(ctx.height), ctx.name,
                         Fraction(stream.time_base), int(stream.start_time or 0), container, decoder=decoder)
    except BaseException:
        container.close()
        raise


def count_frames(info: VideoInfo) -> int:
    """Frames of the stream: the header count, else video packets counted by demuxing (no decoding)."""
    if info.num_frames:
        return info.num_frames
    container = info.container
    stream = container.streams.video[0]
    n = sum(1 for pkt in container.demux(stream) if pkt.size)
    container.seek(info.start_pts, backward=True, any_frame=False, stream=stream)
    info.num_frames = n
    return n


def analysis_size(width: int, height: int, target: int) -> tuple[int, int]:
    """(w, h) with the width shrunk to ``target`` (aspect kept, even sizes); never enlarged."""
    if width <= target:
        return width - width % 2 or width, height - height % 2 or height
    h = max(2, int(round(height * target / width)))
    return target, h + h % 2


SHRINKS = ("spread", "planes", "swscale")
# AVColorSpace values whose YUV -> RGB matrix is BT.601 (what OpenCV's 4:2:0 conversion uses):
# unspecified (2, swscale's default), BT470BG (5), SMPTE170M (6)
_BT601 = (2, 5, 6)
_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: full range


def scan(info: VideoInfo, width: int = 160, start: int = 0, end: int | None = None, skip: str = "none",
         fast: bool = True, threads: int = 1, interpolation: str = "FAST_BILINEAR", shrink: str = "spread"):
    """Yield ``(index, bgr_frame)`` for frames ``start <= index < end`` (``end=None``: to the end);
    ``scan_batches``'s frames one by one (the same arguments)."""
    for indices, frames in scan_batches(info, width, start, end, skip, fast, threads, interpolation, shrink):
        yield from zip(indices, frames, strict=True)


def scan_batches(info: VideoInfo, width: int = 160, start: int = 0, end: int | None = None, skip: str = "none",
                 fast: bool = True, threads: int = 1, interpolation: str = "FAST_BILINEAR",
                 shrink: str = "spread", batch: int = 32):
    """Yield ``(indices, frames)``: lists of up to ``batch`` frame indices in ``[start, end)`` and their
    frames shrunk to ``width`` pixels wide, an (n, h, w, 3) BGR uint8 array (``end=None``: to the end).

    ``skip``: one of SKIP_MODES; ``fast``: skip the deblocking filter; ``threads``: decoder threads
    (1 = one core; the CPU cost per frame is lowest single-threaded); ``shrink``: one of SHRINKS
    (module docstring); ``interpolation``: swscale's filter where swscale shrinks. Seeks to the keyframe
    before ``start`` when ``start > 0``. After the last frame, checks that the stream did not end early
    (FrameError ``truncated``); the number of frames seen is in ``info.decoded`` and the last index in
    ``info.last_index``. Sets the process's allocator to keep freed memory (``vidcap.media.allocator``).
    """
    if shrink not in SHRINKS:
        raise ValueError(f"shrink must be one of {SHRINKS}, got {shrink!r}")
    keep_freed_memory()  # the batch arrays are reused, not page-faulted in again every batch
    w, h = analysis_size(info.width, info.height, width)
    small = _Shrinker(w, h, batch, interpolation, shrink)
    indices: list[int] = []
    for index, frame in _decode(info, start, end, skip, fast, threads):
        small.add(len(indices), frame)  # at once, while the decoded picture is in the CPU caches
        indices.append(index)
        if len(indices) >= batch:
            yield indices, small.take(len(indices))
            indices = []
    if indices:
        yield indices, small.take(len(indices))


def _plane_rows(plane: Any) -> np.ndarray:
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


class _Shrinker:
    """Decoded frames -> an (n, h, w, 3) BGR uint8 array: ``add(k, frame)`` for k = 0, 1, ... < batch,
    then ``take(n)`` (``scan_batches``'s ways to shrink)."""

    def __init__(self, w: int, h: int, batch: int, interpolation: str, shrink: str):
        # heavy: PyAV, only when a file is decoded or written
        import av
        from av.video.reformatter import VideoReformatter

        self.w, self.h, self.batch, self.interpolation = w, h, batch, interpolation
        self.planes = shrink != "swscale"  # the planes shrunk in place (``planes``, ``spread``)
        self.reformat = VideoReformatter().reformat  # one swscale context for the whole scan
        self.other: dict[int, np.ndarray] = {}  # frames shrunk by swscale (BGR), by position in the batch
        self.spread = shrink == "spread"  # every few rows only (``spread_rows``)
        self.views: dict[tuple[int, int, int, int], tuple] = {}  # ``_view`` by plane geometry
        # heavy: OpenCV, only when frames are processed
        import cv2

        self.resize, self.linear = cv2.resize, cv2.INTER_LINEAR
        if self.planes:
            # the batch as one small 4:2:0 picture of ``batch`` frames stacked (h is even, so each frame's
            # chroma rows are its own), into whose planes each frame's planes are shrunk
            self.pic = av.VideoFrame(w, h * batch, "yuv420p")
            self.dst = []
            for q, plane in enumerate(self.pic.planes):
                ph, pw = (h, w) if q == 0 else (h // 2, w // 2)
                rows = _plane_rows(plane)
                self.dst.append([rows[k * ph:(k + 1) * ph, :pw] for k in range(batch)])

    def _swscale(self, frame) -> np.ndarray:
        return self.reformat(frame, width=self.w, height=self.h, format="bgr24",
                             interpolation=self.interpolation, threads=1).to_ndarray()

    def add(self, k: int, frame) -> None:
        if not self.planes or frame.format.name != "yuv420p" or frame.color_range == _JPEG_RANGE \
                or frame.colorspace not in _BT601:
            self.other[k] = self._swscale(frame)
            return
        for q, (plane, dst) in enumerate(zip(frame.planes, self.dst, strict=True)):
            key = (q, plane.height, plane.width, plane.line_size)
            shape, offset, strides, size = self.views.get(key) or self._view(key, dst[0].shape)
            rows = np.ndarray(shape, np.uint8, plane, offset, strides)  # a view of the plane's memory
            self.resize(rows, size, dst=dst[k], interpolation=self.linear)

    def _view(self, key: tuple[int, int, int, int], out: tuple[int, int]) -> tuple:
        """(shape, offset, strides, dsize) of the rows of a plane (``key``: index, height, width,
        line size) that are shrunk to ``out`` (h, w) rows and columns: ``spread_rows`` or all."""
        _, height, width, line = key
        rows = range(height)[spread_rows(height, out[0]) if self.spread else slice(None)]
        self.views[key] = ((len(rows), width), rows.start * line, (rows.step * line, 1), (out[1], out[0]))
        return self.views[key]

    def take(self, n: int) -> np.ndarray:
        other, self.other = self.other, {}
        if len(other) == n:  # no frame in the planes (or planes not used)
            return np.stack([other[k] for k in range(n)])
        # swscale's own YUV -> BGR conversion (unscaled), as the swscale path's
        out = self.reformat(self.pic, format="bgr24", threads=1).to_ndarray()
        out = out.reshape(self.batch, self.h, self.w, 3)[:n]
        for k, bgr in other.items():
            out[k] = bgr
        return out


def _decode(info: VideoInfo, start: int, end: int | None, skip: str, fast: bool, threads: int):
    """Yield ``(index, av.VideoFrame)`` for frames ``start <= index < end`` (``scan_batches``)."""
    # heavy: PyAV, only when a file is decoded or written
    import av

    if skip not in SKIP_MODES:
        raise ValueError(f"skip must be one of {SKIP_MODES}, got {skip!r}")
    container = info.container
    stream = container.streams.video[0]
    ctx = stream.codec_context
    stream.thread_count = int(threads)
    if threads != 1:
        stream.thread_type = "AUTO"
    opts = {}
    if fast:
        opts["skip_loop_filter"] = "all"
    if opts:
        ctx.options = opts
    if skip != "none":
        ctx.skip_frame = skip.upper()
    fps, tb = info.fps, info.time_base
    by_pts = skip != "none" or start > 0
    if start > 0:
        ts = info.start_pts + int(Fraction(start) / fps / tb)
        container.seek(ts, backward=True, any_frame=False, stream=stream)
    ordinal = -1
    last = -1
    seen = 0
    info.decoded = 0
    info.last_index = -1
    try:
        for frame in container.decode(stream):
            ordinal += 1
            if by_pts:
                if frame.pts is None:
                    raise FrameError("frame without timestamp: cannot place it after a seek")
                index = int(round((frame.pts - info.start_pts) * tb * fps))
            else:
                index = ordinal
            if index <= last:  # duplicate timestamp (VFR, broken stream): keep the first
                continue
            last = index
            if index < start:
                continue
            if end is not None and index >= end:
                break
            seen += 1
            info.decoded, info.last_index = seen, index
            yield index, frame
    except av.error.FFmpegError as exc:
        total = f" of {info.num_frames}" if info.num_frames else ""
        raise FrameError(f"decode failed after frame {last}{total} (truncated or corrupt?): {_reason(exc)}") from None
    expected = info.num_frames or 0
    if end is not None:
        expected = min(end, expected) if expected else end
    slack = max(TRUNCATION_SLACK_FRAMES, int(TRUNCATION_SLACK_SHARE * expected))
    if skip == "nonref":
        slack += 2  # the last frames may be non-reference ones
    elif skip == "nonkey":
        slack = expected  # keyframes only: the last one can be anywhere in the last GOP
    if seen == 0:
        raise FrameError("no frame decodes" + (f" in frames [{start}, {end})" if start or end else ""))
    if expected and last < expected - 1 - slack:
        raise FrameError(f"truncated: frames stop at {last + 1} of {expected} "
                         f"({(last + 1) / float(fps):.2f} s of {expected / float(fps):.2f} s)")


def tiny(frame: np.ndarray, size: tuple[int, int] = (8, 5)) -> np.ndarray:
    """A (h, w, 3) float32 thumbnail of a BGR frame: means of ``size`` (w, h) equal blocks (the last
    rows/columns that do not fill a block are left out, which keeps OpenCV on its fast path)."""
    # heavy: OpenCV, only when frames are processed
    import cv2

    h, w = frame.shape[:2]
    hh, ww = h - h % size[1] or h, w - w % size[0] or w
    return cv2.resize(frame[:hh, :ww], size, interpolation=cv2.INTER_AREA).astype(np.float32)
