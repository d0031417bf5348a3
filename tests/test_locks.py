"""vidcap.io.locks: a holder whose lock file disappears (the run folder moved or cleaned, a damaged file set
aside) keeps working: only a file that names another holding means the lock was taken over."""
import os
import subprocess
import sys
import textwrap
import time

from tests.helpers import REPO


def test_a_removed_lock_file_is_not_a_takeover(tmp_path):
    lock = tmp_path / "run.lock"
    script = textwrap.dedent(f"""
        import time
        from vidcap.io.locks import FileLock
        FileLock({str(lock)!r}, what="test").acquire(wait_s=0)
        print("held", flush=True)
        time.sleep(1.5)
        print("done", flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "VIDCAP_LOCK_LEASE_S": "0.6"}   # a beat every 0.1 s
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    lock.unlink()
    time.sleep(0.2)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "done" in out, err
    assert "taken over" not in err
