"""Workflow commands: the per-stage jobs (``vidcap <stage> --shard ...``, one subcommand per registry
entry), ``gather``, ``status`` and ``run``.

A stage whose registry entry names a ``command`` module (``vidcap.stages.StageSpec``) is also a command
of its own: its job flags are optional, the module's ``add_arguments(parser)`` adds the command's flags,
and without ``--shard`` its ``RUN`` (``module:function``, imported then) runs instead of the job. The
handlers live in ``vidcap.cli.workflow_run`` (``vidcap.cli.lazy``).
"""
from __future__ import annotations

import argparse
import importlib

from vidcap.cli.lazy import handler
from vidcap.stages import REGISTRY


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
        p.set_defaults(func=handler("vidcap.cli.workflow_run:cmd_stage"))
        if command is not None:
            command.add_arguments(p)
            p.set_defaults(func=handler("vidcap.cli.workflow_run:job_or_command"), command_run=command.RUN)


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
    p.add_argument("--near-duplicates", default=None, metavar="COLUMN",
                   help="mark near-duplicate rows by this embedding column (near_duplicate_of, near_duplicate_sim)")
    p.add_argument("--near-threshold", type=float, default=0.98, help="cosine similarity of a near-duplicate")
    p.add_argument("--near-probes", type=int, default=2, help="clusters each row is compared in")
    p.add_argument("--near-rows-per-cluster", type=int, default=1000, help="k-means clusters: rows / this")
    p.add_argument("--drop-column", action="append", default=[], metavar="COLUMN",
                   help="a stage column left out of the merged table (repeatable)")
    p.add_argument("--clips", action="store_true",
                   help="the shots step: write the clip table (one row per clip, start/end set) instead")
    p.add_argument("--clips-failed", default=None, help="with --clips: the source rows that gave no clip (.csv)")
    p.set_defaults(func=handler("vidcap.cli.workflow_run:cmd_gather"))


def add_status(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="rows done / failed / remaining per stage of a run folder")
    p.add_argument("run_dir", help="the run folder, results/<name>")
    p.set_defaults(func=handler("vidcap.cli.workflow_run:cmd_status"))


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the workflow in one command (both steps when stages.shots is on): "
                                   "vidcap run --configfile C [-- SNAKEMAKE ARGS]")
    p.add_argument("--configfile", required=True, help="the run's config YAML")
    p.add_argument("--snakefile", default=None, help="the workflow (default: the checkout's Snakefile)")
    p.add_argument("snakemake", nargs=argparse.REMAINDER, help="arguments for snakemake, e.g. --cores 8")
    p.set_defaults(func=handler("vidcap.cli.workflow_run:cmd_run"))
