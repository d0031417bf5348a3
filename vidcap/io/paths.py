"""Manifest paths to media files: the folder relative paths resolve against (``media_base``) and the
absolute file name of one ``path`` cell (``resolve_media_path``). Standard library only."""
from __future__ import annotations

import os
from pathlib import Path


def resolve_media_path(path: str, base: str) -> str:
    """Absolute file name for a manifest ``path``: ``~`` expanded, relative paths joined to ``base``."""
    if path == "":
        return ""
    p = os.path.expanduser(path)
    if not os.path.isabs(p):
        p = os.path.join(base, p)
    return os.path.normpath(p)


def media_base(manifest: str | Path, media_root: str | None) -> str:
    """Folder that relative paths resolve against: ``media_root`` if set, else the manifest's folder."""
    if media_root:
        return os.path.abspath(os.path.expanduser(media_root))
    return os.path.dirname(os.path.abspath(manifest))
