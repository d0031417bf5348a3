"""pytest configuration: shared fixtures, and CI's rule that nothing skips.

With ``VIDCAP_NO_SKIP=1`` (``.ci/run`` sets it) a skipped test fails the session unless it is on
``ALLOWED_SKIPS`` below: only what truly cannot run on CI's machine. Shared helpers live in
``tests/helpers.py``.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers import make_bad_inputs

# Markers whose tests may skip in CI, each with the reason it cannot run there.
ALLOWED_SKIPS = {
    "gpu": "needs a real NVIDIA GPU; CI machines have none (run on a lent GPU machine: bench/caption/gpu.py)",
}


@pytest.fixture
def bad_inputs(tmp_path):
    root = tmp_path / "media"
    return root, make_bad_inputs(root)


def pytest_collection_modifyitems(config, items):
    config._vidcap_allowed = {item.nodeid for item in items
                              if any(item.get_closest_marker(m) for m in ALLOWED_SKIPS)}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if os.environ.get("VIDCAP_NO_SKIP") != "1":
        return
    allowed = getattr(config, "_vidcap_allowed", set())
    bad = [r for r in terminalreporter.stats.get("skipped", []) if r.nodeid not in allowed]
    if bad:
        terminalreporter.write_sep("=", f"{len(bad)} test(s) skipped that CI must run (VIDCAP_NO_SKIP=1)", red=True)
        for r in bad:
            reason = r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr)
            terminalreporter.write_line(f"SKIPPED {r.nodeid}: {reason}")
        config._vidcap_bad_skips = len(bad)


def pytest_sessionfinish(session, exitstatus):
    if getattr(session.config, "_vidcap_bad_skips", 0) and session.exitstatus == 0:
        session.exitstatus = 1
