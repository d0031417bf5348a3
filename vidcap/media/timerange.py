"""Time ranges of rows: ``start`` / ``end`` cells of a manifest (a clip of a longer file) as frames.

``parse_time`` reads a cell (seconds, ``MM:SS[.fff]`` or ``HH:MM:SS[.fff]``; empty = None);
``range_frames`` turns ``[start_s, end_s)`` into the frames ``[s, e)`` whose times ``i / fps`` lie in
it; ``row_range`` reads a row's ``start`` / ``end``. A bad cell or an empty or outside range is a
``StageRowError`` for that row.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

from vidcap.errors import StageRowError

RANGE_COLUMNS = ("start", "end")


_TIME = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)$")


def parse_time(value) -> float | None:
    """Seconds from a manifest cell: a number, ``"12.5"``, ``"MM:SS[.fff]"`` or ``"HH:MM:SS[.fff]"``;
    None for an empty cell. StageRowError for anything else (or a negative time)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return None
        if value < 0:
            raise StageRowError(f"negative time: {value!r}")
        return float(value)
    text = str(value).strip()
    if text == "" or text.lower() in ("nan", "none", "null"):
        return None
    m = _TIME.match(text)
    if not m:
        raise StageRowError(f"not a time (seconds or [HH:]MM:SS[.fff]): {text!r}")
    a, b, sec = m.groups()
    if a is not None and b is not None:
        return int(a) * 3600 + int(b) * 60 + float(sec)
    if a is not None:
        return int(a) * 60 + float(sec)
    return float(sec)


def range_frames(start_s: float | None, end_s: float | None, fps: Fraction, total: int) -> tuple[int, int]:
    """Frames ``[s, e)`` whose times ``i / fps`` lie in ``[start_s, end_s)``; StageRowError when the
    range is empty or lies outside the video (an end up to one frame past the end is clamped)."""
    s = 0 if start_s is None else math.ceil(start_s * fps - Fraction(1, 1000))
    e = total if end_s is None else math.ceil(end_s * fps - Fraction(1, 1000))
    duration = total / float(fps)
    if s >= total:
        raise StageRowError(f"range starts at {start_s:g} s, after the video's end ({duration:.3f} s)")
    if e > total + 1:
        raise StageRowError(f"range ends at {end_s:g} s, after the video's end ({duration:.3f} s)")
    e = min(e, total)
    if e <= s:
        raise StageRowError(f"empty range: start {start_s} s, end {end_s} s")
    return s, e




def row_range(row: dict) -> tuple[float | None, float | None]:
    """(start, end) in seconds of a row's ``start`` / ``end`` cells (None where empty or absent)."""
    return parse_time(row.get("start")), parse_time(row.get("end"))
