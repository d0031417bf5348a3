"""Writing clips of a video as their own files (optional: by default a clip is a time range of its source).

``export_clips(src, clips, out_dir, mode)`` writes one file per clip ``(clip_id, start_frame, end_frame)``
(frames ``[start, end)`` of the source, ``vidcap.shots.detect`` conventions) as ``out_dir/<clip_id><ext>`` and
returns one ``ExportResult`` per clip: its path and where it really starts and ends, or its error. One
clip's failure does not stop the others. Every file is written to a temporary name in ``out_dir`` and
renamed into place (``os.replace``), so a killed job never leaves a partial clip under the final name.

Modes:

* ``copy`` (stream copy, no quality loss, fast; the source's container and codecs). Packets are copied
  from the **last keyframe at or before the start frame**, so the file usually starts before the
  requested start: ``actual_start_frame`` says where (0 to one GOP early; frames before it are not
  decodable without it). It holds every packet decoded before the first frame at or after the end
  frame, i.e. every frame of ``[actual_start, end)`` plus, with B-frames, up to the reorder depth of
  reference frames after the end (``actual_end_frame``). Timestamps start at 0. Audio streams are
  copied for the same time span.
* ``reencode`` (exact): decodes from the keyframe before the start and encodes exactly the frames
  ``[start, end)`` with libx264 (``crf``, ``preset``, yuv420p, the source's frame rate) into ``.mp4``;
  video only (audio is not written).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vidcap.errors import FrameError, MediaError, describe_error
from vidcap.io.atomic import atomic_path
from vidcap.shots.decode import open_video

MODES = ("copy", "reencode")


@dataclass
class ExportResult:
    clip_id: str
    path: str | None  # the file written; None on error
    actual_start_frame: int | None = None  # first frame the file shows (copy: keyframe-aligned)
    actual_end_frame: int | None = None  # exclusive
    error: str | None = None


def clip_path(out_dir: str | Path, clip_id: str, src: str | Path, mode: str) -> Path:
    """``out_dir/<clip_id><ext>``: the source's extension for ``copy``, ``.mp4`` for ``reencode``."""
    ext = Path(str(src)).suffix.lower() if mode == "copy" else ".mp4"
    return Path(out_dir) / f"{clip_id}{ext or '.mp4'}"


def export_clips(src: str | Path, clips: list[tuple[str, int, int]], out_dir: str | Path, mode: str = "copy",
                 crf: int = 18, preset: str = "veryfast") -> list[ExportResult]:
    """Write each ``(clip_id, start_frame, end_frame)`` of ``src``; one result per clip, in order."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for clip_id, start, end in clips:
        dst = clip_path(out_dir, clip_id, src, mode)
        try:
            if not 0 <= int(start) < int(end):
                raise MediaError(f"bad frame range [{start}, {end})")
            with atomic_path(dst, suffix=dst.suffix) as tmp:
                if mode == "copy":
                    a, b = _copy(src, tmp, int(start), int(end))
                else:
                    a, b = _reencode(src, tmp, int(start), int(end), crf, preset)
            results.append(ExportResult(clip_id, str(dst), a, b))
        except Exception as exc:  # noqa: BLE001 - one clip's failure is that clip's error
            results.append(ExportResult(clip_id, None, error=describe_error(exc)))
    return results


def _frame_ts(info, frame: int) -> int:
    return info.start_pts + int(round(Fraction(frame) / info.fps / info.time_base))


def _index(info, pts: int) -> int:
    return int(round((pts - info.start_pts) * info.time_base * info.fps))


def _copy(src, tmp: Path, start: int, end: int) -> tuple[int, int]:
    # heavy: PyAV, only when a file is decoded or written
    import av

    info = open_video(src)
    inp = info.container
    try:
        vs = inp.streams.video[0]
        audio = list(inp.streams.audio)
        start_ts, end_ts = _frame_ts(info, start), _frame_ts(info, end)
        inp.seek(start_ts, stream=vs, backward=True, any_frame=False)
        with av.open(str(tmp), mode="w") as out:
            ovs = out.add_stream_from_template(vs)
            oas = {a.index: out.add_stream_from_template(a) for a in audio}
            t0 = None  # pts of the first video packet written (the keyframe), in the video time base
            t0_s = None
            end_s = float(end_ts * info.time_base)  # the clip's end on the container's clock (moves to
            # the end of the last frame written once the video is done)
            written: set[int] = set()  # frame indices written
            video_done = False
            try:
                for pkt in inp.demux(vs, *audio):
                    if pkt.dts is None and pkt.pts is None:
                        continue  # flush packet
                    if pkt.stream.index == vs.index:
                        if video_done:
                            continue
                        if t0 is None:
                            if not pkt.is_keyframe:
                                continue
                            t0 = pkt.pts
                            t0_s = float(t0 * info.time_base)  # seconds on the container's clock
                        if pkt.pts is None or pkt.pts < t0:
                            continue  # leading frames of an open GOP: not decodable from here
                        index = _index(info, pkt.pts)
                        if pkt.dts is not None and pkt.dts >= end_ts:
                            # past the end in decode order: take only frames filling a hole below the
                            # last frame written (B-frames shown before a reference frame written)
                            if not (written and index < max(written) and index not in written):
                                if len(written) == max(written, default=-1) - min(written, default=0) + 1:
                                    video_done = True
                                    end_s = float(_frame_ts(info, max(written, default=0) + 1) * info.time_base)
                                    if not audio:
                                        break
                                continue
                        pkt.pts -= t0
                        if pkt.dts is not None:
                            pkt.dts -= t0
                        written.add(index)
                        pkt.stream = ovs
                        out.mux(pkt)
                    else:
                        if t0_s is None or pkt.pts is None:
                            continue
                        tb = pkt.stream.time_base
                        t = float(pkt.pts * tb)
                        if t < t0_s:
                            continue
                        if t >= end_s:
                            if video_done:
                                break
                            continue
                        shift = int(round(t0_s / tb))
                        pkt.pts -= shift
                        if pkt.dts is not None:
                            pkt.dts -= shift
                        pkt.stream = oas[pkt.stream.index]
                        out.mux(pkt)
            except av.error.FFmpegError as exc:
                raise FrameError(f"cannot copy: {exc}") from None
            if t0 is None:
                raise FrameError(f"no keyframe at or before frame {start}")
            first, last = _index(info, t0), max(written)
            if last < end - 1 or len(written) != last - first + 1:
                raise FrameError(f"truncated: frames of [{first}, {end}) missing from the stream "
                                 f"({len(written)} frames up to {last})")
    finally:
        info.close()
    return first, last + 1


def _reencode(src, tmp: Path, start: int, end: int, crf: int, preset: str) -> tuple[int, int]:
    # heavy: PyAV, only when a file is decoded or written
    import av

    info = open_video(src)
    inp = info.container
    try:
        vs = inp.streams.video[0]
        if start > 0:
            inp.seek(_frame_ts(info, start), stream=vs, backward=True, any_frame=False)
        with av.open(str(tmp), mode="w") as out:
            os_ = out.add_stream("libx264", rate=info.fps)
            os_.width, os_.height, os_.pix_fmt = info.width - info.width % 2, info.height - info.height % 2, "yuv420p"
            os_.options = {"crf": str(crf), "preset": preset}
            n = 0
            ordinal = -1
            try:
                for frame in inp.decode(vs):
                    ordinal += 1
                    idx = ordinal if start == 0 or frame.pts is None else _index(info, frame.pts)
                    if idx < start:
                        continue
                    if idx >= end:
                        break
                    if idx != start + n:
                        raise FrameError(f"frame {start + n} is missing (the decoder went to {idx})")
                    f = frame.reformat(width=os_.width, height=os_.height, format="yuv420p")
                    f.pts = n
                    f.time_base = Fraction(1) / info.fps
                    for pkt in os_.encode(f):
                        out.mux(pkt)
                    n += 1
                for pkt in os_.encode():
                    out.mux(pkt)
            except av.error.FFmpegError as exc:
                raise FrameError(f"cannot re-encode: {exc}") from None
            if n < end - start:
                raise FrameError(f"truncated: frames stop at {start + n}, the clip ends at {end}")
    finally:
        info.close()
    return start, end
