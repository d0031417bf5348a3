"""Dissolve (cross-fade) detection on thumbnails: the middle of a dissolve is the average of its ends.

PySceneDetect compares neighbouring frames, and a dissolve spreads its change over many frames, so
none of its detectors sees one. This detector compares frames ``h`` apart: for a centre frame ``t``
and half-window ``h`` (``HALF_WINDOWS``), with ``a = F[t-h]``, ``m = F[t]``, ``b = F[t+h]`` (float
thumbnails of ``THUMB`` pixels: block means, which camera motion and moving objects change little):

* ``change = mean|b - a|`` (how different the two ends are),
* ``residual = mean|m - (a + b) / 2|`` (how far the middle is from their average).

A linear blend between two shots gives ``residual`` near 0 at its centre for every ``h`` that reaches
past its ends; a hard cut gives ``residual = change / 2`` (the middle is one of the ends), camera
motion, objects crossing and flashes give a middle that is no average of its ends. ``(t, h)`` is
evidence of a dissolve when ``change >= min_change`` and ``residual <= max_ratio * change``;
consecutive centres with evidence form one candidate, whose centre is the ``t`` with the lowest
ratio. The boundary (first frame of the new shot) is then placed where the projection of each frame
on ``b - a`` crosses one half, which is where a linear cross-fade gives the new shot weight 0.5.

Works on irregular frame indices (frames skipped by the decoder): ``t - h`` and ``t + h`` are the
nearest frames seen.
"""
from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

HALF_WINDOWS = (3, 5, 8, 12, 18)
THUMB = (8, 5)  # (w, h) of the thumbnails compared
RAMP_GAIN = 0.8  # ends whose brightness differs by more than this factor ...
RAMP_RESIDUAL = 0.15  # ... and that are otherwise alike (mean relative difference) are a fade, not a dissolve


@dataclass
class Dissolve:
    start: int  # first frame of the blend (estimate)
    end: int  # exclusive
    cut: int  # first frame where the new shot weighs >= 0.5
    ratio: float  # residual / change at the centre (0 = a perfect linear blend)
    change: float
    ramp: bool = False  # one end is a darker copy of the other: a fade in or out, not a dissolve


class DissolveDetector:
    """Feed ``push(index, thumbnail)`` (or ``push_batch(indices, thumbnails)``: the same result, cheaper)
    in increasing index order, then ``finish()`` -> [Dissolve]."""

    def __init__(self, min_change: float = 16.0, max_ratio: float = 0.25,
                 min_contrast: float = 1.7, half_windows: tuple[int, ...] = HALF_WINDOWS):
        self.min_change = float(min_change)
        self.max_ratio = float(max_ratio)
        self.min_contrast = float(min_contrast)
        self.hs = tuple(sorted(int(h) for h in half_windows))
        self.hmax = self.hs[-1]
        self.keep = 10 * self.hmax  # frames of history kept (adjacent windows, the crossing estimate)
        self.idx: deque[int] = deque()
        self.frames: deque[np.ndarray] = deque()
        self.next_centre = 0  # position in self.idx of the next centre to evaluate
        self.segment: list[tuple[int, float, int, float]] = []  # (t, ratio, h, change) with evidence
        self.found: list[Dissolve] = []
        self._quiet: dict[int, bool] = {}  # centres known to have no evidence (``push_batch``)
        self._tail: tuple[list[int], np.ndarray] = ([], np.zeros((0, 0), np.float32))  # last frames of ``push_batch``

    def push(self, index: int, frame: np.ndarray) -> None:
        self.idx.append(int(index))
        self.frames.append(frame)
        while self.next_centre < len(self.idx) and self.idx[self.next_centre] + 3 * self.hmax <= index:
            self._step()
        self._forget(index)

    def _forget(self, index: int) -> None:
        """Drop the frames more than ``keep`` before ``index`` that were evaluated as centres."""
        while len(self.idx) > 1 and self.idx[0] < index - self.keep and self.next_centre > 0:
            self.idx.popleft()
            self.frames.popleft()
            self.next_centre -= 1

    def push_batch(self, indices: list[int], frames: np.ndarray) -> None:
        """``push`` each of ``frames`` (an (n, ...) array of thumbnails, rows in ``indices`` order).

        The same result as pushing them one by one, cheaper: the three tests of every half-window
        (change, residual, contrast with the windows beside it) are computed for the whole batch at
        once, and a centre whose ``6 * hmax + 1`` frames around it were all seen and where no window
        passes all three tests is not evaluated again (it has no evidence); a batch whose centres are
        all such centres, with no candidate open, is pushed in one go (``_push_quiet``).
        """
        flat = frames.reshape(len(indices), -1)
        tail_idx, tail = self._tail
        idx = tail_idx + [int(i) for i in indices]
        both = flat if not tail_idx else np.concatenate([tail, flat])
        r = 3 * self.hmax  # context each side of a centre: the windows beside the longest half-window
        n = len(idx)
        if n > 2 * r and idx[-1] - idx[0] == n - 1:  # no frame skipped
            mid = both[r:n - r]
            quiet = np.ones(n - 2 * r, bool)
            for h in self.hs:
                # every change this half-window tests spans 2h frames: mean|F[p + 2h] - F[p]| once for
                # every p, then read at the window (t - h), before it (t - 3h) and after it (t + h)
                span = np.abs(both[2 * h:] - both[:-2 * h]).mean(axis=1)
                ch = span[r - h:n - r - h]
                beside = np.maximum(span[r - 3 * h:n - r - 3 * h], span[r + h:n - r + h])
                residual = np.abs(mid - 0.5 * (both[r - h:n - r - h] + both[r + h:n - r + h])).mean(axis=1)
                # evidence: change >= min_change, residual <= max_ratio * change and change >= min_contrast
                # * the larger change beside it (``_evaluate``); the margins keep a centre near any limit
                # for the full evaluation
                quiet &= ((ch < self.min_change - 1e-3) | (residual > self.max_ratio * ch + 1e-3)
                          | (ch < self.min_contrast * beside - 1e-3))
            for t, q in zip(idx[r:n - r], quiet.tolist(), strict=True):
                if q:
                    self._quiet[t] = True
        keep = min(n, 2 * r)
        self._tail = (idx[n - keep:], both[n - keep:])
        if not self._push_quiet(idx[len(tail_idx):], frames):
            for i, index in enumerate(indices):
                self.push(index, frames[i])

    def _push_quiet(self, indices: list[int], frames: np.ndarray) -> bool:
        """``push`` a batch in one go when no candidate is open and every centre the batch steps is known
        to have no evidence (such a step only moves on: the state ends as after ``push`` one by one);
        False, with nothing pushed, otherwise."""
        if self.segment or not indices:
            return False
        last = indices[-1]
        limit = last - 3 * self.hmax
        stepped = list(itertools.takewhile(lambda t: t <= limit,
                                           itertools.chain(itertools.islice(self.idx, self.next_centre, None), indices)))
        quiet = self._quiet
        if not all(t in quiet for t in stepped):
            return False
        for t in stepped:
            del quiet[t]
        self.idx.extend(indices)
        self.frames.extend(frames)
        self.next_centre += len(stepped)
        self._forget(last)
        return True

    def finish(self) -> list[Dissolve]:
        while self.next_centre < len(self.idx):
            self._step()
        self._close_segment()
        return self.found

    # ---------------------------------------------------------------------------------------------

    def _step(self) -> None:
        """Evaluate the next centre (one known to have no evidence only closes the open segment)."""
        t = self.idx[self.next_centre]
        if self._quiet.pop(t, False):
            if self.segment and t - self.segment[-1][0] > 2:
                self._close_segment()
        else:
            self._evaluate(self.next_centre)
        self.next_centre += 1

    def _at(self, index: int) -> int | None:
        """Position in the buffer of the frame nearest ``index`` (None when the buffer lacks it)."""
        idx = self.idx
        if not idx or index < idx[0] - 1 or index > idx[-1] + 1:
            return None
        if idx[-1] - idx[0] == len(idx) - 1:  # no frame skipped: the position is the offset
            return min(max(index - idx[0], 0), len(idx) - 1)
        k = bisect.bisect_left(idx, index)
        if k == len(idx):
            return k - 1
        if k > 0 and index - idx[k - 1] < idx[k] - index:
            return k - 1
        return k

    def _change(self, t0: int, t1: int) -> float | None:
        ka, kb = self._at(t0), self._at(t1)
        if ka is None or kb is None:
            return None
        return float(np.mean(np.abs(self.frames[kb] - self.frames[ka])))

    def _evaluate(self, pos: int) -> None:
        t = self.idx[pos]
        m = self.frames[pos]
        # every half-window at once (one numpy call per quantity); the contrast test, which needs two
        # more changes each, only for the windows that pass the first two tests
        hs, ends = [], []
        idx, n = self.idx, len(self.idx)
        contiguous = idx[-1] - idx[0] == n - 1  # no frame skipped: positions are offsets (as ``_at``)
        ka: int | None
        kb: int | None
        for h in self.hs:
            if contiguous:
                ka, kb = t - h - idx[0], t + h - idx[0]
                if ka < -1 or kb > n:
                    continue
                ka, kb = max(ka, 0), min(kb, n - 1)
            else:
                ka, kb = self._at(t - h), self._at(t + h)
                if ka is None or kb is None:
                    continue
            if ka == pos or kb == pos:
                continue
            hs.append(h)
            ends.append((ka, kb))
        best = None
        if hs:
            a = np.stack([self.frames[ka].ravel() for ka, _ in ends])
            b = np.stack([self.frames[kb].ravel() for _, kb in ends])
            changes = np.abs(b - a).mean(axis=1)
            if changes.max() >= self.min_change:  # else no window has evidence (most frames)
                residuals = np.abs(m.ravel() - 0.5 * (a + b)).mean(axis=1).tolist()
            else:
                residuals = [0.0] * len(hs)
            for h, change, residual in zip(hs, changes.tolist(), residuals, strict=True):
                if change < self.min_change:
                    continue
                ratio = residual / change
                if ratio > self.max_ratio or (best is not None and ratio >= best[1]):
                    continue
                # the change must stand out from a window beside it (steady camera motion does not); near
                # the ends of the video a window without one beside it is not judged
                beside = [c for c in (self._change(t - 3 * h, t - h), self._change(t + h, t + 3 * h))
                          if c is not None]
                if not beside or change < self.min_contrast * max(beside):
                    continue
                best = (t, ratio, h, change)
        if best is not None:
            if self.segment and t - self.segment[-1][0] > 2:
                self._close_segment()
            self.segment.append(best)
        elif self.segment and t - self.segment[-1][0] > 2:
            self._close_segment()

    def _close_segment(self) -> None:
        if not self.segment:
            return
        seg, self.segment = self.segment, []
        t, ratio, h, change = min(seg, key=lambda s: (s[1], -s[3]))
        lo = min(s[0] - s[2] for s in seg)
        hi = max(s[0] + s[2] for s in seg)
        cut = self._crossing(lo, hi, t)
        self.found.append(Dissolve(start=max(0, lo), end=hi + 1, cut=cut, ratio=ratio, change=change,
                                   ramp=self._ramp(lo, hi)))

    def _ramp(self, lo: int, hi: int) -> bool:
        """Whether the frames at ``lo`` and ``hi`` differ by a gain only (a brightness ramp, a fade)."""
        ka, kb = self._at(lo), self._at(hi)
        if ka is None or kb is None:
            return False
        a, b = self.frames[ka].ravel(), self.frames[kb].ravel()
        dark, bright = (a, b) if a.mean() <= b.mean() else (b, a)
        gain = float(dark @ bright) / max(float(bright @ bright), 1e-9)
        residual = float(np.mean(np.abs(dark - gain * bright))) / max(float(dark.mean()), 1.0)
        return gain < RAMP_GAIN and residual < RAMP_RESIDUAL

    def _crossing(self, lo: int, hi: int, t: int) -> int:
        """The frame in ``[lo, hi]`` where the projection on ``F[hi] - F[lo]`` crosses one half (the
        crossing nearest ``t`` when noise makes several)."""
        ka, kb = self._at(lo), self._at(hi)
        if ka is None or kb is None or kb <= ka:
            return t
        a, b = self.frames[ka], self.frames[kb]
        d = (b - a).ravel()
        norm = float(d @ d)
        if norm <= 0:
            return t
        alphas = [float((self.frames[k] - a).ravel() @ d) / norm for k in range(ka, kb + 1)]
        best = None
        for k in range(1, len(alphas)):
            if alphas[k - 1] < 0.5 <= alphas[k]:
                p, q = self.idx[ka + k - 1], self.idx[ka + k]
                # between two frames seen (frames skipped by the decoder): interpolate linearly
                x = p + (0.5 - alphas[k - 1]) / max(alphas[k] - alphas[k - 1], 1e-9) * (q - p)
                cut = min(q, max(p + 1, math.ceil(x - 1e-9)))
                if best is None or abs(cut - t) < abs(best - t):
                    best = cut
        return t if best is None else best
