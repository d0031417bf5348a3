"""vidcap.io.results: one reader of a run's merged table (file, run folder or part folder)."""
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vidcap.io.results import ResultsError, iter_result_batches, results_dataset


def test_results_reader_finds_file_then_parts_in_order(tmp_path):
    (tmp_path / "r" / "n" / "shards").mkdir(parents=True)
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "r" / "n.parquet")
    assert results_dataset(tmp_path / "r" / "n").to_table().num_rows == 2
    (tmp_path / "r" / "n" / "table").mkdir()
    for i in range(3):
        pq.write_table(pa.table({"a": [i * 10, i * 10 + 1]}), tmp_path / "r" / "n" / "table" / f"part-{i:05d}.parquet")
    got = [x for b in iter_result_batches(tmp_path / "r" / "n") for x in b.column("a").to_pylist()]
    assert got == [0, 1, 10, 11, 20, 21]
    with pytest.raises(ResultsError, match="does not exist"):
        results_dataset(tmp_path / "nope")
