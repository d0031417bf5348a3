"""``vidcap filter RESULTS -o kept.parquet --where "..."``: keep the rows of a run that satisfy a condition
(``vidcap.filter``; the language: ``docs/scores.md``)."""
from __future__ import annotations

import argparse

from vidcap.cli.lazy import handler


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("filter", help="keep the rows of a finished run that satisfy a condition (docs/scores.md)",
                       description="Keep the rows of a run's merged table where --where holds; the output is a "
                       "manifest for the next run (relative paths made absolute). Prints, and writes next to "
                       "the output as <stem>.filter.json, how many rows each `and` term removed.")
    p.add_argument("results", help="run folder, its merged .parquet, or a Parquet file/folder")
    p.add_argument("-o", "--output", required=True, help="kept rows: .parquet or .csv")
    p.add_argument("--where", required=True,
                   help="e.g. \"aesthetic >= 4.5 and motion_flow >= 0.5 and cmotion != 'unclassified'\"")
    p.add_argument("--media-root", default=None,
                   help="folder relative paths resolve against (default: the run's own media folder)")
    p.add_argument("--batch-size", type=int, default=65_536, help="rows read at a time")
    p.set_defaults(func=handler("vidcap.cli.filter_run:cmd_filter"))
