"""Shots stage: every video becomes its clips (one output row per shot), or one row with its error.

An expanding stage (``Stage.expands``): for each input row ``vidcap.shots.detect.clip_rows`` gives the clips
(cut detection, min/max length, stride splitting, a ``start``/``end`` given in the manifest kept or
searched) — a row that cannot be cut gives exactly one row with ``shots_error``. Output row ids are
``clip_id`` (from the source row id and the frame range); ``source_row_id`` links a clip to its video.
With ``export.enabled`` each clip is also written as a file (``vidcap.shots.clips``; stream copy or
re-encode, atomically) and its path and first real frame recorded.

The workflow (``stages.shots.enabled``) runs this stage alone and writes the clip table
``results/<name>.clips.parquet`` (``vidcap gather --clips``): the manifest's columns, ``start``/``end``
set to each clip's range, and the clip columns. That table is the manifest of the second step, whose
stages sample only inside each row's range (README "From raw videos to clips"; ``vidcap run`` does
both steps).
"""
from __future__ import annotations

import pyarrow as pa

from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.shots.clips import export_clips
from vidcap.shots.detect import clip_row_id, clip_rows, shot_settings
from vidcap.stages.rows import RowStage

CLIP_COLUMNS = {
    "source_row_id": pa.string(),
    "clip_index": pa.int64(),
    "start_s": pa.float64(),
    "end_s": pa.float64(),
    "start_frame": pa.int64(),
    "end_frame": pa.int64(),
    "clip_frames": pa.int64(),
    "fps": pa.float64(),
    "clip_begins": pa.string(),
    "clip_ends": pa.string(),
}
EXPORT_COLUMNS = {"clip_path": pa.string(), "clip_actual_start_frame": pa.int64(),
                  "clip_actual_end_frame": pa.int64(), "clip_export_error": pa.string()}


class ShotsStage(RowStage):
    name = "shots"
    version = "1"
    expands = True

    def __init__(self, params: dict | None = None):
        s = shot_settings(params)
        self.settings = s
        self.export = dict(s["export"])
        self.columns = dict(CLIP_COLUMNS)
        if self.export["enabled"]:
            self.columns.update(EXPORT_COLUMNS)
        # the export folder does not change which clips there are or their ranges
        result = {k: v for k, v in s.items() if k not in ("decode", "export")}
        result["export"] = {k: v for k, v in self.export.items() if k != "dir"}
        result["decode_skip"] = s["decode"]["skip"]
        result["decode_shrink"] = s["decode"]["shrink"]  # moves some boundaries by a frame or two
        super().__init__(result)

    def error_rows(self, row_id: str, message: str) -> list[dict]:
        return [{ROW_ID: clip_row_id(row_id, None, None), "source_row_id": row_id, self.error_column: message}]

    def process_row(self, row: dict) -> list[dict]:
        out = []
        for clip in clip_rows(row, self.settings, checked=True):
            out.append({ROW_ID: clip["clip_id"], self.error_column: clip.get("shots_error"),
                        **{c: clip.get(c) for c in CLIP_COLUMNS}})
        if self.export["enabled"]:
            self._export(row, out)
        return out

    def _export(self, row: dict, clips: list[dict]) -> None:
        todo = [(c[ROW_ID], c["start_frame"], c["end_frame"]) for c in clips if not c[self.error_column]]
        if not todo or not self.export.get("dir"):
            return
        results = {r.clip_id: r for r in export_clips(row[MEDIA_PATH], todo, self.export["dir"], self.export["mode"],
                                                      crf=self.export["crf"], preset=self.export["preset"])}
        for c in clips:
            r = results.get(c[ROW_ID])
            if r is not None:
                c.update(clip_path=r.path, clip_actual_start_frame=r.actual_start_frame,
                         clip_actual_end_frame=r.actual_end_frame, clip_export_error=r.error)
