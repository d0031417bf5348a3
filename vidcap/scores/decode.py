"""One decoding pass over a row's frames for the scores stage.

``scan(path, time_range, pick, motion_vectors)`` decodes the row's range ``[s, e)`` once, front to back
(a seek to the keyframe before ``s`` when ``s > 0``), and returns a ``Scan``: grey frames (source
resolution, uint8) at the range-relative offsets ``pick(n, fps)`` chooses, and, when
``motion_vectors`` is on and the codec exports them (H.264, MPEG-2/4), the mean codec motion-vector
length of every inter frame (pixels, source resolution; each block weighted by its area).
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
    mv_lengths: list[float] = field(default_factory=list)   # per inter frame; empty: codec has none
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
        from PIL import Image

        try:
            with Image.open(path) as im:
                grey = np.asarray(im.convert("L"), dtype=np.uint8)
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8) if pick_rgb else None
        except (OSError, ValueError, SyntaxError) as e:
            raise FrameError(f"not a readable image: {path}: {reason(e)}") from None
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
        frames, rgb, lengths = _decode(container, stream, s, e, fps, want, want_rgb, motion_vectors)
    except av.error.FFmpegError as exc:
        raise FrameError(f"decode failed: {reason(exc)}") from None
    finally:
        container.close()
    missing = sorted((want - set(frames)) | (want_rgb - set(rgb)))
    if missing:
        raise FrameError(f"cannot decode frame {s + missing[0]} of {total}: the stream ends early")
    return Scan(frames, n, float(fps), lengths, rgb=rgb)


def _decode(container, stream, s: int, e: int, fps: Fraction, want: set[int], want_rgb: set[int], mvs: bool):
    tb = stream.time_base
    start = stream.start_time or 0
    by_pts = False
    if s > 0:
        container.seek(start + int(Fraction(s) / fps / tb), stream=stream, backward=True)
        by_pts = True
    frames: dict[int, np.ndarray] = {}
    rgb: dict[int, np.ndarray] = {}
    lengths: list[float] = []
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
            frames[off] = frame.to_ndarray(format="gray")
        if off in want_rgb:
            rgb[off] = frame.to_ndarray(format="rgb24")
        if mvs:
            length = _mv_length(frame)
            if length is not None:
                lengths.append(length)
    return frames, rgb, lengths


def _mv_length(frame) -> float | None:
    """Area-weighted mean motion-vector length of one frame (pixels); None for frames without vectors."""
    for data in frame.side_data:
        if getattr(data, "type", None) is not None and str(data.type).endswith("MOTION_VECTORS"):
            a = data.to_ndarray()
            if not len(a):
                return None
            scale = np.maximum(a["motion_scale"].astype(np.float64), 1.0)
            length = np.hypot(a["motion_x"] / scale, a["motion_y"] / scale)
            area = a["w"].astype(np.float64) * a["h"].astype(np.float64)
            return float((length * area).sum() / max(area.sum(), 1.0))
    return None
