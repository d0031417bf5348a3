"""Real Snakemake runs of the whole workflow: bad inputs, exactly-once rows, kill -9 and resume."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import (
    BAD,
    REPO,
    journal_ids,
    kill_when_journaled,
    read_result,
    run_snakemake,
    small_clip_manifest,
    write_config,
)
from vidcap.io.tables import write_table

AWKWARD = ['has,comma', 'has "quotes"', 'two\nlines', 'ünïcödé 字幕', '007', 'NA', '']


@pytest.mark.e2e
def test_bad_inputs_run_finishes_with_readable_errors(tmp_path, bad_inputs):
    root, cases = bad_inputs
    names = list(cases) + ["good_h264"]  # a duplicate row, kept and returned twice
    df = pd.DataFrame({"path": [cases[n] for n in names], "case": names,
                       "note": [AWKWARD[i % len(AWKWARD)] for i in range(len(names))]})
    write_table(df, root / "manifest.csv")
    cfg = write_config(tmp_path, name="bad", manifest=str(root / "manifest.csv"), shard_size=4)
    run_snakemake(tmp_path, cfg)

    out = read_result(tmp_path / "results" / "bad.csv")
    assert list(out.columns[:3]) == ["path", "case", "note"]
    assert out["case"].tolist() == names, "every row once, in manifest order"
    assert out["note"].tolist() == df["note"].tolist(), "extra columns verbatim"
    assert out["row_id"].is_unique
    for _, row in out.iterrows():
        if row["case"] in BAD:
            assert row["probe_error"] and BAD[row["case"]] in row["probe_error"], row.to_dict()
            assert row["num_frames"] == ""
            assert row["motion_error"] and row["cmotion"] == "", row.to_dict()
        else:
            assert row["probe_error"] == "", row.to_dict()
            assert int(row["num_frames"]) >= 1 and int(row["width"]) >= 16
            assert row["motion_error"] == "" and row["cmotion"], row.to_dict()
    assert (out["case"] == "good_h264").sum() == 2
    pq_out = pq.read_table(tmp_path / "results" / "bad.parquet")
    assert pq_out.column("case").to_pylist() == names
    assert pq_out.schema.field("num_frames").type == pa.int64()

    status = subprocess.run([sys.executable, "-m", "vidcap", "status", str(tmp_path / "results" / "bad")],
                            capture_output=True, text=True, check=True, cwd=REPO).stdout
    for stage in ("probe", "motion"):
        line = next(ln for ln in status.splitlines() if ln.startswith(stage))
        assert line.split()[1:5] == [f"{(len(names) + 3) // 4}/{(len(names) + 3) // 4}", str(len(names)),
                                     str(len(BAD)), "0"]


@pytest.mark.e2e
def test_manifest_without_path_column_fails_clearly(tmp_path):
    (tmp_path / "m.csv").write_text("file\na.mp4\n")
    cfg = write_config(tmp_path, manifest=str(tmp_path / "m.csv"))
    proc = run_snakemake(tmp_path, cfg, "-n", check=False)
    assert proc.returncode != 0
    assert "missing required column(s) path" in proc.stderr + proc.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("name, content, expect", [
    ("header.csv", b"path,text\n", "header.csv: the manifest has no rows (a header only): nothing to do"),
    ("zip.csv", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" * 40, "zip.csv: not a CSV text file (binary data"),
    ("latin.csv", "path,text\na.mp4,ok\nb.mp4,caf\u00e9\n".encode("latin-1"),
     "latin.csv: not UTF-8 text: line 3, byte offset 28 (0xe9)"),
])
def test_unusable_manifest_stops_before_anything_runs_with_one_line(tmp_path, name, content, expect):
    (tmp_path / name).write_bytes(content)
    cfg = write_config(tmp_path, manifest=str(tmp_path / name))
    proc = run_snakemake(tmp_path, cfg, check=False)
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert expect in err, err[-3000:]
    assert "Traceback" not in err and "UnicodeDecodeError" not in err, err[-3000:]
    assert not (tmp_path / "results").exists(), "nothing started"


@pytest.mark.e2e
@pytest.mark.parametrize("override, expect", [
    ({"shard_size": "ten"}, "config key 'shard_size': must be of type integer or 'auto', got 'ten'"),
    ({"stages": {"probe": {"check": "deep"}}}, "config key 'stages.probe.check': must be one of 'header', 'first', 'ends'"),
    ({"shard_sise": 5}, "config key 'shard_sise': is not a known key"),
])
def test_bad_config_names_key_and_allowed_values(tmp_path, override, expect):
    write_table(pd.DataFrame({"path": ["a.mp4"]}), tmp_path / "m.csv")
    cfg = write_config(tmp_path, manifest=str(tmp_path / "m.csv"), **override)
    proc = run_snakemake(tmp_path, cfg, "-n", check=False)
    assert proc.returncode != 0
    assert expect in proc.stderr + proc.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("where", ["between rows", "inside a row"])
def test_kill_mid_shard_then_resume_loses_and_repeats_nothing(tmp_path, where):
    media = tmp_path / "media"
    n = 24
    small_clip_manifest(media, n)
    cfg = write_config(tmp_path, name="kill", manifest=str(media / "m.csv"), shard_size=12)
    run = tmp_path / "results" / "kill"

    # First run: slow rows (fault injection), killed with SIGKILL mid-shard: after a row's journal
    # write, or while a row's result waits for its journal write (that row is lost and done again).
    fault = {"VIDCAP_FAULT_DELAY" if where == "between rows" else "VIDCAP_FAULT_ROW_DELAY": "0.25"}
    before = kill_when_journaled(tmp_path, cfg, "probe", 8, env=fault)
    n_before = sum(len(v) for v in before.values())
    assert 8 <= n_before < n, "killed mid-run"
    assert all(len(ids) < 12 for ids in before.values()), "every shard killed part-way"
    assert not (tmp_path / "results" / "kill.csv").exists()

    # Rerun: finishes, every row once, and only the rows not journaled were processed.
    run_snakemake(tmp_path, cfg, "--unlock")
    run_snakemake(tmp_path, cfg, "--rerun-incomplete")
    after = journal_ids(run, "probe")
    for shard, ids in after.items():
        assert ids[: len(before.get(shard, []))] == before.get(shard, []), "journaled rows kept"
        assert len(ids) == len(set(ids)) == 12, "no row processed twice"
    stats = [json.loads(p.read_text()) for p in sorted((run / "stats" / "probe").glob("*.json"))]
    assert sum(s["reused"] for s in stats) == n_before
    assert sum(s["processed"] for s in stats) == n - n_before
    out = read_result(tmp_path / "results" / "kill.csv")
    assert out["k"].tolist() == [str(i) for i in range(n)]
    assert (out["probe_error"] == "").all() and (out["num_frames"] == "8").all()

    # A third run has nothing to do.
    proc = run_snakemake(tmp_path, cfg, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.e2e
def test_lint_is_clean(tmp_path):
    write_table(pd.DataFrame({"path": ["a.mp4"]}), tmp_path / "m.csv")
    cfg = write_config(tmp_path, manifest=str(tmp_path / "m.csv"))
    proc = run_snakemake(tmp_path, cfg, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.e2e
def test_vidcap_run_uses_the_checkouts_snakefile(tmp_path):
    """``vidcap run`` without ``--snakefile`` finds the Snakefile next to the package (one step: no shots)."""
    write_table(pd.DataFrame({"path": ["a.mp4"]}), tmp_path / "m.csv")
    cfg = write_config(tmp_path, manifest=str(tmp_path / "m.csv"))
    proc = subprocess.run([sys.executable, "-m", "vidcap", "run", "--configfile", str(cfg), "--", "--directory",
                           str(tmp_path), "-n"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "step 1 of 2" not in proc.stderr
    assert "rule shard" in proc.stdout + proc.stderr, "snakemake planned the checkout's workflow"


@pytest.mark.e2e
def test_motion_labels_through_the_workflow_and_append_to_text(tmp_path):
    sys.path.insert(0, str(REPO / "bench" / "motion"))
    import gen  # the motion bench's generator: a virtual camera over a photograph

    media = tmp_path / "media"
    specs = {  # pan/tilt in short sides, zoom as ln(magnification)
        "pan_left+tilt_up": (-0.6, 0.5, 0.0, "astronaut"),
        "zoom_in": (0.0, 0.0, 0.5, "coffee"),
        "static": (0.0, 0.0, 0.0, "chelsea"),
    }
    rows = []
    for i, (label, (pan, tilt, zoom, source)) in enumerate(specs.items()):
        spec = gen.Spec(f"w{i}", "dev", "workflow", label, pan, tilt, zoom, frames=40, width=288, height=160,
                        source=source, seed=11 + i, params={"profile": "linear", "crf": 20, "gop": 30, "view": 0.5})
        gen.write_clip(spec, media / f"m{i}.mp4")
        rows.append({"path": f"m{i}.mp4", "expected": label, "text": f"A clip number {i}."})
    rows.append({"path": "m0.mp4", "expected": "pan_left+tilt_up", "text": ""})
    write_table(pd.DataFrame(rows), media / "m.csv")
    cfg = write_config(tmp_path, name="mo", manifest=str(media / "m.csv"),
                       stages={"motion": {"append_to_text": True}})
    run_snakemake(tmp_path, cfg)
    out = read_result(tmp_path / "results" / "mo.csv")
    assert out["cmotion"].tolist() == out["expected"].tolist()
    assert out["text"].tolist() == [
        "A clip number 0. The camera pans left while tilting up.",
        "A clip number 1. The camera zooms in.",
        "A clip number 2. The camera is static.",
        "The camera pans left while tilting up.",
    ]
    assert float(out["motion_pan"][0]) < -0.25 and float(out["motion_tilt"][0]) > 0.25
