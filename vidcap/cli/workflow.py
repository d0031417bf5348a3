"""Workflow commands: the per-stage jobs (``vidcap <stage> --shard ...``, one subcommand per registry
entry), ``gather``, ``status`` and ``run``.

A stage whose registry entry names a ``command`` module (``vidcap.stages.StageSpec``) is also a command
of its own: its job flags are optional, the module's ``add_arguments(parser)`` adds the command's flags,
and without ``--shard`` its ``run(args)`` runs instead of the job.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from vidcap.config import validate_config
from vidcap.io.run_dir import RunDir
from vidcap.stages import REGISTRY, get_stage

CHECKOUT = Path(__file__).resolve().parents[2]   # the folder holding vidcap/ (and, in a checkout, the Snakefile)


def cmd_stage(args) -> int:
    # pandas/pyarrow: loaded only when the command runs, not for every `vidcap` call (also below)
    from vidcap.stages.base import run_stage

    if args.params_file:
        params = json.loads(Path(args.params_file).read_text())
    else:
        params = json.loads(args.params) if args.params else {}
    stage = get_stage(args.command, params)
    upstream = dict(item.split("=", 1) for item in args.upstream)
    table = run_stage(stage, args.shard, args.out, args.journal, retry_failed=args.retry_failed,
                      upstream=upstream, stats_path=args.stats)
    failed = sum(1 for e in table.column(stage.error_column).to_pylist() if e)
    logging.info("%s: wrote %d rows (%d failed) to %s", stage.name, table.num_rows, failed, args.out)
    return 0


def _job_or_command(run: Callable[[argparse.Namespace], int], args) -> int:
    """A stage with its own command: with ``--shard`` the stage's job (which needs ``--out`` and
    ``--journal`` too: else 2), without it the command's ``run``."""
    if not args.shard:
        return run(args)
    if not (args.out and args.journal):
        print(f"vidcap {args.command}: error: a stage job needs --shard, --out and --journal", file=sys.stderr)
        return 2
    return cmd_stage(args)


def add_stage_jobs(sub: argparse._SubParsersAction) -> None:
    """One subcommand per registered stage, in registry order."""
    for spec in REGISTRY:
        command = importlib.import_module(spec.command) if spec.command else None
        job = command is None   # else --shard/--out/--journal select the stage job
        p = sub.add_parser(spec.name, help=f"run the {spec.name} stage on one shard: {spec.help}")
        p.add_argument("--shard", required=job, help="the shard table (.parquet) to process")
        p.add_argument("--out", required=job, help="the stage's output table for this shard (.parquet)")
        p.add_argument("--journal", required=job, help="the shard's journal (.jsonl): finished rows")
        p.add_argument("--stats", default=None, help="where the job's stats go (.json)")
        p.add_argument("--params", default="", help="stage settings as a JSON object")
        p.add_argument("--params-file", default=None, help="stage settings in a JSON file (the workflow's)")
        p.add_argument("--retry-failed", action="store_true", help="process rows that failed before again")
        p.add_argument("--upstream", action="append", default=[], metavar="STAGE=PATH",
                       help="another stage's output for this shard, whose columns this stage reads")
        p.set_defaults(func=cmd_stage)
        if command is not None:
            command.add_arguments(p)
            p.set_defaults(func=functools.partial(_job_or_command, command.run))


def cmd_gather(args) -> int:
    from vidcap.gather import gather
    from vidcap.shots.clip_table import gather_clips

    if args.clips:
        gather_clips(RunDir.at(args.run), args.output, args.clips_failed)
        return 0
    answers = None
    if args.answers:
        answers = {"path": args.answers, "text_column": args.answers_text_column, "id_column": args.answers_id_column,
                   "prompt_column": args.answers_prompt_column, "prompt": args.answers_prompt}
    gather(RunDir.at(args.run), args.stage, args.output, duplicates_of=args.duplicates_of, summary_json=args.summary_json,
           summary_csv=args.summary_csv, tag_keys=args.tag_key or None, top_k=args.top_k, answers=answers,
           judge_table=args.judge_table, drop_failed=args.drop_failed)
    return 0


def add_gather(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gather", help="merge shards and stage outputs into the final table")
    p.add_argument("--run", required=True, help="the run folder, results/<name>")
    p.add_argument("--stage", action="append", default=[], help="a stage to merge (repeat, in column order)")
    p.add_argument("-o", "--output", action="append", default=[],
                   help="single-file table to write besides the part files <run>/table/part-*.parquet, "
                        ".csv or .parquet (repeatable)")
    p.add_argument("--duplicates-of", default=None, metavar="COLUMN",
                   help="mark exact duplicate captions of this column in caption_duplicate")
    p.add_argument("--summary-json", default=None, help="write the dataset summary (vidcap.summary) as JSON")
    p.add_argument("--summary-csv", default=None, help="... and as a long-form section,key,value,count CSV")
    p.add_argument("--tag-key", action="append", default=[], metavar="KEY",
                   help="tag column summarised (repeatable; default: objects, actions, other string lists)")
    p.add_argument("--top-k", type=int, default=20, help="values per counted list in the summary")
    p.add_argument("--answers", default=None, metavar="JSONL", help="write the caption answers in NeVA's shape here")
    p.add_argument("--answers-text-column", default="text", help="the answer column (the caption's output_column)")
    p.add_argument("--answers-id-column", default="question_id", help="question ids (row_id when the manifest has none)")
    p.add_argument("--answers-prompt-column", default=None, help="each row's question (stages.caption.prompt_column)")
    p.add_argument("--answers-prompt", default=None, help="the prompt text of every row, without a prompt column")
    p.add_argument("--judge-table", default=None, help="write the judge's per-category table here (.csv)")
    p.add_argument("--drop-failed", action="append", default=[], metavar="STAGE",
                   help="leave out rows this stage failed (stages.caption.keep_failed: false); counted in the summary")
    p.add_argument("--clips", action="store_true",
                   help="the shots step: write the clip table (one row per clip, start/end set) instead")
    p.add_argument("--clips-failed", default=None, help="with --clips: the source rows that gave no clip (.csv)")
    p.set_defaults(func=cmd_gather)


def cmd_status(args) -> int:
    from vidcap.status import format_status, run_status

    print(format_status(run_status(args.run_dir)))
    return 0


def add_status(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="rows done / failed / remaining per stage of a run folder")
    p.add_argument("run_dir", help="the run folder, results/<name>")
    p.set_defaults(func=cmd_status)


def cmd_run(args) -> int:
    """``vidcap run``: the workflow in one command. With ``stages.shots`` on, two Snakemake runs: the
    shots step (videos -> ``<name>.clips.parquet``), then every other stage on the clips as run
    ``<name>_clips`` (``vidcap.workflow.clip_step_config``); else one run."""
    from vidcap.workflow import clip_step_config

    snakefile = Path(args.snakefile) if args.snakefile else CHECKOUT / "Snakefile"
    if not snakefile.is_file():
        print(f"vidcap run: error: no Snakefile at {snakefile} (give --snakefile: the checkout's)", file=sys.stderr)
        return 2
    with open(args.configfile, encoding="utf-8") as fh:
        user = yaml.safe_load(fh) or {}
    config = validate_config(user)
    extra = [a for a in args.snakemake if a != "--"]
    base = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--configfile", args.configfile, *extra]

    if not any(config["stages"][spec.name]["enabled"] for spec in REGISTRY if spec.step != "main"):
        return subprocess.call(base)
    print(f"vidcap run: step 1 of 2: cutting videos into clips ({config['name']})", file=sys.stderr)
    if subprocess.call(base):
        return 1
    workdir = Path.cwd()
    for flag in ("--directory", "-d"):   # snakemake's working directory: where relative paths live
        if flag in extra and extra.index(flag) + 1 < len(extra):
            workdir = Path(extra[extra.index(flag) + 1]).resolve()
    second = clip_step_config(user, config, workdir)
    path = workdir / config["results_dir"] / config["name"] / "clips_step.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(second, sort_keys=False))
    print(f"vidcap run: step 2 of 2: the stages on the clips ({second['name']}, config {path})", file=sys.stderr)
    return subprocess.call([sys.executable, "-m", "snakemake", "-s", str(snakefile), "--configfile", str(path),
                            *extra])


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the workflow in one command (both steps when stages.shots is on): "
                                   "vidcap run --configfile C [-- SNAKEMAKE ARGS]")
    p.add_argument("--configfile", required=True, help="the run's config YAML")
    p.add_argument("--snakefile", default=None, help="the workflow (default: the checkout's Snakefile)")
    p.add_argument("snakemake", nargs=argparse.REMAINDER, help="arguments for snakemake, e.g. --cores 8")
    p.set_defaults(func=cmd_run)
