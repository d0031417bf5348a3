"""Table tools: ``vidcap manifest``, ``merge``, ``diff`` (Open-Sora datautil's) and ``shard``."""
from __future__ import annotations

import argparse

from vidcap.cli.lazy import handler


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("manifest", help="scan a folder or a bucket prefix recursively into a path,id,relpath table")
    p.add_argument("root", help="folder scanned recursively for media files, or an object-store prefix (s3://bucket/prefix/)")
    p.add_argument("-o", "--output", required=True, help="the manifest to write: .csv or .parquet")
    p.add_argument("--kind", choices=("video", "image", "all"), default="video",
                   help="which files to list, told by extension (default: video)")
    p.set_defaults(func=handler("vidcap.cli.manifest_run:cmd_manifest"))

    p = sub.add_parser("merge", help="concatenate tables keyed by path (Open-Sora datautil merge)")
    p.add_argument("tables", nargs="+", help="part tables (.csv or .parquet) with a path column")
    p.add_argument("-o", "--output", required=True, help="the merged table: .csv or .parquet")
    p.add_argument("--duplicates", choices=("keep-first", "keep-last", "keep-all", "error"),
                   default="keep-first", help="what to do with a path found more than once")
    p.set_defaults(func=handler("vidcap.cli.manifest_run:cmd_merge"))

    p = sub.add_parser("diff", help="rows of TABLE whose path is not in SUBTRACT (datautil --difference)")
    p.add_argument("table", help="table whose rows are kept when their path is not in SUBTRACT")
    p.add_argument("subtract", help="table of paths already done")
    p.add_argument("-o", "--output", required=True, help="the rows left to do: .csv or .parquet")
    p.set_defaults(func=handler("vidcap.cli.manifest_run:cmd_diff"))

    p = sub.add_parser("shard", help="split a manifest into shards with stable row ids")
    p.add_argument("--manifest", required=True, help="CSV/Parquet table with a path column")
    p.add_argument("--outdir", required=True, help="folder for <shard>.parquet and manifest.json")
    p.add_argument("--shard-size", type=int, required=True, help="rows per shard")
    p.add_argument("--expect-rows", type=int, help="rows the run was planned for (another count: an error)")
    p.add_argument("--workers", type=int, default=1, help="processes hashing row ids (from 1 M expected rows)")
    p.add_argument("--media-root", default=None,
                   help="folder relative paths resolve against (default: the manifest's folder)")
    p.add_argument("--bad-lines", choices=("fail", "report"), default="fail",
                   help="a prompt-file manifest's bad lines: stop (default), or skip them, listed in manifest.json")
    p.set_defaults(func=handler("vidcap.cli.manifest_run:cmd_shard"))
