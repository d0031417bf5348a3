"""What ``vidcap demo`` runs (its flags: ``vidcap.cli.dev``)."""
from __future__ import annotations

from vidcap.dev.demo import make_demo


def cmd_demo(args) -> int:
    manifest = make_demo(args.root)
    print(manifest)
    return 0
