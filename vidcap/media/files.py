"""Media files: what kind a path holds (told by its extension, as Open-Sora does), whether it is there,
and the one PyAV probe of a video stream (``open_video`` + ``probe_stream``) that the probe stage and
frame sampling share.

A path is a local file name or an object-store URL (``s3://``, ``gs://``, ``az://``, ``https://``;
``vidcap.io.remote``). ``check_file`` and ``media_source`` are the one place every stage opens its
input through: a URL becomes a ``RemoteFile`` that PyAV and PIL read ranges of, never a download."""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from vidcap.errors import MediaError
from vidcap.io import remote

if TYPE_CHECKING:  # PyAV is imported where media is opened, not at import time
    from av.video.stream import VideoStream as AVStream

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m2ts", ".webm"})
# FFmpeg's read size for a URL. Reads return what the RemoteFile holds (short reads), so it sets the
# calls into Python, not the fetch size; but FFmpeg reads through a jump shorter than this + 32 KB
# instead of seeking, so a larger one fetches the gaps between small GOPs (64 KB: 11 of 200 144p clips
# over 1.5x the bytes of their GOPs; 16 KB: none; bench/objectstore)
AV_BUFFER = 16 << 10
# bytes before an index at the end (MP4's moov after the media) fetched with it for a caller that reads
# the end: the last GOP of a small clip (144p: 10-32 KB) without a request of its own (bench/objectstore)
TAIL_BEHIND = 32 << 10
SPAN_AFTER = 4      # index entries read past a wanted frame's (a decoder's delay: B-frames)


def media_type(path: str | Path) -> str:
    """'image' for an image extension, else 'video' (unknown extensions are tried as video)."""
    return "image" if Path(str(path)).suffix.lower() in IMAGE_EXTENSIONS else "video"


def check_file(path) -> str:
    """``path`` as a string; MediaError for an empty path, a missing file, a folder or a 0-byte file."""
    if path is None or str(path).strip() == "":
        raise MediaError("empty path")
    path = str(path)
    if remote.is_url(path):
        if remote.object_size(path) == 0:
            raise MediaError(f"empty file (0 bytes): {remote.public_url(path)}")
        return path
    if not os.path.exists(path):
        raise MediaError(f"file not found: {path}")
    if os.path.isdir(path):
        raise MediaError(f"is a directory, not a file: {path}")
    if os.path.getsize(path) == 0:
        raise MediaError(f"empty file (0 bytes): {path}")
    return path


# ----------------------------------------------------------------------------------- video probing


@dataclass
class VideoStream:
    """Facts of a container's first video stream, read by ``probe_stream`` (no frame decoded).

    ``header_frames``: the container's frame count (0 when it has none, e.g. WebM);
    ``total_frames``: that count, or the video packets counted by demuxing when the header has none
    (``counted`` then True; the container is rewound). ``fps`` is a Fraction (None if the stream has
    no rate); ``duration`` in seconds from the stream, else the container (None if neither says).
    """

    stream: AVStream
    header_frames: int
    total_frames: int
    counted: bool
    fps: Fraction | None
    width: int
    height: int
    duration: float | None
    codec: str
    has_audio: bool


def reason(exc: BaseException) -> str:
    """FFmpeg/PyAV's reason without the file name (already in the row), at most 200 characters."""
    text = (getattr(exc, "strerror", None) or str(exc)).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def media_source(path: str):
    """What PyAV's ``av.open`` and PIL's ``Image.open`` take for ``path``: the file name itself, or a
    ``RemoteFile`` of a URL (RemoteError when the object cannot be read)."""
    return remote.open_remote(path) if remote.is_url(path) else path


def open_video(path: str, reads_end: bool = False, **options):
    """An open PyAV container for ``path`` (a file or a URL; ``options`` go to ``av.open``);
    MediaError saying why it cannot be opened as a video. ``reads_end``: the caller will decode the
    last second (a URL: the last ``TAIL_BEHIND`` bytes of media come with an index at the end)."""
    # heavy: PyAV, only when a file is decoded or written
    import av

    source: str | remote.RemoteFile = path
    if remote.is_url(path):
        source = remote.open_remote(path, whole_reads=False, read_behind=TAIL_BEHIND if reads_end else 0)
        options.setdefault("buffer_size", AV_BUFFER)
    try:
        return av.open(source, metadata_errors="ignore", **options)
    except av.error.FFmpegError as exc:
        raise MediaError(f"not a readable video: cannot open it ({reason(exc)})") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot open {remote.public_url(path)}: {reason(exc)}") from None


def expect_span(container, stream, from_ts: int, to_ts: int | None,
                then: list[tuple[int, int | None]] | tuple = ()) -> None:
    """Tell a URL's ``RemoteFile`` (``vidcap.io.remote``) the bytes the next reads of ``stream`` take:
    from the keyframe at or before ``from_ts`` through ``SPAN_AFTER`` index entries past ``to_ts``
    (stream time base; None: its last entry), so that it fetches a GOP in one request; ``then``: the
    ``(from_ts, to_ts)`` of the reads that follow, which it may fetch in the same request when few
    bytes lie between them (``RemoteFile.plan``). Nothing for a local file or a stream without a seek
    index (MP4/MOV have one; other containers may not)."""
    source = getattr(getattr(container, "file", None), "file", None)
    if not isinstance(source, remote.RemoteFile):
        return
    try:
        span = _index_span(stream, from_ts, to_ts)
        if span is None:
            return
        source.plan([s for s in (_index_span(stream, f, t) for f, t in then) if s is not None])
        source.expect(*span)
    except (AttributeError, IndexError):   # an older PyAV or an odd index: the default read-ahead
        return


def _index_span(stream, from_ts: int, to_ts: int | None) -> tuple[int, int] | None:
    """Bytes ``[start, end)`` of ``stream``'s packets from the keyframe at or before ``from_ts`` through
    ``SPAN_AFTER`` index entries past ``to_ts`` (None: through the last), by the container's index."""
    index = stream.index_entries
    n = len(index)
    k = index.search_timestamp(from_ts, backward=True, any_frame=False) if n else -1
    if k < 0:
        return None
    j = n - 1 if to_ts is None else index.search_timestamp(to_ts, backward=False, any_frame=True)
    last = index[n - 1 if j < 0 else min(n - 1, j + SPAN_AFTER)]
    return index[k].pos, last.pos + max(last.size, 0)


def probe_stream(container, count: bool = True) -> VideoStream:
    """``VideoStream`` of the first video stream; MediaError when there is none (naming what there is).

    ``count``: count packets when the header gives no frame count (a demux pass, no decoding).
    """
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        if kinds == ["audio"]:
            raise MediaError("no video stream (audio only)")
        raise MediaError(f"no video stream (found: {', '.join(kinds) or 'no streams'})")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = Fraction(rate) if rate and rate > 0 else None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000  # av.time_base
    else:
        duration = None
    header = int(stream.frames or 0)
    total, counted = header, False
    if header <= 0 and count:
        total = sum(1 for pkt in container.demux(stream) if pkt.size)
        counted = True
        container.seek(stream.start_time or 0, backward=True, any_frame=False, stream=stream)
    ctx = stream.codec_context
    return VideoStream(stream=stream, header_frames=header, total_frames=total, counted=counted, fps=fps,
                       width=int(ctx.width or 0), height=int(ctx.height or 0), duration=duration,
                       codec=ctx.name, has_audio=bool(container.streams.audio))
