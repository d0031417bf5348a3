"""Splitting a manifest into shards with stable row ids.

A row's id is derived from its resolved media path (and its ``start``/``end`` range when the manifest
has one: clips of one file) and how many rows with the same path came before it, so the same manifest
and ``media_root`` always give the same ids and shards, an edit elsewhere in the manifest does not
change a row's id (journaled results stay usable), pointing the manifest at
other files does, and duplicate rows stay distinct (each comes back once).

A shard is a Parquet table: ``row_id``, ``_row_index`` (position in the manifest), ``_media_path``
(the path resolved to an absolute file name; '' for an empty path), then the manifest's own columns.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vidcap.io.tables import read_table, write_table, write_text

ROW_ID = "row_id"
ROW_INDEX = "_row_index"
MEDIA_PATH = "_media_path"
INTERNAL = (ROW_ID, ROW_INDEX, MEDIA_PATH)


def n_shards(n_rows: int, shard_size: int) -> int:
    return max(1, math.ceil(n_rows / shard_size))


def shard_names(n_rows: int, shard_size: int) -> list[str]:
    """Names of the shards, zero-padded so they sort in manifest order (at least 5 digits)."""
    count = n_shards(n_rows, shard_size)
    width = max(5, len(str(count - 1)))
    return [f"{i:0{width}d}" for i in range(count)]


def row_ids(paths) -> list[str]:
    """16-hex-digit ids from (path, occurrence number of that path so far)."""
    seen: dict[str, int] = {}
    ids = []
    for p in paths:
        k = seen.get(p, 0)
        seen[p] = k + 1
        ids.append(hashlib.blake2b(f"{p}\x00{k}".encode(), digest_size=8).hexdigest())
    return ids


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


def _cells(df: pd.DataFrame, column: str) -> list[str]:
    return ["" if pd.isna(v) else str(v) for v in df[column]] if column in df.columns else [""] * len(df)


def make_shards(manifest: str | Path, outdir: str | Path, shard_size: int,
                media_root: str | None = None, bad_lines: str = "fail") -> list[Path]:
    """Write ``outdir/<name>.parquet`` for every shard and ``outdir/manifest.json`` (counts, names).

    A manifest column named like an internal one (``row_id``, e.g. a vidcap output fed back in) is
    replaced by the new value. ``manifest`` may be a NeVA prompt file (``.jsonl``, one row per
    question; ``media_root`` is its ``media_base_path``); ``bad_lines``: ``fail`` stops on any bad line,
    ``report`` skips them and lists them (line, reason) in ``manifest.json`` under ``bad_lines``.
    """
    df = read_table(manifest, bad_lines=bad_lines)
    skipped = [{"line": b.line, "reason": b.reason} for b in df.attrs.get("bad_lines", [])]
    outdir = Path(outdir)
    base = media_base(manifest, media_root)
    paths = ["" if pd.isna(p) else str(p) for p in df["path"]]
    originals = df.drop(columns=[c for c in INTERNAL if c in df.columns])
    media = [resolve_media_path(p, base) for p in paths]
    keys = media
    if "start" in df.columns or "end" in df.columns:   # clips of one file are told apart by their range
        starts, ends = _cells(df, "start"), _cells(df, "end")
        keys = [f"{m}\x00{s}\x00{e}" if (s or e) else m for m, s, e in zip(media, starts, ends)]
    internal = pd.DataFrame(
        {
            ROW_ID: row_ids(keys),
            ROW_INDEX: pd.Series(range(len(df)), dtype="int64"),
            MEDIA_PATH: media,
        }
    )
    full = pd.concat([internal, originals.reset_index(drop=True)], axis=1)
    names = shard_names(len(full), shard_size)
    written = []
    for i, name in enumerate(names):
        part = full.iloc[i * shard_size : (i + 1) * shard_size]
        table = pa.Table.from_pandas(part, preserve_index=False)
        written.append(write_table(table, outdir / f"{name}.parquet"))
    info = {"manifest": str(Path(manifest).resolve()), "media_base": base, "rows": len(full),
            "shard_size": shard_size, "shards": names}
    if skipped:
        info["bad_lines"] = skipped
    write_text(outdir / "manifest.json", json.dumps(info, indent=1))
    return written


def shard_members(outdir: str | Path) -> dict[str, list[str]]:
    """Shard name → its row ids, for the shards listed in ``outdir/manifest.json``."""
    outdir = Path(outdir)
    names = json.loads((outdir / "manifest.json").read_text())["shards"]
    return {n: pq.read_table(outdir / f"{n}.parquet", columns=[ROW_ID]).column(ROW_ID).to_pylist() for n in names}
