"""The stage contract, enforced by run_stage: exactly once, keyed by id, errors per row, journal."""
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vidcap.io.shards import make_shards
from vidcap.io.tables import write_table
from vidcap.stages.base import Stage, run_stage
from vidcap.stages.journal import Journal
from vidcap.stages.rows import RowStage


class Length(RowStage):
    """Counts the rows it processes; fails rows whose path contains 'bad'."""

    name = "length"
    columns = {"n": pa.int64()}

    def __init__(self, params=None):
        super().__init__(params)
        self.seen = []

    def process_row(self, row):
        self.seen.append(row["row_id"])
        if "bad" in row["_media_path"]:
            raise ValueError("bad row")
        return {"n": len(row["_media_path"])}


class Reversed(Stage):
    """Returns results in reverse order and drops one row: ids, not positions, must decide."""

    name = "rev"
    columns = {"p": pa.string()}
    batch_size = 4

    def process(self, rows):
        out = {r["row_id"]: {"p": r["_media_path"]} for r in reversed(rows)}
        out.pop(rows[0]["row_id"])
        return out


@pytest.fixture
def shard(tmp_path):
    paths = [f"/v/{i}.mp4" if i % 4 else f"/v/bad{i}.mp4" for i in range(10)]
    write_table(pd.DataFrame({"path": paths}), tmp_path / "m.csv")
    make_shards(tmp_path / "m.csv", tmp_path / "shards", shard_size=100)
    return tmp_path / "shards" / "00000.parquet"


def test_rows_exactly_once_errors_per_row(tmp_path, shard):
    stage = Length()
    table = run_stage(stage, shard, tmp_path / "out.parquet", tmp_path / "j.jsonl").to_pandas()
    src = pq.read_table(shard).to_pandas()
    assert table["row_id"].tolist() == src["row_id"].tolist()
    bad = src["_media_path"].str.contains("bad")
    assert (table.loc[bad, "length_error"] == "ValueError: bad row").all()
    assert table.loc[bad, "n"].isna().all()
    assert table.loc[~bad, "length_error"].isna().all()
    assert (table.loc[~bad, "n"] == src.loc[~bad, "_media_path"].str.len()).all()
    assert pq.read_table(tmp_path / "out.parquet").to_pandas().equals(table)


def test_results_keyed_by_id_and_missing_ids_fail_their_row(tmp_path, shard):
    table = run_stage(Reversed(), shard, tmp_path / "o.parquet", tmp_path / "j.jsonl").to_pandas()
    src = pq.read_table(shard).to_pandas()
    ok = table["rev_error"].isna()
    assert (table.loc[ok, "p"] == src.loc[ok, "_media_path"]).all()
    assert (~ok).sum() == 3  # first row of each batch of 4 (10 rows -> 3 batches)
    assert set(table.loc[~ok, "rev_error"]) == {"RuntimeError: stage returned no result for this row"}


def test_resume_processes_only_unjournaled_rows(tmp_path, shard):
    first = Length()
    run_stage(first, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl")
    lines = (tmp_path / "j.jsonl").read_text().splitlines()
    # simulate a kill after 6 rows, the 7th half written
    (tmp_path / "j.jsonl").write_text("\n".join(lines[:7]) + "\n" + lines[7][:10])
    (tmp_path / "o.parquet").unlink()
    second = Length()
    table = run_stage(second, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl")
    assert second.seen == first.seen[6:]
    assert table.num_rows == 10
    ids = []
    for line in (tmp_path / "j.jsonl").read_text().splitlines()[1:]:
        try:
            ids.append(json.loads(line)["row_id"])
        except json.JSONDecodeError:
            assert line == lines[7][:10]  # the torn line stays, ignored
    assert len(ids) == 10
    assert sorted(set(ids)) == sorted(ids)


def test_retry_failed_and_changed_settings(tmp_path, shard):
    run_stage(Length(), shard, tmp_path / "o.parquet", tmp_path / "j.jsonl")
    again = Length()
    run_stage(again, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl")
    assert again.seen == []
    retry = Length()
    run_stage(retry, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl", retry_failed=True)
    assert len(retry.seen) == 3
    changed = Length({"threshold": 2})
    run_stage(changed, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl")
    assert len(changed.seen) == 10
    assert (tmp_path / "j.jsonl.stale").exists()


def test_journal_ignores_other_fingerprint(tmp_path):
    j = Journal(tmp_path / "j.jsonl", "abc", "s")
    j.open()
    j.append({"row_id": "r1", "x": 1})
    j.close()
    assert set(Journal(tmp_path / "j.jsonl", "abc", "s").load()) == {"r1"}
    assert Journal(tmp_path / "j.jsonl", "xyz", "s").load() == {}


class Shout(RowStage):
    """Reads an upstream stage's ``text`` column."""

    name = "shout"
    columns = {"loud": pa.string()}
    input_columns = ("row_id", "_media_path", "text")

    def __init__(self, params=None):
        super().__init__(params)
        self.seen = []

    def process_row(self, row):
        self.seen.append(row["row_id"])
        return {"loud": (row["text"] or "").upper()}


def test_upstream_columns_joined_by_id_and_changed_inputs_rerun(tmp_path, shard):
    src = pq.read_table(shard).to_pandas()
    up = pa.table({"row_id": list(reversed(src["row_id"])), "text": [f"t{i}" for i in range(10)]})
    pq.write_table(up, tmp_path / "up.parquet")
    first = Shout()
    out = run_stage(first, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl",
                    upstream={"caption": tmp_path / "up.parquet"}).to_pandas()
    want = dict(zip(up.column("row_id").to_pylist(), up.column("text").to_pylist()))
    assert out["loud"].tolist() == [want[i].upper() for i in src["row_id"]]
    texts = up.column("text").to_pylist()
    texts[3] = "changed"
    pq.write_table(up.set_column(1, "text", pa.array(texts)), tmp_path / "up.parquet")
    second = Shout()
    out = run_stage(second, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl",
                    upstream={"caption": tmp_path / "up.parquet"}).to_pandas()
    assert second.seen == [up.column("row_id")[3].as_py()]
    assert "CHANGED" in out["loud"].tolist()
    pq.write_table(up.slice(0, 9), tmp_path / "short.parquet")
    with pytest.raises(ValueError, match="exactly once"):
        run_stage(Shout(), shard, tmp_path / "o2.parquet", tmp_path / "j2.jsonl",
                  upstream={"caption": tmp_path / "short.parquet"})
