"""Where a manifest's media paths point: ``~`` expanded, relative paths joined to the media base
(``media_root``, else the manifest's folder); a URL (``s3://...``) stays exactly as written, and
relative paths under a URL ``media_root`` are joined to it with '/'. No other vidcap import."""
from __future__ import annotations

import os
import re
from pathlib import Path

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def resolve_media_path(path: str, base: str) -> str:
    """Absolute file name for a manifest ``path``: ``~`` expanded, relative paths joined to ``base``."""
    if path == "" or URL.match(path):
        return path
    if URL.match(base) and not path.startswith(("/", "~")):
        return base.rstrip("/") + "/" + path
    p = os.path.expanduser(path)
    if not os.path.isabs(p):
        p = os.path.join(base, p)
    return os.path.normpath(p)


def media_base(manifest: str | Path, media_root: str | None) -> str:
    """Folder that relative paths resolve against: ``media_root`` if set, else the manifest's folder."""
    if media_root and URL.match(media_root):
        return media_root
    if media_root:
        return os.path.abspath(os.path.expanduser(media_root))
    return os.path.dirname(os.path.abspath(manifest))
