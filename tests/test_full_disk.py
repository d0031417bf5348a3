"""A full disk during the merge: the console of the real Snakemake run says which file could not be
written, also when the job's log sits on the full disk. The table write fails through the fault hook
``VIDCAP_FAULT_ENOSPC`` (vidcap.io.tables.atomic_path); the log's disk is a real full tmpfs (root only)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_snakemake, small_clip_manifest, write_config

pytestmark = pytest.mark.e2e


def _full_tmpfs(folder: Path) -> bool:
    """Mount a 64 KiB tmpfs on ``folder``, make an empty ``gather.log`` there and fill the rest; False when this machine does not allow it."""
    folder.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        return False
    (folder / "gather.log").touch()
    fd = os.open(folder / "fill", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return True


@pytest.mark.parametrize("log_disk", ["writable", "full"])
def test_full_disk_during_the_merge_names_the_file_on_the_console(tmp_path, log_disk):
    manifest = small_clip_manifest(tmp_path / "media", 2)
    cfg = write_config(tmp_path, name="r", manifest=str(manifest), report={"enabled": False},
                       stages={"probe": {"enabled": True}, "motion": {"enabled": False},
                               "clean": {"enabled": False}})
    run_snakemake(tmp_path, cfg)
    table = tmp_path / "results" / "r.csv"
    table.unlink()   # the merge runs again
    full = tmp_path / "full"
    try:
        if log_disk == "full":
            if not _full_tmpfs(full):
                pytest.skip("cannot mount a tmpfs here (not root)")
            logs = tmp_path / "results" / "r" / "logs"
            (logs / "gather.log").unlink()
            (logs / "gather.log").symlink_to(full / "gather.log")
        proc = run_snakemake(tmp_path, cfg, env={"VIDCAP_FAULT_ENOSPC": str(table)}, check=False)
    finally:
        if full.is_mount():
            subprocess.run(["umount", str(full)], check=True)
    assert proc.returncode != 0
    assert "vidcap gather: error: no space left on device: results/r.csv" in proc.stderr, proc.stderr[-3000:]
    assert not table.exists()
    if log_disk == "full":
        assert "the log is empty" in proc.stderr
