"""Dataset summary (vidcap.summary): counts checked against hand-computed ones on a hand-made table."""
from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from vidcap.io.tables import write_table
from vidcap.summary import summarize, summary_rows, write_summary


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "path": [f"v{i}.mp4" for i in range(6)],
        "row_id": [f"r{i}" for i in range(6)],
        "probe_error": ["", "file not found: a", "", "file not found: a", "cannot open", ""],
        "caption_error": [None, None, None, None, None, None],
        "objects": [["dog", "person"], ["dog"], [], None, ["cat", "dog"], ["person"]],
        "actions": [["run"], [], ["run", "sit"], None, ["sit"], ["jump"]],
        "caption_words": [10, 20, None, 30, 40, 0],
        "cmotion": ["static", "pan_left", "static", "", None, "pan_left+tilt_up"],
        "duration": [1.0, 2.0, None, 2.0, 3.0, None],
        "width": [1920, 1920, None, 640, 1920, 640],
        "height": [1080, 1080, None, 480, 1080, None],
        "caption_duplicate": [None, None, "r1", None, "r1", ""],
        "caption_frame_indices": [[0, 1], [0], [], None, [1], [2]],
    })


EXPECTED = {
    "rows": 6,
    "stages": {"probe": {"failed": 3, "top_errors": [["file not found: a", 2], ["cannot open", 1]],
                         "error_examples": {"file not found: a": ["file not found: a"],
                                            "cannot open": ["cannot open"]}},
               "caption": {"failed": 0, "top_errors": [], "error_examples": {}}},
    "tags": {"objects": [["dog", 3], ["person", 2], ["cat", 1]],
             "actions": [["run", 2], ["sit", 2], ["jump", 1]]},
    # values 10 20 30 40 0: p90 at position 0.9*4 = 3.6 -> 30 + 0.6*10 = 36; 10 bins of width 4 over 0..40
    "caption_words": {"count": 5, "mean": 20.0, "p50": 20.0, "p90": 36.0, "max": 40.0,
                      "histogram": [[0.0, 4.0, 1], [4.0, 8.0, 0], [8.0, 12.0, 1], [12.0, 16.0, 0],
                                    [16.0, 20.0, 0], [20.0, 24.0, 1], [24.0, 28.0, 0], [28.0, 32.0, 1],
                                    [32.0, 36.0, 0], [36.0, 40.0, 1]]},
    "cmotion": [["static", 2], ["pan_left", 1], ["pan_left+tilt_up", 1]],
    # values 1 2 2 3: p90 at 0.9*3 = 2.7 -> 2 + 0.7*1; bins of 0.2 over 1..3, 3.0 in the closed last bin
    "duration_s": {"count": 4, "mean": 2.0, "p50": 2.0, "p90": 2.7, "max": 3.0,
                   "histogram": [[1.0, 1.2, 1], [1.2, 1.4, 0], [1.4, 1.6, 0], [1.6, 1.8, 0], [1.8, 2.0, 0],
                                 [2.0, 2.2, 2], [2.2, 2.4, 0], [2.4, 2.6, 0], [2.6, 2.8, 0], [2.8, 3.0, 1]]},
    "resolution": [["1920x1080", 3], ["640x480", 1]],
    "duplicates": {"duplicated_captions": 2},
}


def test_summary_matches_hand_computed_counts():
    got = summarize(_table())
    assert got == EXPECTED
    assert "caption_frame_indices" not in got["tags"], "integer lists are not tags"


def test_top_k_and_explicit_tag_keys():
    got = summarize(_table(), top_k=1, tag_keys=["objects", "missing_key"])
    assert got["tags"] == {"objects": [["dog", 3]]}
    assert got["stages"]["probe"]["top_errors"] == [["file not found: a", 2]]
    assert got["resolution"] == [["1920x1080", 3]]
    assert len(got["cmotion"]) == 3, "every motion label is kept"


def test_sections_absent_without_columns_and_empty_numbers():
    got = summarize(pd.DataFrame({"path": ["a", "b"], "caption_words": [None, None]}))
    assert got == {"rows": 2, "stages": {},
                   "caption_words": {"count": 0, "mean": None, "p50": None, "p90": None, "max": None,
                                     "histogram": []}}
    one = summarize(pd.DataFrame({"caption_words": [7, 7]}))["caption_words"]
    assert one["histogram"] == [[7.0, 7.0, 2]] and one["p90"] == 7.0


@pytest.mark.parametrize("via", ["parquet", "csv"])
def test_same_summary_from_the_written_tables(tmp_path, via):
    df = _table()
    table = pa.Table.from_pandas(df, preserve_index=False)
    path = write_table(table, tmp_path / f"t.{via}")
    back = pd.read_parquet(path) if via == "parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)
    assert summarize(back) == EXPECTED


def test_long_form_csv_and_json(tmp_path):
    summary = summarize(_table())
    rows = summary_rows(summary)
    assert rows[0] == {"section": "rows", "key": "", "value": "", "count": 6}
    assert {"section": "stages", "key": "probe", "value": "", "count": 3} in rows
    assert {"section": "stages", "key": "probe", "value": "cannot open", "count": 1} in rows
    assert {"section": "tags", "key": "actions", "value": "sit", "count": 2} in rows
    assert {"section": "caption_words", "key": "p90", "value": "36", "count": ""} in rows
    assert {"section": "caption_words", "key": "histogram", "value": "36..40", "count": 1} in rows
    assert {"section": "cmotion", "key": "", "value": "pan_left+tilt_up", "count": 1} in rows
    assert {"section": "resolution", "key": "", "value": "640x480", "count": 1} in rows
    assert rows[-1] == {"section": "duplicates", "key": "duplicated_captions", "value": "", "count": 2}
    write_summary(summary, tmp_path / "s.json", tmp_path / "s.csv")
    assert json.loads((tmp_path / "s.json").read_text()) == EXPECTED
    csv = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False)
    assert list(csv.columns) == ["section", "key", "value", "count"] and len(csv) == len(rows)


def test_errors_are_grouped_by_class_with_three_examples():
    """20,000 missing files are one kind of failure, not 20,000 (paths and numbers stripped)."""
    errors = [f"file not found: /data/nonexistent/clip_{i:06d}.mp4" for i in range(20_000)]
    errors += ["truncated: header says 120 frames but the stream lasts 2.00 s (60 frames at 30 fps)",
               "truncated: header says 90 frames but the stream lasts 1.00 s (30 frames at 30 fps)", ""]
    s = summarize(pd.DataFrame({"path": ["x"] * len(errors), "probe_error": errors}))["stages"]["probe"]
    assert s["failed"] == 20_002
    assert s["top_errors"] == [["file not found: <path>", 20_000],
                               ["truncated: header says <n> frames but the stream lasts <n> s (<n> frames at <n> fps)", 2]]
    assert s["error_examples"]["file not found: <path>"] == errors[:3]
