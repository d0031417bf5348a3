"""Every kind of file of a finished run folder, cut in half, is named by the next plain `snakemake` run
and made again, without computing any journaled row (every stage job's stats: 0 rows processed; the
judge's chat server gets no request). One finished run (probe, caption with a tiny model and its
answers file, judge through a real HTTP server, report) is built once and copied per case."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_snakemake, small_clip_manifest, write_config
from vidcap.dev.chat_server import ChatServer
from vidcap.dev.tiny import tiny_model

pytestmark = pytest.mark.e2e

KEY_VAR, KEY = "VIDCAP_DAMAGE_TEST_KEY", "sk-damage-test"
# kind -> the file, relative to results/
KINDS = {
    "shard table": "r/shards/00001.parquet",
    "shard info": "r/shards/manifest.json",
    "stage table": "r/stages/probe/00000.parquet",
    "stats": "r/stats/caption/00001.json",
    "settings": "r/settings/probe.json",
    "config": "r/config.json",
    "merged csv": "r.csv",
    "merged parquet": "r.parquet",
    "merged part": "r/table/part-00001.parquet",
    "summary json": "r.summary.json",
    "summary csv": "r.summary.csv",
    "answers": "r.answers.jsonl",
    "judge table": "r.judge.csv",
    "report": "r.report.html",
}


def _config(workdir: Path, manifest: Path, url: str) -> Path:
    res = {"mem_mb": 2000, "runtime": 30, "threads": 1, "gpu": 0}
    stages = {
        "probe": {"enabled": True}, "motion": {"enabled": False}, "clean": {"enabled": False},
        "caption": {"enabled": True, "answers_file": "always", "decode_workers": 0, "batch_size": 2,
                    "frames": {"num_frames": 2, "resize_short": 32}, "generation": {"max_new_tokens": 2},
                    "transformers": {"model": str(tiny_model("qwen2_5_vl"))}, "resources": res},
        "judge": {"enabled": True, "answer_a_column": "ref",
                  "openai": {"base_url": url, "api_key_env": KEY_VAR, "model": "j", "timeout_s": 10, "max_tries": 2}},
    }
    return write_config(workdir, name="r", manifest=str(manifest), shard_size=2, stages=stages)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The finished run's folder and its judge server (one port: the judge's settings stay the same)."""
    root = tmp_path_factory.mktemp("finished")
    manifest = small_clip_manifest(root / "media", 3)   # one manifest path for every copy of the run
    (root / "run").mkdir()
    df = pd.read_csv(manifest)
    df["ref"] = "a reference"
    df.to_csv(manifest, index=False)
    os.environ[KEY_VAR] = KEY
    with ChatServer(api_key=KEY, reply=lambda body: "7 6") as srv:
        run_snakemake(root / "run", _config((root / "run"), manifest, srv.url), timeout=600)
        yield root, srv


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_damaged_run_file_is_named_and_made_again_without_recomputing(finished, tmp_path, kind):
    root, srv = finished
    work = tmp_path / "w"
    shutil.copytree(root / "run", work, symlinks=True)
    damaged = work / "results" / KINDS[kind]
    whole = damaged.read_bytes()
    os.truncate(damaged, len(whole) // 2)
    srv.reset()
    cfg = _config(work, root / "media" / "m.csv", srv.url)
    before = {p: p.read_bytes() for p in (work / "results" / "r" / "stats").rglob("*.json")}
    proc = run_snakemake(work, cfg, timeout=600)
    assert srv.chat_records() == [], "the judge asked nothing again"
    assert f"{damaged.relative_to(work)} is damaged" in proc.stderr, proc.stderr[-3000:]
    assert damaged.is_file() and damaged.stat().st_size > len(whole) // 2, "made again"
    run = work / "results" / "r"
    for stats in (run / "stats").rglob("*.json"):   # the stage jobs that ran again
        if before.get(stats) != stats.read_bytes():
            assert json.loads(stats.read_text())["processed"] == 0, f"{stats}: rows computed again"
    proc = run_snakemake(work, cfg, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr, "repaired for good"
