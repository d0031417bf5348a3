"""``vidcap export webdataset RUN --to DEST``: a finished run's rows as WebDataset tar shards."""
from __future__ import annotations

import argparse

from vidcap.cli.lazy import handler


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
    w.set_defaults(func=handler("vidcap.cli.export_run:cmd_webdataset"))
