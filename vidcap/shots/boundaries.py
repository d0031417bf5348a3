"""Transitions found in a video: ``Boundary`` (one transition's frames), ``Detection`` (what a detection
pass saw) and ``merge_boundaries`` (one boundary per transition). Shared by the full detector
(``vidcap.shots.detect``) and the proxy pass (``vidcap.shots.proxy``)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Boundary:
    """A detected transition: frames ``[start, end)`` belong to it; ``cut`` = first frame of the new shot."""

    kind: str  # cut | fade | dissolve
    cut: int
    start: int
    end: int


@dataclass
class Detection:
    """What ``detect_boundaries`` saw: boundaries plus the facts needed to turn them into shots."""

    boundaries: list[Boundary]
    num_frames: int  # frames of the file
    fps: Fraction
    start: int  # analysed range [start, end)
    end: int
    frames_seen: int  # frames the detectors saw (fewer with decode.skip = nonref; proxy: both passes)
    decoder: str = "cpu"  # which decoder ran (shots_decode.VideoInfo.decoder)


PRIORITY = {"fade": 0, "dissolve": 1, "cut": 2}
MERGE_GAP = 3  # boundaries whose spans come closer than this (frames) are one transition


def merge_boundaries(boundaries: list[Boundary], gap: int = MERGE_GAP) -> list[Boundary]:
    """One boundary per transition: overlapping (or nearer than ``gap`` frames) boundaries are merged,
    keeping the position of the most specific kind (fade, then dissolve, then cut)."""
    out: list[list[Boundary]] = []
    for b in sorted(boundaries, key=lambda b: (b.start, b.cut)):
        if out and b.start - max(x.end for x in out[-1]) < gap:
            out[-1].append(b)
        else:
            out.append([b])
    merged = []
    for group in out:
        best = min(group, key=lambda b: (PRIORITY[b.kind], b.cut))
        merged.append(Boundary(best.kind, best.cut, min(b.start for b in group), max(b.end for b in group)))
    return merged
