"""Object-store prefixes and whole objects: listing a prefix, checking and uploading an object (the
manifest's listing, the WebDataset export's shards). Requests go through ``vidcap.io.remote.call``:
its retries and its messages, which name ``public_url`` only.
"""
from __future__ import annotations

import os

from vidcap.io.remote import call, filesystem


def list_objects(url: str, extensions: frozenset[str] | set[str] | None = None) -> list[str]:
    """Keys under the prefix ``url``, relative to it, sorted; only names with one of ``extensions``
    (lower-case, with the dot) when given. RemoteError when the prefix cannot be listed."""
    fs, path = filesystem(url)
    root = path.rstrip("/")
    fs.invalidate_cache()
    found = call(lambda: fs.find(root), url)
    out = []
    for key in found:
        rel = key[len(root):].lstrip("/") if key.startswith(root) else key
        if rel and (extensions is None or os.path.splitext(rel)[1].lower() in extensions):
            out.append(rel)
    return sorted(out)


def join_url(prefix: str, name: str) -> str:
    """``prefix`` + '/' + ``name`` (one slash)."""
    return prefix.rstrip("/") + "/" + name.lstrip("/")


def exists(url: str) -> bool:
    """Whether an object is at ``url``."""
    fs, path = filesystem(url)
    return bool(call(lambda: fs.exists(path), url))


def put_file(local: str, url: str) -> None:
    """Upload ``local`` to ``url`` (one object, visible only once complete: S3-like stores commit
    an upload at its end)."""
    fs, path = filesystem(url)
    call(lambda: fs.put_file(local, path), url)
