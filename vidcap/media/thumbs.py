"""Report thumbnails: a few small JPEG frames of a row, as data URLs (the gallery's and the judge's)."""
from __future__ import annotations

import numpy as np

from vidcap.media.frames import read_frames, sample_frames
from vidcap.media.images import jpeg_data_url


def thumbnails(path: str, indices: list[int] | None, count: int, size: int,
               decoder: str | None = None,
               time_range: tuple[float | None, float | None] | None = None) -> tuple[list[dict], str, str]:
    """(thumbs, note, error) for one row: ``count`` of ``indices`` evenly, else ``count`` uniform frames
    (inside ``time_range``, the row's ``start`` / ``end`` seconds, when given)."""
    if count <= 0:
        return [], "", ""
    try:
        if indices:
            pos = sorted({int(round(p)) for p in np.linspace(0, len(indices) - 1, min(count, len(indices)))})
            fr = read_frames(path, [indices[p] for p in pos], resize_short=size, decoder=decoder)
            note = "frames the caption model saw" + (f" ({len(pos)} of {len(indices)})" if len(pos) < len(indices) else "")
        else:
            fr = sample_frames(path, count, "uniform", resize_short=size, decoder=decoder, unique=True,
                               time_range=time_range)
            note = "uniform frames (no caption frames recorded)"
            if time_range is not None and any(t is not None for t in time_range):
                note = "uniform frames of the row's start–end range"
    except Exception as exc:  # noqa: BLE001 - FrameError, ValueError, decoder errors: shown, never fatal
        return [], "", f"{type(exc).__name__}: {exc}"
    if fr.media_type == "image":
        fr.frames, fr.indices, fr.timestamps = fr.frames[:1], fr.indices[:1], fr.timestamps[:1]
        note = "the image"
    thumbs = []
    for frame, i, t in zip(fr.frames, fr.indices, fr.timestamps):
        label = "image" if fr.media_type == "image" else f"#{i} · {t:.2f} s"
        thumbs.append({"src": jpeg_data_url(frame, size, quality=70, optimize=True)[0], "label": label})
    return thumbs, note, ""
