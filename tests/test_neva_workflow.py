"""A prompt-file manifest with bad lines through real Snakemake (``prompt_file_bad_lines: report``)."""
from __future__ import annotations

import json

import pandas as pd
import pytest


@pytest.mark.e2e
def test_snakemake_report_mode_lists_bad_lines_once_and_in_summary_and_report(tmp_path):
    """Real Snakemake on a prompt file with a bad line, ``prompt_file_bad_lines: report``: the console
    names the skipped line once (not once per job process that re-reads the Snakefile), and the
    summary (JSON and CSV) and the report list it."""
    from tests.helpers import run_snakemake, write_config
    from vidcap.dev import synth

    media = tmp_path / "media"
    for i in range(2):
        synth.write_video(media / f"c{i}.mp4", num_frames=8, width=64, height=48, seed=i)
    lines = [json.dumps({"video": f"c{i}.mp4", "text": f"Question {i}?", "question_id": i}) for i in range(2)]
    lines.insert(1, "{broken")
    (media / "q.jsonl").write_text("\n".join(lines) + "\n")
    cfg = write_config(tmp_path, name="qa", manifest=str(media / "q.jsonl"), shard_size=1, prompt_file_bad_lines="report",
                       stages={"probe": {"enabled": True}, "motion": {"enabled": False}, "caption": {"enabled": False},
                               "clean": {"enabled": True, "append_motion": False, "text_column": "prompt"}})
    proc = run_snakemake(tmp_path, cfg)
    assert proc.stderr.count("line 2: not JSON") == 1, proc.stderr[:3000]
    assert proc.stderr.count("skipped") == 1, "one message, no per-line warnings from other processes"
    results = tmp_path / "results"
    summary = json.loads((results / "qa.summary.json").read_text())
    assert summary["rows"] == 2
    assert [b["line"] for b in summary["skipped_manifest_lines"]] == [2]
    assert summary["skipped_manifest_lines"][0]["reason"].startswith("not JSON")
    rows = pd.read_csv(results / "qa.summary.csv", keep_default_na=False)
    assert rows[rows["section"] == "skipped_manifest_lines"][["key", "count"]].values.tolist() == [["line 2", "1"]]
    html = (results / "qa.report.html").read_text()
    assert "Manifest: 1 bad line(s) skipped (prompt_file_bad_lines: report)" in html and "not JSON" in html
