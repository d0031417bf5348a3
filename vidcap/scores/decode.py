"""One decoding pass over a row's frames for the scores stage.

``scan(path, time_range, pick, motion_vectors)`` decodes the row's range ``[s, e)`` once, front to back
(a seek to the keyframe before ``s`` when ``s > 0``), and returns a ``Scan``: grey frames (source
resolution, uint8) at the range-relative offsets ``pick(n, fps)`` chooses, and, when
``motion_vectors`` is on and the codec exports them (H.264, MPEG-2/4), the motion-vector lengths of
every P frame (pixels, source resolution; B frames are not read), past- and future-pointing apart, with
the I and P frames' positions
(``vidcap.scores.measure.mv_speed`` turns them into a speed).
Offsets are relative to the range start. A frame that should exist but does not decode is a
``FrameError`` (never a substitute); images are read as one grey frame with no motion vectors.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from vidcap.errors import FrameError, StageRowError
from vidcap.media.decoders import open_av, probe
from vidcap.media.files import media_type, reason
from vidcap.media.timerange import range_frames


@dataclass
class Scan:
    frames: dict[int, np.ndarray]      # range-relative offset -> grey frame (H, W) uint8, source size
    count: int                          # frames in the range
    fps: float | None                   # None for images
    # (offset, picture type I/P/B, past vector lengths, future vector lengths); empty: codec has none
    mv_records: list[tuple[int, str, np.ndarray, np.ndarray]] = field(default_factory=list)
    image: bool = False
    rgb: dict[int, np.ndarray] = field(default_factory=dict)   # offset -> RGB frame, for model scores


def scan(path: str, time_range: tuple[float | None, float | None] | None,
         pick: Callable[[int, float], list[int]], motion_vectors: bool = True,
         pick_rgb: Callable[[int], list[int]] | None = None) -> Scan:
    """Decode the row's range once; see the module docstring. ``pick_rgb(n)``: offsets also kept as RGB
    (``Scan.rgb``, for the model scores)."""
    if media_type(path) == "image":
        if time_range is not None and any(v is not None for v in time_range):
            raise StageRowError("an image has no time range (start/end given)")
        from PIL import Image  # heavy/optional library: loaded only when this runs

        try:
            with Image.open(path) as im:
                grey = np.asarray(im.convert("L"), dtype=np.uint8)
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8) if pick_rgb else None
        except (OSError, ValueError, SyntaxError) as exc:
            raise FrameError(f"not a readable image: {path}: {reason(exc)}") from None
        return Scan({0: grey}, 1, None, image=True, rgb={0: rgb} if rgb is not None else {})
    import av  # heavy: only when decoding

    container = open_av(path)
    try:
        stream, total, fps, _w, _h = probe(container, path)
        s, e = 0, total
        if time_range is not None and any(v is not None for v in time_range):
            s, e = range_frames(time_range[0], time_range[1], Fraction(fps).limit_denominator(100000), total)
        n = e - s
        want = set(pick(n, float(fps)))
        want_rgb = set(pick_rgb(n)) if pick_rgb else set()
        if motion_vectors:
            stream.codec_context.options = {"flags2": "+export_mvs"}
        stream.thread_count = 1
        frames, rgb, records = _decode(container, stream, s, e, fps, want, want_rgb, motion_vectors)
    except av.error.FFmpegError as exc:
        raise FrameError(f"decode failed: {reason(exc)}") from None
    finally:
        container.close()
    missing = sorted((want - set(frames)) | (want_rgb - set(rgb)))
    if missing:
        raise FrameError(f"cannot decode frame {s + missing[0]} of {total}: the stream ends early")
    return Scan(frames, n, float(fps), records, rgb=rgb)


def _decode(container, stream, s: int, e: int, fps: Fraction, want: set[int], want_rgb: set[int], mvs: bool):
    tb = stream.time_base
    start = stream.start_time or 0
    by_pts = False
    if s > 0:
        container.seek(start + int(Fraction(s) / fps / tb), stream=stream, backward=True)
        by_pts = True
    frames: dict[int, np.ndarray] = {}
    rgb: dict[int, np.ndarray] = {}
    records: list[tuple[int, str, np.ndarray, np.ndarray]] = []
    pos = -1
    for frame in container.decode(stream):
        pos += 1
        i = pos
        if by_pts and frame.pts is not None:
            i = int(round((frame.pts - start) * tb * fps))
        if i < s:
            continue
        if i >= e:
            break
        off = i - s
        if off in want:
            frames[off] = grey(frame)
        if off in want_rgb:
            rgb[off] = frame.to_ndarray(format="rgb24")
        if mvs:
            kind = _PICT.get(int(frame.pict_type), "?")
            if kind in ("I", "P"):   # anchors; B frames' vectors are left unread (half the cost, same motion)
                vectors = _vectors(frame) if kind == "P" else None
                records.append((off, kind, *(vectors or (np.zeros(0), np.zeros(0)))))
    return frames, rgb, records


_PICT = {1: "I", 2: "P", 3: "B"}   # AVPictureType
_PLANAR_YUV = ("yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuvj444p", "nv12")
_LIMITED = np.clip((np.arange(256) - 16) * 255.0 / 219.0 + 0.5, 0, 255).astype(np.uint8)   # luma 16-235 -> 0-255


def grey(frame) -> np.ndarray:
    """The frame's grey levels (0-255, full range) at source size: the luma plane itself for 8-bit YUV
    (limited-range luma stretched to full range; about 20x cheaper than a grey conversion), else a
    grey conversion."""
    name = frame.format.name
    if name not in _PLANAR_YUV:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
    full = name.startswith("yuvj") or int(getattr(frame, "color_range", 0) or 0) == 2   # AVCOL_RANGE_JPEG
    import cv2  # heavy/optional library: loaded only when this runs

    return np.ascontiguousarray(y) if full else cv2.LUT(y, _LIMITED)


def _vectors(frame) -> tuple[np.ndarray, np.ndarray] | None:
    """(past, future) motion-vector lengths of one frame in pixels; None for a frame without vectors."""
    for data in frame.side_data:
        if str(getattr(data, "type", "")).endswith("MOTION_VECTORS"):
            a = data.to_ndarray()
            if not len(a):
                return None
            scale = np.maximum(a["motion_scale"].astype(np.float64), 1.0)
            length = np.hypot(a["motion_x"] / scale, a["motion_y"] / scale)
            return length[a["source"] < 0], length[a["source"] > 0]
    return None
