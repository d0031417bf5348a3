"""Through the workflow: `shard_size: auto` sizes the plan by the manifest, and a folder of Parquet
files is a manifest. Real Snakemake runs."""
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import read_result, run_snakemake, small_clip_manifest, write_config

pytestmark = pytest.mark.e2e


def test_auto_shard_size_keeps_the_plan_small(tmp_path):
    n = 2_000_001                                     # just over 2 M rows: 2000 rows per shard, 1001 shards
    paths = pa.array([f"v/{i:08d}.mp4" for i in range(n)])
    pq.write_table(pa.table({"path": paths}), tmp_path / "m.parquet", row_group_size=1 << 18)
    cfg = write_config(tmp_path, name="big", manifest=str(tmp_path / "m.parquet"), report={"enabled": False},
                       stages={"motion": {"enabled": False}})
    plan = run_snakemake(tmp_path, cfg, "-n", "-q", "rules").stdout
    counts = dict(line.split() for line in plan.splitlines() if line.strip() and line.split()[0] in ("probe", "shard"))
    assert counts == {"probe": "1001", "shard": "1"}, plan
    info_path = tmp_path / "results" / "big" / "shards" / "manifest.json"
    run_snakemake(tmp_path, cfg, str(info_path.relative_to(tmp_path)))   # the shard job alone
    info = json.loads(info_path.read_text())
    assert info["rows"] == n and info["shard_size"] == 2000 and len(info["shards"]) == 1001
    last = pq.read_table(tmp_path / "results" / "big" / "shards" / f"{info['shards'][-1]}.parquet")
    assert last.num_rows == 1 and last.column("_row_index").to_pylist() == [n - 1]


def test_a_folder_of_parquet_files_is_a_manifest(tmp_path):
    csv = small_clip_manifest(tmp_path / "media", 5)
    df = pd.read_csv(csv, dtype=str)
    folder = tmp_path / "media" / "parts"
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(df.iloc[:3], preserve_index=False), folder / "part-0.parquet")
    pq.write_table(pa.Table.from_pandas(df.iloc[3:], preserve_index=False), folder / "part-1.parquet")
    cfg = write_config(tmp_path, name="dir", manifest=str(folder), media_root=str(tmp_path / "media"),
                       shard_size=2, report={"enabled": False}, stages={"motion": {"enabled": False}})
    run_snakemake(tmp_path, cfg)
    out = read_result(tmp_path / "results" / "dir.csv")
    assert out["path"].tolist() == df["path"].tolist() and (out["probe_error"] == "").all()
