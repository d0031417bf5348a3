"""Dev-only commands: ``vidcap demo`` (demo media and manifest) and ``tiny-model`` (random-weight model
folders for tests and the demo; no download)."""
from __future__ import annotations

import argparse
import sys

from vidcap.cli.lazy import handler
from vidcap.dev.tiny_family import ALL_FAMILIES, build_family


def cmd_tiny_model(args) -> int:
    if args.family not in ALL_FAMILIES:
        print(f"vidcap tiny-model: error: unknown family {args.family!r}; known: {', '.join(ALL_FAMILIES)}", file=sys.stderr)
        return 2
    print(build_family(args.family, args.outdir, max_position_embeddings=args.max_position_embeddings,
                       force=args.force, size=args.size))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="write demo clips, images, bad files and a manifest under ROOT")
    p.add_argument("root", help="folder to write (created; demo/ in the README)")
    p.set_defaults(func=handler("vidcap.cli.dev_run:cmd_demo"))

    p = sub.add_parser("tiny-model", help="write a tiny random-weight model folder (tests, demo; no download)")
    p.add_argument("family", help="model family, e.g. qwen2_5_vl, qwen2_vl, llava, qwen2, pllava (vidcap.dev.tiny_family)")
    p.add_argument("outdir", help="folder to write the model to")
    p.add_argument("--max-position-embeddings", type=int, default=4096, help="the text model's context")
    p.add_argument("--force", action="store_true", help="rebuild even when the folder is up to date")
    p.add_argument("--size", choices=("tiny", "engine", "7b", "13b"), default="tiny",
                   help="tiny (tests), engine (head_dim 32: vLLM's CPU build), 7b/13b (benchmarks; 13b: pllava only)")
    p.set_defaults(func=cmd_tiny_model)
