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


Evidence = tuple[int, float, int, float]  # (t, ratio, h, change) of a centre's best half-window


@dataclass
class Dissolve:
    start: int  # first frame of the blend (estimate)
    end: int  # exclusive
    cut: int  # first frame where the new shot weighs >= 0.5
    ratio: float  # residual / change at the centre (0 = a perfect linear blend)
    change: float
    ramp: bool = False  # one end is a darker copy of the other: a fade in or out, not a dissolve


class DissolveDetector:
    """Feed ``push(index, thumbnail)`` (or ``push_batch(indices, thumbnails)``: the same result, cheaper;
    one or the other) in increasing index order, then ``finish()`` -> [Dissolve]. ``push`` evaluates each
    centre on its own (``_evaluate``), ``push_batch`` a batch's centres at once (``_settle``)."""

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
        self.segment: list[Evidence] = []  # the centres with evidence of the open candidate
        self.found: list[Dissolve] = []
        self._settled: dict[int, Evidence | None] = {}  # centres evaluated by ``_settle``, not yet stepped
        self._first: int | None = None  # the first index ``push_batch`` got (the video's first frame seen)
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

        The same result as pushing them one by one, cheaper: the centres are evaluated for the whole
        batch at once (``_settle``) first, and a batch whose centres all have no evidence, with no
        candidate open, is pushed in one go (``_push_quiet``).
        """
        flat = frames.reshape(len(indices), -1)
        tail_idx, tail = self._tail
        idx = tail_idx + [int(i) for i in indices]
        both = flat if not tail_idx else np.concatenate([tail, flat])
        if self._first is None:
            self._first = idx[0]
        self._settle(idx, both, idx[0] == self._first, False)
        keep = min(len(idx), 6 * self.hmax)
        self._tail = (idx[len(idx) - keep:], both[len(idx) - keep:])
        if not self._push_quiet(idx[len(tail_idx):], frames):
            for i, index in enumerate(indices):
                self.push(index, frames[i])

    def _settle(self, idx: list[int], flat: np.ndarray, first: bool, last: bool) -> None:
        """Evaluate at once the centres among ``idx`` (consecutive frame indices, thumbnails in the rows
        of ``flat``) not yet stepped, as ``_evaluate`` does one by one (the same arithmetic, so the same
        values), into ``_settled``; only where every frame its tests read is known: ``3 * hmax`` frames
        each side, or fewer next to the first frame (``first``) or the last frame (``last``) of the
        video, where the missing frames are those ``_evaluate`` clamps to the end (one frame past it) or
        leaves out."""
        n = len(idx)
        r = 3 * self.hmax  # context each side of a centre: the windows beside the longest half-window
        if n == 0 or idx[-1] - idx[0] != n - 1 or ((first or last) and self.hs[0] < 2):
            return  # frames skipped: ``_at``'s nearest frames; h = 1: a window clamped onto its centre
        edge = first or last
        if edge:  # one copy of the end frame (``_at`` clamps to it), then frames that do not exist (NaN)
            gap = np.full((r - 1, flat.shape[1]), np.nan, np.float32)
            flat = np.concatenate([*((gap, flat[:1]) if first else ()), flat, *((flat[-1:], gap) if last else ())])
        size = len(flat)
        m = size - 2 * r  # centres evaluated
        if m <= 0:
            return
        mid = flat[r:size - r]
        quiet = np.ones(m, bool)
        tests = []
        for h in self.hs:
            # every change tested spans 2h frames: mean|F[p + 2h] - F[p]| once for every p from the first
            # centre's window before it (t - 3h) to the last centre's window after it (t + h), then read at
            # the window (t - h), before it and after it
            span = np.abs(flat[r - h:size - r + 3 * h] - flat[r - 3 * h:size - r + h]).mean(axis=1)
            ch, before, after = span[2 * h:2 * h + m], span[:m], span[4 * h:4 * h + m]
            residual = np.abs(mid - 0.5 * (flat[r - h:size - r - h] + flat[r + h:size - r + h])).mean(axis=1)
            tests.append((h, ch, residual, before, after))
            # no evidence: change < min_change, residual > max_ratio * change or change < min_contrast * the
            # larger change beside it (in float32 here: the margins leave a centre near a limit to ``_best``);
            # NaN: a window past the ends (left out) or none beside it (not judged)
            no = (ch < self.min_change - 1e-3) | (residual > self.max_ratio * ch + 1e-3) \
                | (ch < self.min_contrast * np.fmax(before, after) - 1e-3)
            quiet &= no | np.isnan(ch) | (np.isnan(before) & np.isnan(after)) if edge else no
        centres = idx[0 if first else r:n if last else n - r]
        # centres already stepped are not evaluated again
        buf = self.idx
        done = buf[self.next_centre] if self.next_centre < len(buf) else (buf[-1] + 1 if buf else idx[0])
        for j, (t, q) in enumerate(zip(centres, quiet.tolist(), strict=True)):
            if t >= done:
                self._settled[t] = None if q else self._best(
                    t, [(h, float(c[j]), float(e[j]), float(b[j]), float(a[j])) for h, c, e, b, a in tests])

    def _best(self, t: int, windows: list[tuple[int, float, float, float, float]]) -> Evidence | None:
        """The evidence at centre ``t`` from its half-windows ``(h, change, residual, change before, change
        after)`` in increasing ``h`` (NaN: a window or a change beside it that cannot be computed): the
        window with the lowest ``residual / change`` (the first of equals) among those with ``change >=
        min_change``, ``residual / change <= max_ratio`` and ``change >= min_contrast`` * the larger change
        beside it; None when none."""
        best = None
        for h, change, residual, before, after in windows:
            if not change >= self.min_change:  # NaN too
                continue
            ratio = residual / change
            if ratio > self.max_ratio or (best is not None and ratio >= best[1]):
                continue
            # the change must stand out from a window beside it (steady camera motion does not); near
            # the ends of the video a window without one beside it is not judged
            beside = [c for c in (before, after) if not math.isnan(c)]
            if not beside or change < self.min_contrast * max(beside):
                continue
            best = (t, ratio, h, change)
        return best

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
        settled = self._settled
        if not all(t in settled and settled[t] is None for t in stepped):
            return False
        for t in stepped:
            del settled[t]
        self.idx.extend(indices)
        self.frames.extend(frames)
        self.next_centre += len(stepped)
        self._forget(last)
        return True

    def finish(self) -> list[Dissolve]:
        tail_idx, tail = self._tail
        if tail_idx:
            # fed by ``push_batch``: the last centres too, whose windows reach past the end, at once (the
            # tail holds them and the 3 * hmax frames before them)
            self._settle(tail_idx, tail, tail_idx[0] == self._first, True)
        while self.next_centre < len(self.idx):
            self._step()
        self._close_segment()
        return self.found

    # ---------------------------------------------------------------------------------------------

    def _step(self) -> None:
        """Evaluate the next centre (or take its evaluation by ``_settle``) and add it to the candidates."""
        t = self.idx[self.next_centre]
        best = self._settled.pop(t) if t in self._settled else self._evaluate(self.next_centre)
        if best is not None:
            if self.segment and t - self.segment[-1][0] > 2:
                self._close_segment()
            self.segment.append(best)
        elif self.segment and t - self.segment[-1][0] > 2:
            self._close_segment()
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

    def _evaluate(self, pos: int) -> Evidence | None:
        """The evidence at the centre at ``pos`` of the buffer (``_best``), None when none."""
        t = self.idx[pos]
        m = self.frames[pos]
        # every half-window at once (one numpy call per quantity); the changes beside, which the contrast
        # test needs, only for the windows that pass the first two tests
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
        if not hs:
            return None
        a = np.stack([self.frames[ka].ravel() for ka, _ in ends])
        b = np.stack([self.frames[kb].ravel() for _, kb in ends])
        changes = np.abs(b - a).mean(axis=1).tolist()
        if max(changes) < self.min_change:  # no window has evidence (most frames)
            return None
        residuals = np.abs(m.ravel() - 0.5 * (a + b)).mean(axis=1).tolist()
        windows = []
        for h, change, residual in zip(hs, changes, residuals, strict=True):
            near = change >= self.min_change and residual / change <= self.max_ratio  # as ``_best``
            beside = [self._change(t - 3 * h, t - h), self._change(t + h, t + 3 * h)] if near else [None, None]
            windows.append((h, change, residual, *(math.nan if c is None else c for c in beside)))
        return self._best(t, windows)

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
