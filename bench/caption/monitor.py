"""A sampling thread for the caption benchmarks: NVML utilisation and memory (when NVML is there) and the
resident memory of a process tree.

``Monitor(root_pid)``: ``start()`` / ``stop()`` around a measured pass. Every ``interval`` s it reads NVML's
GPU utilisation of device 0 (``nvmlDeviceGetUtilizationRates().gpu``: the share of NVML's own last sample
window, 1/6 s to 1 s, during which any kernel ran, so short gaps are invisible to it and a tiny kernel
counts as busy) and the device's used memory; every ``rss_every`` samples the RSS of ``root_pid`` (with
``include_children``: summed over it and its descendants; Linux ``/proc``). ``result()``: ``nvml_util`` (mean of the samples, %; None without
NVML), ``gpu_mem_gib`` (max used, GiB; None without NVML), ``rss_gib`` (max), ``samples``.
``nvml_status()`` says why NVML is missing ("n/a (no NVML): ...").

Needs ``nvidia-ml-py`` (module ``pynvml``; the ``bench`` extra) for the GPU figures; imported lazily, so
the CPU run works without it.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

_NVML = {"handle": None, "status": None}


def _nvml_handle():
    """Device 0's NVML handle, or None (the reason kept for ``nvml_status``)."""
    if _NVML["status"] is None:
        try:
            import pynvml

            pynvml.nvmlInit()
            _NVML["handle"] = pynvml.nvmlDeviceGetHandleByIndex(0)
            _NVML["status"] = f"NVML {pynvml.nvmlSystemGetDriverVersion()}"
        except ImportError:
            _NVML["status"] = "n/a (no NVML: nvidia-ml-py not installed)"
        except Exception as exc:  # noqa: BLE001 - pynvml.NVMLError and friends: no driver, no GPU
            _NVML["status"] = f"n/a (no NVML: {exc})"
    return _NVML["handle"]


def nvml_status() -> str:
    _nvml_handle()
    return str(_NVML["status"])


def tree_rss(root: int, include_children: bool = True) -> int:
    """Bytes resident in ``root`` (and all its descendants); 0 for processes that are gone."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc") if include_children else ():
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rfind(")") + 2:].split()[1]), []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Monitor(threading.Thread):
    """See the module docstring."""

    def __init__(self, root_pid: int | None = None, include_children: bool = True, interval: float = 0.1,
                 rss_every: int = 5):
        super().__init__(daemon=True, name="bench-monitor")
        self.root_pid = root_pid or os.getpid()
        self.include_children = include_children
        self.interval = interval
        self.rss_every = rss_every
        self.util: list[int] = []
        self.mem: list[int] = []
        self.rss: list[int] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        handle = _nvml_handle()
        if handle is not None:
            import pynvml
        k = 0
        while True:
            if handle is not None:
                self.util.append(int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                self.mem.append(int(pynvml.nvmlDeviceGetMemoryInfo(handle).used))
            if k % self.rss_every == 0:
                self.rss.append(tree_rss(self.root_pid, self.include_children))
            k += 1
            if self._stop_event.wait(self.interval):
                break
        self.rss.append(tree_rss(self.root_pid, self.include_children))

    def stop(self) -> dict:
        self._stop_event.set()
        self.join()
        return self.result()

    def result(self) -> dict:
        return {"nvml_util": sum(self.util) / len(self.util) if self.util else None,
                "gpu_mem_gib": max(self.mem) / 2**30 if self.mem else None,
                "rss_gib": max(self.rss) / 2**30 if self.rss else None, "samples": len(self.util)}
