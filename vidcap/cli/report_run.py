"""What ``vidcap cost``, ``report``, ``estimate`` and ``compare`` run (their flags: ``vidcap.cli.report``)."""
from __future__ import annotations

import json
import sys

import yaml

from vidcap.caption.cost import estimate, format_cost, format_estimate, run_cost
from vidcap.compare import compare, format_compare
from vidcap.config import validate_config
from vidcap.errors import RunnerFatal
from vidcap.judge.command import judge_settings
from vidcap.report import build_report


def cmd_cost(args) -> int:
    summary = run_cost(args.run_dir)
    print(json.dumps(summary, indent=1) if args.json else format_cost(summary))
    return 0


def cmd_report(args) -> int:
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
    judge = judge_settings(args.judge_config, args.params, args.rules, None, args.one_order) \
        if (args.judge_config or args.params or args.rules or args.one_order) else None
    result = compare(args.config_a, args.config_b, sample=args.sample, out=args.output, seed=args.seed, judge=judge,
                     report=not args.no_report)
    print(format_compare(result))
    return 0
