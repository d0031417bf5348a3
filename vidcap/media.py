"""What kind of media a path holds (told by its extension, as Open-Sora does), and whether it is there."""
from __future__ import annotations

import os
from pathlib import Path

from vidcap.errors import MediaError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m2ts", ".webm"})


def media_type(path: str | Path) -> str:
    """'image' for an image extension, else 'video' (unknown extensions are tried as video)."""
    return "image" if Path(str(path)).suffix.lower() in IMAGE_EXTENSIONS else "video"


def check_file(path) -> str:
    """``path`` as a string; MediaError for an empty path, a missing file, a folder or a 0-byte file."""
    if path is None or str(path).strip() == "":
        raise MediaError("empty path")
    path = str(path)
    if not os.path.exists(path):
        raise MediaError(f"file not found: {path}")
    if os.path.isdir(path):
        raise MediaError(f"is a directory, not a file: {path}")
    if os.path.getsize(path) == 0:
        raise MediaError(f"empty file (0 bytes): {path}")
    return path
