"""The supervisor of an engine server: ``python -m vidcap.llm.supervisor --log LOG --grace S -- CMD...``.

Started by ``vidcap.llm.engine.EngineServer`` with our interpreter; stdlib only (it imports nothing
of vidcap's). It leads its own process group (the caller starts it in a new session),
runs ``CMD`` with stdout and stderr appended to ``LOG``, prints the server's pid on its stdout once
started, and tears the whole group down -- SIGTERM, then SIGKILL after ``S`` seconds -- when (a) a line
with ``stop`` arrives on its stdin (or stdin closes), (b) its parent is gone, even by SIGKILL (it polls
``getppid()`` every 0.2 s), (c) it gets SIGTERM/SIGINT/SIGHUP or (d) the server exits by itself. The
server gets ``PR_SET_PDEATHSIG(SIGKILL)`` tied to the supervisor. Its exit code is the server's exit
status (128 + N when a signal N killed it, as shells say); 127 when the server cannot start.
"""
from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time


def describe_status(code: int) -> str:
    """A process status in words: ``exit code N`` or ``killed by SIGNAME``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def server_status(supervisor_code: int) -> int:
    """The server's status from the supervisor's exit code (128 + N = killed by signal N, as shells say)."""
    return -(supervisor_code - 128) if 128 < supervisor_code < 128 + 65 else supervisor_code


def kill_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid`` (gone or not ours: nothing to do)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid`` other than this one (Linux /proc)."""
    me, out = os.getpid(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()   # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _pdeathsig_kill() -> None:
    """preexec_fn of the server: SIGKILL it when the supervisor dies (Linux prctl; best effort)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def supervise(argv: list[str]) -> int:
    """Run ``argv`` (after ``--``) in this process group and tear the group down when told to, when the
    parent dies or when the server exits. Returns the server's exit status (128 + signal if killed)."""
    log_path, grace = None, 20.0
    while argv and argv[0] != "--":
        opt, value, argv = argv[0], argv[1], argv[2:]
        if opt == "--log":
            log_path = value
        elif opt == "--grace":
            grace = float(value)
    cmd = argv[1:]
    parent = os.getppid()
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.append(1))
    out = open(log_path, "ab") if log_path else None
    try:
        server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out if out is not None else subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT,
                                  preexec_fn=_pdeathsig_kill, close_fds=True)
    except OSError as exc:
        if out is not None:
            out.write(f"==== vidcap: cannot start the engine: {exc}\n".encode())
        return 127
    print(server.pid, flush=True)
    why = ""
    while not why:
        if server.poll() is not None:
            why = f"server exited ({describe_status(server.returncode)})"
        elif os.getppid() != parent:
            why = "vidcap process gone"
        elif stopping:
            why = "signalled"
        else:
            try:
                ready, _, _ = select.select([sys.stdin.fileno()], [], [], 0.2)
            except InterruptedError:
                continue
            if ready:
                data = os.read(sys.stdin.fileno(), 64)
                if not data or b"stop" in data:
                    why = "asked to stop" if data else "control pipe closed"
    pgid = os.getpgrp()
    members = _group_members(pgid)
    if members:
        _signal_all(members, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while members and time.monotonic() < deadline:
            server.poll()                      # reap our child so it does not linger as a zombie
            time.sleep(0.1)
            members = _group_members(pgid)
        if members:
            _signal_all(members, signal.SIGKILL)
    rc = server.wait()
    if out is not None:
        status = "" if why.startswith("server exited") else f"; server {describe_status(rc)}"
        out.write(f"==== vidcap: engine stopped: {why}{status}\n".encode())
        out.close()
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(supervise(sys.argv[1:]))
