"""Motion stage: camera-motion label per row (``vidcap.motion.classify`` does the work).

Columns: ``cmotion`` (``+``-joined sorted pan/tilt/zoom labels, ``static`` or ``unclassified``),
``motion_pan``, ``motion_tilt`` (net camera motion, fractions of the shorter side), ``motion_zoom``
(ln of the total magnification), ``motion_fit`` (0..1 fit quality), ``motion_reason`` (why unclassified)
and ``motion_error`` (unreadable rows). Images are one frame: ``unclassified``, reason
``image (one frame)``; videos of fewer than 3 distinct frames: ``unclassified``, ``too few frames``.
A row with ``start`` / ``end`` (a clip of a longer file) is classified from frames inside that range only.
"""
from __future__ import annotations

import pyarrow as pa

from vidcap.config import stage_settings
from vidcap.io.shards import MEDIA_PATH
from vidcap.media.files import check_file, media_type
from vidcap.media.timerange import row_range
from vidcap.motion import classify as motion
from vidcap.stages.rows import RowStage


class MotionStage(RowStage):
    name = "motion"
    version = "4"
    overlaps_url_rows = True   # URL rows run several at a time (``vidcap.stages.rows``)
    columns = {
        "cmotion": pa.string(),
        "motion_pan": pa.float64(),
        "motion_tilt": pa.float64(),
        "motion_zoom": pa.float64(),
        "motion_fit": pa.float64(),
        "motion_reason": pa.string(),
    }

    def __init__(self, params=None):
        s = stage_settings(self.name, params)
        # stage_settings leaves out workflow keys (append_to_text); _knobs fills the classifier's defaults
        super().__init__(motion._knobs(s))

    def process_row(self, row: dict) -> dict:
        path = row[MEDIA_PATH]
        check_file(path)
        if media_type(path) == "image":
            return {"cmotion": "unclassified", "motion_pan": 0.0, "motion_tilt": 0.0, "motion_zoom": 0.0,
                    "motion_fit": 0.0, "motion_reason": "image (one frame)"}
        return motion.classify_path(path, time_range=row_range(row), **self.params)
