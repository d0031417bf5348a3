"""Windowed captions of long clips: the window math, the frames of each window, and the texts.

A row's clip — its ``[start, end)`` range, or the whole video — longer than ``seconds`` is cut into
windows ``[t, t + seconds)`` from the clip's start (the last one shorter); a last window shorter than
``min_seconds`` merges into the one before (``plan_windows``). A clip that gives one window, and every
image, is captioned whole, as without windows.

``decode_windows``: the frames of every window of a clip, picked inside each window exactly as
``vidcap.media.frames.sample_frames(..., time_range=window, unique=True)`` picks them, read in one pass with
``vidcap.media.frames.read_frames``. Returns None when the clip is captioned whole. A window holding no frame
(windows shorter than the frame interval) and any unreadable frame are a ``FrameError`` for the row.

Times: ``Window.start`` / ``end`` are seconds of the file (like ``start`` / ``end`` and
``caption_frame_times``); the timestamps written into caption texts (``timed_text``) count from the
clip's start, since the caption describes the clip.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import pairwise

import pyarrow as pa

from vidcap.errors import ConfigError, FrameError, MediaError, StageRowError, describe_error
from vidcap.media.files import check_file, media_type, open_video, probe_stream
from vidcap.media.frames import Frames, frame_indices, read_frames
from vidcap.media.timerange import range_frames
from vidcap.prompts import Prompt
from vidcap.runners import get_runner, result_settings, runner_for
from vidcap.runners.base import Generation, Request, Runner

SEP = "\x1f"   # request id of a window: row id + SEP + window number
_EPS = 1e-9


@dataclass
class Window:
    start: float        # seconds of the file
    end: float
    frames: Frames      # the window's frames (indices and timestamps of the file)


def min_window(seconds: float, min_seconds: float | None) -> float:
    """``min_seconds``, or half a window when it is None."""
    return seconds / 2 if min_seconds is None else float(min_seconds)


def plan_windows(start: float, end: float, seconds: float, min_seconds: float) -> list[tuple[float, float]]:
    """Windows ``[(t0, t1), ...]`` covering ``[start, end)``: every ``seconds`` from ``start``, the last
    one shorter; a last window shorter than ``min_seconds`` merges into the previous one. A clip not
    longer than ``seconds`` is one window. Times rounded to microseconds."""
    if seconds <= 0:
        raise ValueError(f"window seconds must be > 0, got {seconds}")
    length = end - start
    if length <= seconds + _EPS:
        return [(start, end)]
    n = math.ceil(length / seconds - _EPS)
    edges = [start + k * seconds for k in range(n)] + [end]
    if len(edges) > 2 and edges[-1] - edges[-2] < min_seconds - _EPS:
        del edges[-2]
    edges = [round(float(t), 6) for t in edges]
    return list(pairwise(edges))


def _probe(path: str) -> tuple[int, float]:
    """(total frames, fps) of a video, by the same probe as frame sampling; FrameError when unusable."""
    try:
        container = open_video(path)
    except MediaError as exc:
        raise FrameError(f"{exc}: {path}") from None
    try:
        info = probe_stream(container)
    except MediaError as exc:
        raise FrameError(str(exc)) from None
    finally:
        container.close()
    if info.fps is None:
        raise FrameError("video stream has no frame rate")
    if info.total_frames <= 0:
        raise FrameError("video stream has no frames")
    return info.total_frames, float(info.fps)


def decode_windows(path: str, time_range: tuple[float | None, float | None], frames: dict, seconds: float,
                   min_seconds: float, num_frames: int) -> list[Window] | None:
    """The frames of each window of the clip (module docstring), or None when the clip is one window
    or an image. ``frames``: the stage's frame settings (policy, single, resize_short, decoder);
    ``num_frames``: frames per window. Errors: FrameError / StageRowError for the row."""
    try:
        path = check_file(path)
    except MediaError as exc:
        raise FrameError(str(exc)) from None
    if media_type(path) == "image":
        return None
    total, fps = _probe(path)
    frac = Fraction(fps).limit_denominator(100000)
    start, end = time_range
    first, last = range_frames(start, end, frac, total)   # the row's range is valid (or StageRowError)
    clip_start = 0.0 if start is None else float(start)
    clip_end = total / fps if end is None else min(float(end), total / fps)
    spans = plan_windows(clip_start, clip_end, float(seconds), float(min_seconds))
    if len(spans) == 1:
        return None
    picks = []
    for ws, we in spans:
        s, e = _window_frames(ws, we, frac, total, fps, first, last)
        idx = frame_indices(e - s, num_frames, frames["policy"], fps, frames["single"])
        picks.append(sorted({s + i for i in idx}))
    wanted = sorted({i for p in picks for i in p})
    got = read_frames(path, wanted, resize_short=frames["resize_short"], decoder=frames["decoder"])
    where = {i: k for k, i in enumerate(got.indices)}
    out = []
    for (ws, we), idx in zip(spans, picks, strict=True):
        rows = [where[i] for i in idx]
        out.append(Window(ws, we, replace(got, frames=got.frames[rows], indices=list(idx),
                                          timestamps=[i / fps for i in idx])))
    return out


def decode_args(windows: dict | None, num_frames, frames_cap: int | None, prompt_kind: str) -> dict | None:
    """``decode_windows``' keyword arguments for the stage's windows settings (``seconds``,
    ``min_seconds``, ``frames_per_window``): frames a window from ``frames_per_window``, else
    ``num_frames``, at most ``frames_cap`` (the runner's limit), 1 for an image prompt; None when
    windows are off."""
    if windows is None:
        return None
    n = windows["frames_per_window"] or num_frames
    if frames_cap is not None:
        n = min(int(n), frames_cap)
    if prompt_kind == "image":
        n = 1
    return {"seconds": windows["seconds"], "min_seconds": windows["min_seconds"], "num_frames": int(n)}


def _window_frames(ws, we, frac, total, fps, first, last) -> tuple[int, int]:
    """Frames ``[s, e)`` of window ``[ws, we)`` inside the clip's frames ``[first, last)``."""
    try:
        s, e = range_frames(ws, we, frac, total)
    except StageRowError:   # the window starts after the last frame or holds none
        s = e = 0
    s, e = max(s, first), min(e, last)
    if e <= s:
        raise FrameError(f"window {ws:.3f}-{we:.3f} s holds no frame (fps {fps:g}): use longer windows")
    return s, e


def fmt_span(start: float, end: float, origin: float) -> str:
    """``[0.0-10.0 s]``: a window's span in seconds from the clip's start ``origin``."""
    return f"[{start - origin:.1f}-{end - origin:.1f} s]"


def timed_text(windows: list[dict], origin: float, sep: str = " ") -> str:
    """Window captions with their spans, e.g. ``[0.0-10.0 s] A dog runs. [10.0-20.0 s] It sits.``;
    ``windows``: ``{start, end, text}`` dicts (file seconds)."""
    return sep.join(f"{fmt_span(w['start'], w['end'], origin)} {w['text']}".rstrip() for w in windows)


def summary_input(windows: list[dict], origin: float) -> str:
    """What a summary prompt's ``{text}`` receives: the clip's length, then one timed caption a line."""
    length = windows[-1]["end"] - origin
    return f"Video length: {length:.1f} s.\n" + timed_text(windows, origin, sep="\n")


# ------------------------------------------------------------------------------------ row results

WINDOWS_TYPE = pa.list_(pa.struct([("start", pa.float64()), ("end", pa.float64()), ("text", pa.string()),
                                   ("finish_reason", pa.string())]))
SUMMARY_COLUMNS = {
    "caption_summary_model": pa.string(),
    "caption_summary_revision": pa.string(),
    "caption_summary_prompt": pa.string(),
    "caption_summary_prompt_hash": pa.string(),
    "caption_summary_finish_reason": pa.string(),
    "caption_summary_output_tokens": pa.int64(),
    "caption_summary_prompt_tokens": pa.int64(),
    "caption_summary_cost_usd": pa.float64(),
}


def window_failure(answers: list, spans: list[tuple[float, float]], origin: float) -> StageRowError | None:
    """The row's error when a window has no caption: the first failed window, with its span."""
    for k, gen in enumerate(answers):
        if gen is None or isinstance(gen, BaseException):
            why = "runner returned no result" if gen is None else describe_error(gen)
            return StageRowError(f"window {k + 1}/{len(spans)} {fmt_span(*spans[k], origin)}: {why}")
    return None


def combine(answers: list[Generation], spans: list[tuple[float, float]], clean) -> tuple[list[dict], Generation]:
    """Every window's caption (``clean`` applied) as ``{start, end, text, finish_reason}``, and one
    ``Generation`` standing for them all: ``length`` if any window was cut, tokens, tries and cost
    summed (None when a window lacks them), the first window's ``extra`` prompt."""
    windows = [{"start": float(a), "end": float(b), "text": clean(gen.text), "finish_reason": gen.finish_reason}
               for (a, b), gen in zip(spans, answers, strict=True)]
    reasons = [g.finish_reason for g in answers]
    extra = dict(answers[0].extra or {})
    for key in ("tries", "cost_usd"):
        values = [(g.extra or {}).get(key) for g in answers]
        extra[key] = None if any(v is None for v in values) else sum(values)
    prompt_tokens = [g.prompt_tokens for g in answers]
    return windows, Generation(
        text="", finish_reason="length" if "length" in reasons else next((r for r in reasons if r != "stop"), "stop"),
        output_tokens=sum(int(g.output_tokens) for g in answers),
        prompt_tokens=None if any(p is None for p in prompt_tokens) else sum(int(p) for p in prompt_tokens if p is not None),
        extra=extra)


class Summarizer:
    """The text model that writes one caption of a windowed clip from its timed window captions.

    ``settings``: the ``windows.summary`` block; ``prompt``: a ``kind: text`` prompt whose ``{text}``
    receives ``summary_input``. ``run(items)`` yields ``(row_id, Generation | Exception)`` for every
    ``(row_id, input_text)``, a missing answer as an exception; ``RunnerFatal`` propagates.
    """

    def __init__(self, settings: dict, prompt: Prompt):
        if prompt.kind != "text" or not prompt.uses_text:
            raise ConfigError(f"config key 'stages.caption.windows.summary.prompt': prompt {prompt.key!r} must be "
                              "kind text and use {text} (the window captions)")
        self.settings = settings
        self.prompt = prompt
        self.block = settings["runner"]

        self.runner_name = runner_for(self.block, media=False)
        self.runner: Runner | None = None
        self.provenance: dict = {}

    def params(self) -> dict:
        return {"runner": self.block, self.block: result_settings(self.block, self.settings.get(self.block, {})),
                "generation": dict(self.settings["generation"]), "prompt": self.prompt.key,
                "prompt_hash": self.prompt.hash}

    def runner_settings(self) -> dict:
        """What the runner gets: its config block plus generation and batch size."""
        s = self.settings
        return {**s.get(self.block, {}), "generation": dict(s["generation"]), "batch_size": int(s["batch_size"])}

    def load(self) -> None:
        if self.runner is None:   # a runner set beforehand (tests) is used as given
            self.runner = get_runner(self.runner_name, self.runner_settings())
        self.runner.load()
        self.provenance = self.runner.provenance()

    def run(self, items: list[tuple[str, str]]):
        requests = []
        for row_id, text in items:
            system, user = self.prompt.render(text)
            requests.append(Request(row_id, user=user, system=system))
        pending = {r.row_id for r in requests}
        assert self.runner is not None, "load() first"
        for row_id, gen in self.runner.run(requests):
            if row_id in pending:
                pending.discard(row_id)
                yield row_id, gen
        for row_id in sorted(pending):
            yield row_id, RuntimeError("summary runner returned no result for this row")

    def columns(self, gen: Generation) -> dict:
        extra = gen.extra or {}
        return {
            "caption_summary_model": self.provenance.get("model") or "",
            "caption_summary_revision": self.provenance.get("revision") or "",
            "caption_summary_prompt": self.prompt.key,
            "caption_summary_prompt_hash": self.prompt.hash,
            "caption_summary_finish_reason": gen.finish_reason,
            "caption_summary_output_tokens": int(gen.output_tokens),
            "caption_summary_prompt_tokens": None if gen.prompt_tokens is None else int(gen.prompt_tokens),
            "caption_summary_cost_usd": None if extra.get("cost_usd") is None else float(extra["cost_usd"]),
        }

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
