"""The ``vidcap`` command line. Each subcommand is a thin wrapper over a package function."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from vidcap.errors import TableError


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def cmd_manifest(args) -> int:
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
    from vidcap.io.run_dir import RunDir
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


def cmd_stage(args) -> int:
    from vidcap.stages import get_stage
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


def cmd_gather(args) -> int:
    from vidcap.gather import gather
    from vidcap.io.run_dir import RunDir
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


def cmd_status(args) -> int:
    from vidcap.status import format_status, run_status

    print(format_status(run_status(args.run_dir)))
    return 0


def cmd_cost(args) -> int:
    from vidcap.caption.cost import format_cost, run_cost

    summary = run_cost(args.run_dir)
    print(json.dumps(summary, indent=1) if args.json else format_cost(summary))
    return 0


def cmd_report(args) -> int:
    from vidcap.report import build_report

    config = None
    if args.configfile:
        import yaml

        from vidcap.config import validate_config

        with open(args.configfile, encoding="utf-8") as fh:
            config = validate_config(yaml.safe_load(fh))
    out = build_report(args.run_dir, out=args.output, table=args.table, config=config, threads=args.threads,
                       sample=args.sample, worst=args.worst, thumbnails=args.thumbnails,
                       thumb_size=args.thumb_size, top_k=args.top_k, seed=args.seed)
    print(out)
    return 0


def cmd_estimate(args) -> int:
    import yaml

    from vidcap.caption.cost import estimate, format_estimate
    from vidcap.config import validate_config
    from vidcap.errors import RunnerFatal

    with open(args.configfile, encoding="utf-8") as fh:
        config = validate_config(yaml.safe_load(fh))
    try:
        result = estimate(config, sample=args.sample, seed=args.seed, jobs=args.jobs)
    except RunnerFatal as exc:
        print(f"vidcap estimate: error: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=1, default=str) if args.json else format_estimate(result))
    return 0


def _judge_settings(configfile: str | None, params: str | None, rules: str | None, rule: str | None,
                    one_order: bool) -> dict:
    """A ``stages.judge`` block: the config file's (its ``stages.judge``, or the file itself when it is
    only that block), then ``--params`` (JSON, merged one level deep), then the flags."""
    import yaml

    settings: dict = {}
    if configfile:
        with open(configfile, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        settings = dict(((data.get("stages") or {}).get("judge")) or (data if "stages" not in data else {}))
    for key, value in (json.loads(params) if params else {}).items():
        settings[key] = {**settings[key], **value} if isinstance(value, dict) and isinstance(settings.get(key), dict) \
            else value
    if rules:
        settings["rules_file"] = rules
    if rule:
        settings["rule"] = rule
    if one_order:
        settings["both_orders"] = False
    return settings


_ALSO_COMMAND = ("judge",)   # stage names that are also a command of their own (see build_parser)


def cmd_judge(args) -> int:
    """``vidcap judge``: the stage's job with ``--shard``, else the answers-comparing command."""
    from vidcap.judge import run as judge_run
    from vidcap.judge.columns import from_stage_table
    from vidcap.judge.summary import format_category_table, order_agreement

    if args.shard:
        if not (args.out and args.journal):
            print("vidcap judge: error: a stage job needs --shard, --out and --journal", file=sys.stderr)
            return 2
        return cmd_stage(args)
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
    settings = _judge_settings(args.configfile, args.params, args.rules, args.rule, args.one_order)
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


def cmd_compare(args) -> int:
    from vidcap.compare import compare, format_compare

    judge = _judge_settings(args.judge_config, args.params, args.rules, None, args.one_order) \
        if (args.judge_config or args.params or args.rules or args.one_order) else None
    result = compare(args.config_a, args.config_b, sample=args.sample, out=args.output, seed=args.seed, judge=judge,
                     report=not args.no_report)
    print(format_compare(result))
    return 0


def cmd_run(args) -> int:
    """``vidcap run``: the workflow in one command. With ``stages.shots`` on, two Snakemake runs: the
    shots step (videos -> ``<name>.clips.parquet``), then every other stage on the clips as run
    ``<name>_clips`` (``vidcap.workflow.clip_step_config``); else one run."""
    import subprocess

    import yaml

    from vidcap.config import validate_config
    from vidcap.workflow import clip_step_config

    snakefile = Path(args.snakefile) if args.snakefile else Path(__file__).resolve().parent.parent / "Snakefile"
    if not snakefile.is_file():
        print(f"vidcap run: error: no Snakefile at {snakefile} (give --snakefile: the checkout's)", file=sys.stderr)
        return 2
    with open(args.configfile, encoding="utf-8") as fh:
        user = yaml.safe_load(fh) or {}
    config = validate_config(user)
    extra = [a for a in args.snakemake if a != "--"]
    base = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--configfile", args.configfile, *extra]
    from vidcap.stages import REGISTRY

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


def cmd_demo(args) -> int:
    from vidcap.dev.demo import make_demo

    manifest = make_demo(args.root)
    print(manifest)
    return 0


def cmd_tiny_model(args) -> int:
    from vidcap.dev.tiny_family import ALL_FAMILIES, build_family

    if args.family not in ALL_FAMILIES:
        print(f"vidcap tiny-model: error: unknown family {args.family!r}; known: {', '.join(ALL_FAMILIES)}", file=sys.stderr)
        return 2
    print(build_family(args.family, args.outdir, max_position_embeddings=args.max_position_embeddings,
                       force=args.force, size=args.size))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from vidcap.stages import REGISTRY

    parser = argparse.ArgumentParser(prog="vidcap", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("manifest", help="scan a folder recursively into a path,id,relpath table")
    p.add_argument("root", help="folder scanned recursively for media files")
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

    for spec in REGISTRY:
        job = spec.name not in _ALSO_COMMAND   # else --shard/--out/--journal select the stage job
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

    p = sub.add_parser("gather", help="merge shards and stage outputs into the final table")
    p.add_argument("--run", required=True, help="the run folder, results/<name>")
    p.add_argument("--stage", action="append", default=[], help="a stage to merge (repeat, in column order)")
    p.add_argument("-o", "--output", action="append", required=True,
                   help="table to write, .csv or .parquet (repeatable)")
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

    p = sub.add_parser("status", help="rows done / failed / remaining per stage of a run folder")
    p.add_argument("run_dir", help="the run folder, results/<name>")
    p.set_defaults(func=cmd_status)

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

    # `vidcap judge` is also the judge stage's job (--shard ... above): without --shard, the command
    p = sub.choices["judge"]
    p.description = ("Without --shard: an LLM judge compares two answer sets; per-pair scores and a per-category "
                     "relative score with a bootstrap interval (docs/judge.md).")
    p.add_argument("-o", "--output", default=None, help="folder for pairs, journal, judge.csv, categories.csv")
    src = p.add_argument_group("answers to compare (one kind)")
    src.add_argument("--answers-a", default=None, help="answers JSONL A, the reference (question_id/text or response_id/response)")
    src.add_argument("--answers-b", default=None, help="answers JSONL B, judged against A")
    src.add_argument("--questions", default=None, help="the NeVA prompt file the answers answer (else A's prompt fields)")
    src.add_argument("--table", default=None, help="a table with both answers in two columns")
    src.add_argument("--column-a", default=None)
    src.add_argument("--column-b", default=None)
    src.add_argument("--key-column", default=None, help="--table: the id column (default: row position)")
    src.add_argument("--run-a", default=None, help="a finished run folder (results/<name>), answers A")
    src.add_argument("--run-b", default=None, help="a finished run folder, answers B")
    src.add_argument("--run", default=None, help="a finished run folder, answers B against --reference")
    src.add_argument("--reference", default=None, help="reference answers JSONL (A) for --run")
    src.add_argument("--column", default="text", help="--run/--run-a/--run-b: the answer column (default text)")
    src.add_argument("--question-column", default=None, help="column holding the question (default prompt)")
    src.add_argument("--media-base-path", default=None, help="folder relative media paths resolve against")
    src.add_argument("--bad-lines", choices=("fail", "report"), default="fail", help="bad lines of JSONL inputs")
    p.add_argument("--configfile", default=None, help="YAML with the judge's settings: a workflow config (its "
                                                      "stages.judge) or that block alone (runner, model, prices)")
    p.add_argument("--rules", default=None, help="your rules file (JSON/YAML category -> rule text)")
    p.add_argument("--rule", default=None, help="judge every pair with this rule (e.g. caption)")
    p.add_argument("--one-order", action="store_true", help="judge in order (A, B) only (half the requests)")
    p.add_argument("--estimate", type=int, default=0, metavar="N",
                   help="judge N sampled pairs for real, print the projected cost and time, and stop")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_judge)

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

    p = sub.add_parser("run", help="run the workflow in one command (both steps when stages.shots is on): "
                                   "vidcap run --configfile C [-- SNAKEMAKE ARGS]")
    p.add_argument("--configfile", required=True, help="the run's config YAML")
    p.add_argument("--snakefile", default=None, help="the workflow (default: the checkout's Snakefile)")
    p.add_argument("snakemake", nargs=argparse.REMAINDER, help="arguments for snakemake, e.g. --cores 8")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="write demo clips, images, bad files and a manifest under ROOT")
    p.add_argument("root", help="folder to write (created; demo/ in the README)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("tiny-model", help="write a tiny random-weight model folder (tests, demo; no download)")
    p.add_argument("family", help="model family, e.g. qwen2_5_vl, qwen2_vl, llava, qwen2, pllava (vidcap.dev.tiny_family)")
    p.add_argument("outdir", help="folder to write the model to")
    p.add_argument("--max-position-embeddings", type=int, default=4096, help="the text model's context")
    p.add_argument("--force", action="store_true", help="rebuild even when the folder is up to date")
    p.add_argument("--size", choices=("tiny", "engine", "7b", "13b"), default="tiny",
                   help="tiny (tests), engine (head_dim 32: vLLM's CPU build), 7b/13b (benchmarks; 13b: pllava only)")
    p.set_defaults(func=cmd_tiny_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand. A failure ends with one line ``vidcap <command>: error: <reason>`` on stderr
    (the last line of a job's log, which the workflow shows on the console): 2 for bad input or
    config, 3 for a runner that cannot work (credentials, model), 1 for anything else (with its
    traceback in the log)."""
    import errno

    from vidcap.errors import ConfigError, GatherError, RunnerFatal, say_fatal
    from vidcap.io.locks import LockBusy

    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)

    def fail(message: str, code: int) -> int:
        say_fatal(f"vidcap {args.command}: error: {message}")   # on the console when the log is full
        return code

    try:
        return args.func(args)
    except (TableError, ConfigError, GatherError, LockBusy, FileNotFoundError) as exc:
        return fail(str(exc), 2)
    except RunnerFatal as exc:
        return fail(str(exc), 3)
    except OSError as exc:
        if exc.errno == errno.ENOSPC or "No space left on device" in str(exc):
            where = exc.filename or getattr(args, "out", None) or (getattr(args, "output", None) or [""])[0]
            return fail(f"no space left on device: {where}", 1)
        logging.exception("%s failed", args.command)
        return fail(f"{type(exc).__name__}: {exc}", 1)
    except Exception as exc:  # one readable last line; the traceback is logged above it
        logging.exception("%s failed", args.command)
        return fail(f"{type(exc).__name__}: {exc}", 1)


if __name__ == "__main__":
    sys.exit(main())
