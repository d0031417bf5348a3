"""Usage of the chat client (``vidcap.llm.client``): counters per client and for the whole process, and
the client's busy time.

* ``ClientStats``: items (ok / failed), tries and retries, tokens, cost, per-request and per-item
  seconds, limiter waits and the peak of requests in flight.
* ``PROCESS_STATS``: the same over every client of the process; ``reset_process_stats()`` starts it
  afresh (``vidcap estimate``). Read it as ``vidcap.llm.stats.PROCESS_STATS`` (the reset replaces it).
* ``BusyClock``: the total time with at least one HTTP try in flight (sent, answer not yet in); limiter
  waits and retry backoffs with nothing in flight do not count. For a server that only this client
  feeds, ``busy / wall`` bounds the server's busy share from above (a request in flight may still be in
  transfer or preprocessing), so ``1 - busy / wall`` is a lower bound of its idle share.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol


class Usage(Protocol):
    """What a finished item reports (``vidcap.llm.client.ChatResult`` has it)."""

    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    seconds: float


@dataclass
class ClientStats:
    """Counters over the life of a client (and, in ``PROCESS_STATS``, of every client in the process)."""

    items_ok: int = 0
    items_failed: int = 0
    tries: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    request_seconds: list = field(default_factory=list)   # per successful try, send -> answer
    item_seconds: list = field(default_factory=list)      # per finished item, first send -> result
    limiter_wait_s: float = 0.0
    max_in_flight: int = 0

    def add_ok(self, res: Usage) -> None:
        self.items_ok += 1
        self.prompt_tokens += res.prompt_tokens or 0
        self.completion_tokens += res.completion_tokens or 0
        self.cost_usd += res.cost_usd or 0.0
        self.item_seconds.append(res.seconds)


PROCESS_STATS = ClientStats()
_STATS_LOCK = threading.Lock()


def reset_process_stats() -> ClientStats:
    """Start ``PROCESS_STATS`` afresh (for ``vidcap estimate``); returns the new object."""
    global PROCESS_STATS
    with _STATS_LOCK:
        PROCESS_STATS = ClientStats()
    return PROCESS_STATS


def count_request(own: ClientStats, took: float) -> None:
    """One successful try of ``took`` seconds (send -> answer), in ``own`` and ``PROCESS_STATS``."""
    own.request_seconds.append(took)
    with _STATS_LOCK:
        PROCESS_STATS.request_seconds.append(took)


def count_item(own: ClientStats, tries: int, ok: bool, result: Usage | None = None) -> None:
    """One finished item (``result`` when ``ok``) after ``tries`` tries, in ``own`` and ``PROCESS_STATS``."""
    with _STATS_LOCK:
        for st in (own, PROCESS_STATS):
            st.tries += tries
            st.retries += tries - 1
            if ok:
                assert result is not None  # callers pass the result of every ok item
                st.add_ok(result)
            else:
                st.items_failed += 1
            st.max_in_flight = max(st.max_in_flight, own.max_in_flight)


class BusyClock:
    """Seconds with at least one try in flight (see the module docstring); ``in_flight``: tries now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self._busy_s = 0.0                  # closed intervals with >= 1 try in flight
        self._since: float | None = None    # start of the open interval, None when idle

    def seconds(self) -> float:
        """Busy seconds so far (the interval under way included)."""
        with self._lock:
            open_s = time.monotonic() - self._since if self._since is not None else 0.0
            return self._busy_s + open_s

    def track(self, delta: int) -> None:
        """Count a try starting (+1) or ending (-1); opens / closes the busy interval at 0 <-> 1."""
        with self._lock:
            self.in_flight += delta
            now = time.monotonic()
            if self.in_flight == 1 and delta > 0:
                self._since = now
            elif self.in_flight == 0 and self._since is not None:
                self._busy_s += now - self._since
                self._since = None
