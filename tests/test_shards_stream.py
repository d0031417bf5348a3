"""The streaming sharder gives the ids, media paths and rows of the whole-manifest algorithm it
replaced (kept here as the reference), on manifests read in many small batches; bad manifests get one
clear error naming the file; memory stays bounded by a batch."""
import hashlib
import json
import random
import subprocess
import sys
import textwrap

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vidcap.errors import TableError
from vidcap.io import table_batches
from vidcap.io.media_paths import media_base, resolve_media_path
from vidcap.io.shards import make_shards
from vidcap.io.table_batches import check_manifest, count_manifest_rows

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
POOL = ["a.mp4", "/abs/b.mp4", "", "./c.mp4", "d/../e.mp4", "~/f.mp4", "//g.mp4", "h//i.mp4", "dir/", ".",
        "ü 字.mp4", "sub/x.mp4", "/abs/./y.mp4", "z.mp4"]


def reference_ids(manifest, media_root=None):
    """The sharder's ids and media paths as computed before streaming (main at 295c4ab): the whole
    manifest in one pandas frame, one Python dict of every key seen."""
    if str(manifest).endswith(".csv"):
        df = pd.read_csv(manifest, dtype=str, keep_default_na=False, na_filter=False)
    else:
        df = pq.read_table(manifest).to_pandas()
    base = media_base(manifest, media_root)
    paths = ["" if pd.isna(p) else str(p) for p in df["path"]]
    media = [resolve_media_path(p, base) for p in paths]
    keys = media

    def cells(c):
        return ["" if pd.isna(v) else str(v) for v in df[c]] if c in df.columns else [""] * len(df)

    if "start" in df.columns or "end" in df.columns:
        keys = [f"{m}\x00{s}\x00{e}" if (s or e) else m for m, s, e in zip(media, cells("start"), cells("end"))]
    seen, ids = {}, []
    for p in keys:
        k = seen.get(p, 0)
        seen[p] = k + 1
        ids.append(hashlib.blake2b(f"{p}\x00{k}".encode(), digest_size=8).hexdigest())
    return ids, media


def sharded(outdir, info_rows=None):
    info = json.loads((outdir / "manifest.json").read_text())
    t = pa.concat_tables([pq.read_table(outdir / f"{n}.parquet") for n in info["shards"]])
    return info, t


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(table_batches, "BATCH_ROWS", 7)      # duplicates span many batch boundaries
    monkeypatch.setattr(table_batches, "CSV_BLOCK_BYTES", 64)


def _rows(n, seed):
    rnd = random.Random(seed)
    return [rnd.choice(POOL) for _ in range(n)], [rnd.choice(["", "1", "1.5", "2", "10"]) for _ in range(n)]


@pytest.mark.parametrize("media_root, workers", [(None, 1), ("/media", 1), (None, 2)])
def test_ids_match_reference_csv_with_ranges_duplicates_relative_and_empty_paths(tmp_path, small_batches, media_root,
                                                                                  workers, monkeypatch):
    monkeypatch.setattr("vidcap.io.shards.PARALLEL_MIN_ROWS", 0)   # workers=2: ids hashed in 2 processes
    paths, starts = _rows(150, 1)
    ends = ["" if s == "" else "3" for s in starts]
    note = ['x,"y"\nz' if i % 5 == 0 else f"n{i}" for i in range(150)]   # quoted newlines across blocks
    pd.DataFrame({"path": paths, "start": starts, "end": ends, "note": note}).to_csv(tmp_path / "m.csv", index=False)
    (tmp_path / "s" / ".rowids-killed").mkdir(parents=True)       # what a killed shard job leaves
    (tmp_path / "s" / ".shard-x.parquet.tmp").write_bytes(b"PAR1")
    make_shards(tmp_path / "m.csv", tmp_path / "s", 11, media_root, workers=workers)
    info, t = sharded(tmp_path / "s")
    ids, media = reference_ids(tmp_path / "m.csv", media_root)
    assert t.column("_media_path").to_pylist() == media
    assert t.column("row_id").to_pylist() == ids
    assert t.column("note").to_pylist() == note and t.column("start").to_pylist() == starts
    assert t.column("_row_index").to_pylist() == list(range(150))
    assert info["rows"] == 150 and len(info["shards"]) == 14
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.startswith(".")]   # no spill or temp left


def test_ids_match_reference_parquet_numbers_and_nulls(tmp_path, small_batches):
    paths, starts = _rows(120, 2)
    n = len(paths)
    starts_int = [None if s in ("", "1.5") else int(s) for s in starts]
    variants = {
        "int_nulls": pa.table({"path": paths, "start": pa.array(starts_int, pa.int64())}),   # pandas: floats
        "int": pa.table({"path": paths, "start": pa.array([s or 0 for s in starts_int], pa.int64())}),
        "float": pa.table({"path": paths, "end": pa.array([None if s == "" else float(s) for s in starts])}),
        "null_paths": pa.table({"path": pa.array([None if p == "" else p for p in paths]), "x": range(n)}),
    }
    df = pd.DataFrame({"path": paths, "start": pd.array(starts_int, dtype="Int64")})   # pandas metadata: Int64
    variants["pandas_Int64"] = pa.Table.from_pandas(df, preserve_index=False)
    for name, table in variants.items():
        pq.write_table(table, tmp_path / f"{name}.parquet")
        make_shards(tmp_path / f"{name}.parquet", tmp_path / name, 13)
        _, t = sharded(tmp_path / name)
        ids, media = reference_ids(tmp_path / f"{name}.parquet")
        assert t.column("row_id").to_pylist() == ids, name
        assert t.column("_media_path").to_pylist() == media, name


def test_parquet_folder_and_prompt_file(tmp_path, small_batches):
    paths, _ = _rows(40, 3)
    (tmp_path / "d").mkdir()
    for i in range(4):
        pq.write_table(pa.table({"path": paths[i * 10:(i + 1) * 10]}), tmp_path / "d" / f"part-{i}.parquet")
    pq.write_table(pa.table({"path": paths}), tmp_path / "whole.parquet")
    make_shards(tmp_path / "d", tmp_path / "s", 6)
    _, t = sharded(tmp_path / "s")
    assert t.column("row_id").to_pylist() == reference_ids(tmp_path / "whole.parquet")[0]
    assert count_manifest_rows(tmp_path / "d") == 40

    lines = [{"video": p or "v.mp4", "text": f"q{i}", "question_id": i, **({"extra": "e"} if i % 3 else {})}
             for i, p in enumerate(paths[:20])]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    make_shards(tmp_path / "p.jsonl", tmp_path / "sp", 6)
    _, t = sharded(tmp_path / "sp")
    from vidcap.io.tables import read_table

    ref = read_table(tmp_path / "p.jsonl")
    keys = [resolve_media_path(p, str(tmp_path)) for p in ref["path"]]
    seen, ids = {}, []
    for key in keys:
        ids.append(hashlib.blake2b(f"{key}\x00{seen.get(key, 0)}".encode(), digest_size=8).hexdigest())
        seen[key] = seen.get(key, 0) + 1
    assert t.column("row_id").to_pylist() == ids
    assert t.column("extra").to_pylist() == ref["extra"].tolist()


def test_bad_manifests_get_one_clear_error(tmp_path):
    (tmp_path / "bin.csv").write_bytes(b"PK\x03\x04\x00\x00\xff\xfe" * 50)
    with pytest.raises(TableError, match=r"bin\.csv: not a CSV text file \(binary data"):
        check_manifest(tmp_path / "bin.csv")
    (tmp_path / "latin.csv").write_bytes("path,text\na.mp4,ok\nb.mp4,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(TableError, match=r"latin\.csv: not UTF-8 text: line 3, byte offset 28 \(0xe9\)"):
        check_manifest(tmp_path / "latin.csv")
    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"path": ["a"], "x": [1]}), tmp_path / "d" / "a.parquet")
    pq.write_table(pa.table({"path": ["b"], "x": ["1"]}), tmp_path / "d" / "b.parquet")
    with pytest.raises(TableError, match=r"differ: a\.parquet vs b\.parquet: column types x \(int64 vs string\)"):
        check_manifest(tmp_path / "d")
    pq.write_table(pa.table({"path": pa.array([None, None], pa.string())}), tmp_path / "nulls.parquet")
    with pytest.raises(TableError, match="nulls.parquet: column 'path' is all null"):
        check_manifest(tmp_path / "nulls.parquet")
    with pytest.raises(TableError, match="column 'path' is all null"):
        make_shards(tmp_path / "nulls.parquet", tmp_path / "s", 5)
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_manifest_that_changes_while_read_is_an_error(tmp_path, small_batches, monkeypatch):
    pd.DataFrame({"path": [f"v{i}.mp4" for i in range(50)]}).to_csv(tmp_path / "m.csv", index=False)
    real = table_batches.iter_batches

    def grows(path, *a, **k):
        for i, b in enumerate(real(path, *a, **k)):
            if i == 1:
                with open(path, "a") as fh:
                    fh.write("late.mp4\n")
            yield b

    monkeypatch.setattr(table_batches, "iter_batches", grows)
    with pytest.raises(TableError, match="m.csv: the manifest changed while it was read"):
        make_shards(tmp_path / "m.csv", tmp_path / "s", 10)
    assert not list((tmp_path / "s").glob("*.parquet")) and not list((tmp_path / "s").glob(".*"))
    monkeypatch.setattr(table_batches, "iter_batches", real)
    with pytest.raises(TableError, match="51 rows now, 50 when the run was planned"):
        make_shards(tmp_path / "m.csv", tmp_path / "s", 10, expect_rows=50)


def reference_make_shards(manifest, outdir, shard_size):
    """The sharder before streaming (main at 295c4ab), for the memory comparison: whole frame, ids,
    one concatenated frame, then one shard after another."""
    df = pq.read_table(manifest).to_pandas()
    ids, media = reference_ids(manifest)
    internal = pd.DataFrame({"row_id": ids, "_row_index": pd.Series(range(len(df)), dtype="int64"),
                             "_media_path": media})
    full = pd.concat([internal, df.reset_index(drop=True)], axis=1)
    for i in range(0, len(full), shard_size):
        pq.write_table(pa.Table.from_pandas(full.iloc[i:i + shard_size], preserve_index=False),
                       f"{outdir}/{i // shard_size:05d}.parquet")


def test_sharder_memory_is_bounded_by_a_batch(tmp_path):
    """1 M rows under an 800 MB address-space limit: the streaming sharder fits; the whole-manifest
    sharder it replaced does not (it needs over 900 MB here)."""
    n = 1_000_000
    paths = pa.array([f"videos/clip_{i:08d}.mp4" for i in range(n)])
    text = pa.array([f"a caption of clip {i} with a few more words" for i in range(n)])
    pq.write_table(pa.table({"path": paths, "text": text}), tmp_path / "m.parquet", row_group_size=65536)
    del paths, text
    (tmp_path / "s").mkdir()
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({800 << 20}, {800 << 20}))
        sys.path.insert(0, {str(REPO)!r})
        if sys.argv[1] == "new":
            from vidcap.io.shards import make_shards
        else:
            from tests.test_shards_stream import reference_make_shards as make_shards
        make_shards({str(tmp_path / 'm.parquet')!r}, {str(tmp_path / 's')!r}, 100000)
        print("done")
    """)
    new = subprocess.run([sys.executable, "-c", script, "new"], capture_output=True, text=True)
    assert new.returncode == 0 and "done" in new.stdout, new.stderr[-2000:]
    info = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert info["rows"] == n and len(info["shards"]) == 10
    old = subprocess.run([sys.executable, "-c", script, "old"], capture_output=True, text=True)
    tail = old.stderr[-300:]
    assert old.returncode != 0 and ("MemoryError" in tail or "failed" in tail), old.stdout


def test_plan_count_is_remembered_for_an_unchanged_manifest(tmp_path, monkeypatch):
    from vidcap.io.table_batches import checked_row_count

    pd.DataFrame({"path": ["a.mp4", "b.mp4"]}).to_csv(tmp_path / "m.csv", index=False)
    cache = tmp_path / "run" / "manifest.count.json"
    assert checked_row_count(tmp_path / "m.csv", cache) == 2 and not cache.exists(), "no run folder: nothing written"
    cache.parent.mkdir()
    assert checked_row_count(tmp_path / "m.csv", cache) == 2 and cache.exists()

    def unread(*a, **k):
        raise AssertionError("read again")

    monkeypatch.setattr(table_batches, "count_manifest_rows", unread)
    assert checked_row_count(tmp_path / "m.csv", cache) == 2
    monkeypatch.undo()
    with open(tmp_path / "m.csv", "a") as fh:
        fh.write("c.mp4\n")
    assert checked_row_count(tmp_path / "m.csv", cache) == 3


def test_reading_a_parquet_manifest_holds_arrow_memory_of_a_row_group_not_of_the_rows_read(tmp_path):
    """One reader over a whole Parquet file keeps Arrow memory that grows with the rows read (about 10
    bytes a row with pyarrow 26); the manifest reader takes a row group at a time."""
    n, group = 1_000_000, 25_000
    table = pa.table({"path": [f"videos/{i % 1000:03d}/clip_{i:09d}.mp4" for i in range(n)],
                      "text": [f"a caption {i}" for i in range(n)]})
    one_group = table.slice(0, group).nbytes
    pq.write_table(table, tmp_path / "m.parquet", row_group_size=group)
    del table

    def peaks(batches) -> tuple[int, int, int]:
        """Peak Arrow memory over the first fifth of the rows, over all of them, and the rows read."""
        first = top = rows = 0
        for b in batches:
            rows += b.num_rows
            top = max(top, pa.total_allocated_bytes())
            if rows <= n // 5:
                first = top
        return first, top, rows

    first, ours, rows = peaks(table_batches.iter_batches(tmp_path / "m.parquet"))
    _, whole, _ = peaks(pq.ParquetFile(tmp_path / "m.parquet").iter_batches(batch_size=table_batches.BATCH_ROWS))
    assert rows == n
    assert ours - first < one_group, ("grows with the rows read", first, ours, one_group)
    assert whole > 3 * ours, ("the whole-file reader this replaced holds more", whole, ours)
