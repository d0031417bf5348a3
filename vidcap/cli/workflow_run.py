"""What the workflow commands run: the per-stage jobs, ``gather``, ``status`` and ``run`` (their flags:
``vidcap.cli.workflow``)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import yaml

from vidcap.cli.lazy import handler
from vidcap.config import validate_config
from vidcap.gather import gather
from vidcap.io.run_dir import RunDir
from vidcap.shots.clip_table import gather_clips
from vidcap.stages import REGISTRY, get_stage
from vidcap.stages.base import run_stage
from vidcap.status import format_status, run_status
from vidcap.workflow import clip_step_config

CHECKOUT = Path(__file__).resolve().parents[2]   # the folder holding vidcap/ (and, in a checkout, the Snakefile)


def cmd_stage(args) -> int:
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


def job_or_command(args) -> int:
    """A stage with its own command: with ``--shard`` the stage's job (which needs ``--out`` and
    ``--journal`` too: else 2), without it the command's ``run``."""
    if not args.shard:
        return handler(args.command_run)(args)
    if not (args.out and args.journal):
        print(f"vidcap {args.command}: error: a stage job needs --shard, --out and --journal", file=sys.stderr)
        return 2
    return cmd_stage(args)


def cmd_gather(args) -> int:
    if args.clips:
        gather_clips(RunDir.at(args.run), args.output, args.clips_failed)
        return 0
    answers = None
    if args.answers:
        answers = {"path": args.answers, "text_column": args.answers_text_column, "id_column": args.answers_id_column,
                   "prompt_column": args.answers_prompt_column, "prompt": args.answers_prompt}
    gather(RunDir.at(args.run), args.stage, args.output, duplicates_of=args.duplicates_of, summary_json=args.summary_json,
           summary_csv=args.summary_csv, tag_keys=args.tag_key or None, top_k=args.top_k, answers=answers,
           judge_table=args.judge_table, drop_failed=args.drop_failed, drop_columns=args.drop_column,
           near_duplicates={"column": args.near_duplicates, "threshold": args.near_threshold, "probes": args.near_probes,
                            "rows_per_cluster": args.near_rows_per_cluster} if args.near_duplicates else None)
    return 0


def cmd_status(args) -> int:
    print(format_status(run_status(args.run_dir)))
    return 0


def cmd_run(args) -> int:
    """``vidcap run``: the workflow in one command. With ``stages.shots`` on, two Snakemake runs: the
    shots step (videos -> ``<name>.clips.parquet``), then every other stage on the clips as run
    ``<name>_clips`` (``vidcap.workflow.clip_step_config``); else one run."""
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
