"""Sequential low-resolution decoding for shot detection (every frame, or every reference frame).

``open_video(path)`` probes the first video stream (``VideoInfo``). ``scan_blocks(info, ...)`` decodes the
frames of ``[start, end)`` in presentation order a block at a time (up to ``block`` frames, shrunk to
``width`` pixels wide a few at a time as they are decoded: ``vidcap.shots.shrink``, which never makes
full-resolution RGB) and then hands the block over as an iterator of its batches ``(indices, frames)``
(up to ``batch`` frames, an (n, h, w, 3) BGR uint8 array, as PySceneDetect's detectors expect).
``scan_batches`` yields the same batches with a block of one batch; ``scan`` yields them frame by frame
as ``(index, frame)``.

Why blocks: decoding a frame evicts the analysis's code and data from the CPU caches, and analysing a
batch evicts the decoder's. Switching between the two once per block of a few hundred frames instead of
once per batch costs less CPU time (bench/shots/README.md, tenth round); a batch still stays small
enough for its frames to stay in the caches while it is analysed. For the same reason decoded frames
of 540p and larger are shrunk ``HOLD`` (4) at a time (``held_frames``), not one by one: decoding a frame
also evicts the shrinker's code (Python's and OpenCV's), which then runs warm for all but the first of
them, while such frames' pixels have left the core's own cache by the time the decoder hands them over
either way. Smaller frames have not, and are shrunk at once (bench/shots/README.md, eleventh round).

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
from vidcap.shots.shrink import Shrinker

log = logging.getLogger("vidcap.shots.detect")

SKIP_MODES = ("none", "nonref", "nonkey")
HWACCELS = ("none", "cuda", "vaapi", "qsv", "videotoolbox", "d3d11va")
_WARNED: set[str] = set()
# a stream may end this many frames (or this share of its header count) early before it is "truncated"
TRUNCATION_SLACK_FRAMES = 2
TRUNCATION_SLACK_SHARE = 0.005
# ``held_frames``: decoded frames held, then shrunk one after the other; only frames of at least
# HOLD_FROM_BYTES (smaller ones are still in the core's own cache when the decoder hands them over), and
# at most HOLD_BYTES of them (sizes counted as 8-bit 4:2:0)
HOLD = 4
HOLD_FROM_BYTES = 512 << 10
HOLD_BYTES = 8 << 20
BLOCK_BYTES = 32 << 20  # the most memory a block's small frames may take, counted as BGR (``scan_blocks``)


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
    frames shrunk to ``width`` pixels wide, an (n, h, w, 3) BGR uint8 array (``end=None``: to the end);
    ``scan_blocks`` with blocks of one batch (the same arguments)."""
    for batches in scan_blocks(info, width, start, end, skip, fast, threads, interpolation, shrink, batch, batch):
        yield from batches


def scan_blocks(info: VideoInfo, width: int = 160, start: int = 0, end: int | None = None, skip: str = "none",
                fast: bool = True, threads: int = 1, interpolation: str = "FAST_BILINEAR",
                shrink: str = "spread", batch: int = 32, block: int = 256):
    """Yield, for each block of up to ``block`` frames of ``[start, end)`` (``end=None``: to the end), an
    iterator of the block's batches ``(indices, frames)``: lists of up to ``batch`` frame indices and
    their frames shrunk to ``width`` pixels wide, an (n, h, w, 3) BGR uint8 array. Every frame of a
    block is decoded and shrunk before its first batch is handed over; each batch is converted to BGR
    as it is taken. Read a block's batches before asking for the next block (its small pictures are
    then reused: RuntimeError otherwise). Memory: ``block`` small frames, one batch in BGR and up to
    ``held_frames`` decoded frames besides the decoder's own.

    ``skip``: one of SKIP_MODES; ``fast``: skip the deblocking filter; ``threads``: decoder threads
    (1 = one core; the CPU cost per frame is lowest single-threaded); ``shrink``: one of
    ``vidcap.shots.shrink.SHRINKS``; ``interpolation``: swscale's filter where swscale shrinks;
    ``block`` is rounded up to whole batches, and down to what fits in ``BLOCK_BYTES`` (at least one
    batch: large analysis widths). Seeks to the keyframe before ``start`` when
    ``start > 0``. After the last frame, checks that the stream did not end early (FrameError
    ``truncated``); the number of frames seen is in ``info.decoded`` and the last index in
    ``info.last_index``. Sets the process's allocator to keep freed memory (``vidcap.media.allocator``).
    """
    keep_freed_memory()  # the batch arrays are reused, not page-faulted in again every batch
    w, h = analysis_size(info.width, info.height, width)
    per = max(1, min(-(-int(block) // int(batch)), BLOCK_BYTES // (batch * w * h * 3)))  # batches a block
    small = Shrinker(w, h, batch, interpolation, shrink, per)
    handed = 0  # blocks handed over so far

    def batches(indices: list[int], block: int):
        """The batches of the ``block``-th block (refused once a later block was handed over)."""
        for b, k in enumerate(range(0, len(indices), batch)):
            if handed != block:
                raise RuntimeError("a block's batches were read after the next block was decoded")
            part = indices[k:k + batch]
            yield part, small.take(b, len(part))

    hold = held_frames(info.width, info.height)
    held: list[Any] = []  # decoded frames not shrunk yet: the last len(held) of ``indices``
    indices: list[int] = []

    def shrink_held() -> None:
        for j, f in enumerate(held, len(indices) - len(held)):
            small.add(j, f)
        held.clear()

    for index, frame in _decode(info, start, end, skip, fast, threads):
        held.append(frame)
        indices.append(index)
        if len(held) >= hold:
            shrink_held()
        if len(indices) >= batch * per:  # a block is shrunk whole before it is handed over
            shrink_held()
            handed += 1
            yield batches(indices, handed)
            indices = []
    shrink_held()
    if indices:
        handed += 1
        yield batches(indices, handed)


def held_frames(width: int, height: int) -> int:
    """How many decoded frames ``scan_blocks`` holds before it shrinks them: one (each shrunk at once) for
    frames under ``HOLD_FROM_BYTES``, else ``HOLD``, fewer when ``HOLD`` of them would take more than
    ``HOLD_BYTES``, and at least one."""
    size = width * height * 3 // 2
    if size < HOLD_FROM_BYTES:
        return 1
    return max(1, min(HOLD, HOLD_BYTES // size))


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
