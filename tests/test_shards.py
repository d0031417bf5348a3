import json

import pandas as pd
import pyarrow.parquet as pq

from vidcap.io.media_paths import resolve_media_path
from vidcap.io.shards import make_shards, row_ids, shard_names
from vidcap.io.tables import write_table


def test_shard_names_sort_and_count():
    assert shard_names(0, 10) == ["00000"]
    assert shard_names(25, 10) == ["00000", "00001", "00002"]
    assert len(shard_names(1_000_000, 7)) == 142858
    names = shard_names(250_000, 1)
    assert names == sorted(names) and len(names[0]) == 6


def test_row_ids_stable_and_distinct_for_duplicates():
    ids = row_ids(["a", "b", "a", "a"])
    assert len(set(ids)) == 4
    assert ids == row_ids(["a", "b", "a", "a"])
    # an insertion elsewhere does not change the id of an existing row
    assert row_ids(["z", "a", "b"])[1:] == ids[:2]


def test_relative_paths_resolve_against_base(tmp_path):
    assert resolve_media_path("x/y.mp4", "/data") == "/data/x/y.mp4"
    assert resolve_media_path("/abs/y.mp4", "/data") == "/abs/y.mp4"
    assert resolve_media_path("", "/data") == ""
    write_table(pd.DataFrame({"path": ["rel.mp4", "/abs.mp4", "rel.mp4"]}), tmp_path / "m" / "m.csv")
    make_shards(tmp_path / "m" / "m.csv", tmp_path / "s1", shard_size=2)
    shard = pq.read_table(tmp_path / "s1" / "00000.parquet").to_pandas()
    assert shard["_media_path"].tolist() == [str(tmp_path / "m" / "rel.mp4"), "/abs.mp4"]
    make_shards(tmp_path / "m" / "m.csv", tmp_path / "s2", shard_size=2, media_root="/media")
    shard = pq.read_table(tmp_path / "s2" / "00000.parquet").to_pandas()
    assert shard["_media_path"].tolist()[0] == "/media/rel.mp4"


def test_same_manifest_same_shards(tmp_path):
    df = pd.DataFrame({"path": [f"v{i % 7}.mp4" for i in range(23)], "text": [f"t{i}" for i in range(23)]})
    write_table(df, tmp_path / "m.csv")
    for out in ("a", "b"):
        make_shards(tmp_path / "m.csv", tmp_path / out, shard_size=5)
    info = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert info["rows"] == 23 and len(info["shards"]) == 5
    for name in info["shards"]:
        a = pq.read_table(tmp_path / "a" / f"{name}.parquet")
        assert a.equals(pq.read_table(tmp_path / "b" / f"{name}.parquet"))
    allrows = pd.concat(pq.read_table(tmp_path / "a" / f"{n}.parquet").to_pandas() for n in info["shards"])
    assert allrows["_row_index"].tolist() == list(range(23))
    assert allrows["row_id"].is_unique
    assert allrows["text"].tolist() == df["text"].tolist()
