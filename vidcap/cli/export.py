"""``vidcap export webdataset RUN --to DEST``: a finished run's rows as WebDataset tar shards."""
from __future__ import annotations

import argparse
import json
import logging


def cmd_webdataset(args) -> int:
    from vidcap.errors import ConfigError
    from vidcap.export.webdataset import export_webdataset, parse_size

    try:
        parse_size(args.shard_size)
    except ValueError as exc:
        raise ConfigError(f"--shard-size: {exc}") from None
    stats = export_webdataset(args.run, args.to, args.shard_size, text_column=args.text_column,
                              media_root=args.media_root)
    logging.info("%s", json.dumps(stats))
    print(json.dumps(stats, indent=1))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a finished run's rows in another format (webdataset)")
    formats = p.add_subparsers(dest="format", required=True)
    w = formats.add_parser("webdataset", help="WebDataset tar shards (clip, .json, .txt per row), docs/storage.md")
    w.add_argument("run", help="the run folder results/<name>, its merged .parquet, or a Parquet folder")
    w.add_argument("--to", required=True, help="destination folder or object-store prefix (s3://bucket/prefix/)")
    w.add_argument("--shard-size", default="500MB", help="target bytes per shard, e.g. 500MB, 2GB (default 500MB)")
    w.add_argument("--text-column", default="text", help="the column written as <key>.txt (default: text)")
    w.add_argument("--media-root", default=None,
                   help="where relative paths point (default: the run's media base)")
    w.set_defaults(func=cmd_webdataset)
