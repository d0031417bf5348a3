"""The package works installed from its wheel (not only editable, not only from the checkout).

The wheel is built from this checkout and installed with ``--no-deps`` into a fresh venv whose only
other path is the test venv's site-packages (for the dependencies: numpy, torch, ...). The
checkout's own ``vidcap`` is not importable there (its editable finder is not loaded), which the
test checks. Then, from a folder outside the checkout: a stage runs on a shard, the config schema
and report template load, and ``snakemake -n`` plans a run with that venv's python.
"""
from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.helpers import REPO, write_config
from vidcap.dev import synth
from vidcap.io.tables import write_table


def _run(cmd, cwd, **kw):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
          str(REPO)], cwd=tmp_path)
    wheel = next(dist.glob("vidcap-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)], cwd=tmp_path)
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib.stdout.strip()) / "vidcap-test-deps.pth").write_text("\n".join(deps) + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run([str(py), "-c", "import vidcap, vidcap.report, vidcap.config as c; print(vidcap.__file__); "
                  "print(sorted(c.load_schema()['properties']['stages']['properties']))"], cwd=work, env=env)
    path, stages = where.stdout.splitlines()
    assert str(venv) in path and str(REPO) not in path, path
    assert "caption" in stages and "probe" in stages

    # a stage from the installed package, on a shard it made, with settings checked by the packaged schema
    synth.write_video(work / "a.mp4", num_frames=8, width=64, height=48)
    write_table(pd.DataFrame({"path": ["a.mp4", "missing.mp4"]}), work / "m.csv")
    vidcap = str(venv / "bin" / "vidcap")
    _run([vidcap, "shard", "--manifest", "m.csv", "--outdir", "shards", "--shard-size", "10"], cwd=work, env=env)
    _run([vidcap, "probe", "--shard", "shards/00000.parquet", "--out", "probe.parquet", "--journal", "j.jsonl",
          "--stats", "stats.json", "--params", '{"check": "first"}'], cwd=work, env=env)
    stats = json.loads((work / "stats.json").read_text())
    assert (stats["rows"], stats["processed"], stats["failed"]) == (2, 2, 1)
    bad = subprocess.run([vidcap, "probe", "--shard", "shards/00000.parquet", "--out", "p2.parquet", "--journal",
                          "j2.jsonl", "--params", '{"check": "deep"}'], cwd=work, env=env, capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "stages.probe.check" in bad.stderr, bad.stderr[-2000:]

    # the workflow plans with that venv's python (snakemake comes from the dependency path)
    cfg = write_config(work, manifest=str(work / "m.csv"), name="w", shard_size=1,
                       stages={"motion": {"enabled": False}})
    plan = _run([str(py), "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(work),
                 "--configfile", str(cfg), "-n", "-c1"], cwd=work, env=env)
    assert "probe" in plan.stdout and "gather" in plan.stdout, plan.stdout[-2000:]
