"""The ``vidcap`` command line: ``main(argv) -> exit code`` (the ``vidcap`` script, ``python -m vidcap``).

``main`` (module ``vidcap.cli.main``) assembles the parser and handles errors; each command group is a
module: ``manifest`` (manifest, merge, diff, shard), ``workflow`` (the per-stage jobs, gather, status,
run), ``report`` (cost, report, estimate, compare), ``dev`` (demo, tiny-model). The per-stage commands
come from the stage registry (``vidcap.stages.REGISTRY``): the cli names no stage.
"""
from vidcap.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
