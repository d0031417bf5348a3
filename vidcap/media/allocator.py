"""Keep freed memory in the process for reuse, so that per-batch arrays do not page-fault every batch.

``keep_freed_memory()`` asks the C library's allocator (glibc's ``mallopt``) to serve blocks of up to
``MMAP_THRESHOLD`` bytes from its heap instead of fresh ``mmap`` regions, and to give freed heap
memory back to the system only when more than ``TRIM_THRESHOLD`` bytes are free at its top. Frame
pipelines allocate and free the same few megabytes every batch (a batch of small BGR frames, its HSV
copy); with glibc's defaults those megabytes go back to the system after each batch and every page is
faulted in (and zeroed by the kernel) again on the next one: a few faults per frame, a cost no
instruction count of the process shows (figures: ``bench/shots/README.md``, seventh round). At most
``TRIM_THRESHOLD`` bytes of freed memory stay with the process.

Once per process; a no-op where the C library has no ``mallopt`` (macOS) or ignores it (musl).
Process-wide: call it from code that owns the process (a stage's worker, a benchmark), as
``vidcap.shots.decode.scan_blocks`` does.
"""
from __future__ import annotations

import ctypes
import functools

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value (HEAP_MAX / 2 on 64-bit)
TRIM_THRESHOLD = 64 << 20


@functools.cache  # once per process
def keep_freed_memory() -> bool:
    """Set the thresholds; True when the C library accepted both."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no C library symbol table, or no mallopt (macOS)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
