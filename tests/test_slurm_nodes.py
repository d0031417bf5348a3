"""profiles/slurm on a real two-node SLURM: jobs on both nodes, a node lost mid-shard, locks across hosts.

Needs the cluster of `VIDCAP_SLURM_NODES=2 scripts/slurm_cluster.sh start` (what scripts/with_slurm.sh
starts): each node is a slurmd in its own network and UTS namespace (its own hostname and address),
sharing this machine's filesystem as cluster nodes share NFS; a test enters a node with `nsenter`.
Skipped without it, a failure with VIDCAP_REQUIRE_SLURM=1 (CI).

- jobs spread over both nodes (sacct NodeList); the merged table equals a local run's; two caption
  jobs on one node never hold the same GPU while jobs on different nodes use the same index;
- a node lost mid-shard (every process in its namespace SIGKILLed, as a power cut): SLURM marks it
  DOWN, requeues the job on the other node, the run finishes with every row once and no journaled row
  computed again; a rerun of the same command has nothing to do; a second launch from the other
  node while the run goes on is refused, naming the first;
- a lock held by a host that stopped (SIGSTOP: its lock stays held, its heartbeat stops) is taken
  over from another host within the lease; slot locks of vidcap.gpu are per host.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import REPO, journal_ids, read_result, run_snakemake, write_config
from tests.test_slurm import REQUIRE, _caption_config, _cluster_problem, _release_requeued, run_slurm, slurm_cmd

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

STATE = Path(os.environ.get("VIDCAP_SLURM_STATE", "/var/lib/vidcap-slurm"))
CLUSTER_SH = REPO / "scripts" / "slurm_cluster.sh"


@pytest.fixture(scope="module")
def nodes() -> list[dict]:
    """The cluster's nodes (name, addr, netns, uts) from scripts/slurm_cluster.sh, at least two up."""
    problem = _cluster_problem()
    listed = []
    if (STATE / "nodes").exists():
        for line in (STATE / "nodes").read_text().splitlines():
            if line.strip():
                name, addr, netns, uts = line.split()
                listed.append({"name": name, "addr": addr, "netns": netns, "uts": uts})
    if not problem and len(listed) < 2:
        problem = f"fewer than two namespaced nodes in {STATE / 'nodes'} (start with VIDCAP_SLURM_NODES=2)"
    if problem:
        msg = f"no two-node SLURM cluster: {problem}"
        if REQUIRE:
            pytest.fail(f"VIDCAP_REQUIRE_SLURM=1 but {msg}")
        pytest.skip(msg)
    for node in listed:
        _wait_node(node["name"], ("idle", "mix", "alloc"), 60)
    return listed


def in_node(node: dict, *cmd: str) -> list[str]:
    """``cmd`` run on ``node`` (its network and UTS namespaces; the filesystem is shared)."""
    return ["nsenter", f"--net={node['netns']}", f"--uts={node['uts']}", *cmd]


def _node_state(name: str) -> str:
    return subprocess.run(["sinfo", "-h", "-N", "-n", name, "-o", "%t"], capture_output=True,
                          text=True).stdout.strip()


def _wait_node(name: str, states: tuple[str, ...], timeout: float) -> float:
    """Seconds until ``name`` is in one of ``states`` (sinfo short names, e.g. "down" or "down*")."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if _node_state(name).rstrip("*~#$@+-") in states:
            return time.time() - t0
        time.sleep(0.5)
    raise AssertionError(f"node {name} not {states} after {timeout} s: {_node_state(name)!r}")


def _sacct(run: str, *fields: str, duplicates: bool = False) -> list[dict]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", *(["-D"] if duplicates else []), "-S", "now-3hours",
                          f"--name={run}", "-o", ",".join(f + "%500" for f in fields)],
                         capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, ln.split("|"))) for ln in out.splitlines() if ln.strip()]


def _config(tmp_path: Path, n: int, shard_size: int, name: str) -> Path:
    """The caption-only config of tests/test_slurm.py (one row per generate call, a GPU per job)."""
    cfg = _caption_config(tmp_path, n, shard_size, name)
    data = yaml.safe_load(cfg.read_text())
    data["stages"]["clean"] = {"enabled": False}  # fewer SLURM jobs: the tests are about caption jobs
    return write_config(tmp_path, **data)


def _run_id(log: Path) -> str | None:
    m = re.search(r"SLURM run ID: (\S+)", log.read_text() if log.exists() else "")
    return m.group(1) if m else None


def test_jobs_land_on_both_nodes_and_gpus_are_per_node(tmp_path, nodes):
    """Four caption shards at once on two nodes of two GPUs each: both nodes used; overlapping jobs on
    one node hold different GPUs, jobs on different nodes the same indices; the table equals a local run's."""
    n, shard_size = 8, 2
    remote, local = tmp_path / "slurm", tmp_path / "local"
    remote.mkdir()
    local.mkdir()
    data = yaml.safe_load(_config(tmp_path, n, shard_size, "spread").read_text())
    log = remote / "snakemake.log"
    with open(log, "w") as fh:  # the local reference run goes on meanwhile (the cluster mostly waits)
        proc = subprocess.Popen(slurm_cmd(remote, write_config(remote, **data), 2, timeout=400),
                                stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "VIDCAP_FAULT_DELAY": "3"})
    try:
        run_snakemake(local, write_config(local, **data), timeout=600)
        assert proc.wait(timeout=420) == 0, log.read_text()[-5000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    run = _run_id(log)
    assert run, log.read_text()[-3000:]
    jobs = [j for j in _sacct(run, "JobID", "Comment", "NodeList", "State", "Start", "End")
            if j["Comment"].startswith("rule_caption")]
    assert len(jobs) == n // shard_size and all(j["State"] == "COMPLETED" for j in jobs), jobs
    assert {j["NodeList"] for j in jobs} == {nd["name"] for nd in nodes[:2]}, ("jobs on both nodes", jobs)

    for j in jobs:  # the GPU SLURM gave each job (its caption log), by shard (the job's comment)
        shard = j["Comment"].rsplit("_", 1)[1]
        text = (remote / "results" / "spread" / "logs" / "caption" / f"{shard}.log").read_text()
        m = re.search(r"CUDA_VISIBLE_DEVICES='([^']*)' assigned by SLURM", text)
        assert m and m.group(1), text[-1500:]
        j["gpu"] = m.group(1)
    overlap = [(a, b) for i, a in enumerate(jobs) for b in jobs[i + 1:]
               if a["Start"] < b["End"] and b["Start"] < a["End"]]
    same_node = [(a, b) for a, b in overlap if a["NodeList"] == b["NodeList"]]
    assert same_node, ("two caption jobs ran at once on one node", jobs)
    assert all(a["gpu"] != b["gpu"] for a, b in same_node), ("never one GPU for two jobs on a node", same_node)
    assert any(a["NodeList"] != b["NodeList"] and a["gpu"] == b["gpu"] for a, b in overlap), \
        ("the same GPU index on two nodes at once", jobs)

    a = read_result(local / "results" / "spread.csv")
    b = read_result(remote / "results" / "spread.csv")
    assert b["row_id"].is_unique and len(b) == n
    pd.testing.assert_frame_equal(a, b)


def test_node_lost_mid_shard_then_the_run_finishes_on_the_other_node(tmp_path, nodes):
    """Power cut of the node running a caption job mid-shard; a second launch from the other node
    during the run is refused, naming the first."""
    n, shard_size = 12, 6
    cfg = _config(tmp_path, n, shard_size, "lost")
    run_dir = tmp_path / "results" / "lost"
    log = tmp_path / "snakemake.log"
    by_name = {nd["name"]: nd for nd in nodes}
    victim = None
    with open(log, "w") as fh:
        proc = subprocess.Popen(slurm_cmd(tmp_path, cfg, 2, timeout=500), stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "VIDCAP_FAULT_DELAY": "2.0"})
    try:
        deadline = time.time() + 240
        while ((_run_id(log) is None or not (run_dir / "run.lock").exists()) and time.time() < deadline
               and proc.poll() is None):
            time.sleep(0.3)
        run = _run_id(log)
        assert run, log.read_text()[-3000:]
        # A second launch of this run from the other node (another working directory) is refused.
        second = tmp_path / "second"
        second.mkdir()
        data = yaml.safe_load(cfg.read_text())
        data["results_dir"] = str(tmp_path / "results")
        cfg2 = write_config(second, **data)
        refused = subprocess.run(in_node(nodes[1], *slurm_cmd(second, cfg2, 2, timeout=120)), capture_output=True,
                                 text=True)
        msg = refused.stdout + refused.stderr
        assert refused.returncode != 0 and "in use by another snakemake run" in msg, msg[-3000:]
        first = json.loads((run_dir / "run.lock").read_text())  # the first run's Snakemake, on this host
        assert first["host"] == os.uname().nodename != nodes[1]["name"], first
        assert f"pid {first['pid']} on host {first['host']}" in msg, ("names the first run", msg[-2000:])

        # a running caption job whose shard has at least 2 journaled rows
        job = shard = None
        while time.time() < deadline and job is None:
            done = journal_ids(run_dir, "caption") if (run_dir / "journal").exists() else {}
            out = subprocess.run(["squeue", "-h", f"--name={run}", "-t", "RUNNING", "-o", "%i|%k|%N"],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                jid, comment, node = line.split("|")
                s = comment.rsplit("_", 1)[-1]
                if comment.startswith("rule_caption") and 2 <= len(done.get(s, [])) < shard_size:
                    job, shard, victim = jid, s, by_name[node]
                    break
            time.sleep(0.3)
        assert job, f"no caption job mid-shard in time:\n{log.read_text()[-3000:]}"
        other = next(nd for nd in nodes if nd is not victim)

        t_cut = time.time()
        subprocess.run(["bash", str(CLUSTER_SH), "kill-node", victim["name"]], check=True, capture_output=True)
        before = journal_ids(run_dir, "caption")  # the lost node's writers are dead: its journal is final
        down_s = _wait_node(victim["name"], ("down",), 120)
        _release_requeued(job, wait_s=120)
        rc = proc.wait(timeout=420)
        assert rc == 0, log.read_text()[-5000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        if victim is not None:
            subprocess.run(["bash", str(CLUSTER_SH), "start-node", victim["name"]], capture_output=True)

    # SLURM: the job failed with its node and ran again, to completion, on the other node.
    records = _sacct(run, "JobID", "Comment", "NodeList", "State", duplicates=True)
    mine = [r for r in records if r["JobID"] == job or r["Comment"] == f"rule_caption_wildcards_{shard}"]
    assert any(r["NodeList"] == victim["name"] and r["State"] in ("NODE_FAIL", "REQUEUED") for r in mine), mine
    assert mine[-1]["State"] == "COMPLETED" and mine[-1]["NodeList"] == other["name"], mine

    # Rows: every one once; journaled rows kept, not computed again.
    after = journal_ids(run_dir, "caption")
    for s, ids in after.items():
        assert len(ids) == len(set(ids)) == shard_size, ("every row once", s, ids)
        assert ids[: len(before.get(s, []))] == before.get(s, []), "journaled rows kept"
    stats = {p.stem: json.loads(p.read_text()) for p in (run_dir / "stats" / "caption").glob("*.json")}
    kept = len(before[shard])
    assert stats[shard]["reused"] == kept, ("nothing journaled computed again", stats[shard], kept)
    out = read_result(tmp_path / "results" / "lost.csv")
    assert out["k"].tolist() == [str(i) for i in range(n)] and out["row_id"].is_unique
    assert (out["caption_error"] == "").all()
    print(f"\nnode loss: {victim['name']} DOWN {down_s:.0f} s after the cut; shard {shard}: {kept} rows "
          f"journaled before the cut and reused, {shard_size - kept} computed after it (the row in flight "
          f"included), 0 computed twice; run finished {time.time() - t_cut:.0f} s after the cut")

    # The same command again: no lock left behind, nothing to do.
    assert "Nothing to be done" in run_slurm(tmp_path, cfg, 2, "-n", timeout=120)


_HOLD = (
    "import sys, time\n"
    "from vidcap.io.locks import FileLock\n"
    "FileLock(sys.argv[1], 'holder on a node').acquire()\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)
_TAKE = (
    "import json, sys, time\n"
    "from vidcap.io.locks import FileLock, LockBusy\n"
    "try:\n"
    "    FileLock(sys.argv[1]).acquire(wait_s=0)\n"
    "    print(json.dumps({'first': 'taken'}))\n"
    "except LockBusy as busy:\n"
    "    print(json.dumps({'first': str(busy)}), flush=True)\n"
    "    sys.stdin.readline()  # the test froze the holder\n"
    "    t0 = time.monotonic()\n"
    "    try:\n"
    "        FileLock(sys.argv[1]).acquire(wait_s=float(sys.argv[2]), poll_s=0.1)\n"
    "    except LockBusy as busy:\n"
    "        print(json.dumps({'never': str(busy)}), flush=True)\n"
    "    else:\n"
    "        print(json.dumps({'taken_after_s': time.monotonic() - t0}), flush=True)\n"
)


@pytest.mark.parametrize("mode", ["flock", "files"])
def test_lock_of_a_hung_host_is_taken_over_within_the_lease(tmp_path, nodes, mode):
    """A lock held on node 1 stops being refreshed (its host hangs: SIGSTOP; the filesystem still holds
    the lock for it). Node 2 is refused, naming node 1, until the lease runs out, then takes it over;
    the old holder, woken, exits (75) instead of working beside the new one. Both lock modes: flock,
    and lock files (VIDCAP_LOCK_MODE=files, for mounts without a shared flock)."""
    lease = 3.0
    env = {**os.environ, "PYTHONPATH": str(REPO), "VIDCAP_LOCK_LEASE_S": str(lease), "VIDCAP_LOCK_MODE": mode}
    path = str(tmp_path / "run.lock")
    holder = subprocess.Popen(in_node(nodes[0], sys.executable, "-c", _HOLD, path), stdout=subprocess.PIPE,
                              text=True, env=env)
    taker = None
    try:
        assert holder.stdout.readline().strip() == "held"
        time.sleep(lease / 2)
        taker = subprocess.Popen(in_node(nodes[1], sys.executable, "-c", _TAKE, path, str(lease * 4)),
                                 stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, env=env)
        first = json.loads(taker.stdout.readline())["first"]
        assert f"host {nodes[0]['name']}" in first and "holder on a node" in first, first
        os.kill(holder.pid, signal.SIGSTOP)
        t_freeze = time.monotonic()
        taker.stdin.write("go\n")
        taker.stdin.flush()
        taken = json.loads(taker.stdout.readline())
        since_freeze = time.monotonic() - t_freeze
        assert "taken_after_s" in taken, taken
        # not before the lease (less one heartbeat: the last touch came up to lease/6 before the freeze),
        # and not much after it
        assert lease * 5 / 6 - 0.3 <= since_freeze <= lease + 1.5, since_freeze
        os.kill(holder.pid, signal.SIGCONT)
        assert holder.wait(timeout=lease + 10) == 75, "the woken holder saw its lock taken and exited"
    finally:
        for p in (holder, taker):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


_SLOT = (
    "import os, sys, time\n"
    "from vidcap.gpu import acquire_gpus\n"
    "try:\n"
    "    print(acquire_gpus(1, wait_s=float(sys.argv[1])), flush=True)\n"
    "except RuntimeError as exc:\n"
    "    print('busy', exc, flush=True)\n"
    "    sys.exit(0)\n"
    "sys.stdin.readline()\n"
)


def test_gpu_slot_locks_are_per_host(tmp_path, nodes):
    """One GPU per node and one lock folder shared by the nodes: a second job on node 1 finds no free
    slot while a job on node 2 takes slot 0 at the same time."""
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    env.update(PYTHONPATH=str(REPO), VIDCAP_GPU_SLOTS="1", VIDCAP_LOCK_DIR=str(tmp_path / "locks"))
    procs = []
    try:
        for node, wait in ((nodes[0], "0"), (nodes[0], "1"), (nodes[1], "0")):
            procs.append(subprocess.Popen(in_node(node, sys.executable, "-c", _SLOT, wait), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, env=env))
            if len(procs) == 1:
                assert procs[0].stdout.readline().strip() == "[0]"
        second, other = procs[1].stdout.readline(), procs[2].stdout.readline()
        assert second.startswith("busy"), second
        assert other.strip() == "[0]", other
        assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == sorted(nd["name"] for nd in nodes[:2])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
