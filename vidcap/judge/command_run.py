"""``vidcap judge`` without ``--shard``: judge the pairs of one input kind (flags: ``vidcap.judge.command``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidcap.judge import run as judge_run
from vidcap.judge.columns import from_stage_table
from vidcap.judge.command import judge_settings
from vidcap.judge.summary import format_category_table, order_agreement


def run(args: argparse.Namespace) -> int:
    """Judge the pairs of one input kind into ``--output``; 2 (with one ``vidcap judge: error:`` line)
    for a missing or ambiguous input, else 0 after printing the category table and a summary line."""
    if not args.output:
        print("vidcap judge: error: give -o/--output (a folder)", file=sys.stderr)
        return 2

    given = [m for m, on in (("answers", args.answers_a or args.answers_b), ("table", args.table),
                             ("runs", args.run_a or args.run_b), ("run", args.run)) if on]
    if len(given) != 1:
        print("vidcap judge: error: give one input: --answers-a/--answers-b [--questions], --table with "
              "--column-a/--column-b, --run-a/--run-b, or --run with --reference", file=sys.stderr)
        return 2
    if given == ["answers"]:
        if not (args.answers_a and args.answers_b):
            print("vidcap judge: error: --answers-a and --answers-b go together", file=sys.stderr)
            return 2
        pairs = judge_run.pairs_from_answers(args.answers_a, args.answers_b, args.questions, args.media_base_path,
                                             args.bad_lines)
    elif given == ["table"]:
        if not (args.column_a and args.column_b):
            print("vidcap judge: error: --table needs --column-a and --column-b", file=sys.stderr)
            return 2
        pairs = judge_run.pairs_from_table(args.table, args.column_a, args.column_b, args.question_column,
                                           key_column=args.key_column, media_root=args.media_base_path)
    elif given == ["runs"]:
        if not (args.run_a and args.run_b):
            print("vidcap judge: error: --run-a and --run-b go together", file=sys.stderr)
            return 2
        pairs = judge_run.pairs_from_runs(args.run_a, args.run_b, args.column, args.question_column or "prompt")
    else:
        if not args.reference:
            print("vidcap judge: error: --run needs --reference ANSWERS.jsonl", file=sys.stderr)
            return 2
        pairs = judge_run.pairs_from_run(args.run, args.reference, args.column, args.question_column or "prompt",
                                         args.bad_lines)
    settings = judge_settings(args.configfile, args.params, args.rules, args.rule, args.one_order)
    est = judge_run.estimate_folder(pairs, args.output, settings, sample=args.estimate or 0, seed=args.seed)
    print(judge_run.format_estimate(est), file=sys.stderr if not args.estimate else sys.stdout)
    if args.estimate:
        return 0
    rows, cats = judge_run.judge_folder(pairs, args.output, settings, retry_failed=args.retry_failed)
    agree = order_agreement(from_stage_table(rows))
    print(format_category_table(cats, "A", "B"))
    failed = int((rows["judge_error"].fillna("") != "").sum())
    share = "-" if agree["share"] is None else f"{100 * agree['share']:.1f}% of {agree['pairs']} pairs"
    print(f"\n{len(rows)} pairs, {failed} with judge_error; order agreement {share}; "
          f"rows in {Path(args.output) / 'judge.csv'}, categories in {Path(args.output) / 'categories.csv'}")
    return 0
