"""The streaming merge (``vidcap.gather`` with ``vidcap.merge``): the Parquet part dataset holds what the
single-file tables hold, readable by pandas and pyarrow.dataset, one schema for every part, rows in
manifest order once each, ``caption_duplicate`` and the summary as the whole-table computation gives;
memory stays bounded by a shard where the whole-table merge it replaced does not fit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from vidcap.dev.synthetic_run import STAGES, make_synthetic_run
from vidcap.errors import GatherError
from vidcap.gather import gather, mark_duplicates
from vidcap.io.results import iter_result_batches
from vidcap.io.run_tables import read_stage_tables
from vidcap.io.shards import INTERNAL, ROW_ID, ROW_INDEX
from vidcap.summary import summarize

REPO = Path(__file__).resolve().parents[1]


def reference_gather(run, stages) -> pd.DataFrame:
    """The merge as it was before streaming (main at 3cf03ce): every shard and stage table in one
    pandas frame (without its finishing steps)."""
    names = run.shard_names()
    base = read_stage_tables([run.shard(n) for n in names])
    merged = base
    for stage in stages:
        part = read_stage_tables([run.output(stage, n) for n in names])
        clash = [c for c in part.columns if c != ROW_ID and c in merged.columns]
        merged = merged.rename(columns={c: f"{c}\x00old" for c in clash})
        merged = merged.merge(part, on=ROW_ID, how="left", validate="one_to_one", sort=False)
        for c in clash:
            old, new = merged.pop(f"{c}\x00old"), merged[c]
            merged[c] = new.where(new.notna(), old.astype(new.dtype))
    merged = merged.sort_values(ROW_INDEX, kind="stable").reset_index(drop=True)
    return merged[[c for c in merged.columns if c not in INTERNAL[1:]]]


@pytest.fixture(scope="module")
def merged_run(tmp_path_factory):
    run = make_synthetic_run(tmp_path_factory.mktemp("syn"), 3000, 500)
    rows = gather(run, list(STAGES), [run.table("csv"), run.table("parquet")], duplicates_of="text",
                  summary_json=run.summary_json, summary_csv=run.summary_csv)
    assert rows == 3000
    return run


def test_parts_hold_the_single_file_table_for_pandas_and_pyarrow(merged_run):
    run = merged_run
    parts = sorted((run.root / "table").glob("part-*.parquet"))
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(6)]
    schemas = {pq.read_schema(p) for p in parts}
    assert len(schemas) == 1, "one schema for every part (shard 00001's fps is all null)"
    assert next(iter(schemas)).field("fps").type == pa.float64()
    single = pd.read_parquet(run.table("parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(run.root / "table"), single)
    pd.testing.assert_frame_equal(ds.dataset(run.root / "table", format="parquet").to_table().to_pandas(), single)
    streamed = pa.Table.from_batches(list(iter_result_batches(run.root, batch_size=700))).to_pandas()
    pd.testing.assert_frame_equal(streamed, single)
    csv = pd.read_csv(run.table("csv"), keep_default_na=False)
    assert list(csv[ROW_ID]) == list(single[ROW_ID])


def test_every_row_once_in_manifest_order_and_finishing_steps_match_the_whole_table(merged_run):
    run = merged_run
    got = pd.read_parquet(run.root / "table")
    shards = pd.concat([pd.read_parquet(run.shard(n)) for n in run.shard_names()])
    assert list(got[ROW_ID]) == list(shards.sort_values(ROW_INDEX)[ROW_ID])
    assert got[ROW_ID].is_unique
    want = reference_gather(run, list(STAGES))
    want = pa.Table.from_pandas(want[[c for c in got.columns if c in want.columns]], preserve_index=False).replace_schema_metadata(None).to_pandas()
    pd.testing.assert_frame_equal(got.drop(columns=["caption_duplicate"]), want, check_dtype=False)
    dup = mark_duplicates(got, "text")
    assert list(got["caption_duplicate"].fillna("")) == list(dup.fillna(""))
    assert (got["caption_duplicate"].notna()).sum() > 100
    whole = pd.read_parquet(run.table("parquet"), dtype_backend="pyarrow")
    assert json.loads(run.summary_json.read_text()) == json.loads(json.dumps(summarize(whole)))


def test_a_stage_row_of_another_shard_stops_the_merge(tmp_path):
    run = make_synthetic_run(tmp_path, 40, 20)
    t0, t1 = (pq.read_table(run.output("motion", s)) for s in run.shard_names())
    pq.write_table(pa.concat_tables([t0.slice(1), t1.slice(0, 1)]), run.output("motion", "00000"))
    with pytest.raises(GatherError, match=r"motion \(shard 00000\): rows not exactly once: 1 missing"):
        gather(run, list(STAGES))


def test_merge_memory_is_bounded_by_a_shard(tmp_path):
    """200 k rows of 400-character captions under a 900 MB address-space limit: the streaming merge
    fits; the whole-table merge it replaced does not."""
    run = make_synthetic_run(tmp_path, 200_000, 20_000)
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({900 << 20}, {900 << 20}))
        sys.path.insert(0, {str(REPO)!r})
        from vidcap.io.run_dir import RunDir
        run = RunDir.at({str(run.root)!r})
        if sys.argv[1] == "new":
            from vidcap.gather import gather
            print("rows", gather(run, {list(STAGES)!r}, duplicates_of="text", summary_json=str(run.summary_json)))
        else:
            from tests.test_gather_stream import reference_gather
            print("rows", len(reference_gather(run, {list(STAGES)!r})))
    """)
    # the address space counts what the allocator reserves: one jemalloc arena, reservations given back,
    # so it follows the memory in use rather than how many threads touched the pool
    env = {**os.environ, "JE_ARROW_MALLOC_CONF": "narenas:1,retain:false"}
    new = subprocess.run([sys.executable, "-c", script, "new"], capture_output=True, text=True, env=env)
    assert new.returncode == 0 and "rows 200000" in new.stdout, new.stderr[-2000:]
    ids = [i for b in iter_result_batches(run.root, columns=[ROW_ID]) for i in b.column(0).to_pylist()]
    shards = pa.concat_tables([pq.read_table(run.shard(n), columns=[ROW_ID]) for n in run.shard_names()])
    assert ids == shards.column(ROW_ID).to_pylist(), "every row once, in manifest order"
    old = subprocess.run([sys.executable, "-c", script, "old"], capture_output=True, text=True, env=env)
    # the whole-table merge runs out of the address space: Python's MemoryError, or Arrow's own report of
    # a failed allocation (which one depends on where the allocation fails)
    out_of_memory = ("MemoryError", "std::bad_alloc", "Unknown error: Wrapping", "Cannot allocate memory")
    assert old.returncode != 0 and any(m in old.stderr[-2000:] + old.stdout for m in out_of_memory), old.stderr[-2000:]


@pytest.mark.parametrize("merge, rows, single", [({}, 5, True), ({"single_file_max_rows": 4}, 5, False),
                                                  ({"single_file": "never"}, 5, False),
                                                  ({"single_file": "always", "single_file_max_rows": 1}, 5, True)])
def test_single_file_tables_are_outputs_by_run_size(tmp_path, merge, rows, single):
    from vidcap.config import validate_config
    from vidcap.workflow import Plan

    manifest = tmp_path / "m.csv"
    pd.DataFrame({"path": [f"{i}.mp4" for i in range(rows)]}).to_csv(manifest, index=False)
    plan = Plan(validate_config({"manifest": str(manifest), "results_dir": str(tmp_path / "results"), "name": "p",
                                 "merge": merge}))
    outputs = plan.gather_outputs()
    assert outputs["table"] == str(tmp_path / "results" / "p" / "table")
    assert ("csv" in outputs and "parquet" in outputs) is single


def test_numbers_above_the_in_memory_size_give_numpys_figures(tmp_path, monkeypatch):
    import numpy as np

    from vidcap.merge import numbers
    from vidcap.summary import HIST_BINS, _r, numeric_stats

    monkeypatch.setattr(numbers, "IN_MEMORY", 10)
    monkeypatch.setattr(numbers, "CHUNK", 97)
    rng = np.random.default_rng(1)
    for values in (rng.random(2001) * 30, np.r_[np.full(900, 5.0), rng.integers(0, 9, 600).astype(float)]):
        spill = numbers.NumberSpill(tmp_path)
        for part in np.array_split(values, 7):
            spill.add(part)
        got = spill.stats(numeric_stats, HIST_BINS, _r)
        want = numeric_stats(values)
        assert {k: got[k] for k in ("count", "p50", "p90", "max", "histogram")} == \
               {k: want[k] for k in ("count", "p50", "p90", "max", "histogram")}
        assert abs(got["mean"] - want["mean"]) < 1e-3
        spill.close()


def test_shards_merged_in_groups_give_what_one_shard_at_a_time_gives(tmp_path, monkeypatch):
    """Small shards are merged several at a time (``GROUP_ROWS``): parts (one per shard), single files
    and summary are byte for byte those of a merge one shard at a time, failed rows dropped included."""
    import vidcap.gather as gather_module

    run = make_synthetic_run(tmp_path, 2_500, 300)
    outputs = {}
    for label, group_rows in (("one", 1), ("groups", 1_000)):
        monkeypatch.setattr(gather_module, "GROUP_ROWS", group_rows)
        assert len(gather_module.shard_groups(run, run.shard_names())) == (9 if group_rows == 1 else 3)
        rows = gather(run, list(STAGES), [run.table("csv"), run.table("parquet")], duplicates_of="text",
                      summary_json=run.summary_json, drop_failed=["probe"])
        assert rows == 2_500 - 50, "every 50th row's probe failed"
        outputs[label] = {p.relative_to(run.root.parent): p.read_bytes() for p in run.root.parent.rglob("*")
                          if p.is_file() and ("table" in p.parts or p.suffix in (".csv", ".json", ".parquet"))
                          and "shards" not in p.parts and "stages" not in p.parts and p.name != "manifest.parquet"}
    assert len([p for p in outputs["one"] if "table" in p.parts]) == 9, "one part per shard"
    assert outputs["one"].keys() == outputs["groups"].keys() and len(outputs["one"]) == 12
    assert [p for p in outputs["one"] if outputs["one"][p] != outputs["groups"][p]] == []
