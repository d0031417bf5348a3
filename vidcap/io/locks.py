"""Exclusive locks on files of a run folder, with the holder named.

``FileLock(path, what)``: ``acquire(wait_s)`` takes an exclusive ``flock`` on ``path`` and writes who
holds it (host, pid, start time, working directory, ``what``) into the file; the OS drops the lock
when the holder exits or is killed, so a lock is never left behind by a dead process on this host.
On a filesystem without ``flock`` (some Lustre/NFS mounts) it falls back to creating the file
exclusively, refreshed every ``HEARTBEAT_S`` by a thread; such a lock is stale (taken over) when its
holder is on this host and its pid is gone, or when it was not refreshed for ``STALE_S``.

``LockBusy`` (raised when the lock is held and ``wait_s`` ran out) says who holds it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

log = logging.getLogger("vidcap.io.locks")

HEARTBEAT_S = 30.0
STALE_S = 300.0
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class LockBusy(RuntimeError):
    """The lock is held by someone else; the message names the holder."""

    def __init__(self, path: Path, holder: dict | None):
        self.path, self.holder = path, holder or {}
        super().__init__(f"{path} is held by {describe_holder(self.holder)}")


def describe_holder(h: dict) -> str:
    if not h:
        return "another process (no details recorded)"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.get("started", 0)))
    what = f"{h['what']}, " if h.get("what") else ""
    return f"{what}pid {h.get('pid')} on host {h.get('host')} since {since} (working directory {h.get('cwd')})"


class FileLock:
    def __init__(self, path: str | Path, what: str = ""):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None
        self._held: Path | None = None  # the fallback lock file while held
        self._fallback = False
        self._stop = threading.Event()

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None

    def _info(self) -> str:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                           "cwd": os.getcwd(), "what": self.what})

    def acquire(self, wait_s: float | None = 0.0, poll_s: float = 1.0, on_wait=None) -> FileLock:
        """Take the lock, waiting up to ``wait_s`` seconds (None: forever); LockBusy after that.
        ``on_wait(holder)`` is called once when the lock is found held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = None if wait_s is None else time.monotonic() + wait_s
        told = False
        while True:
            if self._try():
                return self
            if not told and on_wait is not None:
                on_wait(self.holder())
                told = True
            if deadline is not None and time.monotonic() >= deadline:
                raise LockBusy(self.path, self.holder())
            time.sleep(poll_s)

    def _try(self) -> bool:
        if not self._fallback:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                if exc.errno not in _NO_FLOCK:
                    raise
                log.warning("%s: no flock on this filesystem (%s); using lock files", self.path, exc)
                self._fallback = True
            else:
                os.ftruncate(fd, 0)
                os.write(fd, self._info().encode())
                os.fsync(fd)
                self._fd = fd
                return True
        return self._try_exclusive()

    def _try_exclusive(self) -> bool:
        path = self.path.with_name(self.path.name + ".held")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if not self._stale(path):
                return False
            log.warning("%s: taking over a stale lock of %s", path, describe_holder(self._read(path) or {}))
            path.unlink(missing_ok=True)
            return self._try_exclusive()
        os.write(fd, self._info().encode())
        os.close(fd)
        self.path.write_text(self._info())
        threading.Thread(target=self._heartbeat, args=(path,), daemon=True).start()
        self._held = path
        return True

    @staticmethod
    def _read(path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _stale(self, path: Path) -> bool:
        info = self._read(path) or {}
        if info.get("host") == socket.gethostname():
            try:
                os.kill(int(info.get("pid", 0)), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError):
                return False
            return False
        try:
            return time.time() - path.stat().st_mtime > STALE_S
        except FileNotFoundError:
            return True

    def _heartbeat(self, path: Path) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(path)
            except OSError:
                return

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
        if self._fallback and self._held:
            self._stop.set()
            self._held.unlink(missing_ok=True)
            self._held = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
