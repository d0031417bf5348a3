"""Scores stage: the columns a data team filters a training set on (``docs/scores.md``).

CPU columns (``vidcap.scores.measure``): ``motion_flow``, ``motion_mv``, ``laplacian_var``, ``brightness``,
``dark_share``, ``overexposed_share``, ``still``. Model columns, each switched on in the config and
null when off (``vidcap.scores.models``): ``aesthetic`` (LAION's predictor on CLIP image embeddings),
``clip_match`` (CLIP cosine of the row's text and its frames), ``text_area`` (share of the frame covered
by OCR text boxes); with ``near_duplicates`` on, ``clip_embedding`` (the clip's CLIP image embedding, which
the merge turns into ``near_duplicate_of``, ``vidcap.merge.near_dups``). One decoding pass per row (``vidcap.scores.decode``), inside the row's
``start`` / ``end`` range; a row that cannot be read fails in ``scores_error``.
"""
from __future__ import annotations

import time

import pyarrow as pa

from vidcap.config import stage_settings
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.media.files import check_file
from vidcap.media.timerange import row_range
from vidcap.scores import decode, measure
from vidcap.scores.models import ModelScores
from vidcap.scores.plan import EMBEDDING
from vidcap.stages.rows import RowStage

MODEL_COLUMNS = ("aesthetic", "clip_match", "text_area")


def model_offsets(n: int) -> list[int]:
    """First, middle and last frame of the range (Open-Sora's aesthetic frames)."""
    return sorted({0, n // 2, n - 1})


class ScoresStage(RowStage):
    name = "scores"
    version = "1"
    columns = {
        "motion_flow": pa.float64(),
        "motion_mv": pa.float64(),
        "laplacian_var": pa.float64(),
        "brightness": pa.float64(),
        "dark_share": pa.float64(),
        "overexposed_share": pa.float64(),
        "still": pa.string(),
        "aesthetic": pa.float64(),
        "clip_match": pa.float64(),
        "text_area": pa.float64(),
    }

    def __init__(self, params=None):
        super().__init__(stage_settings(self.name, params))
        text = self.params["caption_match"]["text_column"] if self.params["caption_match"]["enabled"] else None
        self.text_column = text
        self.input_columns = (ROW_ID, MEDIA_PATH, *([text] if text else []))
        if self.params["near_duplicates"]["enabled"]:
            self.columns = {**self.columns, EMBEDDING: pa.list_(pa.float32())}
        self.models = None
        self.stats = {"decode_s": 0.0, "cpu_scores_s": 0.0, "model_s": 0.0}

    def _models_on(self) -> bool:
        p = self.params
        return bool(p["aesthetic"]["enabled"] or p["caption_match"]["enabled"] or p["ocr"]["enabled"]
                    or p["near_duplicates"]["enabled"])

    def setup(self) -> None:
        if self._models_on():

            self.models = ModelScores(self.params)

    def close(self) -> None:
        self.models = None

    def process_row(self, row: dict) -> dict:
        path = check_file(row[MEDIA_PATH])
        p = self.params
        t0 = time.monotonic()
        offsets: list[tuple[int, int, int]] = []

        def pick(n: int, fps: float) -> list[int]:
            offsets[:] = measure.pair_offsets(n, fps, int(p["pairs"]), float(p["pair_step"]))
            return sorted({i for pair in offsets for i in pair} or {0})

        scan = decode.scan(path, row_range(row), pick, bool(p["motion_vectors"]),
                           model_offsets if self.models else None)
        t1 = time.monotonic()
        out = measure.scores(scan, offsets, p)
        t2 = time.monotonic()
        out.update(dict.fromkeys(MODEL_COLUMNS))
        if self.models:
            frames = [scan.rgb[i] for i in sorted(scan.rgb)]
            out.update(self.models.score(frames, row.get(self.text_column) if self.text_column else None))
        self.stats["decode_s"] += t1 - t0
        self.stats["cpu_scores_s"] += t2 - t1
        self.stats["model_s"] += time.monotonic() - t2
        return out
