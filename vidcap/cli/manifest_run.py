"""What ``vidcap manifest``, ``merge``, ``diff`` and ``shard`` run (their flags: ``vidcap.cli.manifest``)."""
from __future__ import annotations

import logging
from pathlib import Path

from vidcap.io.manifest import difference, merge, scan
from vidcap.io.run_dir import RunDir
from vidcap.io.shards import make_shards
from vidcap.io.tables import write_table
from vidcap.stages.journal import carry_journals


def cmd_manifest(args) -> int:
    df = scan(args.root, kind=args.kind)
    write_table(df, args.output)
    logging.info("%d %s files under %s -> %s", len(df), args.kind, args.root, args.output)
    return 0


def cmd_merge(args) -> int:
    df, dropped = merge(args.tables, duplicates=args.duplicates)
    write_table(df, args.output)
    logging.info("%d rows from %d tables (%d repeated paths dropped) -> %s",
                 len(df), len(args.tables), dropped, args.output)
    return 0


def cmd_diff(args) -> int:
    df = difference(args.table, args.subtract)
    write_table(df, args.output)
    logging.info("%d rows of %s not in %s -> %s", len(df), args.table, args.subtract, args.output)
    return 0


def cmd_shard(args) -> int:
    run = RunDir.at(Path(args.outdir).parent)
    written = make_shards(args.manifest, args.outdir, args.shard_size, args.media_root, bad_lines=args.bad_lines,
                          expect_rows=args.expect_rows, workers=args.workers)
    logging.info("%d shards in %s", len(written), args.outdir)
    moved = carry_journals(run.root / "journal", args.outdir)
    for stage, n in moved.items():
        logging.info("%s: %d journaled rows now belong to other shards: moved with them", stage, n)
    return 0
