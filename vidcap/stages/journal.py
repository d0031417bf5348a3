"""Journals: the per-(stage, shard) record of finished rows that makes every job resumable.

A journal is JSON lines: a header ``{"stage", "fingerprint"}`` then one record per finished row
(``row_id``, the stage's columns, its error, ``_in`` = hash of the row's inputs). Records are flushed
at once and fsynced at least every ``FSYNC_SECONDS``; a torn last line (a killed job) is skipped on
reading; the last record of a row wins.

``carry_journals`` keeps journaled rows when the manifest is re-sharded: after an edit, a row whose id
moved to another shard takes its record along, so only new or changed rows are computed again.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

import pyarrow.parquet as pq

from vidcap.io.atomic import atomic_path
from vidcap.io.shards import ROW_ID

log = logging.getLogger("vidcap.stages.journal")

FSYNC_SECONDS = 1.0


def read_journal(path: str | Path) -> tuple[dict, dict[str, dict]]:
    """(header, ``{row_id: record}``) of a journal file; last record of a row wins, unreadable lines
    (a torn write of a killed job) are skipped."""
    records: dict[str, dict] = {}
    with open(path, encoding="utf-8") as fh:
        try:
            header = json.loads(fh.readline())
        except json.JSONDecodeError:
            header = {}
        for line in fh:
            if not line.endswith("\n"):
                break
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and ROW_ID in rec:
                records[rec[ROW_ID]] = rec
    return header, records


class Journal:
    """Append-only JSON-lines record of finished rows for one (stage, shard)."""

    def __init__(self, path: str | Path, fingerprint: str, stage: str):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.stage = stage
        self._fh: TextIO | None = None
        self._last_sync = 0.0

    def load(self) -> dict[str, dict]:
        """Rows already finished: ``{row_id: record}`` (last record wins; a torn last line is skipped).

        A journal whose header fingerprint differs is renamed to ``<name>.stale`` and ignored.
        """
        if not self.path.exists():
            return {}
        header, records = read_journal(self.path)
        if header.get("fingerprint") != self.fingerprint:
            log.warning("journal %s was written with other settings (%s != %s); starting over",
                        self.path, header.get("fingerprint"), self.fingerprint)
            os.replace(self.path, self.path.with_name(self.path.name + ".stale"))
            return {}
        return records

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fh = open(self.path, "a", encoding="utf-8")
        if not new:
            # make sure a torn last line cannot glue itself to the next record
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self._fh.write("\n")
        if new:
            self._fh.write(json.dumps({"stage": self.stage, "fingerprint": self.fingerprint}) + "\n")
        self.sync(force=True)

    def _open_file(self) -> TextIO:
        assert self._fh is not None, f"journal {self.path} is not open"
        return self._fh

    def append(self, record: dict) -> None:
        fh = self._open_file()
        fh.write(json.dumps(record, default=json_default, allow_nan=True) + "\n")
        fh.flush()
        self.sync()

    def sync(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_sync >= FSYNC_SECONDS:
            fh = self._open_file()
            fh.flush()
            os.fsync(fh.fileno())
            self._last_sync = now

    def close(self) -> None:
        if self._fh:
            self.sync(force=True)
            self._fh.close()
            self._fh = None


def json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)




PARTITIONS = 256   # carry_journals holds 1/PARTITIONS of the row ids, then of the journal records, at a time


class _Members:
    """New shard names in order and each one's row ids: from a shards folder (``manifest.json`` and
    ``<name>.parquet``, read one shard at a time) or a ``{name: ids}`` dict."""

    def __init__(self, shards):
        self._dict: dict | None
        if isinstance(shards, dict):
            self.names, self._dict = list(shards), shards
        else:
            self._dir = Path(shards)
            self.names, self._dict = json.loads((self._dir / "manifest.json").read_text())["shards"], None

    def ids(self, name: str) -> list[str]:
        if self._dict is not None:
            return list(self._dict.get(name, []))

        return pq.read_table(self._dir / f"{name}.parquet", columns=[ROW_ID]).column(ROW_ID).to_pylist()


def carry_journals(journal_root: str | Path, shards) -> dict[str, int]:
    """Move journaled rows to the journal of the shard that now holds them.

    ``journal_root``: the run's ``journal/`` folder (one subfolder per stage); ``shards``: the new
    shards folder (or a dict: shard name → its row ids). A stage whose every journal holds only rows
    of its own shard is left alone (checked one shard at a time). Otherwise its journals are rewritten
    (each atomically) so every record sits in its row's new shard; records of rows no longer in the
    manifest are dropped. When a new shard would mix fingerprints (settings changed between runs) it
    keeps the commonest and the others go to ``<shard>.jsonl.stale``. Memory: one journal file, or
    1/``PARTITIONS`` of the row ids and of the records (spilled to disk under the stage's folder).
    Returns ``{stage: records moved}``.
    """
    moved: dict[str, int] = {}
    root = Path(journal_root)
    if not root.is_dir():
        return moved
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and any(p.glob("*.jsonl"))]
    if not folders:
        return moved
    members = _Members(shards)
    known = set(members.names)
    for folder in folders:
        files = sorted(folder.glob("*.jsonl"))
        out_of_place = 0
        for f in files:
            ids = set(members.ids(f.stem)) if f.stem in known else set()
            out_of_place += sum(1 for rid in read_journal(f)[1] if rid not in ids)
        if not out_of_place:
            continue
        _move_records(folder, files, members)
        moved[folder.name] = out_of_place
        log.info("journal %s: %d records moved to the shards that now hold their rows", folder.name, out_of_place)
    return moved


def _move_records(folder: Path, files: list[Path], members: _Members) -> None:
    """Rewrite ``folder``'s journals so each record sits in its row's shard (``carry_journals``)."""

    spill = Path(tempfile.mkdtemp(prefix=".carry-", dir=folder))
    try:
        n = len(members.names)
        with _Spill(spill / "ids") as out:   # row id -> new shard index, by partition
            for i, name in enumerate(members.names):
                for rid in members.ids(name):
                    out.write(hash(rid) % PARTITIONS, f"{rid}\t{i}\n")
        with _Spill(spill / "records") as out:   # (fingerprint, record), by partition of the row id
            for f in files:
                header, records = read_journal(f)
                fp = header.get("fingerprint")
                for rid, rec in records.items():
                    out.write(hash(rid) % PARTITIONS, json.dumps([fp, rec], default=json_default) + "\n")
        with _Spill(spill / "targets") as out:   # records whose row is still there, by group of shards
            for p in range(PARTITIONS):
                shard_of = dict(line.rstrip("\n").split("\t") for line in _lines(spill / "ids" / f"{p}"))
                latest = {}
                for line in _lines(spill / "records" / f"{p}"):
                    rid = json.loads(line)[1][ROW_ID]
                    if rid in shard_of:
                        latest[rid] = (int(shard_of[rid]), line)
                for i, line in latest.values():
                    out.write(i * PARTITIONS // n, f"{i}\t{line}")
        written = set()
        for g in range(PARTITIONS):
            target: dict[int, list] = {}
            for line in _lines(spill / "targets" / f"{g}"):
                i, item = line.split("\t", 1)
                target.setdefault(int(i), []).append(json.loads(item))
            for i, items in target.items():
                _write_shard_journal(folder, members.names[i], items)
                written.add(members.names[i])
        for f in files:
            if f.stem not in written:
                f.unlink(missing_ok=True)
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _write_shard_journal(folder: Path, shard: str, items: list) -> None:
    fp = Counter(f for f, _ in items).most_common(1)[0][0]
    keep = [r for f, r in items if f == fp]
    stale = [r for f, r in items if f != fp]
    with atomic_path(folder / f"{shard}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"stage": folder.name, "fingerprint": fp}) + "\n")
        fh.writelines(json.dumps(r, default=json_default) + "\n" for r in keep)
    if stale:
        with open(folder / f"{shard}.jsonl.stale", "a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, default=json_default) + "\n" for r in stale)


def _lines(path: Path):
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            yield from fh


class _Spill:
    """``PARTITIONS`` append-only text files in one folder, opened as first written."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._fh: dict[int, TextIO] = {}

    def write(self, part: int, text: str) -> None:
        fh = self._fh.get(part)
        if fh is None:
            fh = self._fh[part] = open(self.folder / f"{part}", "a", encoding="utf-8")
        fh.write(text)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for fh in self._fh.values():
            fh.close()
