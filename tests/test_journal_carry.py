"""Journals follow their rows after a manifest edit, read from the shards folder one shard at a time
and moved through bounded on-disk partitions."""
import json

import pandas as pd

from vidcap.io.shards import make_shards
from vidcap.stages import journal
from vidcap.stages.journal import carry_journals, read_journal


def _journal_everything(shards, root, fp="F"):
    info = json.loads((shards / "manifest.json").read_text())
    import pyarrow.parquet as pq

    folder = root / "probe"
    folder.mkdir(parents=True, exist_ok=True)
    for name in info["shards"]:
        t = pq.read_table(shards / f"{name}.parquet").to_pandas()
        lines = [json.dumps({"stage": "probe", "fingerprint": fp})]
        lines += [json.dumps({"row_id": r, "w": p}) for r, p in zip(t["row_id"], t["path"])]
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")


def test_journals_follow_rows_after_an_edit(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "PARTITIONS", 4)
    paths = [f"v{i % 13}.mp4" for i in range(60)]          # repeated paths: ids by occurrence
    pd.DataFrame({"path": paths}).to_csv(tmp_path / "m.csv", index=False)
    make_shards(tmp_path / "m.csv", tmp_path / "s", 7)
    _journal_everything(tmp_path / "s", tmp_path / "journal")
    before = {f.name: f.stat().st_mtime_ns for f in (tmp_path / "journal" / "probe").iterdir()}
    assert carry_journals(tmp_path / "journal", tmp_path / "s") == {}, "nothing moved: nothing rewritten"
    assert {f.name: f.stat().st_mtime_ns for f in (tmp_path / "journal" / "probe").iterdir()} == before

    edited = paths[1:40] + ["new.mp4"]                      # first row gone, tail gone, one row added
    pd.DataFrame({"path": edited}).to_csv(tmp_path / "m.csv", index=False)
    make_shards(tmp_path / "m.csv", tmp_path / "s", 7)
    moved = carry_journals(tmp_path / "journal", tmp_path / "s")
    assert moved["probe"] > 0
    import pyarrow.parquet as pq

    info = json.loads((tmp_path / "s" / "manifest.json").read_text())
    journaled = 0
    for name in info["shards"]:
        t = pq.read_table(tmp_path / "s" / f"{name}.parquet").to_pandas()
        path = tmp_path / "journal" / "probe" / f"{name}.jsonl"
        header, recs = read_journal(path) if path.exists() else ({}, {})
        assert set(recs) <= set(t["row_id"]), name
        for rid, p in zip(t["row_id"], t["path"]):
            if p != "new.mp4":
                assert recs[rid]["w"] == p, "every kept row's record, in its new shard"
        journaled += len(recs)
        assert not header or header["fingerprint"] == "F"
    assert journaled == 39
    names = {f.name for f in (tmp_path / "journal" / "probe").iterdir()}
    assert names == {f"{n}.jsonl" for n in info["shards"]}, "old shards' journals gone, no spill left"
