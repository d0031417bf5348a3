"""Manifest tools: read a manifest (a table or a NeVA prompt file, media paths resolved), scan a folder
into a table, merge part tables, subtract tables by ``path``.

Parity with Open-Sora's ``convert video|image ROOT`` (columns ``path,id,relpath``) and its ``datautil``
merge / ``--difference``. Extra columns pass through verbatim; tables are keyed by ``path``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from vidcap.errors import TableError
from vidcap.io import buckets, remote
from vidcap.io.prompt_files import is_prompt_file, read_prompt_file
from vidcap.io.tables import read_table
from vidcap.media.files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

KINDS = {"video": VIDEO_EXTENSIONS, "image": IMAGE_EXTENSIONS, "all": VIDEO_EXTENSIONS | IMAGE_EXTENSIONS}
DUPLICATES = ("keep-first", "keep-last", "keep-all", "error")


def read_manifest(path: str | Path, media_base_path: str | None = None, on_bad_line: str = "fail",
                  required: tuple[str, ...] = ("path",)) -> pd.DataFrame:
    """A manifest from CSV/Parquet (``vidcap.io.tables.read_table``) or a NeVA prompt file (``.jsonl``).

    For a prompt file the bad lines are in ``df.attrs["bad_lines"]`` (a list of ``BadLine``) when
    ``on_bad_line="report"``. Its ``path`` column is already absolute (``media_base_path`` applied).
    """
    if not is_prompt_file(path):
        return read_table(path, required=required)
    result = read_prompt_file(path, media_base_path=media_base_path, on_bad_line=on_bad_line)
    table = result.table
    table.attrs["bad_lines"] = result.bad_lines
    return table


def scan(root: str | Path, kind: str = "video") -> pd.DataFrame:
    """Every file under ``root`` (recursively, symlinks followed) whose extension is of ``kind``;
    ``root`` may be an object-store prefix (``s3://bucket/prefix/``: every object under it).

    Returns ``path`` (absolute), ``id`` (file name without extension), ``relpath`` (to ``root``),
    sorted by ``relpath`` so the same folder always gives the same table.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if remote.is_url(root):   # an object-store prefix: listed as a folder is, paths are URLs
        prefix = str(root).rstrip("/")
        keys = buckets.list_objects(prefix, set(KINDS[kind]))
        return pd.DataFrame({"path": [buckets.join_url(prefix, k) for k in keys],
                             "id": [Path(k).stem for k in keys], "relpath": keys})
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise TableError(f"not a folder: {root}")
    extensions = KINDS[kind]
    rel = []
    for dirpath, _dirs, files in os.walk(root, followlinks=True):
        for name in files:
            if Path(name).suffix.lower() in extensions:
                rel.append(os.path.relpath(os.path.join(dirpath, name), root))
    rel.sort()
    return pd.DataFrame(
        {
            "path": [str(root / r) for r in rel],
            "id": [Path(r).stem for r in rel],
            "relpath": rel,
        }
    )


def merge(paths: list[str | Path], duplicates: str = "keep-first") -> tuple[pd.DataFrame, int]:
    """Concatenate tables (columns united, first-seen order) and handle repeated ``path`` values.

    ``duplicates``: keep-first | keep-last | keep-all | error. Returns (table, rows dropped).
    """
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {', '.join(DUPLICATES)}, got {duplicates!r}")
    if not paths:
        raise ValueError("merge needs at least one table")
    frames = [read_table(p) for p in paths]
    merged = pd.concat(frames, ignore_index=True, sort=False)
    before = len(merged)
    if duplicates == "error":
        dup = merged["path"][merged["path"].duplicated()]
        if len(dup):
            raise TableError(f"{len(dup)} repeated path(s), first: {dup.iloc[0]!r}")
    elif duplicates != "keep-all":
        keep = "first" if duplicates == "keep-first" else "last"
        merged = merged.drop_duplicates(subset="path", keep=keep, ignore_index=True)
    return merged, before - len(merged)


def difference(path_a: str | Path, path_b: str | Path) -> pd.DataFrame:
    """Rows of table A whose ``path`` is not in table B, in A's order (Open-Sora ``--difference``)."""
    a = read_table(path_a)
    b = read_table(path_b)
    return a[~a["path"].isin(set(b["path"]))].reset_index(drop=True)
