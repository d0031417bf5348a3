"""WebDataset export: a finished run's rows as tar shards of about ``shard_size`` bytes, in a folder or
under an object-store prefix (``s3://bucket/prefix/``).

Contracts:

* One sample per usable row, keyed by its ``row_id``: the clip (``<key>.mp4`` ..., the source file; for a
  row with ``start``/``end``, the clip cut out by stream copy, ``vidcap.shots.clips`` ``copy`` mode),
  ``<key>.json`` (every column of the row) and ``<key>.txt`` (``text_column``, the caption by default).
* A row with any non-empty ``*_error`` column is left out and counted (``failed_rows``); a clip that
  cannot be read or cut at export time is left out and counted with its reason (``export_errors``).
* Shards ``00000.tar`` ... are planned before anything is written, from the rows in table order and
  their sizes (a cut clip: its share of the file by duration): the same table and settings always give
  the same shards. ``_export.json`` records the settings; another export into the same DEST with other
  settings is refused.
* Per shard: ``NNNNN.tar``, ``NNNNN.parquet`` (the shard's rows and their keys) and ``NNNNN_stats.json``,
  written in that order, each atomically (a temporary name then a rename; for an object store an upload,
  which becomes visible only when complete). The stats file marks a shard done: a rerun writes only the
  shards without one. ``stats.json`` sums the run.
* Memory: one row batch and one clip's copy buffer; a shard is streamed to its temporary tar.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vidcap.errors import MediaError, TableError, describe_error
from vidcap.io import buckets, remote
from vidcap.io.media_paths import resolve_media_path
from vidcap.io.results import iter_result_batches, results_source
from vidcap.io.run_dir import RunDir
from vidcap.media.timerange import range_frames, row_range
from vidcap.shots.clips import export_clips
from vidcap.shots.decode import count_frames, open_video

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
SETTINGS_FILE, STATS_FILE = "_export.json", "stats.json"


def parse_size(text: str | int) -> int:
    """Bytes of ``'500MB'``, ``'1.5GB'``, ``'64MiB'`` or a plain number; ValueError naming the value."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    unit = (m.group(2).upper() if m else "")
    if not m or unit not in _UNITS or float(m.group(1)) <= 0:
        raise ValueError(f"shard size {text!r}: give a positive size such as 500MB, 2GB or 256MiB")
    return int(float(m.group(1)) * _UNITS[unit])


class Dest:
    """A local folder or an object-store prefix, written one whole file at a time."""

    def __init__(self, where: str):
        self.url = remote.is_url(where)
        self.where = where.rstrip("/") if self.url else str(Path(where).expanduser().resolve())
        if not self.url:
            Path(self.where).mkdir(parents=True, exist_ok=True)

    def name(self, file: str) -> str:
        return buckets.join_url(self.where, file) if self.url else os.path.join(self.where, file)

    def exists(self, file: str) -> bool:
        return buckets.exists(self.name(file)) if self.url else os.path.exists(self.name(file))

    def read_text(self, file: str) -> str:
        if self.url:
            url = self.name(file)
            return remote.read_range(url, 0, remote.object_size(url)).decode()
        return Path(self.name(file)).read_text()

    def put(self, local: Path, file: str) -> None:
        """Publish ``local`` (consumed) as ``file``: an upload, or a rename inside the folder."""
        if self.url:
            buckets.put_file(str(local), self.name(file))
            local.unlink()
        else:
            os.replace(local, self.name(file))

    def staging(self) -> str:
        """Where temporary files are written: the folder itself (same file system for the rename)."""
        return tempfile.mkdtemp(prefix=".export-", dir=None if self.url else self.where)


def _media_base(where: str | Path, media_root: str | None) -> str:
    if media_root:
        return media_root
    where = Path(where)
    for run_dir in (where, where.with_suffix("")):
        if (run_dir / "shards").is_dir():
            try:
                return RunDir.at(run_dir).shard_info().get("media_base") or str(run_dir.parent)
            except FileNotFoundError:
                break
    source = results_source(where)
    return str((source[0] if isinstance(source, list) else source).parent)


def _failed(batch: pa.RecordBatch) -> np.ndarray:
    bad = np.zeros(batch.num_rows, dtype=bool)
    for name in batch.schema.names:
        if name.endswith("_error"):
            values = batch.column(name).to_pylist()
            bad |= np.array([bool(v) for v in values], dtype=bool)
    return bad


def _size(path: str) -> int:
    if remote.is_url(path):
        return remote.object_size(path)
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _cut_share(row: dict) -> float:
    start, end, dur = row.get("start"), row.get("end"), row.get("source_duration") or row.get("duration")
    try:
        if (start not in (None, "") or end not in (None, "")) and dur:
            s, e = float(start or 0), float(end) if end not in (None, "") else float(dur)
            return min(1.0, max(0.0, (e - s) / float(dur)))
    except (TypeError, ValueError):
        pass
    return 1.0


def plan(where: str | Path, shard_bytes: int, base: str, workers: int = 16) -> tuple[list[int], int, int]:
    """(shard of each row, -1 for a failed row; rows; failed rows): rows in table order, a new shard
    when the next sample would take the current one past ``shard_bytes`` (sizes from a stat per row)."""
    shard_of: list[np.ndarray] = []
    current, used, failed, rows = 0, 0, 0, 0
    with ThreadPoolExecutor(workers) as pool:
        for batch in iter_result_batches(where, batch_size=4096):
            bad = _failed(batch)
            recs = batch.to_pylist()
            paths = [resolve_media_path(str(r.get("path") or ""), base) for r in recs]
            sizes = list(pool.map(lambda p: _size(p) if p else 0, [p if not b else "" for p, b in zip(paths, bad)]))
            out = np.full(len(recs), -1, dtype=np.int64)
            for i, rec in enumerate(recs):
                if bad[i]:
                    continue
                size = int(sizes[i] * _cut_share(rec)) + 2048   # tar headers, json, txt
                if used and used + size > shard_bytes:
                    current, used = current + 1, 0
                out[i], used = current, used + size
            shard_of.append(out)
            failed += int(bad.sum())
            rows += len(recs)
    flat = np.concatenate(shard_of) if shard_of else np.empty(0, np.int64)
    return flat.tolist(), rows, failed


def _json_safe(value):
    if isinstance(value, float) and value != value:
        return None
    return value


def _clip_file(path: str, row: dict, staging: str) -> tuple[str, Path | None]:
    """(extension, a cut clip to add and delete) or (extension, None) when the whole file is the clip."""
    ext = os.path.splitext(remote.public_url(path))[1].lower() or ".mp4"
    if _cut_share(row) >= 1.0 and not (row.get("start") not in (None, "") or row.get("end") not in (None, "")):
        return ext, None

    info = open_video(path)
    try:
        total, fps = count_frames(info), info.fps
    finally:
        info.close()
    start, end = row_range(row)
    s, e = range_frames(start, end, fps, total)
    result = export_clips(path, [("clip", s, e)], staging, mode="copy")[0]
    if result.path is None:
        raise MediaError(f"cannot cut the clip: {result.error}")
    return os.path.splitext(result.path)[1] or ext, Path(result.path)


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, fileobj=None, size: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = (len(data) if data is not None else size), 0, 0o644
    tar.addfile(info, io.BytesIO(data) if data is not None else fileobj)


class ShardWriter:
    """One shard streamed to a temporary tar, then published with its index and stats (module docstring)."""

    def __init__(self, dest: Dest, shard: int, staging: str, text_column: str):
        self.dest, self.shard, self.staging, self.text_column = dest, shard, staging, text_column
        self.tmp = Path(staging) / f"{shard:05d}.tar.tmp"
        self.tar = tarfile.open(self.tmp, "w")
        self.index: list[pa.Table] = []
        self.samples, self.bytes = 0, 0
        self.errors: list[str] = []
        self.started = time.time()

    def add(self, row: dict, path: str, table_row: pa.Table) -> None:
        key = str(row.get("row_id") or f"row{self.samples:09d}")
        mark = self.tar.offset
        try:
            ext, cut = _clip_file(path, row, self.staging)
            if cut is not None:
                with open(cut, "rb") as fh:
                    _add(self.tar, f"{key}{ext}", fileobj=fh, size=cut.stat().st_size)
                cut.unlink()
            elif remote.is_url(path):
                with remote.open_remote(path) as fh:
                    _add(self.tar, f"{key}{ext}", fileobj=fh, size=fh.size)
            else:
                with open(path, "rb") as fh:
                    _add(self.tar, f"{key}{ext}", fileobj=fh, size=os.fstat(fh.fileno()).st_size)
        except (MediaError, OSError, ValueError) as exc:
            self.errors.append(f"{remote.public_url(str(row.get('path')))}: {describe_error(exc)}")
            self._rewind(mark)
            return
        meta = {k: _json_safe(v) for k, v in row.items()}
        _add(self.tar, f"{key}.json", json.dumps(meta, ensure_ascii=False, default=str).encode())
        _add(self.tar, f"{key}.txt", str(row.get(self.text_column) or "").encode())
        self.index.append(table_row.append_column("key", pa.array([key])))
        self.samples += 1

    def _rewind(self, mark: int) -> None:
        """After a failed member: cut the tar back to ``mark``, the end of its last whole member."""
        fileobj: Any = self.tar.fileobj   # the temporary file tarfile opened
        fileobj.seek(mark)
        fileobj.truncate()
        self.tar.offset = mark

    def commit(self) -> dict:
        self.tar.close()
        self.bytes = self.tmp.stat().st_size
        name = f"{self.shard:05d}"
        self.dest.put(self.tmp, f"{name}.tar")
        index_tmp = Path(self.staging) / f"{name}.parquet.tmp"
        table = pa.concat_tables(self.index, promote_options="permissive") if self.index else pa.table({"key": pa.array([], pa.string())})
        pq.write_table(table, index_tmp)
        self.dest.put(index_tmp, f"{name}.parquet")
        stats = {"shard": name, "samples": self.samples, "bytes": self.bytes, "export_errors": len(self.errors), "errors": self.errors[:20],
                 "seconds": round(time.time() - self.started, 3)}
        stats_tmp = Path(self.staging) / f"{name}_stats.json.tmp"
        stats_tmp.write_text(json.dumps(stats, indent=1))
        self.dest.put(stats_tmp, f"{name}_stats.json")
        return stats


def export_webdataset(where: str | Path, to: str, shard_size: str | int = "500MB", text_column: str = "text",
                      media_root: str | None = None) -> dict:
    """Export the run ``where`` (a run folder, its merged table or a Parquet folder) to ``to``; the summary
    written to ``to/stats.json`` (module docstring). TableError when ``to`` holds another export."""
    shard_bytes = parse_size(shard_size)
    dest = Dest(str(to))
    base = _media_base(where, media_root)
    settings = {"source": str(Path(where).resolve()), "shard_bytes": shard_bytes, "text_column": text_column,
                "media_base": base}
    if dest.exists(SETTINGS_FILE):
        old = json.loads(dest.read_text(SETTINGS_FILE))
        if {k: old.get(k) for k in settings} != settings:
            raise TableError(f"{to}: holds an export made with other settings ({SETTINGS_FILE}); export to a new "
                             "destination or remove it")
    started = time.time()
    shard_of, rows, failed = plan(where, shard_bytes, base)
    staging = dest.staging()
    try:
        if not dest.exists(SETTINGS_FILE):
            tmp = Path(staging) / SETTINGS_FILE
            tmp.write_text(json.dumps(settings, indent=1))
            dest.put(tmp, SETTINGS_FILE)
        return _write(where, dest, shard_of, rows, failed, base, text_column, staging, started)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write(where, dest: Dest, shard_of: list[int], rows: int, failed: int, base: str, text_column: str,
           staging: str, started: float) -> dict:
    shards = max(shard_of, default=-1) + 1
    done = {s for s in range(shards) if dest.exists(f"{s:05d}_stats.json")}
    writer: ShardWriter | None = None
    written: list[dict] = []
    i = 0
    for batch in iter_result_batches(where, batch_size=1024):
        table = pa.Table.from_batches([batch])
        for j, row in enumerate(batch.to_pylist()):
            shard = shard_of[i]
            i += 1
            if shard < 0 or shard in done:
                continue
            if writer is not None and writer.shard != shard:
                written.append(writer.commit())
                writer = None
            writer = writer or ShardWriter(dest, shard, staging, text_column)
            writer.add(row, resolve_media_path(str(row.get("path") or ""), base), table.slice(j, 1))
    if writer is not None:
        written.append(writer.commit())
    seconds = time.time() - started
    stats = {"rows": rows, "failed_rows": failed, "shards": shards,
             "shards_written": len(written), "shards_kept": len(done),
             "samples_written": sum(s["samples"] for s in written),
             "export_errors": sum(s["export_errors"] for s in written),
             "bytes_written": sum(s["bytes"] for s in written), "seconds": round(seconds, 3),
             "mb_per_s": round(sum(s["bytes"] for s in written) / 1e6 / max(seconds, 1e-9), 1)}
    tmp = Path(staging) / STATS_FILE
    tmp.write_text(json.dumps(stats, indent=1))
    dest.put(tmp, STATS_FILE)
    return stats
