"""The condition language of ``vidcap filter`` (``vidcap.filter.expr``): what it accepts, what it refuses
(never Python), and nulls; ``filter_results`` in batches with its per-term report."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vidcap.filter.expr import FilterError, parse
from vidcap.filter.run import filter_results

T = pa.table({"aesthetic": [5.0, 4.0, None, 6.0], "motion_flow": [1.0, 0.1, 2.0, 3],
              "cmotion": ["static", "unclassified", "pan_left", None], "n": [1, 2, 3, 4],
              "ok": [True, False, True, None]})


def kept(text: str) -> list[bool]:
    return parse(text).mask(T).to_pylist()


def test_the_language():
    assert kept("aesthetic >= 4.5 and motion_flow >= 0.5 and cmotion != 'unclassified'") == [True, False, False, False]
    assert kept("cmotion in ['static', 'pan_left'] or aesthetic is null") == [True, False, True, False]
    assert kept("cmotion not in ('static',)") == [False, True, True, False]
    assert kept("not (0.5 <= motion_flow < 2.5)") == [False, True, False, True]
    assert kept("n > -1 and n != 2 and ok == true") == [True, False, True, False]
    assert kept("4.5 < aesthetic") == [True, False, False, True]
    assert kept("cmotion is not null and (n == 1 or n == 3)") == [True, False, True, False]
    c = parse("aesthetic >= 4.5 and (motion_flow > 1 or n == 4)")
    assert [t.text for t in c.terms] == ["aesthetic >= 4.5", "(motion_flow > 1 or n == 4)"] or \
        [t.text for t in c.terms] == ["aesthetic >= 4.5", "motion_flow > 1 or n == 4"]
    assert c.columns == ("aesthetic", "motion_flow", "n")


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('echo hi')", "not a condition"),
    ("aesthetic.real > 1", "not a value"),
    ("aesthetic + 1 > 2", "not a value"),
    ("aesthetic > (lambda: 1)()", "not a value"),
    ("aesthetic is 3", "`is`"),
    ("cmotion in cmotion", "`in`"),
    ("aesthetic >", "bad syntax"),
    ("aesthetic", "not a condition"),
    ("[x for x in n] == 1", "not a value"),
])
def test_anything_else_is_refused_with_what_is_allowed(text, message):
    with pytest.raises(FilterError, match="allowed:") as err:
        parse(text)
    assert message in str(err.value)


def test_unknown_columns_and_mismatched_types_are_named():
    with pytest.raises(FilterError, match=r"unknown column\(s\) 'aesthetics'.*aesthetic, motion_flow"):
        parse("aesthetics > 1").check_columns(T.column_names)
    with pytest.raises(FilterError, match="cannot compare column 'cmotion' \\(string\\) with 3"):
        parse("cmotion > 3").mask(T)


def test_filter_in_batches_with_a_report(tmp_path):
    rows = 1000
    src = pa.table({"path": [f"v/{i}.mp4" for i in range(rows)], "score": [i % 10 for i in range(rows)],
                    "label": ["a" if i % 3 else "b" for i in range(rows)]})
    pq.write_table(src, tmp_path / "in.parquet")
    report = filter_results(tmp_path / "in.parquet", tmp_path / "out.parquet", "score >= 5 and label == 'a'",
                            media_root=str(tmp_path), batch_size=64)
    out = pq.read_table(tmp_path / "out.parquet")
    want = [i for i in range(rows) if i % 10 >= 5 and i % 3]
    assert out.num_rows == report["kept"] == len(want) and report["rows"] == rows
    assert out.column("path").to_pylist() == [str(tmp_path / f"v/{i}.mp4") for i in want]
    assert [t["removed"] for t in report["terms"]] == [500, 500 - len(want)]
    assert report["terms"][1]["fails"] == sum(1 for i in range(rows) if not i % 3)
    assert json.loads((tmp_path / "out.filter.json").read_text())["kept"] == len(want)
    csv = filter_results(tmp_path / "in.parquet", tmp_path / "out.csv", "score == 9", batch_size=64)
    assert (tmp_path / "out.csv").read_text().count("\n") == csv["kept"] + 1 == 101
