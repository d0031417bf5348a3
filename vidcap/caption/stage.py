"""Caption stage: one caption per row from any ``Runner`` (local transformers model or an API).

Pipeline (``process_stream``): rows → frames decoded (and, for request runners, encoded for the
wire) in background processes (``vidcap.caption.feed``: at most ``prefetch`` clips ahead; 0 workers = inline) → ``Request``s → ``runner.run`` → results
yielded as they arrive (any order, keyed by row id). ``kind: text`` prompts (caption rewrite) send
no frames: the prompt's ``{text}`` is the row's existing ``output_column`` value. A row whose
frames cannot be decoded (``FrameError`` ...) or whose prompt cannot be rendered gets its error at
once; no substitute frames, no caption.

Per-row questions (``prompt_column``, e.g. a NeVA prompt file read as the manifest): the row's
question fills the prompt's ``{question}`` or replaces its user text (``vidcap.prompts``). Rows with
the same media path are one clip: within a job its frames are decoded once and shared by all its
questions (``stats["decodes"]`` counts decodes). ``insert_media_token`` (left | right) goes to the
runner (media parts before or after the text); ``neva_inference`` (NeVA's sampling block) is mapped
onto ``generation`` by ``vidcap.caption.neva_inference.neva_generation``.

Columns (fixed contract; ``<output_column>`` defaults to ``text``): see ``CaptionStage.columns``.
``caption_tries`` / ``caption_cost_usd`` come from ``Generation.extra["tries"]`` / ``["cost_usd"]``
(API runners), null otherwise; ``caption_prompt`` / ``caption_prompt_hash`` from ``extra["prompt"]`` /
``["prompt_hash"]`` when the runner chose the row's prompt itself (``pllava``), else the stage's prompt.

Windowed captions (``windows.seconds`` set; ``vidcap.caption.windows``): a row whose clip is longer
than a window is decoded once into its windows' frames and sent as one request per window (request id
= row id + ``SEP`` + window number); when every window has answered, the row's result holds
``caption_windows`` and, in the output column, the timed window captions joined — or, with
``windows.summary``, the caption a text model (``Summarizer``) writes from them, run on batches of
``summary.batch_size`` finished rows. A window or a summary that fails fails the whole row. Images and
clips that make one window are captioned whole, as without windows (``caption_windows`` null).

``params`` (the journal fingerprint) holds only result-changing settings: runner, prompt key and
wording hash, output column, strip_openings, frames, generation and the runner's model settings, and
the windows block when windows are on; not batch_size, decode_workers, feed_workers, prefetch, concurrency, rate
limits, retries or prices.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import pyarrow as pa

from vidcap.caption import windows as cw
from vidcap.caption.feed import Feed
from vidcap.caption.neva_inference import apply_neva_inference
from vidcap.config import stage_settings
from vidcap.errors import ConfigError, StageRowError, describe_error
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.media.timerange import row_range
from vidcap.prompts import get_prompt
from vidcap.runners import get_runner, result_settings, runner_for
from vidcap.runners.base import Request, Runner
from vidcap.stages.base import Stage
from vidcap.text import clean_caption

log = logging.getLogger("vidcap.caption.stage")


class CaptionStage(Stage):
    name = "caption"
    version = "1"

    def __init__(self, params: dict | None = None):
        s = stage_settings(self.name, params, passthrough=("prompt_spec", "summary_prompt_spec"))
        spec = s.pop("prompt_spec", None)
        summary_spec = s.pop("summary_prompt_spec", None)
        self.settings = s
        self.output_column = s["output_column"]
        self.prompt = get_prompt(s["prompt"], {s["prompt"]: spec} if spec else None)
        self.runner_name = s["runner"]
        self.batch_size = int(s["batch_size"])
        self.feed = Feed(s, self.runner_name)   # decode (and wire-encode) workers
        self.frames = dict(s["frames"])
        self.prompt_column = s.get("prompt_column") or None
        s["generation"], self.insert_media_token, notes = apply_neva_inference(
            s["generation"], s.get("neva_inference"), s.get("insert_media_token"))
        for key, note in sorted(notes.items()):
            log.info("caption: NeVA %s -> %s", key, note)
        if self.prompt.uses_question and not self.prompt_column:
            raise ConfigError(f"config key 'stages.caption.prompt': prompt {self.prompt.key!r} asks each row's "
                              "question ({question}): set stages.caption.prompt_column")
        self.columns = {
            self.output_column: pa.string(),
            "finish_reason": pa.string(),
            "output_tokens": pa.int64(),
            "prompt_tokens": pa.int64(),
            "caption_model": pa.string(),
            "caption_revision": pa.string(),
            "caption_prompt": pa.string(),
            "caption_prompt_hash": pa.string(),
            "caption_frame_indices": pa.list_(pa.int64()),
            "caption_frame_times": pa.list_(pa.float64()),
            "caption_tries": pa.int64(),
            "caption_cost_usd": pa.float64(),
        }
        self.input_columns = (ROW_ID, MEDIA_PATH, self.output_column) + (
            (self.prompt_column,) if self.prompt_column else ())
        block = result_settings(self.runner_name, s.get(self.runner_name, {}))
        params = {
            "runner": self.runner_name, self.runner_name: block,
            "prompt": self.prompt.key, "prompt_hash": self.prompt.hash, "prompt_kind": self.prompt.kind,
            "output_column": self.output_column, "strip_openings": bool(s["strip_openings"]),
            "frames": self.frames if self.prompt.kind != "text" else None,
            "generation": dict(s["generation"]),
        }
        if self.prompt_column:   # only when set: runs without them keep their fingerprints
            params["prompt_column"] = self.prompt_column
        if self.insert_media_token:
            params["insert_media_token"] = self.insert_media_token
        self.windows = self._window_setup(s["windows"], summary_spec)
        if self.windows is not None:   # only when on: runs without windows keep their fingerprints
            params["windows"] = self.windows
        super().__init__(params)
        self.runner: Runner | None = None
        self.provenance: dict = {}
        self._frames_cap: int | None = None          # per-window frames, when the runner lowered num_frames
        self._windowed: dict[str, dict] = {}         # row id -> its windows in flight
        self._to_summarize: list[tuple[str, dict, str]] = []   # (row id, result, summary input)

    def _window_setup(self, w: dict, summary_spec: dict | None) -> dict | None:
        """Windows settings (columns, summarizer) and their fingerprint; None when windows are off."""
        self.summarizer = None
        if w.get("seconds") is None:
            return None
        if self.prompt.kind == "text":
            raise ConfigError("config key 'stages.caption.windows.seconds': windows need frames; prompt "
                              f"{self.prompt.key!r} is kind text")
        self.min_window = cw.min_window(float(w["seconds"]), w.get("min_seconds"))
        if self.min_window > float(w["seconds"]):
            raise ConfigError("config key 'stages.caption.windows.min_seconds': must not exceed windows.seconds "
                              f"({w['seconds']}); got {w['min_seconds']}")
        self.columns["caption_windows"] = cw.WINDOWS_TYPE
        out = {"seconds": float(w["seconds"]), "min_seconds": self.min_window,
               "frames_per_window": w.get("frames_per_window"), "summary": None}
        summary = w["summary"]
        if summary["enabled"]:
            key = summary["prompt"]
            self.summarizer = cw.Summarizer(summary, get_prompt(key, {key: summary_spec} if summary_spec else None))
            self.columns.update(cw.SUMMARY_COLUMNS)
            out["summary"] = self.summarizer.params()
        return out

    def runner_settings(self) -> dict:
        """What the runner gets: its config block plus generation, frames, batch size and the prompt."""
        s = self.settings
        return {**s.get(self.runner_name, {}), "generation": dict(s["generation"]), "frames": self._runner_frames(),
                "batch_size": self.batch_size, "prompt_kind": self.prompt.kind,
                "prompt_user": self.prompt.user, "prompt_system": self.prompt.system,
                "insert_media_token": self.insert_media_token}

    def _runner_frames(self) -> dict:
        """Frame settings the runner checks its context with: the most frames one request can have."""
        frames = dict(self.frames)
        if self.windows is not None and self.windows["frames_per_window"]:
            frames["num_frames"] = max(int(frames["num_frames"]), int(self.windows["frames_per_window"]))
        return frames

    def setup(self) -> None:
        """Start the feed workers (``vidcap.caption.feed``: forked before the model loads), then create and
        load the runner once (only when rows remain) and take its wire format."""

        self.feed.start(media=self.prompt.kind != "text")
        if self.runner is None:  # a runner set beforehand (benchmarks, tests) is used as given
            self.runner = get_runner(runner_for(self.runner_name, media=True), self.runner_settings())
        self.runner.load()
        self.feed.attach(self.runner)
        adjusted = getattr(self.runner, "frames", None)
        if isinstance(adjusted, dict) and adjusted and self.prompt.kind != "text":
            given = self._runner_frames()
            changed = {k: v for k, v in adjusted.items() if given.get(k) != v}
            if changed:
                log.warning("caption: the runner changed frame settings to fit the model: %s", changed)
                if "num_frames" in changed and self.windows is not None:
                    self._frames_cap = int(changed["num_frames"])   # no request gets more frames than that
                    if given["num_frames"] != self.frames["num_frames"]:   # it was fitted to frames_per_window
                        changed["num_frames"] = min(int(self.frames["num_frames"]), self._frames_cap)
                self.frames.update(changed)
        if self.summarizer is not None:
            self.summarizer.load()
        self.provenance = self.runner.provenance()
        own = getattr(self.runner, "prompt_description", None)   # a runner with its own prompts names them
        log.info("caption: runner %s, model %s (revision %s), prompt %s, %d decode workers", self.runner_name,
                 self.provenance.get("model"), self.provenance.get("revision") or "-",
                 own() if own else f"{self.prompt.key} ({self.prompt.hash})", self.feed.workers)

    # ------------------------------------------------------------------------------------ stream

    def _render(self, row: dict) -> tuple[str, str]:
        question = None
        if self.prompt_column:
            question = row.get(self.prompt_column)
            if question is None or not str(question).strip():
                raise ValueError(f"no question: column {self.prompt_column!r} is empty")
            question = str(question)
        return self.prompt.render(row.get(self.output_column), question)

    def _frame_settings(self) -> dict:
        if self.prompt.kind == "image":
            return {**self.frames, "num_frames": 1, "policy": "single", "single": "middle"}
        return self.frames

    def process_stream(self, rows: list[dict]):
        """Yield ``(row_id, result)`` for every row (see the module docstring)."""
        if self.runner is None or not self.provenance:
            self.setup()
        assert self.runner is not None  # setup() created it
        failed: list[tuple[str, BaseException]] = []  # rows failed before the model: yielded at once
        meta: dict[str, tuple[list[int], list[float]]] = {}
        t0 = time.perf_counter()
        self.stats = self.feed.new_stats()
        self._windowed, self._to_summarize = {}, []
        requests = self._requests(rows, failed, meta)
        try:
            for row_id, result in self.runner.run(requests):
                while failed:
                    yield failed.pop(0)
                if self.windows is not None and cw.SEP in row_id:
                    yield from self._window_answer(row_id, result, meta)
                else:
                    yield row_id, self._result(row_id, result, meta)
                self.stats["generated"] += 1
            while failed:
                yield failed.pop(0)
            if self.windows is not None:
                yield from self._windows_finish(meta)
        finally:
            requests.close()
            s = self.stats
            s.update(getattr(self.runner, "stats", {}) or {})
            if self.summarizer is not None and self.summarizer.runner is not None:
                s.update({f"summary_{k}": v for k, v in (getattr(self.summarizer.runner, "stats", {}) or {}).items()})
            s["stream_s"] = time.perf_counter() - t0
            self.feed.finish(s)
            if s["generated"]:
                log.info("caption: %d rows in %.1f s; the model waited %.1f s (%.0f%%) for decoded frames",
                         s["generated"], s["stream_s"], s["input_wait_s"],
                         100 * s["input_wait_s"] / max(s["stream_s"], 1e-9))

    def _requests(self, rows, failed, meta):
        """Requests for the runner; rows that fail before it go to ``failed``. Time blocked is ``wait_s``."""
        need_frames = self.prompt.kind != "text"
        rendered = []
        for row in rows:
            try:
                system, user = self._render(row)
            except (ValueError, KeyError) as exc:
                failed.append((row[ROW_ID], exc))
                continue
            rendered.append((row, system, user))
        if not need_frames:
            for row, system, user in rendered:
                yield Request(row[ROW_ID], user=user, system=system)
            return
        frames = self._frame_settings()
        clips: dict[tuple, list[tuple]] = {}   # (path, start, end) -> its rows: one decode serves every question
        for item in rendered:
            try:
                clip = (item[0][MEDIA_PATH], *row_range(item[0]))
            except StageRowError as exc:
                failed.append((item[0][ROW_ID], exc))
                continue
            clips.setdefault(clip, []).append(item)

        def ready(group, fr):
            if isinstance(fr, list):   # a windowed clip: one request per window and row
                return [r for row, system, user in group for r in self._window_requests(row, system, user, fr, meta)]
            return [self._request(row, system, user, fr, meta) for row, system, user in group]

        wargs = self._window_args()

        def fail(group, exc):
            failed.extend((row[ROW_ID], exc) for row, _, _ in group)

        yield from self.feed.requests(clips, frames, wargs, ready, fail, self.stats)

    def _request(self, row, system, user, fr, meta) -> Request:
        if self.prompt.kind == "image" or len(fr.indices) == 1:
            # one frame (an image prompt, or a one-frame video): sent as an image, never repeated
            fr = dataclasses.replace(fr, media_type="image")
        meta[row[ROW_ID]] = (list(map(int, fr.indices)), list(map(float, fr.timestamps)))
        return Request(row[ROW_ID], user=user, system=system, frames=fr,
                       meta={"path": row[MEDIA_PATH]})

    def _result(self, row_id: str, gen, meta) -> dict | BaseException:
        if isinstance(gen, BaseException):
            return gen
        if gen is None:
            return RuntimeError("runner returned no result for this row")
        extra = gen.extra or {}
        indices, times = meta.pop(row_id, (None, None))
        tries, cost = extra.get("tries"), extra.get("cost_usd")
        return {
            self.output_column: clean_caption(gen.text, bool(self.settings["strip_openings"])),
            "finish_reason": gen.finish_reason,
            "output_tokens": int(gen.output_tokens),
            "prompt_tokens": None if gen.prompt_tokens is None else int(gen.prompt_tokens),
            "caption_model": self.provenance.get("model") or "",
            "caption_revision": self.provenance.get("revision") or "",
            # a runner that picks each row's prompt itself (pllava) names it in extra
            "caption_prompt": extra.get("prompt") or self.prompt.key,
            "caption_prompt_hash": extra.get("prompt_hash") or self.prompt.hash,
            "caption_frame_indices": indices,
            "caption_frame_times": times,
            "caption_tries": None if tries is None else int(tries),
            "caption_cost_usd": None if cost is None else float(cost),
        }

    # ------------------------------------------------------------------------------------ windows

    def _window_args(self) -> dict | None:
        """What a decode worker needs to cut a clip into windows; None when windows are off."""
        return cw.decode_args(self.windows, self.frames["num_frames"], self._frames_cap, self.prompt.kind)

    def _window_requests(self, row, system, user, windows: list, meta) -> list[Request]:
        row_id = row[ROW_ID]
        spans = [(w.start, w.end) for w in windows]
        self._windowed[row_id] = {"spans": spans, "origin": spans[0][0], "answers": [None] * len(windows),
                                  "left": len(windows)}
        meta[row_id] = ([int(i) for w in windows for i in w.frames.indices],
                        [float(t) for w in windows for t in w.frames.timestamps])
        out = []
        for k, w in enumerate(windows):
            fr = w.frames
            if self.prompt.kind == "image" or len(fr.indices) == 1:
                fr = dataclasses.replace(fr, media_type="image")
            out.append(Request(f"{row_id}{cw.SEP}{k}", user=user, system=system, frames=fr,
                               meta={"path": row[MEDIA_PATH], "window": k}))
        return out

    def _window_answer(self, req_id: str, gen, meta):
        """Keep a window's answer; when the row has them all, yield its result (or queue its summary)."""
        row_id, _, k = req_id.partition(cw.SEP)
        state = self._windowed.get(row_id)
        if state is None or state["answers"][int(k)] is not None:
            raise RuntimeError(f"caption: runner answered window {req_id!r} that was not pending")
        state["answers"][int(k)] = RuntimeError("runner returned no result") if gen is None else gen
        state["left"] -= 1
        if state["left"] == 0:
            yield from self._window_row(row_id, meta)

    def _window_row(self, row_id: str, meta):
        state = self._windowed.pop(row_id)
        error = cw.window_failure(state["answers"], state["spans"], state["origin"])
        if error is not None:
            meta.pop(row_id, None)
            yield row_id, error
            return
        windows, total = cw.combine(state["answers"], state["spans"], self._clean)
        out = self._result(row_id, total, meta)
        assert isinstance(out, dict)  # total is a Generation (no window failed), so a result row
        out[self.output_column] = cw.timed_text(windows, state["origin"])
        out["caption_windows"] = windows
        if self.summarizer is None:
            yield row_id, out
            return
        self._to_summarize.append((row_id, out, cw.summary_input(windows, state["origin"])))
        if len(self._to_summarize) >= int(self.settings["windows"]["summary"]["batch_size"]):
            yield from self._summarize()

    def _summarize(self):
        """Summaries of the rows waiting for one; a failed summary fails its row."""
        batch, self._to_summarize = self._to_summarize, []
        if not batch:
            return
        assert self.summarizer is not None  # rows wait for a summary only when there is a summarizer
        results = {row_id: out for row_id, out, _ in batch}
        for row_id, gen in self.summarizer.run([(row_id, text) for row_id, _, text in batch]):
            if isinstance(gen, BaseException):
                yield row_id, StageRowError(f"summary: {describe_error(gen)}")
                continue
            out = results[row_id]
            out[self.output_column] = self._clean(gen.text)
            out.update(self.summarizer.columns(gen))
            if gen.finish_reason == "length":
                out["finish_reason"] = "length"
            yield row_id, out

    def _clean(self, text: str | None) -> str:
        return clean_caption(text, bool(self.settings["strip_openings"]))

    def _windows_finish(self, meta):
        """End of the stream: summaries still waiting, then rows whose windows did not all come back."""
        yield from self._summarize()
        for row_id in list(self._windowed):
            yield from self._window_row(row_id, meta)

    def close(self) -> None:
        if self.summarizer is not None:
            self.summarizer.close()
        self.feed.close()
        if self.runner is not None:
            self.runner.close()
