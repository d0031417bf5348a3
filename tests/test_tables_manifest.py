import subprocess
import sys

import pandas as pd
import pytest

from vidcap.errors import TableError
from vidcap.io.manifest import difference, merge, scan
from vidcap.io.table_batches import count_manifest_rows
from vidcap.io.tables import read_table, write_table

AWKWARD = ['plain', 'has,comma', 'has "quotes"', 'two\nlines', 'ünïcödé 字幕 🎬', '007', 'NA', '', ' padded ']


def test_csv_roundtrip_keeps_values_verbatim(tmp_path):
    df = pd.DataFrame({"path": [f"v{i}.mp4" for i in range(len(AWKWARD))], "note": AWKWARD})
    write_table(df, tmp_path / "m.csv")
    back = read_table(tmp_path / "m.csv")
    assert back["note"].tolist() == AWKWARD
    write_table(back, tmp_path / "m.parquet")
    assert read_table(tmp_path / "m.parquet")["note"].tolist() == AWKWARD
    assert count_manifest_rows(tmp_path / "m.csv") == len(AWKWARD) == count_manifest_rows(tmp_path / "m.parquet")


def test_missing_path_column_is_a_clear_error(tmp_path):
    (tmp_path / "m.csv").write_text("file,text\na.mp4,x\n")
    with pytest.raises(TableError, match="missing required column.*path.*columns found: file, text"):
        read_table(tmp_path / "m.csv")
    with pytest.raises(TableError, match="unknown table format"):
        read_table(tmp_path / "m.txt")
    with pytest.raises(TableError, match="not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TableError, match="empty table"):
        read_table(tmp_path / "empty.csv")


def test_scan_finds_media_recursively_sorted(tmp_path):
    for rel in ["b/x.mp4", "a/y.MKV", "a/deep/z.webm", "a/img.png", "a/notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    videos = scan(tmp_path, "video")
    assert videos["relpath"].tolist() == ["a/deep/z.webm", "a/y.MKV", "b/x.mp4"]
    assert videos["id"].tolist() == ["z", "y", "x"]
    assert all(p.startswith(str(tmp_path)) for p in videos["path"])
    assert scan(tmp_path, "image")["relpath"].tolist() == ["a/img.png"]
    assert len(scan(tmp_path, "all")) == 4


def test_merge_and_diff_keyed_by_path(tmp_path):
    write_table(pd.DataFrame({"path": ["a", "b"], "text": ["A", "B,1"]}), tmp_path / "p1.csv")
    write_table(pd.DataFrame({"path": ["b", "c"], "text": ["B2", "C"], "extra": ["x", "y"]}), tmp_path / "p2.parquet")
    merged, dropped = merge([tmp_path / "p1.csv", tmp_path / "p2.parquet"])
    assert merged["path"].tolist() == ["a", "b", "c"] and dropped == 1
    assert merged["text"].tolist() == ["A", "B,1", "C"]
    last, _ = merge([tmp_path / "p1.csv", tmp_path / "p2.parquet"], duplicates="keep-last")
    assert last.set_index("path").loc["b", "text"] == "B2"
    everything, dropped = merge([tmp_path / "p1.csv", tmp_path / "p2.parquet"], duplicates="keep-all")
    assert len(everything) == 4 and dropped == 0
    with pytest.raises(TableError, match="repeated path"):
        merge([tmp_path / "p1.csv", tmp_path / "p2.parquet"], duplicates="error")
    rest = difference(tmp_path / "p1.csv", tmp_path / "p2.parquet")
    assert rest["path"].tolist() == ["a"]


def test_cli_manifest_merge_diff(tmp_path):
    (tmp_path / "media" / "s").mkdir(parents=True)
    for name in ["one.mp4", "s/two.avi"]:
        (tmp_path / "media" / name).write_bytes(b"x")
    vc = [sys.executable, "-m", "vidcap"]
    subprocess.run(vc + ["manifest", str(tmp_path / "media"), "-o", str(tmp_path / "all.csv")], check=True)
    assert read_table(tmp_path / "all.csv")["relpath"].tolist() == ["one.mp4", "s/two.avi"]
    write_table(read_table(tmp_path / "all.csv").iloc[:1], tmp_path / "done.parquet")
    subprocess.run(vc + ["diff", str(tmp_path / "all.csv"), str(tmp_path / "done.parquet"),
                         "-o", str(tmp_path / "todo.csv")], check=True)
    assert read_table(tmp_path / "todo.csv")["relpath"].tolist() == ["s/two.avi"]
    subprocess.run(vc + ["merge", str(tmp_path / "done.parquet"), str(tmp_path / "todo.csv"),
                         "-o", str(tmp_path / "back.csv")], check=True)
    assert read_table(tmp_path / "back.csv").equals(read_table(tmp_path / "all.csv"))
    bad = subprocess.run(vc + ["diff", str(tmp_path / "nope.csv"), str(tmp_path / "all.csv"), "-o",
                               str(tmp_path / "x.csv")], capture_output=True, text=True)
    assert bad.returncode == 2 and "table not found" in bad.stderr and "Traceback" not in bad.stderr


def test_list_cells_are_json_in_csv(tmp_path):
    import pyarrow as pa

    write_table(pa.table({"path": ["a", "b"], "idx": [[0, 8, 15], None]}), tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == 'path,idx\na,"[0, 8, 15]"\nb,\n'
