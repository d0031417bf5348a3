"""GPU selection for model jobs.

* Under SLURM, or whenever ``CUDA_VISIBLE_DEVICES`` is already set, the assigned devices are used
  as they are.
* Locally, ``snakemake --resources gpu=N`` limits how many GPU jobs run at once but assigns no
  device. Each job therefore takes free *slots* among the machine's GPUs with an exclusive
  ``fcntl`` lock on ``<lock dir>/<host>/gpu<i>.lock`` (lock dir: ``$VIDCAP_LOCK_DIR`` or
  ``/tmp/vidcap-gpu-locks``; ``<host>`` the hostname, so slots stay per machine even when the lock
  dir is on a filesystem shared by several), sets ``CUDA_VISIBLE_DEVICES`` to them before torch
  initialises CUDA, and holds the locks for the life of the process (the OS releases them on exit or kill).
* GPUs per job: ``$VIDCAP_GPUS_PER_JOB`` (the caption rule sets it from ``resources.gpu``), default 1;
  0 hides every GPU (``CUDA_VISIBLE_DEVICES=""``, CPU run).
* GPU count: ``$VIDCAP_GPU_SLOTS`` (tests, or to use fewer), else ``nvidia-smi -L``, else 0.
  Counting never initialises CUDA in this process.

``acquire_gpus()`` returns the device list it chose (or None when it chose nothing) and logs it.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger("vidcap.gpu")

DEFAULT_LOCK_DIR = "/tmp/vidcap-gpu-locks"
_HELD: list = []  # open lock files: kept for the life of the process


def gpu_count() -> int:
    """GPUs on this machine: ``$VIDCAP_GPU_SLOTS``, else ``nvidia-smi -L`` lines, else 0."""
    env = os.environ.get("VIDCAP_GPU_SLOTS")
    if env not in (None, ""):
        return max(0, int(env))
    smi = shutil.which("nvidia-smi")
    if not smi:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def lock_dir() -> Path:
    """This host's slot locks: ``<$VIDCAP_LOCK_DIR or DEFAULT_LOCK_DIR>/<hostname>``."""
    return Path(os.environ.get("VIDCAP_LOCK_DIR") or DEFAULT_LOCK_DIR) / socket.gethostname()


def acquire_gpus(n: int | None = None, wait_s: float | None = None) -> list[int] | None:
    """Choose this job's GPUs (see module docstring) and set ``CUDA_VISIBLE_DEVICES``.

    Waits up to ``wait_s`` (default ``$VIDCAP_GPU_WAIT_S`` or 3600 s) for free slots; RuntimeError
    after that. Idempotent within a process.
    """
    if _HELD:
        return [slot for slot, _ in _HELD]
    assigned = os.environ.get("CUDA_VISIBLE_DEVICES")
    if assigned is not None:
        where = "SLURM" if os.environ.get("SLURM_JOB_ID") else "the environment"
        log.info("GPUs: using CUDA_VISIBLE_DEVICES=%r assigned by %s", assigned, where)
        return None
    if n is None:
        n = int(os.environ.get("VIDCAP_GPUS_PER_JOB", "1") or 1)
    if n <= 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        log.info("GPUs: job asked for none; CUDA_VISIBLE_DEVICES='' (CPU)")
        return []
    total = gpu_count()
    if total == 0:
        log.info("GPUs: none found; running on CPU")
        return None
    if n > total:
        raise RuntimeError(f"job wants {n} GPUs but this machine has {total}")
    if wait_s is None:
        wait_s = float(os.environ.get("VIDCAP_GPU_WAIT_S", "3600"))
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        got = []
        for slot in range(total):
            fh = open(folder / f"gpu{slot}.lock", "a+")
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            got.append((slot, fh))
            if len(got) == n:
                break
        if len(got) == n:
            _HELD.extend(got)
            devices = [slot for slot, _ in got]
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, devices))
            log.info("GPUs: took slot(s) %s of %d (locks in %s); CUDA_VISIBLE_DEVICES=%s", devices, total,
                     folder, os.environ["CUDA_VISIBLE_DEVICES"])
            return devices
        for _, fh in got:
            fh.close()  # closing releases the lock: never hold part of a request while waiting
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {n} free GPU slot(s) of {total} after {wait_s:.0f} s (locks in {folder})")
        time.sleep(0.5)
