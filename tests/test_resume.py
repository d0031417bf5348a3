"""Resume and concurrency as users meet them: manifest edits, two launches on one results folder,
damaged or missing stage outputs, one- and two-frame videos. Real Snakemake runs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import journal_ids, read_result, run_snakemake, snakemake_cmd, write_config
from vidcap.dev import synth
from vidcap.io.tables import write_table
from vidcap.stages.journal import carry_journals, read_journal

pytestmark = pytest.mark.e2e

FAST = {"motion": {"enabled": False}}   # probe only: seconds per run


def _clips(media: Path, n: int, start: int = 0) -> list[str]:
    names = []
    for i in range(start, start + n):
        synth.write_video(media / f"c{i:03d}.mp4", num_frames=4, width=32, height=32, seed=i)
        names.append(f"c{i:03d}.mp4")
    return names


def _config(tmp: Path, manifest: Path, **extra) -> Path:
    return write_config(tmp, name="r", manifest=str(manifest), shard_size=extra.pop("shard_size", 3),
                        report={"enabled": False}, stages=extra.pop("stages", FAST), **extra)


def _processed(run: Path, stage: str = "probe") -> int:
    """Rows computed (not taken from a journal) by the jobs of the shards the run has now."""
    names = json.loads((run / "shards" / "manifest.json").read_text())["shards"]
    return sum(json.loads((run / "stats" / stage / f"{n}.json").read_text())["processed"] for n in names)


def _journal_dups(run: Path, stage: str = "probe") -> int:
    return sum(len(ids) - len(set(ids)) for ids in journal_ids(run, stage).values())


def test_manifest_edits_recompute_only_new_or_changed_rows(tmp_path):
    media = tmp_path / "media"
    names = _clips(media, 9)
    manifest = media / "m.csv"
    write_table(pd.DataFrame({"path": names, "k": range(9)}), manifest)
    cfg = _config(tmp_path, manifest)
    run = tmp_path / "results" / "r"
    run_snakemake(tmp_path, cfg)
    assert _processed(run) == 9

    # the minimal case of the issue: delete the first row; every other row moves to another shard
    write_table(pd.DataFrame({"path": names[1:], "k": range(1, 9)}), manifest)
    run_snakemake(tmp_path, cfg)
    assert _processed(run) == 0, "unchanged rows are taken from the journals, whatever shard they moved to"
    out = read_result(tmp_path / "results" / "r.csv")
    assert out["k"].tolist() == [str(k) for k in range(1, 9)] and (out["probe_error"] == "").all()

    # 1 removed, 1 path changed, 5 added -> 6 computed, in every stage
    more = _clips(media, 5, start=9)
    changed = _clips(media, 1, start=20)
    paths = names[2:5] + changed + names[6:] + more
    write_table(pd.DataFrame({"path": paths, "k": range(len(paths))}), manifest)
    run_snakemake(tmp_path, cfg)
    assert _processed(run) == 6
    assert _journal_dups(run) == 0
    out = read_result(tmp_path / "results" / "r.csv")
    assert out["path"].tolist() == paths and (out["probe_error"] == "").all()


def test_carry_journals_keeps_fingerprints_apart(tmp_path):
    root = tmp_path / "journal" / "probe"
    root.mkdir(parents=True)
    (root / "00000.jsonl").write_text('{"stage": "probe", "fingerprint": "A"}\n{"row_id": "a", "x": 1}\n'
                                      '{"row_id": "b", "x": 2}\n')
    (root / "00001.jsonl").write_text('{"stage": "probe", "fingerprint": "B"}\n{"row_id": "c", "x": 3}\n')
    moved = carry_journals(tmp_path / "journal", {"00000": ["b"], "00001": ["a", "c"]})
    assert moved == {"probe": 1}, "only a moved"
    h0, r0 = read_journal(root / "00000.jsonl")
    h1, r1 = read_journal(root / "00001.jsonl")
    assert (h0["fingerprint"], set(r0)) == ("A", {"b"})
    assert h1["fingerprint"] in ("A", "B") and len(r1) == 1
    assert (root / "00001.jsonl.stale").read_text().count("row_id") == 1, "the other settings' record kept aside"


def test_second_launch_on_the_same_results_folder_is_refused(tmp_path):
    media = tmp_path / "media"
    names = _clips(media, 6)
    write_table(pd.DataFrame({"path": names}), media / "m.csv")
    results = tmp_path / "shared-results"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    cfg_a = _config(a, media / "m.csv", results_dir=str(results))
    cfg_b = _config(b, media / "m.csv", results_dir=str(results))
    first = subprocess.Popen(snakemake_cmd(a, cfg_a), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "VIDCAP_FAULT_DELAY": "1.0"}, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (results / "r" / "run.lock").exists() and time.time() < deadline:
            time.sleep(0.1)
        second = run_snakemake(b, cfg_b, check=False)
        assert second.returncode != 0
        msg = second.stdout + second.stderr
        assert "in use by another snakemake run" in msg and f"pid {first.pid}" in msg, msg[-2000:]
        assert str(a) in msg, "names the other run's working directory"
        assert first.wait(timeout=300) == 0, first.stderr.read()[-3000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert _journal_dups(results / "r") == 0
    assert sum(len(v) for v in journal_ids(results / "r", "probe").values()) == 6
    # once the first run is over, the second works on the same folder (nothing left to do)
    run_snakemake(b, cfg_b)
    assert _journal_dups(results / "r") == 0


def test_damaged_or_missing_stage_output_is_rebuilt_from_the_journal(tmp_path):
    media = tmp_path / "media"
    names = _clips(media, 6)
    write_table(pd.DataFrame({"path": names}), media / "m.csv")
    cfg = _config(tmp_path, media / "m.csv")
    run = tmp_path / "results" / "r"
    run_snakemake(tmp_path, cfg)
    out = run / "stages" / "probe" / "00001.parquet"
    os.truncate(out, out.stat().st_size // 2)

    proc = run_snakemake(tmp_path, cfg)
    assert "stages/probe/00001.parquet is damaged" in proc.stderr, proc.stderr[-2000:]
    assert (run / "stages" / "probe" / "00001.parquet.damaged").exists()
    stats = json.loads((run / "stats" / "probe" / "00001.json").read_text())
    assert (stats["reused"], stats["processed"]) == (3, 0), "rebuilt from the journal, nothing computed"
    assert len(read_result(tmp_path / "results" / "r.csv")) == 6

    (run / "stages" / "probe" / "00000.parquet").unlink()
    proc = run_snakemake(tmp_path, cfg)
    assert (run / "stages" / "probe" / "00000.parquet").exists(), "a missing stage output is always made again"
    assert json.loads((run / "stats" / "probe" / "00000.json").read_text())["processed"] == 0


def test_one_and_two_frame_videos_in_every_stage(tmp_path):
    """No stage repeats or substitutes frames: a one-frame video is captioned from its one frame (as an
    image) and gets no camera-motion label; a two-frame video is captioned from two frames."""
    from vidcap.dev.tiny import tiny_model

    media = tmp_path / "media"
    synth.write_video(media / "one.mp4", num_frames=1, width=64, height=48)
    synth.write_video(media / "two.mp4", num_frames=2, width=64, height=48)
    synth.write_video(media / "many.mp4", num_frames=12, width=64, height=48)
    write_table(pd.DataFrame({"path": ["one.mp4", "two.mp4", "many.mp4"]}), media / "m.csv")
    model = tiny_model("qwen2_5_vl")
    stages = {"caption": {"enabled": True, "prompt": "video_short", "decode_workers": 0,
                          "frames": {"num_frames": 4, "resize_short": 48}, "generation": {"max_new_tokens": 4},
                          "transformers": {"model": str(model)},
                          "resources": {"mem_mb": 2000, "runtime": 30, "threads": 1, "gpu": 0}},
              "clean": {"enabled": True, "append_motion": True}}
    cfg = _config(tmp_path, media / "m.csv", stages=stages)
    run_snakemake(tmp_path, cfg)
    out = read_result(tmp_path / "results" / "r.csv").set_index("path")
    assert out.loc["one.mp4", "num_frames"] == "1" and out.loc["two.mp4", "num_frames"] == "2"
    assert json.loads(out.loc["one.mp4", "caption_frame_indices"]) == [0]
    assert json.loads(out.loc["two.mp4", "caption_frame_indices"]) == [0, 1]
    assert len(json.loads(out.loc["many.mp4", "caption_frame_indices"])) == 4
    assert (out["caption_error"] == "").all() and (out["text"] != "").all()
    assert out.loc["one.mp4", "cmotion"] == "unclassified" and out.loc["one.mp4", "motion_reason"] == "too few frames"
    assert "camera" not in out.loc["one.mp4", "clean_text"].lower(), "no motion sentence for an unclassified clip"


def test_full_disk_fails_the_job_clearly_and_a_rerun_after_freeing_space_loses_nothing(tmp_path):
    """A real full disk: the results folder on a small tmpfs (CI runs as root). The failed job's console
    output ends with `no space left on device: <path>`; after freeing space a plain rerun finishes."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    assert mounted.returncode == 0, f"this test mounts a tmpfs (needs root, as in CI): {mounted.stderr}"
    try:
        media = tmp_path / "media"
        names = _clips(media, 6)
        write_table(pd.DataFrame({"path": names}), media / "m.csv")
        cfg = _config(tmp_path, media / "m.csv", results_dir=str(disk / "results"))
        filler = disk / "filler"
        with open(filler, "wb") as fh:   # leave about 40 kB: the shards fit, the stage outputs do not
            fh.write(b"\0" * (512 * 1024 - 40 * 1024))
        proc = run_snakemake(tmp_path, cfg, check=False)
        assert proc.returncode != 0
        assert "error: no space left on device: " in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
        filler.unlink()
        run_snakemake(tmp_path, cfg, "--rerun-incomplete")
        out = read_result(disk / "results" / "r.csv")
        assert len(out) == 6 and (out["probe_error"] == "").all()
        assert _journal_dups(disk / "results" / "r") == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
