"""The caption stage's decode pipeline: frames of each clip decoded once, in worker processes ahead of
the model, and turned into requests as they come back.

``decoded_requests(clips, frames, windows, ready, fail, stats, workers, pool, prefetch)``: ``clips``
maps (path, start, end) to the rows that share it; each clip is decoded once (``decode_clip``), then
``ready(group, frames)`` gives its requests. A clip whose decode fails (or, with workers, whose
``ready`` fails) goes to ``fail(group, exc)``: its rows only. ``workers`` <= 0: decoded in this process
in order. Otherwise at most ``prefetch`` clips are in flight in ``pool`` (``start_pool``), handed on as
they finish. ``stats``: ``decodes`` counts decodes, ``input_wait_s`` the time spent waiting for frames.
``work(clip, frames, windows)`` (a picklable function; default: ``decode_clip`` timed) does each clip's
work and returns ``(frames, timings)``; ``timings`` (seconds by name) are added to ``stats``.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time

from vidcap.caption import windows as cw
from vidcap.media.frames import sample_frames


def decode_clip(clip: tuple, frames: dict, windows: dict | None = None):
    """Worker entry point: ``sample_frames`` of ``clip`` = (path, start, end) with the stage's frame
    settings, inside the row's time range (exceptions travel back). ``windows`` (seconds, min_seconds,
    num_frames): a list of ``caption_windows.Window`` when the clip makes several windows."""
    path, start, end = clip
    if windows:
        got = cw.decode_windows(path, (start, end), frames, **windows)
        if got is not None:
            return got
    return sample_frames(path, int(frames["num_frames"]), frames["policy"], single=frames["single"],
                         resize_short=frames["resize_short"], decoder=frames["decoder"], unique=True,
                         time_range=(start, end))


def timed_decode(clip: tuple, frames: dict, windows: dict | None = None):
    """``(decode_clip(...), {"decode_s": CPU seconds of this thread})``: the default work of ``decoded_requests``."""
    t = time.thread_time()
    return decode_clip(clip, frames, windows), {"decode_s": time.thread_time() - t}


def _add(stats: dict, timings: dict) -> None:
    for key, value in timings.items():
        stats[key] = stats.get(key, 0.0) + value


def _warm(_):
    """Starts a worker (the decoders came with this module, imported before the fork)."""
    return None


def start_pool(workers: int) -> cf.ProcessPoolExecutor:
    """``workers`` decode processes, forked now (before a model loads: no CUDA context or model
    threads to inherit; ``spawn`` would re-run the ``vidcap`` command line in each worker)."""
    ctx = multiprocessing.get_context("fork")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    list(pool.map(_warm, range(workers)))  # fork them all now
    return pool


def decoded_requests(clips: dict, frames: dict, windows: dict | None, ready, fail, stats: dict, workers: int,
                     pool: cf.ProcessPoolExecutor | None, prefetch: int, work=timed_decode):
    """Requests of every clip (module docstring)."""
    if workers <= 0:
        for clip, group in clips.items():
            t = time.perf_counter()
            stats["decodes"] += 1
            try:
                fr, timings = work(clip, frames, windows)
                _add(stats, timings)
            except Exception as exc:  # noqa: BLE001 - FrameError etc.: the clip's rows fail
                fail(group, exc)
                fr = None
            stats["input_wait_s"] += time.perf_counter() - t
            if fr is not None:
                yield from ready(group, fr)
        return
    assert pool is not None  # workers > 0 come with their pool
    todo = iter(clips.items())
    inflight: dict[cf.Future, list] = {}
    try:
        def top_up():
            while len(inflight) < prefetch:
                item = next(todo, None)
                if item is None:
                    return
                stats["decodes"] += 1
                inflight[pool.submit(work, item[0], frames, windows)] = item[1]

        top_up()
        while inflight:
            t = time.perf_counter()
            done, _ = cf.wait(list(inflight), return_when=cf.FIRST_COMPLETED)
            stats["input_wait_s"] += time.perf_counter() - t
            out = []
            for fut in done:
                group = inflight.pop(fut)
                try:
                    fr, timings = fut.result()
                    _add(stats, timings)
                    out += ready(group, fr)
                except Exception as exc:  # noqa: BLE001 - decode failure of this clip only
                    fail(group, exc)
            top_up()
            yield from out
    finally:
        for fut in inflight:
            fut.cancel()
