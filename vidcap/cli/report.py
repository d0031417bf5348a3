"""Readers of runs and configs: ``vidcap cost``, ``report``, ``estimate`` and ``compare``."""
from __future__ import annotations

import argparse
import json
import sys

import yaml

from vidcap.config import validate_config
from vidcap.errors import RunnerFatal
from vidcap.judge.command import judge_settings


def cmd_cost(args) -> int:
    # pandas/pyarrow: loaded only when the command runs, not for every `vidcap` call (also below)
    from vidcap.caption.cost import format_cost, run_cost

    summary = run_cost(args.run_dir)
    print(json.dumps(summary, indent=1) if args.json else format_cost(summary))
    return 0


def cmd_report(args) -> int:
    from vidcap.report import build_report

    config = None
    if args.configfile:
        with open(args.configfile, encoding="utf-8") as fh:
            config = validate_config(yaml.safe_load(fh))
    out = build_report(args.run_dir, out=args.output, table=args.table, config=config, threads=args.threads,
                       sample=args.sample, worst=args.worst, thumbnails=args.thumbnails,
                       thumb_size=args.thumb_size, top_k=args.top_k, seed=args.seed)
    print(out)
    return 0


def cmd_estimate(args) -> int:
    from vidcap.caption.cost import estimate, format_estimate

    with open(args.configfile, encoding="utf-8") as fh:
        config = validate_config(yaml.safe_load(fh))
    try:
        result = estimate(config, sample=args.sample, seed=args.seed, jobs=args.jobs)
    except RunnerFatal as exc:
        print(f"vidcap estimate: error: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=1, default=str) if args.json else format_estimate(result))
    return 0


def cmd_compare(args) -> int:
    from vidcap.compare import compare, format_compare

    judge = judge_settings(args.judge_config, args.params, args.rules, None, args.one_order) \
        if (args.judge_config or args.params or args.rules or args.one_order) else None
    result = compare(args.config_a, args.config_b, sample=args.sample, out=args.output, seed=args.seed, judge=judge,
                     report=not args.no_report)
    print(format_compare(result))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cost", help="tokens and cost per shard and per run of the caption stage")
    p.add_argument("run_dir", help="the run folder, results/<name>")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cost)

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
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("estimate", help="caption a sample for real; project cost and time of the whole manifest")
    p.add_argument("--configfile", required=True)
    p.add_argument("--sample", type=int, default=8, help="rows to sample (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="caption jobs that will run at the same time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_estimate)

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
    p.set_defaults(func=cmd_compare)
