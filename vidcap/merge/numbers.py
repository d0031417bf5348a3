"""Statistics of a numeric column met batch by batch: values spill to a file of float64, so memory is
bounded by a chunk, not the run. Up to ``IN_MEMORY`` values the result is ``numpy``'s on the whole
array; above it the same figures are computed exactly in chunks: percentiles by narrowing histograms
(``kth``), each pass reading the spill file once.
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

IN_MEMORY = 4_000_000
CHUNK = 1_000_000
_BINS = 4096


class NumberSpill:
    """Non-null float values appended to a temporary file under ``workdir``."""

    def __init__(self, workdir: Path | None = None):
        fd, name = tempfile.mkstemp(prefix="vidcap-numbers-", suffix=".f64", dir=workdir)
        os.close(fd)
        self.path = Path(name)
        self.count = 0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        values = values[~np.isnan(values)]
        if len(values):
            with open(self.path, "ab") as fh:
                values.tofile(fh)
            self.count += len(values)

    def values(self) -> np.ndarray:
        return np.fromfile(self.path, dtype=np.float64) if self.count else np.zeros(0)

    def chunks(self):
        if not self.count:
            return
        mm = np.memmap(self.path, dtype=np.float64, mode="r")
        for i in range(0, len(mm), CHUNK):
            yield np.array(mm[i: i + CHUNK])

    def close(self) -> None:
        self.path.unlink(missing_ok=True)

    def stats(self, whole: Callable[[np.ndarray], dict], bins: int, r: Callable) -> dict:
        """``whole(values)`` when they fit ``IN_MEMORY``, else the same figures from chunks."""
        if self.count <= IN_MEMORY:
            return whole(self.values())
        n, total, lo, hi = 0, 0.0, math.inf, -math.inf
        for c in self.chunks():
            n, total, lo, hi = n + len(c), total + float(c.sum()), min(lo, float(c.min())), max(hi, float(c.max()))
        if lo == hi:
            hist = [[r(lo), r(hi), n]]
        else:
            counts = np.zeros(bins, dtype=np.int64)
            edges = np.linspace(lo, hi, bins + 1)
            for c in self.chunks():
                counts += np.histogram(c, bins=bins, range=(lo, hi))[0]
            hist = [[r(edges[i]), r(edges[i + 1]), int(counts[i])] for i in range(bins)]
        return {"count": n, "mean": r(total / n), "p50": r(self.percentile(50, n, lo, hi)),
                "p90": r(self.percentile(90, n, lo, hi)), "max": r(hi), "histogram": hist}

    def percentile(self, q: float, n: int, lo: float, hi: float) -> float:
        """numpy's default (linear) percentile of the spilled values."""
        at = q / 100 * (n - 1)
        below = math.floor(at)
        a = self.kth(below, lo, hi)
        if at == below:
            return a
        b = self.kth(below + 1, lo, hi)
        return a + (b - a) * (at - below)

    def kth(self, k: int, lo: float, hi: float) -> float:
        """The ``k``-th smallest value (0-based) in ``[lo, hi]``: count values per bin, keep the bin that
        holds rank ``k``, until it holds few enough values to select from in memory."""
        closed = True   # whether hi itself is in the range
        for _ in range(64):
            edges = np.linspace(lo, hi, _BINS + 1)
            counts = np.zeros(_BINS, dtype=np.int64)
            for c in self.chunks():
                c = c[(c >= lo) & ((c <= hi) if closed else (c < hi))]
                idx = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, _BINS - 1)
                counts += np.bincount(idx, minlength=_BINS)
            cum = np.cumsum(counts)
            b = int(np.searchsorted(cum, k, side="right"))
            k -= int(cum[b - 1]) if b else 0
            new_lo, new_hi = float(edges[b]), float(edges[b + 1])
            closed = closed and b == _BINS - 1
            if counts[b] <= CHUNK or np.nextafter(new_lo, math.inf) >= new_hi:
                if counts[b] > CHUNK:
                    return new_lo
                picked = [c[(c >= new_lo) & ((c <= new_hi) if closed else (c < new_hi))] for c in self.chunks()]
                values = np.concatenate(picked)
                return float(np.partition(values, k)[k])
            lo, hi = new_lo, new_hi
        return lo
