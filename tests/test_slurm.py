"""The workflow through `profiles/slurm` on a real SLURM (scripts/slurm_cluster.sh starts one).

Skipped when no cluster answers, unless VIDCAP_REQUIRE_SLURM=1 (CI: scripts/with_slurm.sh make test), where a
missing cluster is a failure. Asserts that jobs really went through SLURM (sacct), that the GPU rule
got --gpus and a CUDA_VISIBLE_DEVICES from SLURM's gres, that the merged table equals a local run's,
and that a job cancelled with scancel mid-shard is rerun without losing or repeating rows.
Every Snakemake call runs under `timeout -s INT` (Snakemake ignores SIGTERM while polling).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import REPO, journal_ids, read_result, run_snakemake, write_config
from vidcap.dev import synth
from vidcap.io.tables import write_table

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

REQUIRE = os.environ.get("VIDCAP_REQUIRE_SLURM") == "1"
PROFILE = REPO / "profiles" / "slurm"
TOOLS = ("sbatch", "squeue", "sacct", "scancel", "sinfo", "scontrol", "timeout")


def _cluster_problem() -> str | None:
    """Why the SLURM tests cannot run here, or None when a cluster answers."""
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return f"`{tool}` not found"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed in this environment"
    try:
        nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, timeout=20)
        acct = subprocess.run(["sacct", "-n", "-X", "-S", "now-1minutes"], capture_output=True, text=True,
                              timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo/sacct did not answer within 20 s"
    if nodes.returncode or not re.search(r"^(idle|mix|alloc)", nodes.stdout, re.M):
        return f"no usable SLURM node (sinfo: {(nodes.stdout + nodes.stderr).strip()[:200]!r})"
    if acct.returncode:
        return f"sacct fails (accounting not running?): {acct.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def slurm() -> dict:
    problem = _cluster_problem()
    if problem:
        msg = f"no SLURM cluster: {problem}. Start one with `sudo scripts/slurm_cluster.sh start`."
        if REQUIRE:
            pytest.fail(f"VIDCAP_REQUIRE_SLURM=1 but {msg}")
        pytest.skip(msg)
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout.split()
    gres = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    return {"cpus": max(int(re.sub(r"\D", "", c) or 1) for c in cpus), "gpus": "gpu:" in gres}


def slurm_cmd(workdir: Path, configfile: Path, cpus: int, *extra: str, timeout: int) -> list[str]:
    # Test-only overrides of the profile: poll soon after submitting (short jobs), and group jobs as
    # wide as the test node (the profile's 8 cores would never fit a 2-CPU node).
    return ["timeout", "-s", "INT", "-k", "20", str(timeout),
            sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(configfile), "--profile", str(PROFILE),
            "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "10",
            "--cores", str(min(cpus, 2)), "--slurm-keep-successful-logs", *extra]


def run_slurm(workdir: Path, configfile: Path, cpus: int, *extra: str, env: dict | None = None,
              timeout: int = 240, check: bool = True) -> str:
    log = workdir / f"snakemake-slurm-{time.time_ns()}.log"
    with open(log, "w") as fh:
        proc = subprocess.run(slurm_cmd(workdir, configfile, cpus, *extra, timeout=timeout), stdout=fh,
                              stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    text = log.read_text()
    if check and proc.returncode:
        raise AssertionError(f"snakemake through SLURM failed ({proc.returncode}):\n{text[-6000:]}")
    return text


def run_id(log_text: str) -> str:
    m = re.search(r"SLURM run ID: (\S+)", log_text)
    assert m, "the SLURM executor ran (its run ID is in the log)"
    return m.group(1)


def sacct_jobs(run: str) -> list[dict]:
    """This run's SLURM jobs (allocations, not steps) as sacct records them."""
    fields = ["JobID", "JobName", "State", "Comment", "AllocTRES", "SubmitLine"]
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-S", "now-3hours", f"--name={run}",
                          "-o", ",".join(f + "%2000" for f in fields)], capture_output=True, text=True,
                         check=True).stdout
    return [dict(zip(fields, line.split("|", len(fields) - 1))) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("slurm_demo")
    subprocess.run([sys.executable, "-m", "vidcap", "demo", str(root / "demo")], check=True, cwd=REPO,
                   capture_output=True, timeout=300)
    return root


def demo_config(workdir: Path, demo: Path) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    cfg["manifest"] = str(demo / "demo" / "manifest.csv")
    stages = cfg.setdefault("stages", {})
    for stage in stages.values():  # the demo's tiny models (caption, tags) live beside its clips
        model = (stage.get("transformers") or {}).get("model")
        if model and not os.path.isabs(model):
            stage["transformers"]["model"] = str(demo / model)
    stages["caption"].setdefault("resources", {})["gpu"] = 1  # -> sbatch --gpus=1
    return write_config(workdir, **cfg)


def test_demo_through_slurm_equals_local_run(tmp_path, slurm, demo_dir):
    """The demo (probe, caption on a GPU, clean, motion) through SLURM and locally: same tables."""
    if not slurm["gpus"]:
        pytest.fail("the SLURM node has no gpu gres (scripts/slurm_cluster.sh declares fake GPUs)")
    local, remote = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    remote.mkdir()
    run_snakemake(local, demo_config(local, demo_dir), timeout=600)
    log = run_slurm(remote, demo_config(remote, demo_dir), slurm["cpus"], timeout=420)

    # Jobs really went through SLURM, every one completed: shard, grouped probe+motion, caption, gather.
    jobs = sacct_jobs(run_id(log))
    comments = sorted(j["Comment"] for j in jobs)
    assert all(j["State"] == "COMPLETED" for j in jobs), jobs
    assert "rule_shard" in comments and "rule_gather" in comments, comments
    n_shards = len(list((remote / "results" / "demo" / "shards").glob("0*.parquet")))
    groups = [c for c in comments if c.startswith("rule_cpu_stages")]
    assert len(groups) == -(-2 * n_shards // 40), ("probe+motion packed by the profile's groups", comments)
    assert not any(c.startswith(("rule_probe", "rule_motion")) for c in comments), "small stages are grouped"
    # only `all` and the rules that write a settings file from the config run on the submit host
    on_host = set(re.findall(r"^localrule (\w+):", log, re.M))
    assert on_host <= {"all", "settings", "run_config"}, ("no workflow job ran on the submit host", on_host)

    caption_jobs = [j for j in jobs if j["Comment"].startswith("rule_caption")]
    assert len(caption_jobs) == n_shards, comments
    for j in caption_jobs:
        assert "--gpus=1" in j["SubmitLine"] or "--gres=gpu" in j["SubmitLine"], j["SubmitLine"]
        assert "gres/gpu=1" in j["AllocTRES"], j["AllocTRES"]
    # Inside the job, SLURM set CUDA_VISIBLE_DEVICES and vidcap.gpu used it as it was.
    logs = list((remote / "results" / "demo" / "logs" / "caption").glob("*.log"))
    assert len(logs) == n_shards
    for p in logs:
        m = re.search(r"CUDA_VISIBLE_DEVICES='([^']*)' assigned by SLURM", p.read_text())
        assert m and m.group(1) != "", f"{p.name}: {p.read_text()[-1500:]}"

    # Same merged table as the local run, cell for cell.
    a = read_result(local / "results" / "demo.csv")
    b = read_result(remote / "results" / "demo.csv")
    assert (b["text"].str.len() > 0).sum() == (a["text"].str.len() > 0).sum()
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pd.read_parquet(local / "results" / "demo.parquet"),
                                  pd.read_parquet(remote / "results" / "demo.parquet"))


def _wait_running(run_dir: Path, stage: str, log: Path, comment: str, min_rows: int, deadline: float):
    """(run id, SLURM job id) of this run's RUNNING `comment` job once `min_rows` rows are journaled."""
    while time.time() < deadline:
        text = log.read_text() if log.exists() else ""
        m = re.search(r"SLURM run ID: (\S+)", text)
        done = sum(len(v) for v in journal_ids(run_dir, stage).values()) if (run_dir / "journal").exists() else 0
        if m and done >= min_rows:
            out = subprocess.run(["squeue", "-h", f"--name={m.group(1)}", "-t", "RUNNING", "-o", "%i|%k"],
                                 capture_output=True, text=True).stdout
            ids = [ln.split("|")[0] for ln in out.splitlines() if ln.split("|")[-1].startswith(comment)]
            if ids:
                return m.group(1), ids[0]
        time.sleep(0.2)
    raise AssertionError(f"no running {comment} job with {min_rows} journaled rows in time:\n"
                         f"{log.read_text()[-3000:] if log.exists() else ''}")


def _caption_config(tmp_path: Path, n: int, shard_size: int, name: str) -> Path:
    """``n`` distinct clips captioned by the tiny model on a (fake) GPU, one row per generate call so a
    cancel or requeue lands mid-shard."""
    from vidcap.dev.tiny import tiny_model

    media = tmp_path / "media"
    for i in range(n):
        synth.write_video(media / f"c{i:02d}.mp4", num_frames=8, width=64, height=48, seed=i)
    write_table(pd.DataFrame({"path": [f"c{i:02d}.mp4" for i in range(n)], "k": range(n)}), media / "m.csv")
    caption = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())["stages"]["caption"]
    caption["transformers"]["model"] = str(tiny_model("qwen2_5_vl"))
    caption["resources"] = {**caption.get("resources", {}), "gpu": 1}
    caption["batch_size"] = 1
    stages = {"probe": {"enabled": False}, "motion": {"enabled": False}, "caption": caption}
    return write_config(tmp_path, name=name, manifest=str(media / "m.csv"), shard_size=shard_size, stages=stages,
                        report={"enabled": False})


def _check_resumed(tmp_path: Path, run_dir: Path, name: str, before: dict, n: int, shard_size: int) -> None:
    """Every row once, journaled rows kept and not computed again, table complete."""
    after = journal_ids(run_dir, "caption")
    for shard, ids in after.items():
        assert ids[: len(before.get(shard, []))] == before.get(shard, []), "journaled rows kept"
        assert len(ids) == len(set(ids)) == shard_size, ("no row processed twice", shard, ids)
    stats = [json.loads(p.read_text()) for p in (run_dir / "stats" / "caption").glob("*.json")]
    assert sum(s["reused"] for s in stats) >= 1 and sum(s["rows"] for s in stats) == n, stats
    out = read_result(tmp_path / "results" / f"{name}.csv")
    assert out["k"].tolist() == [str(i) for i in range(n)]
    assert out["row_id"].is_unique
    assert (out["caption_error"] == "").all(), out["caption_error"].tolist()


def _interrupt_mid_shard(tmp_path: Path, cfg: Path, slurm: dict, action: list[str], min_rows: int, name: str):
    """Run through SLURM; once ``min_rows`` caption rows are journaled, run ``action + [job id]`` on the
    running caption job; wait for the run to end. Returns (run id, job id, journals at the action, rc, log)."""
    run_dir = tmp_path / "results" / name
    log = tmp_path / f"snakemake-{name}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(slurm_cmd(tmp_path, cfg, slurm["cpus"], timeout=300), stdout=fh,
                                stderr=subprocess.STDOUT, env={**os.environ, "VIDCAP_FAULT_DELAY": "1.0"})
    try:
        run, job = _wait_running(run_dir, "caption", log, "rule_caption", min_rows=min_rows,
                                 deadline=time.time() + 180)
        subprocess.run([*action, job], check=True)
        before = journal_ids(run_dir, "caption")
        if action == ["scontrol", "requeue"]:
            _release_requeued(job)
        rc = proc.wait(timeout=330)
    finally:
        if proc.poll() is None:
            proc.send_signal(2)
            proc.wait(timeout=60)
    return run, job, before, rc, log.read_text()


def _release_requeued(job: str, wait_s: float = 60) -> None:
    """SLURM holds a requeued job for about two minutes (its begin time is set ahead); let it start now,
    which saves the test that wait. The hold is SLURM's, not what the test checks."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout
        if state.strip() == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
            return
        time.sleep(0.5)


def test_scancel_mid_shard_then_rerun_loses_and_repeats_nothing(tmp_path, slurm):
    """scancel the running caption job mid-shard; the profile's retries resubmit it and the resubmitted
    job processes only the rows its journal lacks."""
    n, shard_size = 16, 8
    cfg = _caption_config(tmp_path, n, shard_size, "cancel")
    run_dir = tmp_path / "results" / "cancel"
    run, job, before, rc, text = _interrupt_mid_shard(tmp_path, cfg, slurm, ["scancel"], 3, "cancel")
    assert rc == 0, f"the run finished after the cancel (retries):\n{text[-5000:]}"
    n_before = sum(len(v) for v in before.values())
    assert 3 <= n_before < n, ("cancelled mid-run", n_before)
    assert all(len(ids) < shard_size for ids in before.values()), "the cancelled shard was part-done"

    # SLURM saw the cancel and the resubmission.
    records = sacct_jobs(run)
    cancelled = next(j for j in records if j["JobID"] == job)
    assert cancelled["State"].startswith("CANCELLED"), cancelled
    again = [j for j in records if j["Comment"] == cancelled["Comment"] and int(j["JobID"]) > int(job)]
    assert again and again[-1]["State"] == "COMPLETED", ("the same job resubmitted and completed", records)
    _check_resumed(tmp_path, run_dir, "cancel", before, n, shard_size)

    # A further run has nothing to do.
    text = run_slurm(tmp_path, cfg, slurm["cpus"], "-n", timeout=120)
    assert "Nothing to be done" in text


def test_requeue_mid_shard_resumes_exactly_once(tmp_path, slurm):
    """Preemption as SLURM does it: `scontrol requeue` puts the running caption job back in the queue
    (same job id); it starts again and processes only the rows its journal lacks."""
    n, shard_size = 8, 8
    cfg = _caption_config(tmp_path, n, shard_size, "requeue")
    run_dir = tmp_path / "results" / "requeue"
    _run, job, before, rc, text = _interrupt_mid_shard(tmp_path, cfg, slurm, ["scontrol", "requeue"], 2, "requeue")
    assert rc == 0, f"the run finished after the requeue:\n{text[-5000:]}"
    assert 2 <= sum(len(v) for v in before.values()) < n, "requeued mid-shard"
    restarts = subprocess.run(["sacct", "-n", "-X", "-P", "-D", "-j", job, "-o", "JobID,State"],
                              capture_output=True, text=True, check=True).stdout
    assert "REQUEUED" in restarts and "COMPLETED" in restarts, restarts
    _check_resumed(tmp_path, run_dir, "requeue", before, n, shard_size)
