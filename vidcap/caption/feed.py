"""The caption stage's feed: worker processes that decode each clip's frames and, for runners that send
frames over HTTP (``openai``, ``vllm``, ``sglang``: ``runner.wire()`` is a ``vidcap.media.images.Wire``),
also encode them for the wire, so the stage's own process only joins ready text into requests.

``Feed(settings, runner_name)``: ``workers`` processes (``feed_workers`` for request runners,
``decode_workers`` for in-process models; ``auto`` = ``auto_workers()``), at most ``prefetch`` clips in
flight (at least two per worker, so no worker idles while its result is handed on). ``start()`` forks
them (before a model loads), ``attach(runner)`` takes its wire format, ``requests(...)`` is
``vidcap.caption.decode.decoded_requests`` with the work done by ``prepare_clip``, ``close()`` stops them.

Timing (``new_stats`` / ``finish``; the job's stats file), CPU seconds of the thread doing the work (so
they hold on a loaded machine; a wait for storage is not in them): ``decode_s`` (``sample_frames``: decoding and
the ``frames.resize_short`` shrink, which PyAV fuses into the colour conversion), ``resize_s`` (the
wire's ``max_image_side`` shrink), ``encode_s`` (PNG/JPEG and base64) are summed over clips, wherever
they ran; ``request_s`` (CPU) and ``response_s`` (wall) come from the runner (building requests in this
process; sum of round trips, sent to answer parsed, overlapping); ``main_cpu_s`` is this process's CPU time over
the stream (request building, JSON, HTTP: every thread). Per video = these ÷ ``generated``.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import os
import time

from vidcap.caption.decode import decode_clip, decoded_requests, start_pool
from vidcap.media.images import Wire, encode_frames

REQUEST_RUNNERS = ("openai", "vllm", "sglang")   # runners whose frames go over HTTP
TIMINGS = ("decode_s", "resize_s", "encode_s")


def auto_workers() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``: SLURM's, a cgroup's or taskset's limit)
    less one for the stage's own process (requests, HTTP), at least 1."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


def workers_setting(value, what: str) -> int:
    """An integer >= 0, or ``auto``; ValueError naming the key otherwise."""
    if value == "auto":
        return auto_workers()
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"config key 'stages.caption.{what}': an integer >= 0 or auto; got {value!r}")
    return value


def prepare_clip(clip: tuple, frames: dict, windows: dict | None, wire: Wire | None):
    """Worker entry point: ``(decode_clip(...), timings)``, each clip's (or window's) frames encoded as
    ``WireFrames`` when ``wire`` is set."""
    t0 = time.thread_time()
    got = decode_clip(clip, frames, windows)
    timings = dict.fromkeys(TIMINGS, 0.0)
    timings["decode_s"] = time.thread_time() - t0
    if wire is None:
        return got, timings

    def enc(fr):
        out = encode_frames(fr, wire)
        timings["resize_s"] += sum(e.resize_s for e in out.encoded)
        timings["encode_s"] += sum(e.encode_s for e in out.encoded)
        return out

    if isinstance(got, list):
        return [dataclasses.replace(w, frames=enc(w.frames)) for w in got], timings
    return enc(got), timings


class Feed:
    """Decode/encode workers of one caption job; see the module docstring."""

    def __init__(self, settings: dict, runner_name: str):
        key = "feed_workers" if runner_name in REQUEST_RUNNERS else "decode_workers"
        self.workers = workers_setting(settings.get(key, settings["decode_workers"]), key)
        self.prefetch = max(1, int(settings["prefetch"]), 2 * self.workers)
        self.pool: cf.ProcessPoolExecutor | None = None
        self.wire: Wire | None = None
        self._cpu0 = 0.0

    def start(self, media: bool) -> None:
        if self.workers > 0 and media and self.pool is None:
            self.pool = start_pool(self.workers)

    def attach(self, runner) -> None:
        wire = getattr(runner, "wire", None)
        self.wire = wire() if callable(wire) else None

    def new_stats(self) -> dict:
        self._cpu0 = time.process_time()
        return {"input_wait_s": 0.0, "generated": 0, "decodes": 0, "feed_workers": self.workers,
                "wire": None if self.wire is None else dataclasses.asdict(self.wire),
                **dict.fromkeys(TIMINGS, 0.0)}

    def requests(self, clips: dict, frames: dict, wargs: dict | None, ready, fail, stats: dict):
        work = functools.partial(prepare_clip, wire=self.wire)
        return decoded_requests(clips, frames, wargs, ready, fail, stats, self.workers, self.pool, self.prefetch,
                                work=work)

    def finish(self, stats: dict) -> None:
        stats["main_cpu_s"] = round(time.process_time() - self._cpu0, 3)
        for key in TIMINGS:
            stats[key] = round(stats[key], 3)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)  # no half-torn-down pool at exit
            self.pool = None
