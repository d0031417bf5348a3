"""The stage contract, and the runner that enforces it.

Every stage (probe, caption, motion, tags, ...) turns one shard into one output table:

* **Keyed by id.** The output has exactly one row per shard row, in shard order, keyed by ``row_id``.
  A stage's ``process`` returns results in a dict keyed by ``row_id``, never by position; a row it
  leaves out is recorded as failed ("no result"), an id it invents is an error.
* **Failures stay in their row.** An exception for one row (or a whole batch) is written to the
  ``<stage>_error`` column of the row(s) concerned; the stage's other columns are null there and the
  shard goes on. No substitute results (no captions of black frames).
* **Journaled.** Each finished row is appended to a JSON-lines journal (kept outside Snakemake's
  outputs, so it survives a failed or killed job) and flushed at once, fsynced at least every
  ``FSYNC_SECONDS``. A rerun reads the journal and processes only rows not in it (or whose inputs —
  media path, upstream columns such as the caption — changed since). The journal's first line
  holds a fingerprint of the stage's name, version and result-changing parameters; a journal with
  another fingerprint is set aside (``.stale``) and the shard starts over.
* **Media and its range.** A stage whose ``reads_media`` is true (the default: probe, caption, motion,
  shots; the judge when it attaches frames) decodes the row's media: ``read_rows`` gives it the media
  path and the row's time range (``vidcap.media.timerange.RANGE_COLUMNS``, ``start`` / ``end``, when the
  manifest has them), and the stage must sample only inside that range (``row_range``). Stages that
  read text only (clean, tags) set ``reads_media = False``; nothing else declares the range columns.
* **Upstream stages.** A stage that reads another stage's columns lists them in ``input_columns``;
  its rule passes that stage's per-shard output (``--upstream NAME=PATH``) and ``read_rows`` joins
  it by ``row_id``.
* **Atomic output.** The Parquet output is written to a temporary file and renamed into place.
* **Expanding stages** (``expands = True``, e.g. shots: one video in, its clips out) give each input
  row a list of output rows, each with its own ``row_id`` and ``source_row_id``; a failed input row
  gives exactly one row holding the error. The journal keeps one record per input row; the output
  holds every input row's rows in input order, and output row ids must be unique.
* **Stats.** Each job writes what it did to a JSON file next to its output (``RunDir.stats``): rows
  reused from the journal / processed / failed, wall and setup time, and the stage's own counters
  (``Stage.stats``: model wait, preprocessing time, device, tokens, cost). Status, cost and the
  report read these files, never log text.

Three moments, as every stage of Cosmos-Curate and the like has them: ``setup()`` (load a model
once; called only when rows remain), processing, and ``close()`` (free the GPU, stop worker pools
and servers), which ``run_stage`` calls in ``finally`` whatever happened.

Write a stage as a ``Stage`` subclass: ``name``, ``version``, ``columns`` (output column → Arrow
type), ``params`` (everything that changes results: the journal fingerprint) and
``process(rows) -> {row_id: dict | Exception}``; ``batch_size`` rows arrive at a time. Settings come
from ``vidcap.config.stage_settings(name, params)`` (schema defaults filled in, values checked).
A stage that pipelines work across batches (background decoding while a GPU generates) overrides
``process_stream(rows)`` instead: an iterator of ``(row_id, dict | Exception)`` in any order, each
given row exactly once; the runner journals each pair as it arrives. Register the stage in
``vidcap/stages/__init__.py`` and give it a schema section in ``vidcap/schema/stages/<name>.yaml``.

Fault injection for tests: ``VIDCAP_FAULT_DELAY=<seconds>`` sleeps after each journaled row;
``VIDCAP_FAULT_ROW_DELAY=<seconds>`` sleeps after a row's result and before its journal write (a kill
then lands inside a row, whose result is lost and computed again on resume).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vidcap.errors import ErrorGroups, describe_error
from vidcap.io.locks import FileLock, describe_holder
from vidcap.io.run_dir import journal_lock
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.io.tables import write_json, write_table
from vidcap.media.timerange import RANGE_COLUMNS
from vidcap.stages.journal import Journal, json_default

log = logging.getLogger("vidcap.stages.base")

_INPUT_HASH = "_in"  # journal field: hash of the row's inputs (``input_hash``)
PROGRESS_SECONDS = 10.0


class Stage:
    """Base class of stages; see the module docstring for the contract."""

    name: str = ""
    version: str = "1"
    columns: dict[str, pa.DataType] = {}
    batch_size: int = 1
    input_columns: tuple[str, ...] = (ROW_ID, MEDIA_PATH)
    # Decodes the row's media: the runner adds the range columns (``start``/``end``) to its inputs.
    reads_media: bool = True
    # One-to-many stages (shots: a video -> its clips) return a list of row dicts per input row, each
    # with its own ``row_id`` and ``source_row_id``; see ``error_rows`` and the module docstring.
    expands: bool = False

    def error_rows(self, row_id: str, message: str) -> list[dict]:
        """Expanding stages: the one output row that stands for a failed input row."""
        raise NotImplementedError

    def __init__(self, params: dict | None = None):
        self.params = dict(params or {})
        self.stats: dict = {}   # the stage's own counters for the job's stats file (JSON values)

    @property
    def error_column(self) -> str:
        return f"{self.name}_error"

    def schema(self) -> pa.Schema:
        fields = [pa.field(ROW_ID, pa.string())]
        fields += [pa.field(k, t) for k, t in self.columns.items()]
        fields.append(pa.field(self.error_column, pa.string()))
        return pa.schema(fields)

    def wanted_columns(self) -> tuple[str, ...]:
        """The columns ``read_rows`` gives the stage: row id, media path, the range columns when it
        reads media, and its ``input_columns``."""
        ranges = RANGE_COLUMNS if self.reads_media else ()
        return tuple(dict.fromkeys((ROW_ID, MEDIA_PATH, *ranges, *self.input_columns)))

    def fingerprint(self) -> str:
        blob = json.dumps({"stage": self.name, "version": self.version, "params": self.params},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def setup(self) -> None:
        """Load what every row needs (a model); called once, only when there are rows to process."""

    def close(self) -> None:
        """Release what ``setup`` took (model, GPU memory, worker pools, servers). Called once at the
        end of every job, also after a failure or without ``setup``; must not raise."""

    def process(self, rows: list[dict]) -> dict[str, dict | BaseException]:
        raise NotImplementedError

    def process_stream(self, rows: list[dict]):
        """Yield ``(row_id, result)`` for every row; default: ``process`` on batches of ``batch_size``.

        A batch whose ``process`` raises fails each of its rows with that exception.
        """
        size = max(1, self.batch_size)
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            try:
                results = self.process(batch)
            except Exception as exc:
                log.exception("%s: batch of %d rows failed", self.name, len(batch))
                results = {r[ROW_ID]: exc for r in batch}
            extra = set(results) - {r[ROW_ID] for r in batch}
            if extra:
                raise RuntimeError(f"stage {self.name} returned results for ids it was not given: "
                                   f"{sorted(extra)[:3]}")
            for row in batch:
                yield row[ROW_ID], results.get(row[ROW_ID])


def read_rows(stage: Stage, shard_path: str | Path, upstream: dict[str, str | Path] | None = None) -> list[dict]:
    """The shard's rows with the columns ``stage.wanted_columns()`` names, from the shard and from upstream
    stage outputs (joined by ``row_id``; an upstream value replaces a shard value of the same name
    unless it is null, as in the merged table). An upstream table must hold every shard row once.
    """
    shard = pq.read_table(shard_path)
    wanted = list(stage.wanted_columns())
    rows = shard.select([c for c in wanted if c in shard.column_names]).to_pylist()
    ids = [r[ROW_ID] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{shard_path}: repeated row ids in a shard")
    for name, path in (upstream or {}).items():
        table = pq.read_table(path)
        cols = [c for c in wanted if c in table.column_names and c != ROW_ID]
        values = {r[ROW_ID]: r for r in table.select([ROW_ID, *cols]).to_pylist()}
        if len(values) != table.num_rows or set(values) != set(ids):
            raise ValueError(f"upstream {name} ({path}) does not hold this shard's rows exactly once")
        for row in rows:
            for c in cols:
                if values[row[ROW_ID]][c] is not None or c not in row:
                    row[c] = values[row[ROW_ID]][c]
    return rows


def input_hash(row: dict) -> str:
    """Short hash of a row's inputs: a journaled result is reused only while its inputs are unchanged."""
    blob = json.dumps(row, sort_keys=True, default=json_default)
    return hashlib.blake2b(blob.encode(), digest_size=6).hexdigest()


def run_stage(stage: Stage, shard_path: str | Path, out_path: str | Path, journal_path: str | Path,
              retry_failed: bool = False, upstream: dict[str, str | Path] | None = None,
              stats_path: str | Path | None = None) -> pa.Table:
    """Run ``stage`` over one shard under the contract above; returns the table written to ``out_path``.

    ``retry_failed``: rows journaled with an error are processed again.
    ``upstream``: stage name → that stage's output for this shard, for stages that read other stages'
    columns (e.g. tags read the caption); rows whose inputs changed since they were journaled rerun.
    ``stats_path``: where the job's stats go (JSON, written atomically after the output).
    ``stage.close()`` runs in ``finally``.
    """
    t0 = time.monotonic()
    started = time.time()
    lock = FileLock(journal_lock(journal_path), what=f"vidcap {stage.name} on {Path(shard_path).name}")
    lock.acquire(wait_s=None, on_wait=lambda h: log.warning(
        "%s: waiting: %s is held by %s", stage.name, lock.path, describe_holder(h or {})))
    try:
        return _run_locked(stage, shard_path, out_path, journal_path, retry_failed, upstream, stats_path, t0,
                           started)
    finally:
        lock.release()


def _run_locked(stage, shard_path, out_path, journal_path, retry_failed, upstream, stats_path, t0, started):
    rows = read_rows(stage, shard_path, upstream)
    ids = [r[ROW_ID] for r in rows]
    hashes = {r[ROW_ID]: input_hash(r) for r in rows}
    journal = Journal(journal_path, stage.fingerprint(), stage.name)
    done = journal.load()
    done = {k: v for k, v in done.items() if k in hashes and v.get(_INPUT_HASH) == hashes[k]}
    if retry_failed:
        done = {k: v for k, v in done.items() if not v.get(stage.error_column)}
    todo = [r for r in rows if r[ROW_ID] not in done]
    reused = len(done)
    log.info("%s: %s: %d rows, %d already in the journal, %d to process",
             stage.name, Path(shard_path).name, len(rows), reused, len(todo))
    delay = float(os.environ.get("VIDCAP_FAULT_DELAY", "0") or 0)
    row_delay = float(os.environ.get("VIDCAP_FAULT_ROW_DELAY", "0") or 0)
    setup_s = 0.0
    failed_now = 0
    journal.open()
    try:
        if todo:
            t_setup = time.monotonic()
            stage.setup()
            setup_s = time.monotonic() - t_setup
        progress = _Progress(stage.name, len(rows), reused,
                             sum(1 for v in done.values() if v.get(stage.error_column)))
        pending = {r[ROW_ID] for r in todo}
        for row_id, result in stage.process_stream(todo):
            if row_id not in pending:
                raise RuntimeError(f"stage {stage.name} gave a result for row {row_id!r} that was not "
                                   "pending (unknown or repeated)")
            pending.discard(row_id)
            rec = _record(stage, row_id, result)
            rec[_INPUT_HASH] = hashes[row_id]
            if row_delay:
                time.sleep(row_delay)
            journal.append(rec)
            done[row_id] = rec
            failed_now += bool(rec.get(stage.error_column))
            progress.update(bool(rec.get(stage.error_column)))
            if delay:
                time.sleep(delay)
        for row_id in [r[ROW_ID] for r in todo if r[ROW_ID] in pending]:
            rec = _record(stage, row_id, None)  # the stage skipped it: fail the row, keep the shard
            rec[_INPUT_HASH] = hashes[row_id]
            journal.append(rec)
            done[row_id] = rec
            failed_now += 1
            progress.update(True)
        progress.finish()
    finally:
        journal.close()
        try:
            stage.close()
        except Exception:
            log.exception("%s: close() failed", stage.name)
    table = _assemble(stage, ids, done)
    write_table(table, out_path)
    if stats_path:
        errors = ErrorGroups()
        for e in table.column(stage.error_column).to_pylist():
            errors.add(e)
        write_json(stats_path, {
            **stage.stats,   # the stage's own counters; the keys below are the runner's and win
            "stage": stage.name, "shard": Path(shard_path).stem, "fingerprint": stage.fingerprint(),
            "rows": len(rows), "output_rows": table.num_rows, "reused": reused, "processed": len(todo),
            "failed": errors.total(),
            "errors": errors.to_json(),
            "failed_processed": failed_now, "wall_s": round(time.monotonic() - t0, 4),
            "setup_s": round(setup_s, 4), "started": started, "finished": time.time(),
            "host": socket.gethostname(), "pid": os.getpid()})
    return table


def _record(stage: Stage, row_id: str, result) -> dict:
    rec: dict[str, Any] = {ROW_ID: row_id}
    if result is None:
        result = RuntimeError("stage returned no result for this row")
    if stage.expands:
        if isinstance(result, BaseException):
            result = stage.error_rows(row_id, describe_error(result))
        rows = []
        for r in result:
            unknown = set(r) - set(stage.columns) - {stage.error_column, ROW_ID}
            if unknown:
                raise RuntimeError(f"stage {stage.name} produced undeclared columns {sorted(unknown)}")
            rows.append({ROW_ID: r[ROW_ID], **{c: r.get(c) for c in stage.columns},
                         stage.error_column: r.get(stage.error_column) or None})
        if not rows:
            raise RuntimeError(f"stage {stage.name} gave no output row for input row {row_id!r}")
        rec["rows"] = rows
        rec[stage.error_column] = next((r[stage.error_column] for r in rows if r[stage.error_column]), None)
        return rec
    if isinstance(result, BaseException):
        rec.update({c: None for c in stage.columns})
        rec[stage.error_column] = describe_error(result)
        return rec
    unknown = set(result) - set(stage.columns) - {stage.error_column}
    if unknown:
        raise RuntimeError(f"stage {stage.name} produced undeclared columns {sorted(unknown)}")
    rec.update({c: result.get(c) for c in stage.columns})
    rec[stage.error_column] = result.get(stage.error_column) or None
    return rec


def _assemble(stage: Stage, ids: list[str], done: dict[str, dict]) -> pa.Table:
    missing = [i for i in ids if i not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} rows have no result (first {missing[0]})")
    schema = stage.schema()
    records = [done[i] for i in ids]
    if stage.expands:
        records = [r for rec in records for r in rec["rows"]]
        out_ids = [r[ROW_ID] for r in records]
        if len(set(out_ids)) != len(out_ids):
            raise RuntimeError(f"stage {stage.name}: output row ids are not unique")
    columns = {f.name: [r.get(f.name) for r in records] for f in schema}
    return pa.Table.from_pydict(columns, schema=schema)


class _Progress:
    """Log lines 'stage: done/total rows (failed), rate, ETA' at most every PROGRESS_SECONDS."""

    def __init__(self, name: str, total: int, done: int, failed: int):
        self.name, self.total, self.done, self.failed = name, total, done, failed
        self.start_done = done
        self.t0 = self.last = time.monotonic()

    def update(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            self._log(now)

    def _log(self, now: float) -> None:
        new = self.done - self.start_done
        if new == 0:
            log.info("%s: %d/%d rows (%d failed), all from the journal", self.name, self.done, self.total,
                     self.failed)
            return
        rate = new / max(now - self.t0, 1e-9)
        left = self.total - self.done
        eta = f", ETA {left / rate:.0f} s" if left else ""
        log.info("%s: %d/%d rows (%d failed), %.2f rows/s%s", self.name, self.done, self.total, self.failed,
                 rate, eta)

    def finish(self) -> None:
        self._log(time.monotonic())
