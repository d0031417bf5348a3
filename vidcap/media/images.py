"""Frames as JPEG data URLs: the one encoder for API requests and report thumbnails."""
from __future__ import annotations

import base64
import io

import numpy as np


def jpeg_data_url(frame: np.ndarray, max_side: int, quality: int = 85, optimize: bool = False) -> tuple[str, int, int]:
    """(``data:image/jpeg;base64,...``, width, height) of an RGB uint8 frame, its longest side shrunk to
    ``max_side`` (Lanczos, aspect kept, never enlarged)."""
    # heavy: Pillow, only for images
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "RGB")
    w, h = img.size
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality), optimize=optimize)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), img.size[0], img.size[1]
