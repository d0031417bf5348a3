"""Proxy mode of shot detection: a cheap pass finds where something changes, the full detector runs there.

``detect_proxy(path, settings, start, end) -> Detection`` (``stages.shots.proxy.enabled``):

1. **Proxy pass**: the frames ``proxy.skip`` lets the decoder produce (``nonkey``: keyframes only;
   ``nonref``: reference frames, about half of x264's) are shrunk to ``proxy.width`` pixels and reduced
   to 8x5 block-mean thumbnails (``shots_decode.tiny``). Samples are taken at least ``proxy.step_s``
   apart; each sample is compared with the previous one and with every earlier sample less than
   ``proxy.window_s`` before it (a dissolve spreads its change over many frames). A pair whose mean
   thumbnail change reaches ``proxy.min_change`` (8-bit levels) marks the frames between them as a
   candidate.
2. **Refinement**: each candidate, widened by ``proxy.margin_s`` on both sides (the dissolve detector
   needs context beside a transition) and merged with overlapping ones, is searched by the full
   detector (``shots.detect_boundaries`` with the same settings, every frame, proxy off).

What it misses: a transition whose two sides look alike at the proxy samples (a cut back to the same
shot between two samples, a flash), and anything the proxy change stays under ``min_change`` for.
Its cost is the proxy pass plus, for each candidate, the frames from the keyframe before it to its
end: it pays off on long shots and long keyframe intervals, not on transition-dense video (measured
in ``bench/shots/README.md``).
"""
from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from vidcap.shots.boundaries import Detection, merge_boundaries
from vidcap.shots.decode import count_frames, open_video, scan, tiny

if TYPE_CHECKING:
    import numpy as np


def proxy_candidates(samples: list[tuple[int, np.ndarray]], fps: Fraction, proxy: dict) -> list[tuple[int, int]]:
    """Frame spans ``[(a, b)]`` between proxy samples whose thumbnails differ by ``min_change`` or more."""

    window = float(proxy["window_s"]) * float(fps)
    spans = []
    for k in range(1, len(samples)):
        j, tj = samples[k]
        i = k - 1
        while i >= 0:
            ti_idx, ti = samples[i]
            if i < k - 1 and j - ti_idx > window:
                break
            if float(np.mean(np.abs(tj - ti))) >= proxy["min_change"]:
                spans.append((ti_idx, j))
            i -= 1
    return spans


def merge_spans(spans: list[tuple[int, int]], margin: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """Spans widened by ``margin`` frames each side, clipped to ``[lo, hi)``, overlapping ones merged."""
    out: list[list[int]] = []
    for a, b in sorted(spans):
        a, b = max(lo, a - margin), min(hi, b + 1 + margin)
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        elif a < b:
            out.append([a, b])
    return [(a, b) for a, b in out]


def detect_proxy(path, settings: dict, start: int = 0, end: int | None = None, *, full_pass) -> Detection:
    """The ``Detection`` of frames ``[start, end)`` found in proxy mode (settings already filled);
    ``full_pass(path, settings, a, b)``: the full detector on settings already filled (``vidcap.shots.detect``)."""
    proxy, dec = settings["proxy"], settings["decode"]
    info = open_video(path, dec["hwaccel"])
    try:
        fps = info.fps
        total = count_frames(info)
        step = max(1, int(round(float(proxy["step_s"]) * float(fps))))
        samples: list[tuple[int, np.ndarray]] = []
        seen = 0
        for index, frame in scan(info, proxy["width"], start, end, proxy["skip"], True, dec["threads"]):
            seen += 1
            if not samples or index - samples[-1][0] >= step:
                samples.append((index, tiny(frame)))
        decoder = info.decoder
    finally:
        info.close()
    stop = total if end is None else min(end, total)
    spans = proxy_candidates(samples, fps, proxy)
    # frames before the first sample and after the last (a keyframe pass sees neither): searched in full
    if not samples:
        spans.append((start, stop - 1))
    else:
        if samples[0][0] > start:
            spans.append((start, samples[0][0]))
        if samples[-1][0] + 1 < stop:
            spans.append((samples[-1][0], stop - 1))
    margin = int(round(float(proxy["margin_s"]) * float(fps)))
    full = {**settings, "proxy": {**proxy, "enabled": False}}
    boundaries = []
    for a, b in merge_spans(spans, margin, start, stop):
        det = full_pass(path, full, a, b)
        boundaries += det.boundaries
        seen += det.frames_seen
    merged = [b for b in merge_boundaries(boundaries) if start < b.cut < stop]
    return Detection(merged, total, fps, start, stop, seen, decoder)
