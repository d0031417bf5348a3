"""Readers of runs and configs: ``vidcap cost``, ``report``, ``estimate`` and ``compare``."""
from __future__ import annotations

import argparse

from vidcap.cli.lazy import handler


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cost", help="tokens and cost per shard and per run of the caption stage")
    p.add_argument("run_dir", help="the run folder, results/<name>")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=handler("vidcap.cli.report_run:cmd_cost"))

    p = sub.add_parser("report", help="self-contained HTML report of a run: gallery, distributions, "
                                      "throughput, failures, provenance (docs/report.md)")
    p.add_argument("run_dir", help="the run folder, results/<name>")
    p.add_argument("-o", "--output", default=None, help="default <results_dir>/<name>.report.html")
    p.add_argument("--table", default=None, help="merged table (default <results_dir>/<name>.parquet)")
    p.add_argument("--configfile", default=None, help="the run's config YAML (default: RUN_DIR/config.json "
                                                      "saved by the workflow's report rule)")
    for opt in ("sample", "worst", "thumbnails", "thumb-size", "top-k", "seed"):
        p.add_argument(f"--{opt}", type=int, default=None, help="default: the config's report block")
    p.add_argument("--threads", type=int, default=2, help="thumbnail decoding threads")
    p.set_defaults(func=handler("vidcap.cli.report_run:cmd_report"))

    p = sub.add_parser("estimate", help="caption a sample for real; project cost and time of the whole manifest")
    p.add_argument("--configfile", required=True)
    p.add_argument("--sample", type=int, default=8, help="rows to sample (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="caption jobs that will run at the same time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=handler("vidcap.cli.report_run:cmd_estimate"))

    p = sub.add_parser("compare", help="caption N sampled rows with two configs and judge them with the caption "
                                       "rubric (table, per-category scores, HTML side by side)")
    p.add_argument("config_a", help="workflow config A (the reference; its manifest is sampled)")
    p.add_argument("config_b", help="workflow config B (the candidate)")
    p.add_argument("--sample", type=int, required=True, help="rows to sample from A's manifest")
    p.add_argument("-o", "--output", required=True, help="folder for captions, judge files, compare.csv and the report")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--judge-config", default=None, help="YAML with the judge's settings (default: A's stages.judge)")
    p.add_argument("--params", default=None, help="judge settings as JSON, over the judge config's")
    p.add_argument("--rules", default=None, help="your rules file; its caption rule replaces ours")
    p.add_argument("--one-order", action="store_true", help="judge in order (A, B) only")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(func=handler("vidcap.cli.report_run:cmd_compare"))
