"""CI's rule that nothing skips (tests/conftest.py, VIDCAP_NO_SKIP=1): a skip outside the allow-list fails
the run, also under pytest-xdist as `make test` runs it; an allowed (gpu) skip does not."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO

CASES = {
    "plain": ("def test_skips():\n    pytest.skip('nope')\n", 1),
    "gpu": ("@pytest.mark.gpu\ndef test_skips():\n    pytest.skip('no gpu')\n", 0),
}


@pytest.mark.parametrize("workers", [[], ["-n", "2", "--dist", "loadgroup"]], ids=["serial", "xdist"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_skip_outside_allow_list_fails_the_run(tmp_path, case, workers):
    body, want = CASES[case]
    suite = tmp_path / "tests"
    suite.mkdir()
    shutil.copy(REPO / "tests" / "conftest.py", suite / "conftest.py")
    (suite / "test_one.py").write_text(f"import pytest\n\n\ndef test_runs():\n    pass\n\n\n{body}")
    env = {**os.environ, "VIDCAP_NO_SKIP": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
                           "--rootdir", str(tmp_path), *workers, str(suite)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == want, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert ("skipped that CI must run" in proc.stdout) == bool(want)
