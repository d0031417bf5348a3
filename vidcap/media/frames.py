"""Frame sampling shared by every stage.

``sample_frames(path, num_frames, policy)`` returns a ``Frames`` holding RGB uint8 frames at the
indices ``frame_indices`` picks.  Indices are computed once from a common probe (PyAV), so every
decoder returns the same indices for the same request; decoders (``vidcap.media.decoders``) only
differ in how they fetch them.

Contracts shared by all decoders:

* Frame ``i`` is the ``i``-th frame in presentation order (0-based).
* The frame count is the container's count when it has one (MP4/MOV/AVI headers); when the header
  says 0 (WebM/Matroska) the video packets are counted by demuxing, without decoding.
* Truncated files: when the container claims more frames than actually decode, a request that
  needs a frame that does not decode raises ``FrameError("cannot decode frame i of N: ...")``.
  We never sample from a shorter range silently and never pad with substitute/black frames.
* Every failure to produce the requested frames is a ``FrameError`` with a short readable reason.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from vidcap.errors import FrameError, MediaError, StageRowError
from vidcap.io.remote import is_url
from vidcap.media import decoders
from vidcap.media.decoders import DECODERS, DEFAULT_DECODER
from vidcap.media.files import check_file, media_source, media_type, reason
from vidcap.media.timerange import range_frames

POLICIES = ("uniform", "segment", "fps", "single")
SINGLE_CHOICES = ("first", "middle", "last")

# Decoder threads per clip.  1 by default: the workflow runs one clip per core in parallel, where
# intra-clip threading only adds overhead (frame threading also delays output by one frame per
# thread).  0 = let FFmpeg pick.  Override with VIDCAP_DECODE_THREADS or ``threads=``.
DECODE_THREADS = int(os.environ.get("VIDCAP_DECODE_THREADS", "1"))

_OPENSORA_FRACTIONS = {1: (0.5,), 2: (0.25, 0.75), 3: (0.1, 0.5, 0.9)}


@dataclass
class Frames:
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB, N == len(indices)
    indices: list[int]  # frame numbers actually returned (0-based)
    timestamps: list[float]  # seconds, index / fps (0.0 for images)
    total_frames: int  # frames in the source (1 for images)
    fps: float | None  # None for images
    width: int  # source size before resizing
    height: int
    media_type: str  # "video" | "image"


def frame_indices(
    total_frames: int,
    num_frames: int,
    policy: str = "uniform",
    fps: float | None = None,
    single: str = "middle",
) -> list[int]:
    """Frame indices (0-based, sorted, duplicates possible) to sample from a clip of ``total_frames``.

    * ``uniform``: 1-3 frames at the Open-Sora fractions (0.5 | 0.25, 0.75 | 0.1, 0.5, 0.9 of the
      count, ``int(f * total)``); N >= 4: ``round(linspace(0, total-1, N))``.
    * ``segment``: PLLaVA segment centres, ``int(seg/2) + round(seg*i)`` with ``seg = (total-1)/N``.
    * ``fps``: one frame a second, ``round(k*fps)`` while < total; when that is more than
      ``num_frames``, ``linspace(0, total-1, num_frames)`` truncated to int (LLaVA-NeXT-Video's
      ``dtype=int``).  May return fewer than ``num_frames``.  Needs ``fps`` unless total == 1.
    * ``single``: one frame, ``single`` = first | middle (``total // 2``) | last; num_frames ignored.

    Indices are clamped into [0, total-1].  Raises ValueError for a bad policy/single value,
    total_frames < 1, num_frames < 1 (except ``single``) or a missing fps for ``fps``.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; allowed: {', '.join(POLICIES)}")
    if single not in SINGLE_CHOICES:
        raise ValueError(f"unknown single {single!r}; allowed: {', '.join(SINGLE_CHOICES)}")
    total = int(total_frames)
    if total < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}")
    if policy != "single" and int(num_frames) < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    n = int(num_frames)

    if policy == "single":
        idx = [{"first": 0, "middle": total // 2, "last": total - 1}[single]]
    elif policy == "uniform":
        if n in _OPENSORA_FRACTIONS:
            idx = [int(f * total) for f in _OPENSORA_FRACTIONS[n]]
        else:
            idx = [int(v) for v in np.round(np.linspace(0, total - 1, n))]
    elif policy == "segment":
        seg = (total - 1) / n
        idx = [int(seg / 2) + int(round(seg * i)) for i in range(n)]
    else:  # fps
        if total == 1:
            idx = [0]
        else:
            if fps is None or not fps > 0:
                raise ValueError("policy 'fps' needs the clip's fps (> 0)")
            idx = []
            k = 0
            while (i := int(round(k * fps))) < total:
                idx.append(i)
                k += 1
            if len(idx) > n:
                idx = [int(v) for v in np.linspace(0, total - 1, n, dtype=int)]
    return [min(max(i, 0), total - 1) for i in idx]


def sample_frames(
    path,
    num_frames: int = 4,
    policy: str = "uniform",
    *,
    single: str = "middle",
    resize_short: int | None = None,
    decoder: str | None = None,
    threads: int | None = None,
    unique: bool = False,
    time_range: tuple[float | None, float | None] | None = None,
) -> Frames:
    """Decode the frames ``frame_indices`` picks from ``path`` (video or image, by extension).

    ``resize_short``: shrink (INTER_AREA, aspect kept) so the shorter side equals it; never upscales.
    ``decoder``: one of DECODERS (default DEFAULT_DECODER); ``threads``: decoder threads per clip
    (default DECODE_THREADS).  Images are read with PIL as one-frame videos (fps None).
    Returns exactly ``len(indices)`` frames, in index order, duplicates repeated (Open-Sora's index
    math) — unless ``unique``: then each frame at most once, so a clip shorter than ``num_frames``
    gives fewer frames (what every stage asks for: no frame is ever repeated to fill a request).
    ``time_range``: (start, end) seconds (either None = the file's edge): frames are picked inside
    ``[start, end)`` only, as if it were the whole clip; indices and timestamps stay the file's own.
    A bad or empty range is a StageRowError; an image takes no range.
    Raises FrameError for anything unreadable (see module docstring); ValueError for bad arguments.
    """
    decoder = DEFAULT_DECODER if decoder is None else decoder
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; allowed: {', '.join(DECODERS)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; allowed: {', '.join(POLICIES)}")
    if single not in SINGLE_CHOICES:
        raise ValueError(f"unknown single {single!r}; allowed: {', '.join(SINGLE_CHOICES)}")
    if resize_short is not None and int(resize_short) < 1:
        raise ValueError(f"resize_short must be >= 1, got {resize_short}")
    def pick(total: int, fps: float | None) -> list[int]:
        start = 0
        if time_range is not None and any(v is not None for v in time_range):
            if fps is None:
                raise StageRowError("an image has no time range (start/end given)")
            start, end = range_frames(time_range[0], time_range[1], Fraction(fps).limit_denominator(100000), total)
            total = end - start
        idx = [start + i for i in frame_indices(total, num_frames, policy, fps, single)]
        return sorted(set(idx)) if unique else idx

    # the last frame is among them: a URL's index at the end comes with the last GOP (``open_video``)
    reads_end = (policy == "uniform" and int(num_frames) >= 4 or policy == "single" and single == "last") and \
        (time_range is None or time_range[1] is None)
    return _read(path, pick, resize_short, decoder, threads, reads_end)


def read_frames(
    path,
    indices,
    *,
    resize_short: int | None = None,
    decoder: str | None = None,
    threads: int | None = None,
) -> Frames:
    """Decode the given frame ``indices`` (0-based, any order, repeats allowed) of ``path``.

    Same decoders, resizing and errors as ``sample_frames``; used to show exactly the frames a stage
    recorded (e.g. ``caption_frame_indices``). An index outside the file's frames is a FrameError.
    """
    decoder = DEFAULT_DECODER if decoder is None else decoder
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; allowed: {', '.join(DECODERS)}")
    want = [int(i) for i in indices]
    if not want:
        raise ValueError("indices must not be empty")
    if resize_short is not None and int(resize_short) < 1:
        raise ValueError(f"resize_short must be >= 1, got {resize_short}")

    def pick(total: int, fps: float | None) -> list[int]:
        bad = [i for i in want if not 0 <= i < total]
        if bad:
            raise FrameError(f"frame {bad[0]} out of range: the file has {total} frame(s)")
        return want

    return _read(path, pick, resize_short, decoder, threads)


def _read(path, pick, resize_short: int | None, decoder: str, threads: int | None,
          reads_end: bool = False) -> Frames:
    """Open ``path``, choose indices with ``pick(total_frames, fps)``, decode and resize them
    (``reads_end``: ``open_video``'s)."""
    threads = DECODE_THREADS if threads is None else int(threads)
    path = _check_path(path)

    if media_type(path) == "image":
        frame = _read_image(path)
        h, w = frame.shape[:2]
        indices = pick(1, None)
        out = _resize(frame, resize_short)
        return Frames(np.stack([out] * len(indices)), indices, [0.0] * len(indices), 1, None, w, h, "image")

    if decoder == "pyav":
        import av  # heavy: only for its error type, when decoding with PyAV

        container = decoders.open_av(path, reads_end)
        try:
            stream, total, fps_frac, w, h = decoders.probe(container, path)
            indices = pick(total, float(fps_frac))
            size = _target_size(w, h, resize_short)
            got = decoders.decode_pyav(container, stream, sorted(set(indices)), total, fps_frac, threads, size)
        except av.error.FFmpegError as e:
            raise FrameError(f"decode failed: {reason(e)}") from None
        finally:
            container.close()
    else:
        if is_url(path):
            raise FrameError(f"decoder {decoder!r} reads local files only; use decoder 'pyav' for URLs")
        container = decoders.open_av(path)
        try:
            stream, total, fps_frac, w, h = decoders.probe(container, path)
        finally:
            container.close()
        indices = pick(total, float(fps_frac))
        if decoder == "decord":
            got = decoders.decode_decord(path, sorted(set(indices)), total, threads)
        else:
            got = decoders.decode_opencv(path, sorted(set(indices)), total, float(fps_frac), threads)

    fps = float(fps_frac)
    frames = [_resize(got[i], resize_short) for i in indices]
    return Frames(np.stack(frames), indices, [i / fps for i in indices], total, fps, w, h, "video")


# --------------------------------------------------------------------------------------------- helpers


def _check_path(path) -> str:
    try:
        return check_file(path)
    except MediaError as e:
        raise FrameError(str(e)) from None


def _read_image(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # heavy: only for images

    try:
        with Image.open(media_source(path)) as im:
            im.load()
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise FrameError(f"not a readable image: {path}: {reason(e)}") from None
    return np.asarray(rgb, dtype=np.uint8)


def _target_size(w: int, h: int, resize_short: int | None) -> tuple[int, int] | None:
    """(width, height) with the shorter side == resize_short, aspect kept; None when no shrink is due."""
    if resize_short is None or min(w, h) <= resize_short:
        return None
    scale = resize_short / min(w, h)
    if h <= w:
        return max(1, int(round(w * scale))), resize_short
    return resize_short, max(1, int(round(h * scale)))


def _resize(frame: np.ndarray, resize_short: int | None) -> np.ndarray:
    """Shrink so the shorter side is ``resize_short`` (aspect kept, INTER_AREA); never upscale.

    The PyAV path already resizes inside swscale (area filter, fused with the RGB conversion: measured
    ~0.9 ms vs ~2.7 ms a 720p frame for RGB + cv2 INTER_AREA), so its frames arrive here at size.
    """
    frame = np.ascontiguousarray(frame)
    size = _target_size(frame.shape[1], frame.shape[0], resize_short)
    if size is None:
        return frame
    import cv2  # heavy: only when a frame needs shrinking

    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
