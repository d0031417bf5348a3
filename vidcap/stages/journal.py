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
import time
from collections import Counter
from pathlib import Path

from vidcap.io.shards import ROW_ID
from vidcap.io.tables import atomic_path

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
        self._fh = None
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

    def append(self, record: dict) -> None:
        self._fh.write(json.dumps(record, default=json_default, allow_nan=True) + "\n")
        self._fh.flush()
        self.sync()

    def sync(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_sync >= FSYNC_SECONDS:
            self._fh.flush()
            os.fsync(self._fh.fileno())
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




def carry_journals(journal_root: str | Path, members: dict[str, list[str]]) -> dict[str, int]:
    """Move journaled rows to the journal of the shard that now holds them.

    ``journal_root``: the run's ``journal/`` folder (one subfolder per stage); ``members``: new shard
    name → its row ids. For each stage whose journals hold a row outside its new shard, journals
    are rewritten (each atomically) so every record sits in its row's new shard; records of rows no
    longer in the manifest are dropped. When a new shard would mix fingerprints (settings changed
    between runs) it keeps the commonest and the others go to ``<shard>.jsonl.stale``. Returns
    ``{stage: records moved}``.
    """
    shard_of = {rid: shard for shard, ids in members.items() for rid in ids}
    moved: dict[str, int] = {}
    root = Path(journal_root)
    if not root.is_dir():
        return moved
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jsonl"))
        loaded = {f.stem: read_journal(f) for f in files}
        out_of_place = sum(1 for name, (_, recs) in loaded.items() for rid in recs if shard_of.get(rid) != name)
        if not out_of_place:
            continue
        target: dict[str, list[tuple[str, dict]]] = {}
        for _name, (header, recs) in loaded.items():
            for rid, rec in recs.items():
                if rid in shard_of:
                    target.setdefault(shard_of[rid], []).append((header.get("fingerprint"), rec))
        for shard, items in target.items():
            fp = Counter(f for f, _ in items).most_common(1)[0][0]
            keep = [r for f, r in items if f == fp]
            stale = [r for f, r in items if f != fp]
            with atomic_path(folder / f"{shard}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"stage": folder.name, "fingerprint": fp}) + "\n")
                fh.writelines(json.dumps(r, default=json_default) + "\n" for r in keep)
            if stale:
                with open(folder / f"{shard}.jsonl.stale", "a", encoding="utf-8") as fh:
                    fh.writelines(json.dumps(r, default=json_default) + "\n" for r in stale)
        for name in loaded:
            if name not in target:
                (folder / f"{name}.jsonl").unlink(missing_ok=True)
        moved[folder.name] = out_of_place
        log.info("journal %s: %d records moved to the shards that now hold their rows", folder.name, out_of_place)
    return moved
