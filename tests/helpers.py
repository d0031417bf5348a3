"""Shared test helpers (import them from here, never from conftest): real Snakemake runs in temporary
folders, kill-and-resume, generated bad inputs, journal readers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from vidcap.dev import synth
from vidcap.io.tables import write_table

REPO = Path(__file__).resolve().parent.parent


def write_config(workdir: Path, **config) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_cmd(workdir: Path, configfile: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(configfile), "-c2", *extra]


def run_snakemake(workdir: Path, configfile: Path, *extra: str, env: dict | None = None,
                  check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    """Snakemake under ``timeout -s INT``: a hung run is stopped the way Snakemake listens to (SIGINT)."""
    cmd = ["timeout", "-s", "INT", "-k", "20", str(timeout), *snakemake_cmd(workdir, configfile, *extra)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode == 124:
        raise AssertionError(f"snakemake timed out after {timeout} s:\n{proc.stderr[-5000:]}")
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def small_clip_manifest(media: Path, n: int) -> Path:
    """``n`` distinct 8-frame 64×48 clips under ``media`` and ``media/m.csv`` listing them (``path,k``)."""
    for i in range(n):
        synth.write_video(media / f"c{i:02d}.mp4", num_frames=8, width=64, height=48, seed=i)
    write_table(pd.DataFrame({"path": [f"c{i:02d}.mp4" for i in range(n)], "k": range(n)}), media / "m.csv")
    return media / "m.csv"


def kill_when_journaled(workdir: Path, configfile: Path, stage: str, rows: int, env: dict | None = None,
                        timeout: float = 120) -> dict[str, list[str]]:
    """Start Snakemake, SIGKILL its whole process group once ``rows`` rows of ``stage`` are journaled
    (or after ``timeout`` s), and return the journals' row ids as the kill left them."""
    import signal
    import time

    run = workdir / "results"
    proc = subprocess.Popen(snakemake_cmd(workdir, configfile), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        runs = [d for d in run.glob("*") if (d / "journal" / stage).is_dir()] if run.exists() else []
        if sum(len(ids) for d in runs for ids in journal_ids(d, stage).values()) >= rows:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    runs = [d for d in run.glob("*") if (d / "journal" / stage).is_dir()]
    return journal_ids(runs[0], stage) if runs else {}


def write_corrupt_mp4(path: Path) -> Path:
    """An .mp4 that starts like one (an ``ftyp`` box) followed by garbage: found, but not decodable."""
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    return path


def one_shard(tmp_path: Path, paths: list[str], **columns) -> Path:
    """Write ``tmp_path/m.csv`` (``path`` plus ``columns``) and cut it into one shard; the shard's path."""
    from vidcap.io.shards import make_shards

    write_table(pd.DataFrame({"path": paths, **columns}), tmp_path / "m.csv")
    make_shards(tmp_path / "m.csv", tmp_path / "shards", 1000)
    return tmp_path / "shards" / "00000.parquet"


def make_bad_inputs(root: Path) -> dict[str, str]:
    """Files for every bad-input case of the backbone issue: name -> path as written in the manifest.

    Paths are relative to ``root`` unless the case is about absolute/empty paths.
    """
    root.mkdir(parents=True, exist_ok=True)
    cases: dict[str, str] = {}

    def rel(p: Path) -> str:
        return os.path.relpath(p, root)

    good = synth.write_video(root / "good.mp4", num_frames=30)
    cases["good_h264"] = rel(good)
    cases["absolute_good"] = str(good.resolve())
    cases["missing"] = "no/such/file.mp4"
    (root / "empty.mp4").write_bytes(b"")
    cases["empty_file"] = "empty.mp4"
    data = good.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    cases["truncated"] = "truncated.mp4"
    (root / "random.mp4").write_bytes(os.urandom(20000))
    cases["random_bytes"] = "random.mp4"
    (root / "text.mp4").write_text("not a video at all\n" * 20)
    cases["text_as_mp4"] = "text.mp4"
    cases["audio_only"] = rel(synth.write_audio_only(root / "audio.mp4", seconds=1.0))
    cases["one_frame"] = rel(synth.write_video(root / "one.mp4", num_frames=1))
    cases["tiny_16"] = rel(synth.write_video(root / "tiny.mp4", num_frames=8, width=16, height=16))
    cases["4k"] = rel(synth.write_video(root / "uhd.mp4", num_frames=3, width=3840, height=2160))
    cases["vp9_webm"] = rel(synth.write_video(root / "clip.webm", num_frames=20, codec="vp9"))
    cases["mjpeg_avi"] = rel(synth.write_video(root / "clip.avi", num_frames=20, codec="mjpeg"))
    cases["image_png"] = rel(synth.write_image(root / "still.png"))
    (root / "a_folder.mp4").mkdir()
    cases["directory"] = "a_folder.mp4"
    cases["empty_path"] = ""
    return cases


BAD = {"missing": "file not found", "empty_file": "empty file", "truncated": "",
       "random_bytes": "cannot open", "text_as_mp4": "cannot open", "audio_only": "no video stream",
       "directory": "is a directory", "empty_path": "empty path"}


def journal_ids(run: Path, stage: str) -> dict[str, list[str]]:
    """Row ids in each journal of ``stage`` under a run folder, in file order (repeats kept)."""
    import json

    out = {}
    for j in sorted((run / "journal" / stage).glob("*.jsonl")):
        ids = []
        for line in j.read_text().splitlines()[1:]:
            try:
                ids.append(json.loads(line)["row_id"])
            except (json.JSONDecodeError, KeyError):
                pass
        out[j.stem] = ids
    return out


def read_result(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)
