"""The final merge: manifest columns replaced by stage columns only where the stage has a value."""
import pandas as pd
import pytest

from tests.helpers import read_result, run_snakemake, write_config
from vidcap.dev import synth
from vidcap.io.tables import write_table


@pytest.mark.e2e
def test_failed_rows_keep_manifest_values_and_parquet_reads_plainly(tmp_path):
    media = tmp_path / "media"
    synth.write_video(media / "a.mp4", num_frames=12)
    df = pd.DataFrame({"path": ["a.mp4", "gone.mp4", "a.mp4"], "num_frames": ["99", "77", "not a number"],
                       "codec": ["old", "old", "old"]})
    write_table(df, media / "m.csv")
    cfg = write_config(tmp_path, name="g", manifest=str(media / "m.csv"), stages={"motion": {"enabled": False}})
    run_snakemake(tmp_path, cfg)
    out = read_result(tmp_path / "results" / "g.csv")
    assert list(out.columns[:3]) == ["path", "num_frames", "codec"]
    assert out["num_frames"].tolist() == ["12", "77", "12"]
    assert out["codec"].tolist() == ["h264", "old", "h264"]
    assert out["probe_error"].tolist()[1].startswith("file not found")
    table = pd.read_parquet(tmp_path / "results" / "g.parquet")  # plain reader, default backend
    assert table["num_frames"].astype(str).tolist() == ["12", "77", "12"]
