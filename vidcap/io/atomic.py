"""The one way vidcap writes a file: ``atomic_path`` (a temporary file in the same folder, renamed over
the target when the block ends without error). No other vidcap import: every writer builds on it."""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp"):
    """The one way vidcap writes a file: yields a temporary path in the same folder; when the block
    ends without error the file is fsynced, given the usual permissions (umask applied, not
    mkstemp's 0600) and renamed over ``path``; on error it is removed. Readers never see half a file.
    ``suffix``: the temporary name's ending (a writer that picks the format from it, e.g. ``.mp4``).
    A full disk raises ``OSError(ENOSPC)`` naming ``path`` (not the temporary name).

    Fault injection for tests: ``VIDCAP_FAULT_ENOSPC=<path>`` makes writing that path fail as on a
    full disk.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if os.environ.get("VIDCAP_FAULT_ENOSPC") and Path(os.environ["VIDCAP_FAULT_ENOSPC"]).resolve() == path.resolve():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
