"""Frame sampling shared by every stage.

``sample_frames(path, num_frames, policy)`` returns a ``Frames`` holding RGB uint8 frames at the
indices ``frame_indices`` picks.  Indices are computed once from a common probe (PyAV), so every
decoder returns the same indices for the same request; decoders only differ in how they fetch them.

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
from vidcap.media.files import check_file, media_type, open_video, probe_stream, reason
from vidcap.media.timerange import range_frames

DECODERS = ("pyav", "decord", "opencv")
# Measured with bench/frames/run.py (full table in bench/frames/README.md), 1 core, 4 frames a clip:
# PyAV (with the keyframe-aware seek rule below) is the fastest decoder in every row: short 720p clips
# 14-175 videos/s/core vs decord 11-66 and OpenCV 8-16; 5-minute 640x360 clips 40-484 vs decord
# 12-36 and OpenCV 22-86 (uniform: 18 ms/clip vs 67 decord, 26 OpenCV; decoding every frame: 2120 ms).
# It also opens every input we test (decord 0.6.0 fails on e.g. 16x16 clips) and is what the common
# probe uses anyway, so it avoids opening each file twice.
DEFAULT_DECODER = "pyav"
POLICIES = ("uniform", "segment", "fps", "single")
SINGLE_CHOICES = ("first", "middle", "last")

# Decoder threads per clip.  1 by default: the workflow runs one clip per core in parallel, where
# intra-clip threading only adds overhead (frame threading also delays output by one frame per
# thread).  0 = let FFmpeg pick.  Override with VIDCAP_DECODE_THREADS or ``threads=``.
DECODE_THREADS = int(os.environ.get("VIDCAP_DECODE_THREADS", "1"))

# PyAV strategy (per wanted frame, in order): when the container has a seek index (MP4/MOV/AVI, most
# MKV/WebM cues), look up the last keyframe at or before the target; seek to it only when it lies more
# than PYAV_SEEK_MIN_SKIP frames past the decode position, else keep decoding forward.  So a short clip
# decodes straight through unless a later GOP can be skipped, and long clips jump GOP to GOP.  Without
# an index, seek when the target is more than PYAV_SEEK_GAP_S seconds ahead.
# PYAV_SEEK = "auto" (the rule above) | "always" | "never" (bench knobs).
PYAV_SEEK = "auto"
PYAV_SEEK_MIN_SKIP = 2
PYAV_SEEK_GAP_S = 2.0
# OpenCV: same rule, CAP_PROP_POS_FRAMES seek instead of grab() when the gap is larger than this.
OPENCV_SEEK_GAP_S = 2.0

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

    return _read(path, pick, resize_short, decoder, threads)


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


def _read(path, pick, resize_short: int | None, decoder: str, threads: int | None) -> Frames:
    """Open ``path``, choose indices with ``pick(total_frames, fps)``, decode and resize them."""
    threads = DECODE_THREADS if threads is None else int(threads)
    path = _check_path(path)

    if media_type(path) == "image":
        frame = _read_image(path)
        h, w = frame.shape[:2]
        indices = pick(1, None)
        out = _resize(frame, resize_short)
        return Frames(np.stack([out] * len(indices)), indices, [0.0] * len(indices), 1, None, w, h, "image")

    if decoder == "pyav":
        import av

        container = _open_av(path)
        try:
            stream, total, fps_frac, w, h = _probe(container, path)
            indices = pick(total, float(fps_frac))
            size = _target_size(w, h, resize_short)
            got = _decode_pyav(container, stream, sorted(set(indices)), total, fps_frac, threads, size)
        except av.error.FFmpegError as e:
            raise FrameError(f"decode failed: {reason(e)}") from None
        finally:
            container.close()
    else:
        container = _open_av(path)
        try:
            stream, total, fps_frac, w, h = _probe(container, path)
        finally:
            container.close()
        indices = pick(total, float(fps_frac))
        if decoder == "decord":
            got = _decode_decord(path, sorted(set(indices)), total, threads)
        else:
            got = _decode_opencv(path, sorted(set(indices)), total, float(fps_frac), threads)

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
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
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
    import cv2

    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _open_av(path: str):
    try:
        return open_video(path)
    except MediaError as e:
        raise FrameError(f"{e}: {path}") from None


def _probe(container, path: str):
    """(stream, total_frames, fps as Fraction, width, height) of the first video stream
    (``vidcap.media.files.probe_stream``); FrameError when frames cannot be sampled from it."""
    try:
        info = probe_stream(container)
    except MediaError as e:
        raise FrameError(str(e)) from None
    if info.width <= 0 or info.height <= 0:
        raise FrameError("video stream has no frame size (undecodable stream)")
    if info.fps is None:
        raise FrameError("video stream has no frame rate")
    if info.total_frames <= 0:
        raise FrameError("video stream has no frames")
    return info.stream, info.total_frames, info.fps, info.width, info.height


def _decode_pyav(container, stream, targets: list[int], total: int, fps: Fraction, threads: int,
                 size: tuple[int, int] | None = None) -> dict:
    """Decode ``targets`` (sorted unique) to RGB arrays.  Sequential decode with seeks over long gaps.

    Without a seek the index is the frame's ordinal; after a seek it is derived from the frame's pts
    (constant frame rate assumed, which the ordinal and pts agree on).
    """
    stream.thread_count = threads
    if threads != 1:
        stream.thread_type = "AUTO"
    tb = stream.time_base
    start = stream.start_time or 0
    try:
        index = stream.index_entries if PYAV_SEEK == "auto" else None
        if index is not None and len(index) == 0:
            index = None
    except AttributeError:  # pragma: no cover - older PyAV
        index = None
    out: dict[int, np.ndarray] = {}
    it = iter(container.decode(stream))
    pos = -1  # index of the last decoded frame
    by_pts = False
    for t in targets:
        ts = start + int(Fraction(t) / fps / tb)
        if t <= pos + 1 or PYAV_SEEK == "never":
            seek = False
        elif PYAV_SEEK == "always":
            seek = True
        elif index is not None:
            k = index.search_timestamp(ts, backward=True, any_frame=False)
            if k >= 0:
                key = int(round((index[k].timestamp - start) * tb * fps))
                seek = key > pos + 1 + PYAV_SEEK_MIN_SKIP
            else:
                seek = t - pos - 1 > PYAV_SEEK_GAP_S * fps
        else:
            seek = t - pos - 1 > PYAV_SEEK_GAP_S * fps
        overshoot_retry = seek
        if seek:
            container.seek(ts, backward=True, any_frame=False, stream=stream)
            it = iter(container.decode(stream))
            pos, by_pts = -1, True
        while True:
            try:
                frame = next(it)
            except StopIteration:
                after = f" after frame {pos}" if pos >= 0 else ""
                raise FrameError(f"cannot decode frame {t} of {total}: stream ends{after} "
                                 "(truncated file?)") from None
            if by_pts and frame.pts is not None:
                pos = int(round((frame.pts - start) * tb * fps))
            else:
                pos += 1
            if pos < t:
                continue
            if pos == t:
                if size is None:
                    out[t] = frame.to_ndarray(format="rgb24")
                else:
                    out[t] = frame.reformat(width=size[0], height=size[1], format="rgb24",
                                            interpolation="AREA").to_ndarray()
                break
            if overshoot_retry:  # seek landed after the target: decode from the start instead
                container.seek(start, backward=True, any_frame=False, stream=stream)
                it = iter(container.decode(stream))
                pos, by_pts, overshoot_retry = -1, False, False
                continue
            raise FrameError(f"cannot decode frame {t} of {total}: decoder jumped to frame {pos}")
    return out


def _decode_decord(path: str, targets: list[int], total: int, threads: int) -> dict:
    try:
        import decord
    except ImportError as e:  # pragma: no cover
        raise FrameError(f"decord is not installed: {reason(e)}") from None
    try:
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads)
    except Exception as e:  # noqa: BLE001 - decord raises DECORDError, RuntimeError and others
        raise FrameError(f"decord cannot open file: {reason(e)}") from None
    n = len(vr)
    bad = [t for t in targets if t >= n]
    if bad:
        raise FrameError(f"cannot decode frame {bad[0]} of {total}: decord sees only {n} frames (truncated file?)")
    try:
        batch = vr.get_batch(targets).asnumpy()
    except Exception as e:  # noqa: BLE001 - any decord failure is this row's FrameError
        raise FrameError(f"cannot decode frames {targets} of {total}: {reason(e)}") from None
    return {t: batch[k] for k, t in enumerate(targets)}


def _decode_opencv(path: str, targets: list[int], total: int, fps: float, threads: int) -> dict:
    import cv2

    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, max(threads, 0)])
    try:
        if not cap.isOpened():
            raise FrameError("opencv cannot open file")
        gap = OPENCV_SEEK_GAP_S * fps
        out: dict[int, np.ndarray] = {}
        pos = 0  # index of the next frame read() returns
        for t in targets:
            if t - pos > gap:
                cap.set(cv2.CAP_PROP_POS_FRAMES, t)
                pos = t
            while pos < t:
                if not cap.grab():
                    raise FrameError(f"cannot decode frame {t} of {total}: stream ends after frame {pos - 1} "
                                     "(truncated file?)")
                pos += 1
            ok, bgr = cap.read()
            if not ok or bgr is None:
                raise FrameError(f"cannot decode frame {t} of {total} (truncated file?)")
            pos += 1
            out[t] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return out
    finally:
        cap.release()
