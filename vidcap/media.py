"""What kind of media a path holds, told by its extension (as Open-Sora does)."""
from __future__ import annotations

from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m2ts", ".webm"})


def media_type(path: str | Path) -> str:
    """'image' for an image extension, else 'video' (unknown extensions are tried as video)."""
    return "image" if Path(str(path)).suffix.lower() in IMAGE_EXTENSIONS else "video"
