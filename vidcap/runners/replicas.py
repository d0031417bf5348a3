"""Several engine replicas for one job: how the job's GPUs are shared out, and requests spread over them.

``split_gpus(gpus, replicas, memory_share)``: one list of GPUs per replica. With as many GPUs as replicas or
a multiple of it, each replica gets its own equal slice (tensor-parallel over it). With fewer GPUs than
replicas, every replica runs on all of them (several engines on one GPU, for a model that fits several
times): ``memory_share`` (``gpu_memory_utilization``) must then be set and at most 0.95 / replicas, else
the engines would fight over the memory. Without GPUs (CPU engines) every replica gets ``[]``.
ValueError names the key when the split cannot work.

``spread(clients, jobs)``: ``ChatClient.map`` over several clients at once: each client (one per replica)
pulls the next job from the shared ``jobs`` iterator when it has room (so a faster replica takes more),
and results are yielded as they finish, from any replica: every job exactly once. A ``ChatFatal``, or an
exception from ``jobs`` itself, is raised after the other clients stopped.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

_DONE = object()


def split_gpus(gpus: list[str], replicas: int, memory_share: float | None) -> list[list[str]]:
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1; got {replicas}")
    if replicas == 1:
        return [list(gpus)]
    if not gpus:
        return [[] for _ in range(replicas)]
    if len(gpus) >= replicas:
        if len(gpus) % replicas:
            raise ValueError(f"replicas {replicas} does not divide the job's {len(gpus)} GPUs")
        k = len(gpus) // replicas
        return [list(gpus[i * k:(i + 1) * k]) for i in range(replicas)]
    if memory_share is None or memory_share * replicas > 0.95:
        raise ValueError(f"replicas {replicas} on {len(gpus)} GPU(s) share each GPU: set gpu_memory_utilization to "
                         f"at most {0.95 / replicas:.2f} (0.95 / replicas); got {memory_share}")
    return [list(gpus) for _ in range(replicas)]


class _Shared:
    """A thread-safe view of one iterator: several consumers, each item to exactly one of them."""

    def __init__(self, items: Iterable):
        self._it = iter(items)
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.halted = False

    def halt(self) -> None:
        """No more items for anyone (a consumer failed, or the caller stopped early)."""
        self.halted = True

    def __iter__(self):
        return self

    def __next__(self):
        with self._lock:
            if self.error is not None or self.halted:
                raise StopIteration
            try:
                return next(self._it)
            except StopIteration:
                raise
            except BaseException as exc:  # noqa: BLE001 - kept, re-raised by spread() once all have stopped
                self.error = exc
                raise StopIteration from None


def spread(clients: list, jobs: Iterable) -> Iterator[tuple[object, object]]:
    """See the module docstring."""
    if len(clients) == 1:
        yield from clients[0].map(jobs)
        return
    shared = _Shared(jobs)
    out: queue.Queue = queue.Queue()
    def drain(client) -> None:
        try:
            for pair in client.map(shared):
                out.put(pair)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            out.put((_DONE, exc))
            return
        out.put((_DONE, None))

    threads = [threading.Thread(target=drain, args=(c,), name=f"vidcap-replica-{i}", daemon=True)
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    running, error = len(threads), None
    try:
        while running:
            key, res = out.get()
            if key is _DONE:
                running -= 1
                if res is not None and error is None:
                    error = res
                    shared.halt()
                continue
            yield key, res
    finally:
        shared.halt()
    if error is None:
        error = shared.error
    if error is not None:
        raise error
