"""Probe stage: container facts per row (parity with Open-Sora ``datautil --info``).

Columns: ``num_frames, fps, width, height, duration, aspect_ratio`` (height / width, as Open-Sora),
``resolution`` (height × width), ``codec``, ``media_type`` (video | image) and ``probe_error``.
With ``check`` = ``first`` a row counts as readable when its first frame decodes; ``ends`` (default)
also demuxes the last second and fails rows whose frames stop before the duration the header gives
(files cut short whose index survived); ``header`` reads the header only. ``probe_error`` ends with
the file's path (``file not found: <path>``, ``cannot open ...: <path>``), as ``motion_error`` does.

A row with ``start``/``end`` (a clip of a longer file, e.g. from the shots stage) gets its clip's
``num_frames`` and ``duration``; ``source_num_frames`` / ``source_duration`` are the whole file's (equal
to them for a row without a range); fps, size and codec are the file's. The checks apply to the file.
"""
from __future__ import annotations

from fractions import Fraction

import av
import pyarrow as pa
from PIL import Image, UnidentifiedImageError

from vidcap.config import stage_settings
from vidcap.errors import MediaError, StageRowError
from vidcap.io.shards import MEDIA_PATH
from vidcap.media.files import check_file, expect_span, media_source, media_type, open_video, probe_stream, reason
from vidcap.media.timerange import range_frames, row_range
from vidcap.stages.rows import RowStage


def probe_image(path: str) -> dict:
    try:
        with Image.open(media_source(path)) as im:
            im.load()
            width, height = im.size
            codec = (im.format or "").lower()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise MediaError(f"cannot read image: {exc}") from None
    return {"num_frames": 1, "fps": None, "width": width, "height": height, "duration": None,
            "codec": codec, "media_type": "image"}


def probe_video(path: str, check: str = "ends") -> dict:
    with open_video(path, reads_end=check == "ends") as container:
        info = probe_stream(container)
        stream, fps = info.stream, float(info.fps) if info.fps else None
        duration, num_frames = info.duration, info.total_frames
        if info.header_frames and fps and duration and info.header_frames > 1.1 * duration * fps + 1:
            raise MediaError(f"truncated: header says {info.header_frames} frames but the stream lasts "
                             f"{duration:.2f} s ({duration * fps:.0f} frames at {fps:g} fps)")
        # without a header count the container's duration may be the audio's: only then trust it
        if info.counted and fps and duration and not info.has_audio and num_frames < 0.9 * duration * fps - 1:
            raise MediaError(f"truncated: header says {duration:.2f} s at {fps:g} fps but only "
                             f"{num_frames} frames are present")
        tail = duration if check == "ends" and num_frames > 1 and stream.duration is not None else None
        if check in ("first", "ends"):
            _decode_one(container, stream, [] if tail is None else [(_tail_ts(stream, tail), None)])
        if tail is not None:
            _check_tail(container, stream, tail, fps)
    if not info.width or not info.height:
        raise MediaError("video stream has no frame size")
    if fps is None and duration and num_frames:
        fps = num_frames / duration
    if duration is None and fps:
        duration = num_frames / fps
    return {"num_frames": int(num_frames), "fps": fps, "width": info.width, "height": info.height,
            "duration": duration, "codec": info.codec, "media_type": "video"}


def _tail_ts(stream, duration: float) -> int:
    """The timestamp one second before the end, where ``_check_tail`` seeks."""
    return int(max(duration - 1.0, 0.0) / stream.time_base) + (stream.start_time or 0)


def _decode_one(container, stream, then: list) -> None:
    """Decode the first frame (``then``: the spans read next, for ``expect_span``); MediaError when
    nothing decodes."""
    start = stream.start_time or 0
    expect_span(container, stream, start, start, then)   # a URL: the first GOP's start in one request
    try:
        for _frame in container.decode(stream):
            return
    except av.FFmpegError as exc:
        raise MediaError(f"cannot decode first frame: {reason(exc)}") from None
    raise MediaError("no frame decodes")


def _check_tail(container, stream, duration: float, fps: float | None) -> None:
    """Demux (no decoding) the last second; MediaError when the packets stop well before the end.

    Catches files cut short whose index (e.g. an MP4 ``moov`` at the front) still lists every frame.
    """
    frame_time = 1.0 / fps if fps else 0.1
    last = None
    try:
        tail_ts = _tail_ts(stream, duration)
        expect_span(container, stream, tail_ts, None)   # a URL: the tail, one request
        container.seek(tail_ts - (stream.start_time or 0), stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None:
                t = float(packet.pts * stream.time_base) - float(stream.start_time or 0) * float(stream.time_base)
                last = t if last is None else max(last, t)
    except av.FFmpegError as exc:
        raise MediaError(f"truncated: cannot read the end of the stream: {reason(exc)}") from None
    if last is None or last < duration - frame_time - max(2.5 * frame_time, 0.1):
        at = "nothing" if last is None else f"{last:.2f} s"
        raise MediaError(f"truncated: stream says {duration:.2f} s but its frames end at {at}")


class ProbeStage(RowStage):
    name = "probe"
    version = "1"
    overlaps_url_rows = True   # URL rows run several at a time (``vidcap.stages.rows``)
    columns = {
        "num_frames": pa.int64(),
        "fps": pa.float64(),
        "width": pa.int64(),
        "height": pa.int64(),
        "duration": pa.float64(),
        "aspect_ratio": pa.float64(),
        "resolution": pa.int64(),
        "codec": pa.string(),
        "media_type": pa.string(),
        "source_num_frames": pa.int64(),
        "source_duration": pa.float64(),
    }

    def __init__(self, params=None):
        super().__init__({"check": stage_settings(self.name, params)["check"]})

    def process_row(self, row: dict) -> dict:
        path = row[MEDIA_PATH]
        check_file(path)
        start, end = row_range(row)
        try:
            if media_type(path) == "image":
                if start is not None or end is not None:
                    raise StageRowError("an image has no time range (start/end given)")
                info = probe_image(path)
            else:
                info = probe_video(path, self.params["check"])
        except MediaError as exc:   # the file the message is about, as motion_error names it
            raise MediaError(f"{exc}: {path}") from None
        info["source_num_frames"], info["source_duration"] = info["num_frames"], info["duration"]
        if (start is not None or end is not None) and info["fps"]:
            # a clip of a longer file (start/end): its own frame count and duration; file facts stay
            s, e = range_frames(start, end, Fraction(info["fps"]).limit_denominator(100000), info["num_frames"])
            info["num_frames"], info["duration"] = e - s, (e - s) / info["fps"]
        info["aspect_ratio"] = info["height"] / info["width"]
        info["resolution"] = info["height"] * info["width"]
        return info
