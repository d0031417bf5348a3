"""Command handlers named ``module:function``, imported when their command runs.

Every ``vidcap`` call builds the whole parser (``--help`` included), so the parser modules
(``vidcap.cli.manifest``, ``report``, ``workflow``, ``dev``) stay light and name each handler by
string; a handler module (``vidcap.cli.<group>_run``) imports what its commands need (pandas,
pyarrow, the stage packages) at its top. The registry's ``StageSpec.target`` works the same way.
"""
from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable


def handler(target: str) -> Callable[[argparse.Namespace], int]:
    """A command's ``func``: imports ``module`` of ``module:function`` and calls the function."""
    module, _, name = target.partition(":")

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), name)(args)

    run.__qualname__ = run.__name__ = f"handler({target})"
    return run
