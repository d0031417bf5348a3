"""Frames encoded as images: the one encoder for API requests (``Wire``, ``encode_frame``) and report
thumbnails (``jpeg_data_url``).

``Wire(fmt, quality, max_side)`` says how a runner sends a frame: ``png`` (lossless, zlib level 1),
``jpeg`` (``quality``; 4:2:0 chroma, or 4:4:4 with ``full_chroma``) or ``bmp`` (uncompressed); the longest side shrunk
to ``max_side`` first (Lanczos, aspect kept, never enlarged; None = as decoded). ``encode_frame`` gives
the base64 text, the size sent and the CPU seconds (of the calling thread) spent resizing and encoding. Equal ``Wire`` values give
byte-identical output wherever the encoding runs (a feed worker or the runner itself).
"""
from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from vidcap.media.frames import Frames

WIRE_FORMATS = ("png", "jpeg", "bmp")
MIME = {"png": "image/png", "jpeg": "image/jpeg", "bmp": "image/bmp"}


@dataclass(frozen=True)
class Wire:
    fmt: str                       # png | jpeg | bmp
    quality: int = 95              # jpeg only
    max_side: int | None = None    # None = frames as decoded
    full_chroma: bool = False      # jpeg only: 4:4:4 (colour at full resolution) instead of 4:2:0

    @property
    def mime(self) -> str:
        return MIME[self.fmt]


@dataclass
class EncodedFrame:
    b64: str                       # the encoded image, base64 (ASCII)
    width: int                     # size sent
    height: int
    resize_s: float = 0.0
    encode_s: float = 0.0          # image encoding and base64


def encode_frame(frame: np.ndarray, wire: Wire) -> EncodedFrame:
    """One RGB uint8 frame as ``wire`` says (module docstring)."""
    if wire.fmt not in WIRE_FORMATS:
        raise ValueError(f"unknown wire format {wire.fmt!r}; allowed: {', '.join(WIRE_FORMATS)}")
    t0 = time.thread_time()
    img = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "RGB")
    w, h = img.size
    if wire.max_side is not None and max(w, h) > int(wire.max_side):
        scale = int(wire.max_side) / max(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    t1 = time.thread_time()
    buf = io.BytesIO()
    if wire.fmt == "png":
        img.save(buf, format="PNG", compress_level=1)
    elif wire.fmt == "jpeg":
        img.save(buf, format="JPEG", quality=int(wire.quality), subsampling=0 if wire.full_chroma else 2)
    else:
        img.save(buf, format="BMP")
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return EncodedFrame(b64, img.size[0], img.size[1], t1 - t0, time.thread_time() - t1)


def jpeg_data_url(frame: np.ndarray, max_side: int, quality: int = 85, optimize: bool = False) -> tuple[str, int, int]:
    """(``data:image/jpeg;base64,...``, width, height) of an RGB uint8 frame, its longest side shrunk to
    ``max_side`` (Lanczos, aspect kept, never enlarged)."""
    if not optimize:
        enc = encode_frame(frame, Wire("jpeg", int(quality), int(max_side)))
        return "data:image/jpeg;base64," + enc.b64, enc.width, enc.height
    img = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "RGB")
    w, h = img.size
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality), optimize=optimize)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), img.size[0], img.size[1]


@dataclass
class WireFrames(Frames):
    """``Frames`` whose pixels were encoded for the wire ahead of the request (a feed worker): ``encoded``
    holds one ``EncodedFrame`` per index as ``wire`` says, and ``frames`` is an (N, 0, 0, 3) placeholder,
    so only the encoded text travels between processes and waits in queues."""

    wire: Wire | None = None
    encoded: list[EncodedFrame] = field(default_factory=list)


def encode_frames(fr: Frames, wire: Wire) -> WireFrames:
    """``fr`` with every frame encoded as ``wire`` says (``WireFrames``)."""
    encoded = [encode_frame(f, wire) for f in fr.frames]
    return WireFrames(np.empty((len(encoded), 0, 0, 3), np.uint8), fr.indices, fr.timestamps, fr.total_frames,
                      fr.fps, fr.width, fr.height, fr.media_type, wire=wire, encoded=encoded)
