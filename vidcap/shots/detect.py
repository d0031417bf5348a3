"""Shot detection and the expansion of a source row into clip rows.

``detect_shots(path, settings) -> list[Shot]``: the shots of a video, found with PySceneDetect's
detectors (hard cuts: ``AdaptiveDetector`` or ``ContentDetector``; fades: ``ThresholdDetector``) and
``vidcap.shots.dissolve`` (cross-fades) on frames decoded at ``analysis_width`` (``vidcap.shots.decode``),
then shortened, split and filtered by ``min_clip_s``, ``max_clip_s``, ``split_long``/``stride_s``.
The detectors live in ``vidcap.shots.detectors`` and take the frames a block of batches at a time
(``vidcap.shots.decode.scan_blocks``; the same boundaries as frame by frame); ``proxy.enabled`` hands detection to
``vidcap.shots.proxy`` (a cheap pass, then this module's full pass around candidates);
``decode.hwaccel`` decodes on a device where one can be used (``vidcap.shots.decode``).

``clip_rows(row, settings) -> list[dict]``: every source row gives its clip rows, or exactly one row
carrying ``shots_error`` (a file that is missing, unreadable, audio-only, truncated, a range outside the
video, no shot long enough); never nothing. Images and one-frame videos are one clip of one frame.
Rows whose manifest gives ``start``/``end`` (seconds, or ``[HH:]MM:SS[.fff]``) are one clip of that
range (``ranges: keep``, default) or are searched for shots inside it (``ranges: detect``).

Conventions: frame ``i`` is the ``i``-th frame in presentation order (as ``vidcap.media.frames``); a range
``[start_frame, end_frame)`` excludes its end; seconds are ``frame / fps`` from the first frame
(constant frame rate); a range given in seconds covers the frames whose time ``i / fps`` lies in
``[start, end)``. Settings are the ``stages.shots`` section (``vidcap/schema/stages/shots.yaml``),
defaults filled by ``shot_settings``.
"""
from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from vidcap.config import stage_settings
from vidcap.errors import MediaError, StageRowError, describe_error
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.media.files import media_type
from vidcap.media.frames import read_frames
from vidcap.media.timerange import range_frames, row_range
from vidcap.shots.boundaries import MERGE_GAP, PRIORITY, Boundary, Detection, merge_boundaries  # noqa: F401 - part of this module's API
from vidcap.shots.decode import VideoInfo, count_frames, open_video, scan_blocks
from vidcap.shots.detectors import FlashCheck, detectors, thumbnails
from vidcap.shots.proxy import detect_proxy

KINDS = ("cut", "fade", "dissolve")
# clip row columns (besides the source row's own): name -> meaning (docs/shots.md)
CLIP_COLUMNS = ("clip_id", "source_row_id", "clip_index", "start_s", "end_s", "start_frame", "end_frame",
                "clip_frames", "fps", "clip_begins", "clip_ends", "shots_error")
# a shot begins/ends at: the file's start/end, a detected boundary (KINDS), a split of a long shot,
# or the edge of a range given by the manifest
EDGES = ("start", "end", *KINDS, "split", "range")


@dataclass(frozen=True)
class Shot:
    """A clip of a video: frames ``[start_frame, end_frame)``, seconds ``[start_s, end_s)``."""

    index: int
    start_frame: int
    end_frame: int
    start_s: float | None  # None for images
    end_s: float | None
    begins: str  # one of EDGES
    ends: str

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame


def shot_settings(params: dict | None = None) -> dict:
    """``stages.shots`` settings with every default filled and every value checked (ConfigError)."""

    return stage_settings("shots", params)


# ---------------------------------------------------------------------------------------- detection


def detect_boundaries(path, settings: dict | None = None, start: int = 0, end: int | None = None) -> Detection:
    """Boundaries of the video at ``path`` inside frames ``[start, end)`` (``end=None``: to the end).

    Raises FrameError for anything that prevents reading the frames (see ``vidcap.shots.decode``).
    """
    return _detect(path, shot_settings(settings), start, end)


def _detect(path, settings: dict, start: int = 0, end: int | None = None,
            info: VideoInfo | None = None) -> Detection:
    """``detect_boundaries`` with settings ``shot_settings`` gave; ``info``: the video already open (closed
    here; not with ``proxy.enabled``, whose first pass opens its own)."""
    # heavy: PySceneDetect (and OpenCV), only when shots are detected
    from scenedetect import FrameTimecode

    if settings["proxy"]["enabled"]:  # a cheap pass, then this function (proxy off) around candidates
        if info is not None:
            info.close()
        return detect_proxy(path, settings, start, end, full_pass=_detect)
    info = info or open_video(path, settings["decode"]["hwaccel"])
    try:
        fps = info.fps
        cut_det, fade_det, diss_det = detectors(settings, fps)
        dec = settings["decode"]
        fades: list[int] = []
        dark: set[int] = set()  # frames below the fade threshold
        means: list[float] = []  # mean level of each frame seen
        thr = settings["fades"]["threshold"]
        seen: list[int] = []
        flash = flash_check(settings, fps)
        # the file's frame count, when the frames seen cannot give it (counted before decoding: without
        # a header count it takes a demux pass from the start)
        counted = count_frames(info) if end is not None or dec["skip"] != "none" else None
        # frames are decoded and shrunk a block at a time, then analysed: the per-pixel steps (BGR,
        # thumbnails, hard-cut scores) a batch at a time, whose frames stay in the CPU caches, and the
        # detectors' decisions once over the block's thumbnails and scores (the same values and
        # boundaries as frame by frame); the analysis's code and data, and the decoder's, are evicted
        # from the caches once per block instead of once per batch (vidcap.shots.decode)
        blocks = scan_blocks(info, settings["analysis_width"], start, end, dec["skip"], dec["fast"],
                             dec["threads"], shrink=dec["shrink"], batch=BATCH, block=BLOCK)
        for batches in blocks:
            indices: list[int] = []
            parts = []
            for part, stack in batches:
                indices += part
                parts.append(thumbnails(stack))
                cut_det.score(part, stack)
            thumbs = np.concatenate(parts)
            seen += indices
            flash.push_batch(indices, thumbs)
            flash.add(cut_det.cuts())
            if fade_det is not None:  # frame means from the thumbnails (the same means, fewer pixels)
                levels = thumbs.reshape(len(indices), -1).mean(axis=1)
                fades += fade_det.process_batch(indices, levels)
                lv = levels.tolist()
                means += lv
                dark.update(i for i, v in zip(indices, lv, strict=True) if v < thr)
            if diss_det is not None:
                diss_det.push_batch(indices, thumbs)
        last = FrameTimecode(info.last_index, fps=fps)
        flash.add([c.frame_num for c in cut_det.post_process(last)])
        cuts = flash.finish()
        if fade_det is not None:
            fades += [c.frame_num for c in fade_det.post_process(last)]
        dissolves = diss_det.finish() if diss_det is not None else []
        total = info.last_index + 1 if counted is None else max(counted, info.last_index + 1)
        stop = total if end is None else min(end, total)
    finally:
        info.close()

    seen_set = set(seen)
    boundaries = [_hard_cut(c, seen, seen_set) for c in cuts]
    boundaries += [_fade_span(c, dark, seen, means, fps) for c in fades]
    boundaries += [Boundary("dissolve", d.cut, d.start, d.end) for d in dissolves if not d.ramp]
    merged = merge_boundaries(boundaries)
    merged = [b for b in merged if start < b.cut < stop]
    return Detection(merged, total, fps, start, stop, len(seen), info.decoder)


BATCH = 16  # frames converted to BGR and scored at once (memory: BATCH small BGR frames and their HSV)
BLOCK = 256  # frames decoded before any of them is analysed (memory: BLOCK small frames)


def flash_check(settings: dict, fps: Fraction) -> FlashCheck:
    """The flash check ``detect_boundaries`` feeds: ``flash_window_s`` after each cut, and enough
    thumbnails kept for the frames before it (4 shortest scenes, 64 frames and a block)."""
    min_len = max(1, int(round(settings["min_scene_s"] * float(fps))))
    return FlashCheck(int(round(settings["flash_window_s"] * float(fps))), keep=4 * min_len + 64 + BLOCK)


def _hard_cut(cut: int, seen: list[int], seen_set: set[int]) -> Boundary:
    """A hard cut at the frame a detector reported; with skipped frames, the middle of the unseen gap."""
    if cut in seen_set:
        k = bisect.bisect_left(seen, cut)
        prev = seen[k - 1] if k > 0 else cut - 1
        if cut - prev > 1:  # frames between the last frame seen of the old shot and this one were skipped
            mid = (prev + 1 + cut + 1) // 2
            return Boundary("cut", mid, prev + 1, cut)
    return Boundary("cut", cut, cut, cut)


def _fade_span(cut: int, dark: set[int], seen: list[int], means: list[float], fps: Fraction) -> Boundary:
    """A fade boundary spanning its dark stretch (frames below the threshold around ``cut``) and the
    brightness ramps on either side (frames getting steadily darker before it, brighter after it, at
    most one second each), so that other detections inside the fade merge into it."""

    k = min(max(bisect.bisect_left(seen, cut), 0), len(seen) - 1)
    lo = hi = k
    while lo > 0 and seen[lo - 1] in dark:
        lo -= 1
    while hi + 1 < len(seen) and seen[hi + 1] in dark:
        hi += 1
    if seen[lo] not in dark:
        return Boundary("fade", cut, cut, cut + 1)
    reach = max(1, int(round(float(fps))))
    first = lo
    while lo > 0 and first - lo < reach and means[lo - 1] > means[lo] + RAMP_STEP:
        lo -= 1
    last = hi
    while hi + 1 < len(seen) and hi - last < reach and means[hi + 1] > means[hi] + RAMP_STEP:
        hi += 1
    return Boundary("fade", cut, seen[lo], seen[hi] + 1)


RAMP_STEP = 0.5  # mean 8-bit level a fade ramp changes by at least, frame to frame


# -------------------------------------------------------------------------------------------- shots


def _seconds(frame: int, fps: Fraction | None) -> float | None:
    return None if fps is None else float(Fraction(frame) / fps)


def split_shot(start: int, end: int, fps: Fraction, settings: dict) -> list[tuple[int, int]]:
    """Pieces ``[(s, e)]`` of one shot after ``max_clip_s`` / ``split_long`` / ``stride_s``."""
    max_s = settings.get("max_clip_s")
    n = end - start
    if not max_s:
        return [(start, end)]
    max_f = max(1, int(math.floor(max_s * float(fps) + 1e-9)))
    if n <= max_f:
        return [(start, end)]
    if settings.get("split_long", "even") == "even":
        k = math.ceil(n / max_f)
        edges = [start + (n * i) // k for i in range(k + 1)]
        return list(zip(edges[:-1], edges[1:], strict=True))
    stride_s = settings.get("stride_s") or max_s
    stride = max(1, int(round(stride_s * float(fps))))
    pieces = []
    s = start
    while s < end:
        pieces.append((s, min(s + max_f, end)))
        if s + max_f >= end:
            break
        s += stride
    return pieces


def shots_from_boundaries(boundaries: list[Boundary], start: int, end: int, fps: Fraction,
                          settings: dict, edge_begin: str = "start", edge_end: str = "end") -> list[Shot]:
    """Shots of frames ``[start, end)`` cut at ``boundaries``, then split and filtered by the settings."""
    trim = settings.get("trim_transitions", False)
    spans: list[tuple[int, int, str, str]] = []
    s, began = start, edge_begin
    for b in sorted(boundaries, key=lambda b: b.cut):
        if not s < b.cut < end:
            continue
        if trim and b.kind != "cut":  # the transition's own frames go to neither shot
            e, nxt = max(b.start, s), min(max(b.end, b.cut), end)
        else:
            e = nxt = b.cut
        spans.append((s, e, began, b.kind))
        s, began = nxt, b.kind
    spans.append((s, end, began, edge_end))
    min_f = settings.get("min_clip_s", 0.0) * float(fps)
    shots: list[Shot] = []
    for s, e, began, ended in spans:
        pieces = split_shot(s, e, fps, settings)
        for k, (ps, pe) in enumerate(pieces):
            if pe - ps <= 0 or pe - ps < min_f - 1e-9:
                continue
            shots.append(Shot(len(shots), ps, pe, _seconds(ps, fps), _seconds(pe, fps),
                              began if k == 0 else "split", ended if k == len(pieces) - 1 else "split"))
    return shots


def detect_shots(path, settings: dict | None = None) -> list[Shot]:
    """The shots of a video (or the one-frame clip of an image); MediaError/FrameError when unreadable.

    An empty list means no shot reaches ``min_clip_s``.
    """
    settings = shot_settings(settings)
    if media_type(str(path)) == "image":
        return [_image_shot(path)]
    det = detect_boundaries(path, settings)
    if det.num_frames == 1:
        return [Shot(0, 0, 1, 0.0, _seconds(1, det.fps), "start", "end")]
    return shots_from_boundaries(det.boundaries, 0, det.num_frames, det.fps, settings)


def _image_shot(path) -> Shot:
    read_frames(path, [0])  # FrameError when it is not a readable image
    return Shot(0, 0, 1, None, None, "start", "end")


# ------------------------------------------------------------------------------------- row expansion

def clip_row_id(source_row_id: str, start_frame: int | None, end_frame: int | None) -> str:
    """16-hex-digit id of a clip from its source row id and frame range (None, None: the error row)."""
    rng = "-" if start_frame is None or end_frame is None else f"{int(start_frame)}:{int(end_frame)}"
    return hashlib.blake2b(f"{source_row_id}\x00{rng}".encode(), digest_size=8).hexdigest()


def clip_rows(row: dict, settings: dict | None = None, *, checked: bool = False) -> list[dict]:
    """The clip rows of one source row (a dict with ``row_id`` and ``_media_path``, as in a shard).

    Each row: the source row's own values, with ``row_id`` replaced by ``clip_id`` and the original kept
    in ``source_row_id``, plus CLIP_COLUMNS. On failure: exactly one row with ``shots_error`` set and
    empty clip columns. Never raises for a bad file or cell; ValueError/ConfigError for bad settings.
    ``checked``: ``settings`` is what ``shot_settings`` returned, used as is (a stage checks them once).
    """
    settings = settings if checked and settings is not None else shot_settings(settings)
    source_id = str(row[ROW_ID])
    try:
        shots, fps = _row_shots(row, settings)
        if not shots:
            raise StageRowError(f"no shot of at least {settings['min_clip_s']:g} s")
    except (MediaError, StageRowError) as exc:
        return [_clip_row(row, source_id, None, None, describe_error(exc))]
    return [_clip_row(row, source_id, shot, fps, None) for shot in shots]


def _row_shots(row: dict, settings: dict) -> tuple[list[Shot], Fraction | None]:
    path = row.get(MEDIA_PATH) or row.get("path") or ""
    start_s, end_s = row_range(row)
    if media_type(str(path)) == "image":
        if start_s not in (None, 0.0) or end_s is not None:
            raise StageRowError("an image has no time range (start/end given)")
        return [_image_shot(path)], None
    if start_s is None and end_s is None:
        det = _detect(path, settings)
        if det.num_frames == 1:
            return [Shot(0, 0, 1, 0.0, _seconds(1, det.fps), "start", "end")], det.fps
        return shots_from_boundaries(det.boundaries, 0, det.num_frames, det.fps, settings), det.fps
    if settings["ranges"] == "keep":
        info = open_video(path)
        try:
            total = count_frames(info)
            fps = info.fps
        finally:
            info.close()
        s, e = range_frames(start_s, end_s, fps, total)
        return [Shot(0, s, e, _seconds(s, fps), _seconds(e, fps), "range", "range")], fps
    info = open_video(path, settings["decode"]["hwaccel"])
    try:
        total, fps = count_frames(info), info.fps
        s, e = range_frames(start_s, end_s, fps, total)
    except BaseException:
        info.close()
        raise
    det = _detect(path, settings, s, e, info)  # closes info
    return shots_from_boundaries(det.boundaries, s, e, fps, settings, "range", "range"), fps


def _clip_row(row: dict, source_id: str, shot: Shot | None, fps: Fraction | None, error: str | None) -> dict:
    out = {k: v for k, v in row.items() if k != ROW_ID}
    if shot is None:
        out.update({"clip_id": clip_row_id(source_id, None, None), "source_row_id": source_id,
                    "clip_index": None, "start_s": None, "end_s": None, "start_frame": None,
                    "end_frame": None, "clip_frames": None, "fps": None, "clip_begins": None,
                    "clip_ends": None, "shots_error": error or "unknown error"})
        return out
    out.update({"clip_id": clip_row_id(source_id, shot.start_frame, shot.end_frame), "source_row_id": source_id,
                "clip_index": shot.index, "start_s": shot.start_s, "end_s": shot.end_s,
                "start_frame": shot.start_frame, "end_frame": shot.end_frame, "clip_frames": shot.num_frames,
                "fps": None if fps is None else float(fps), "clip_begins": shot.begins, "clip_ends": shot.ends,
                "shots_error": None})
    return out


