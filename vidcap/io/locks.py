"""Exclusive locks on files of a run folder (possibly on a filesystem shared by hosts), holder named.

``FileLock(path, what)``: ``acquire(wait_s)`` takes an exclusive ``flock`` on ``path`` and writes who
holds it (host, pid, start time, working directory, ``what``, lease) into the file; the OS drops the
lock when the holder exits or is killed, so a lock is never left behind by a dead process on this
host. On a filesystem without ``flock`` (some Lustre/NFS mounts) it falls back to creating
``path.held`` exclusively (``O_EXCL``); ``$VIDCAP_LOCK_MODE=files`` chooses that from the start (for
mounts whose ``flock`` is local to each client, e.g. NFS with ``local_lock=flock``).

Lease: while held, a thread touches the lock file (its mtime) every lease/6 seconds. A lock held by
another host whose file was not touched for the lease (``$VIDCAP_LOCK_LEASE_S``, default
``LEASE_S`` = 180 s; the holder's own lease, recorded in the file, wins) is stale: its host died or
hung while the shared filesystem still holds the lock for it (NFSv3 keeps a dead client's locks).
Not touched means either its mtime is older than the lease by this host's clock, or this process
saw the same mtime for a whole lease on its own monotonic clock (immune to clock skew). A stale lock
is taken over: the lock file is removed (only if it still names the holding judged stale: each
holding writes a random token; one breaker at a time under ``path.break`` where flock works) and a
fresh one locked. A lock of this host is judged by its pid instead (fallback mode only; a
held ``flock`` of this host always has a live holder). A holder whose lock file was replaced (it was
judged stale, e.g. after hanging longer than the lease) exits at once with status 75 rather than
work beside the new holder.

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
import uuid
from pathlib import Path

log = logging.getLogger("vidcap.io.locks")

LEASE_S = 180.0
EXIT_LOCK_LOST = 75
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class LockBusy(RuntimeError):
    """The lock is held by someone else; the message names the holder."""

    def __init__(self, path: Path, holder: dict | None):
        self.path, self.holder = path, holder or {}
        super().__init__(f"{path} is held by {describe_holder(self.holder)}")


def lease_s() -> float:
    """The lease of locks taken by this process: ``$VIDCAP_LOCK_LEASE_S`` seconds, else ``LEASE_S``."""
    raw = os.environ.get("VIDCAP_LOCK_LEASE_S", "")
    if raw == "":
        return LEASE_S
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(f"VIDCAP_LOCK_LEASE_S={raw!r}: expected a number of seconds > 0")
    return value


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
        self._fallback = os.environ.get("VIDCAP_LOCK_MODE", "") == "files"
        self._stop = threading.Event()
        self.lease = lease_s()
        self._seen: tuple | None = None  # ((token, inode, mtime_ns), monotonic time first seen) of a held lock
        self._token = ""

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None

    def _info(self) -> str:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                           "cwd": os.getcwd(), "what": self.what, "lease_s": self.lease,
                           "token": self._token})

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
        self._token = uuid.uuid4().hex  # names this holding in the lock file
        for _ in range(3):  # again at once after taking over a stale lock or losing a race for the file
            if self._fallback:
                return self._try_exclusive()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                st = os.fstat(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    stale = self._stale_token(self.path, st, same_host_alive=True)
                    if stale is not None:
                        self._break(self.path, stale)
                        continue
                    return False
                if exc.errno not in _NO_FLOCK:
                    raise
                log.warning("%s: no flock on this filesystem (%s); using lock files", self.path, exc)
                self._fallback = True
                continue
            if not _is_file(fd, self.path):  # removed as stale between our open and flock: not the lock
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, self._info().encode())
            os.fsync(fd)
            self._fd = fd
            self._beat(self.path)
            return True
        return False

    def _beat(self, path: Path) -> None:
        self._stop = threading.Event()  # one per holding: a released holding's thread stays stopped
        threading.Thread(target=self._heartbeat, args=(path, self._token, self._stop), daemon=True,
                         name=f"lease {path.name}").start()

    def _stale_token(self, path: Path, st: os.stat_result, same_host_alive: bool = False) -> str | None:
        """The token of the holding in ``path`` (``st``: its stat) when it is stale (module docstring),
        else None."""
        info = self._read(path) or {}
        token = str(info.get("token", ""))
        if info.get("host") == socket.gethostname():
            if same_host_alive:
                return None
            try:
                os.kill(int(info.get("pid", 0)), 0)
            except ProcessLookupError:
                return token
            except (PermissionError, ValueError):
                return None
            return None
        try:
            lease = float(info.get("lease_s") or self.lease)
        except (TypeError, ValueError):
            lease = self.lease
        if time.time() - st.st_mtime > lease:
            return token
        key, now = (token, st.st_ino, st.st_mtime_ns), time.monotonic()
        if self._seen is None or self._seen[0] != key:
            self._seen = (key, now)
        return token if now - self._seen[1] > lease else None

    def _break(self, path: Path, token: str) -> None:
        """Remove the stale lock file ``path`` if it still holds the holding (``token``) judged stale;
        one breaker at a time where ``flock`` works (on ``path.break``, held for microseconds)."""
        guard = os.open(path.with_name(path.name + ".break"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in _NO_FLOCK:
                    return  # another breaker is at it
            info = self._read(path)
            if info is None or str(info.get("token", "")) != token:
                return  # gone, or already someone else's
            log.warning("%s: taking over a stale lock (no heartbeat for its lease) of %s", path,
                        describe_holder(info))
            path.unlink(missing_ok=True)
        finally:
            os.close(guard)

    def _try_exclusive(self) -> bool:
        path = self.path.with_name(self.path.name + ".held")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return self._try_exclusive()
            stale = self._stale_token(path, st)
            if stale is None:
                return False
            self._break(path, stale)
            return self._try_exclusive()
        os.write(fd, self._info().encode())
        os.close(fd)
        self.path.write_text(self._info())
        self._held = path
        self._beat(path)
        return True

    @staticmethod
    def _read(path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _heartbeat(self, path: Path, token: str, stop: threading.Event) -> None:
        """Touch the lock file every lease/6 s; exit the process if it was replaced (judged stale)."""
        while not stop.wait(self.lease / 6):
            try:
                text = path.read_text()
                if not text:
                    continue  # being written by a new holder: judged at the next beat
                lost = json.loads(text).get("token") != token
                if not lost:
                    os.utime(path)
            except FileNotFoundError:
                log.debug("%s: lock file gone at a heartbeat", path)
                # removed, not taken over (a takeover writes a new holding's token): the run folder was
                # moved or cleaned; judged again at the next beat
                continue
            except (OSError, ValueError):
                continue  # a filesystem hiccup or a half-written file: try again at the next beat
            if lost and not stop.is_set():
                log.critical("%s: this lock was taken over as stale (no heartbeat for %.0f s); exiting "
                             "rather than work beside the new holder", path, self.lease)
                logging.shutdown()
                os._exit(EXIT_LOCK_LOST)

    def release(self) -> None:
        self._stop.set()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
        if self._fallback and self._held:
            self._held.unlink(missing_ok=True)
            self._held = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _is_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` still is the file at ``path``."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
