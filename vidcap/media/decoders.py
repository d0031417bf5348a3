"""The frame decoders behind ``vidcap.media.frames``: PyAV, decord and OpenCV, and the common PyAV probe.

``open_av(path)`` and ``probe(container, path)`` give the stream, frame count, frame rate and size every
decoder's indices are computed from; ``decode_pyav`` / ``decode_decord`` / ``decode_opencv`` fetch the
sorted unique ``targets`` as ``{index: RGB uint8 array}``. Frame ``i`` is the ``i``-th frame in
presentation order; a frame that does not decode is a ``FrameError("cannot decode frame i of N: ...")``,
never a substitute (the contracts are ``vidcap.media.frames``'). The seek knobs below are read at each
call (the benchmark and tests set them).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from vidcap.errors import FrameError, MediaError
from vidcap.io.remote import public_url
from vidcap.media.files import expect_span, open_video, probe_stream, reason

DECODERS = ("pyav", "decord", "opencv")
# Measured with bench/frames/run.py (full table in bench/frames/README.md), 1 core, 4 frames a clip:
# PyAV (with the keyframe-aware seek rule below) is the fastest decoder in every row: short 720p clips
# 14-175 videos/s/core vs decord 11-66 and OpenCV 8-16; 5-minute 640x360 clips 40-484 vs decord
# 12-36 and OpenCV 22-86 (uniform: 18 ms/clip vs 67 decord, 26 OpenCV; decoding every frame: 2120 ms).
# It also opens every input we test (decord 0.6.0 fails on e.g. 16x16 clips) and is what the common
# probe uses anyway, so it avoids opening each file twice.
DEFAULT_DECODER = "pyav"

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


def open_av(path: str, reads_end: bool = False):
    """The PyAV container of ``path`` (``reads_end``: ``open_video``'s); FrameError naming the file
    when it cannot be opened."""
    try:
        return open_video(path, reads_end)
    except MediaError as e:
        raise FrameError(f"{e}: {public_url(path)}") from None


def probe(container, path: str):
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


def decode_pyav(container, stream, targets: list[int], total: int, fps: Fraction, threads: int,
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
    last_ts = start
    stamps = [start + int(Fraction(t) / fps / tb) for t in targets]
    for i, t in enumerate(targets):
        ts = stamps[i]
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
        # a URL: the GOP in one request, with the next ones while few bytes lie between them
        expect_span(container, stream, ts if seek else last_ts, ts, then=[(u, u) for u in stamps[i + 1:]])
        last_ts = ts
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


def decode_decord(path: str, targets: list[int], total: int, threads: int) -> dict:
    try:
        import decord  # optional: only for decoder='decord'
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


def decode_opencv(path: str, targets: list[int], total: int, fps: float, threads: int) -> dict:
    import cv2  # heavy: only for decoder='opencv'

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
