"""``RowStage``: a stage written one row at a time (``process_row``), the shape of most media stages.

The stage contract is ``vidcap.stages.base``'s; this class adds only how rows are handed to
``process_row`` (one at a time, or several at once for rows read from an object store).
"""
from __future__ import annotations

import concurrent.futures as cf
from collections import deque

from vidcap.io import remote
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.stages.base import Stage


class RowStage(Stage):
    """A stage that handles one row at a time with ``process_row(row) -> dict`` (a list of dicts for an
    ``expands`` stage; raise on failure).

    ``overlaps_url_rows``: the stage's ``process_row`` is thread-safe, so rows whose media is a URL run
    up to ``remote.ROWS_IN_FLIGHT`` at a time in threads of the job (one row's waits on the object
    store overlap the others' decoding; FFmpeg decodes outside Python's lock, so they may also share
    the job's cores); results come back in row order. Rows of local files run one at a time."""

    overlaps_url_rows: bool = False

    def process_stream(self, rows):
        size = remote.ROWS_IN_FLIGHT if self.overlaps_url_rows else 1
        if size <= 1 or not any(remote.is_url(r.get(MEDIA_PATH)) for r in rows):
            yield from super().process_stream(rows)
            return
        pool = cf.ThreadPoolExecutor(size, thread_name_prefix=f"vidcap-{self.name}")
        try:
            window: deque = deque()
            for row in rows:
                window.append((row[ROW_ID], pool.submit(self._one, row)))
                if len(window) >= size:
                    row_id, future = window.popleft()
                    yield row_id, future.result()
            while window:
                row_id, future = window.popleft()
                yield row_id, future.result()
        finally:   # stopped early (an interrupt, a failed job): start no other row
            pool.shutdown(wait=False, cancel_futures=True)

    def _one(self, row: dict):
        """``process_row(row)``, or the exception it raised."""
        try:
            return self.process_row(row)
        except Exception as exc:  # noqa: BLE001 - the contract: a row's failure stays in its row
            return exc

    def process(self, rows):
        return {row[ROW_ID]: self._one(row) for row in rows}

    def process_row(self, row: dict) -> dict | list[dict]:
        raise NotImplementedError
