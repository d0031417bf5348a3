"""Table tools: ``vidcap manifest``, ``merge``, ``diff`` (Open-Sora datautil's) and ``shard``."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vidcap.io.run_dir import RunDir


def cmd_manifest(args) -> int:
    # pandas/pyarrow: loaded only when the command runs, not for every `vidcap` call (also below)
    from vidcap.io.manifest import scan
    from vidcap.io.tables import write_table

    df = scan(args.root, kind=args.kind)
    write_table(df, args.output)
    logging.info("%d %s files under %s -> %s", len(df), args.kind, args.root, args.output)
    return 0


def cmd_merge(args) -> int:
    from vidcap.io.manifest import merge
    from vidcap.io.tables import write_table

    df, dropped = merge(args.tables, duplicates=args.duplicates)
    write_table(df, args.output)
    logging.info("%d rows from %d tables (%d repeated paths dropped) -> %s",
                 len(df), len(args.tables), dropped, args.output)
    return 0


def cmd_diff(args) -> int:
    from vidcap.io.manifest import difference
    from vidcap.io.tables import write_table

    df = difference(args.table, args.subtract)
    write_table(df, args.output)
    logging.info("%d rows of %s not in %s -> %s", len(df), args.table, args.subtract, args.output)
    return 0


def cmd_shard(args) -> int:
    from vidcap.io.shards import make_shards
    from vidcap.stages.journal import carry_journals

    run = RunDir.at(Path(args.outdir).parent)
    written = make_shards(args.manifest, args.outdir, args.shard_size, args.media_root, bad_lines=args.bad_lines,
                          expect_rows=args.expect_rows, workers=args.workers)
    logging.info("%d shards in %s", len(written), args.outdir)
    moved = carry_journals(run.root / "journal", args.outdir)
    for stage, n in moved.items():
        logging.info("%s: %d journaled rows now belong to other shards: moved with them", stage, n)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("manifest", help="scan a folder or a bucket prefix recursively into a path,id,relpath table")
    p.add_argument("root", help="folder scanned recursively for media files, or an object-store prefix (s3://bucket/prefix/)")
    p.add_argument("-o", "--output", required=True, help="the manifest to write: .csv or .parquet")
    p.add_argument("--kind", choices=("video", "image", "all"), default="video",
                   help="which files to list, told by extension (default: video)")
    p.set_defaults(func=cmd_manifest)

    p = sub.add_parser("merge", help="concatenate tables keyed by path (Open-Sora datautil merge)")
    p.add_argument("tables", nargs="+", help="part tables (.csv or .parquet) with a path column")
    p.add_argument("-o", "--output", required=True, help="the merged table: .csv or .parquet")
    p.add_argument("--duplicates", choices=("keep-first", "keep-last", "keep-all", "error"),
                   default="keep-first", help="what to do with a path found more than once")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("diff", help="rows of TABLE whose path is not in SUBTRACT (datautil --difference)")
    p.add_argument("table", help="table whose rows are kept when their path is not in SUBTRACT")
    p.add_argument("subtract", help="table of paths already done")
    p.add_argument("-o", "--output", required=True, help="the rows left to do: .csv or .parquet")
    p.set_defaults(func=cmd_diff)

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
    p.set_defaults(func=cmd_shard)
