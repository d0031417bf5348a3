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


# Tests that must not run beside their own kind, with the order they start in. `make test` runs pytest
# with three workers (pytest-xdist, --dist loadgroup): the SLURM tests, which mostly wait on the
# scheduler, go first as one group on one worker while the other workers run the rest; the engine
# tests share one vLLM model folder and look for leftover engine processes, so they run one at a time.
SERIAL_GROUPS = ("slurm", "engine")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    rank = {}
    for item in items:
        group = next((g for g in SERIAL_GROUPS if item.get_closest_marker(g)), None)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
        rank[item.nodeid] = SERIAL_GROUPS.index(group) if group else len(SERIAL_GROUPS)
    items.sort(key=lambda item: rank[item.nodeid])  # stable: file order within each rank


def _bad_skips(config) -> list:
    """Skipped tests outside ALLOWED_SKIPS, from the terminal reporter's reports (on pytest-xdist's
    controller these include every worker's; a report's keywords hold its test's marks)."""
    if os.environ.get("VIDCAP_NO_SKIP") != "1":
        return []
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    return [r for r in skipped if not any(mark in getattr(r, "keywords", {}) for mark in ALLOWED_SKIPS)]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Fail the run (exit status 1) when a test skipped that CI must run; pytest-xdist workers leave
    it to the controller."""
    if hasattr(session.config, "workerinput"):
        return
    if _bad_skips(session.config) and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bad = _bad_skips(config)
    if bad:
        terminalreporter.write_sep("=", f"{len(bad)} test(s) skipped that CI must run (VIDCAP_NO_SKIP=1)", red=True)
        for r in bad:
            reason = r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr)
            terminalreporter.write_line(f"SKIPPED {r.nodeid}: {reason}")
