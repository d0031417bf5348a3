"""What the Snakemake workflow runs, computed from a validated config (``rules/common.smk`` uses it).

``Plan(config)`` answers, without importing any stage: the run's paths (``RunDir``), the shard
names, the enabled stages in registry order, each stage's result-changing settings as the JSON its
job receives, the enabled upstream stages it reads, and the merge's options and outputs. It names no
stage: every cross-stage rule (which column is the run's text, aliases, checks across stages, extra
run outputs, a step of its own such as cutting videos into clips) is a plan hook of the stage that
owns it (``vidcap.stages.plan``), called here over the registry.

A NeVA prompt-file manifest (``.jsonl``): its bad lines stop the run here, listed by number, or with
``prompt_file_bad_lines: report`` are skipped and listed (the shard rule passes the mode on).

Raises ``ConfigError`` naming the key for a combination that cannot work, and ``TableError`` for an
unusable manifest.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import sys
from pathlib import Path

from vidcap.config import stage_params, validate_config
from vidcap.errors import ConfigError, TableError
from vidcap.io.damage import damaged_files, set_aside
from vidcap.io.locks import FileLock, LockBusy, describe_holder
from vidcap.io.prompt_files import is_prompt_file, scan_prompt_file
from vidcap.io.run_dir import RunDir
from vidcap.io.shards import resolve_shard_size, shard_names
from vidcap.io.table_batches import checked_row_count, table_columns
from vidcap.io.tables import read_table
from vidcap.stages import REGISTRY, SPECS
from vidcap.stages.plan import PlanHooks, TextSource


class Plan:
    def __init__(self, config: dict):
        self.config = config
        self.run = RunDir(config["results_dir"], config["name"])
        try:
            self.rows = self._count_manifest()
        except TableError as exc:
            raise TableError(f"config key 'manifest': {exc}. Set manifest: to your table of clips (CSV or "
                             "Parquet with a path column) in your config, or --config manifest=clips.csv") from None
        self.shard_size = resolve_shard_size(config["shard_size"], self.rows)
        self.shards = shard_names(self.rows, self.shard_size)
        self.hooks: dict[str, PlanHooks] = {spec.name: spec.hooks() for spec in REGISTRY}
        # a stage with a step of its own (the shots step) runs alone; the others run on its output
        self.step = next((s.step for s in REGISTRY if s.step != "main" and self.enabled(s.name)), "main")
        for hooks in self.hooks.values():
            hooks.prepare(self)
        self.text_source: TextSource | None = None
        for name in self._enabled_names():
            self.text_source = self.hooks[name].text_source(self) or self.text_source
        for name in self._enabled_names():
            if self.enabled(name):   # a check may switch a stage off
                self.hooks[name].check(self)

    @property
    def clip_step(self) -> bool:
        """True when this run is a step of its own before the main one (the shots step)."""
        return self.step != "main"

    @property
    def text_column(self) -> str:
        """The run's text: what the text source writes (the caption), else the manifest's ``text``."""
        return self.text_source.column if self.text_source else "text"

    # ------------------------------------------------------------------ what hooks may read (PlanContext)

    def section(self, stage: str) -> dict:
        return self.config["stages"][stage]

    def enabled(self, stage: str) -> bool:
        return bool(self.config["stages"][stage]["enabled"])

    def disable(self, stage: str, why: str) -> None:
        print(f"vidcap: stage {stage} skipped: {why}", file=sys.stderr)
        self.config["stages"][stage]["enabled"] = False

    def is_prompt_file(self) -> bool:
        return is_prompt_file(self.config["manifest"])

    def _enabled_names(self) -> list[str]:
        return [s.name for s in REGISTRY if self.enabled(s.name)]

    def _count_manifest(self) -> int:
        """Rows of the manifest, checked before anything runs (``vidcap.io.table_batches.check_manifest``:
        encoding, Parquet folder schemas, a null path column; remembered in the run folder for an
        unchanged manifest); no rows is an error. A prompt file's bad lines fail here or, with
        ``prompt_file_bad_lines: report``, are listed on stderr once (the shard rule passes the mode to
        the shard step)."""

        manifest, mode = self.config["manifest"], self.config.get("prompt_file_bad_lines", "fail")
        if not is_prompt_file(manifest):
            return _some_rows(manifest, checked_row_count(manifest, self.run.manifest_count))
        rows, bad = scan_prompt_file(manifest, mode)
        if bad and os.environ.get("VIDCAP_BAD_LINES_SHOWN") != str(manifest):   # once: not again in job processes
            os.environ["VIDCAP_BAD_LINES_SHOWN"] = str(manifest)
            shown = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            print(f"vidcap: manifest {manifest}: {len(bad)} bad line(s) skipped (prompt_file_bad_lines: report): "
                  f"{shown}{more}", file=sys.stderr)
        return _some_rows(manifest, rows)

    def lock_run(self):
        """Hold ``run.lock`` for the life of this process (the Snakemake run); ConfigError naming the
        other run when another Snakemake process (any working directory, any host) holds it."""

        lock = FileLock(self.run.run_lock, what=f"snakemake run of {self.run.root}")
        try:
            self._run_lock = lock.acquire(wait_s=0)
        except LockBusy as busy:
            raise ConfigError(f"{self.run.root} is in use by another snakemake run: {describe_holder(busy.holder)}. "
                              "Wait for it to finish or stop it (its lock goes with its process); two runs "
                              "on one results folder would process rows twice.") from None
        return lock

    # ------------------------------------------------------------------------------------ stages

    @property
    def stages(self) -> list[str]:
        """Stages this run runs, in registry (= merged column) order: the stages of its step."""
        return [s.name for s in REGISTRY if s.step == self.step and self.enabled(s.name)]

    def upstream(self, stage: str) -> list[str]:
        """Enabled stages whose columns ``stage`` reads (their outputs are inputs of its jobs)."""
        return [s for s in SPECS[stage].reads if self.enabled(s)]

    def resources(self, stage: str) -> dict:
        """Portable resources of the stage's jobs (``mem_mb``, ``runtime``, and ``gpu`` for stages that
        can use GPUs); threads apart (``threads``)."""
        res = {k: v for k, v in self.config["stages"][stage]["resources"].items() if k != "threads"}
        if not SPECS[stage].gpu:
            res.pop("gpu", None)
        return res

    def threads(self, stage: str) -> int:
        return int(self.config["stages"][stage]["resources"]["threads"])

    def settings(self, stage: str) -> dict:
        """The stage's result-changing settings (the job's ``--params``; a change reruns it): its
        section (``vidcap.config.stage_params``) with cross-stage defaults from its plan hooks."""
        return self.hooks[stage].settings(self, stage_params(self.config, stage))

    def settings_json(self, stage: str) -> str:
        return json.dumps(self.settings(stage), sort_keys=True)

    # ------------------------------------------------------------------------------------ merge

    def gather_options(self) -> list[str]:
        """Arguments of ``vidcap gather`` besides paths: the text whose duplicates are marked (the last
        enabled stage that offers one), each enabled stage's own options, the summary's top-k."""
        names = self._enabled_names()
        duplicates = None
        for name in names:
            duplicates = self.hooks[name].duplicates_of(self) or duplicates
        opts = ["--duplicates-of", duplicates] if duplicates else []
        for name in names:
            opts += self.hooks[name].gather_options(self)
        return opts + ["--top-k", str(int(self.config["report"]["top_k"]))]

    def gather_outputs(self) -> dict[str, str]:
        """Files the merge writes: the part folder ``table`` (a directory), the single-file tables when
        ``single_file`` says so, the summary, and each enabled stage's extra files (answers, ...)."""
        run = self.run
        out: dict = {"table": run.root / "table"}
        if self.single_file:
            out.update({"csv": run.table("csv"), "parquet": run.table("parquet")})
        out.update({"summary_json": run.summary_json, "summary_csv": run.summary_csv})
        for name in self._enabled_names():
            out.update(self.hooks[name].outputs(self))
        return {k: str(v) for k, v in out.items()}

    @property
    def single_file(self) -> bool:
        """Whether the merge also writes ``<name>.csv`` and ``<name>.parquet`` (``merge.single_file``)."""
        merge = self.config.get("merge") or {}
        mode = merge.get("single_file", "auto")
        return mode == "always" or (mode == "auto" and self.rows <= int(merge.get("single_file_max_rows", 1_000_000)))

    def step_outputs(self) -> dict[str, str]:
        """Files a step of its own ends with (the shots step: the clip tables), whether or not it runs."""
        out: dict = {}
        for spec in REGISTRY:
            if spec.step != "main":
                out.update(self.hooks[spec.name].step_outputs(self))
        return {k: str(v) for k, v in out.items()}

    def final_outputs(self) -> list[str]:
        """What ``rule all`` asks for: the merged table, summary and report, and every stage output
        (so a stage output that went missing is always made again, even when the table exists)."""
        run = self.run
        outputs: list[str | Path]
        if self.clip_step:
            outputs = list(self.step_outputs().values())
        else:
            outputs = list(self.gather_outputs().values())
            if self.config["report"]["enabled"]:
                outputs.append(run.report)
        outputs += [run.output(stage, shard) for stage in self.stages for shard in self.shards]
        return [str(p) for p in outputs]

    def set_aside_damaged(self) -> list[Path]:
        """Set aside every damaged file of the run folder (``vidcap.io.damage``: shard tables, stage outputs,
        stats, settings, merged table, summary, answers, judge table, report), each named on stderr, so
        that this run makes them again without computing a journaled row. Returns what was damaged."""

        return set_aside(damaged_files(self), lambda line: print(line, file=sys.stderr))

    # ------------------------------------------------------------------------------- manifest

    def has_column(self, column: str) -> bool:
        """The manifest has ``column``, or the run's text source writes it."""
        if self.text_source and column == self.text_source.column:
            return True
        if self.is_prompt_file():   # no header to peek at: read once
            if not hasattr(self, "_prompt_columns"):
                mode = self.config.get("prompt_file_bad_lines", "fail")
                quiet = logging.getLogger("vidcap.io.prompt_files")   # its bad lines were listed once, by _count_manifest
                level, quiet.level = quiet.level, logging.ERROR
                try:
                    self._prompt_columns = set(read_table(self.config["manifest"], required=(), bad_lines=mode).columns)
                finally:
                    quiet.setLevel(level)
            return column in self._prompt_columns
        if not hasattr(self, "_columns"):
            self._columns = set(table_columns(self.config["manifest"]))
        return column in self._columns


def _some_rows(manifest, rows: int) -> int:
    if not rows:
        raise TableError(f"{manifest}: the manifest has no rows (a header only): nothing to do; add rows "
                         "(one per clip) and run again")
    return rows


def _or_exit(fn, *args):
    try:
        return fn(*args)
    except (ConfigError, TableError) as exc:
        print(f"vidcap: {exc}", file=sys.stderr)
        sys.exit(1)


def validated(config: dict) -> dict:
    """The Snakefile's config, defaults filled and checked against the packaged schema; a bad value
    stops Snakemake with the message naming the key (no traceback)."""

    return _or_exit(validate_config, config)


def plan(config: dict) -> Plan:
    """``Plan(config)``, stopping Snakemake with one line (e.g. which manifest to set) when it cannot."""
    return _or_exit(Plan, config)


def clip_step_config(user: dict, config: dict, workdir: Path | None = None) -> dict:
    """The config of the main step after a step of its own (the shots step): the user's config (as
    written) with the clip table as manifest, run name ``<name>_clips``, paths already absolute (no
    ``media_root``) and the step's stages off."""

    out = copy.deepcopy(user)
    run = RunDir(Path(workdir or Path.cwd()) / config["results_dir"], config["name"])
    out["manifest"] = str(run.clips("parquet").resolve())
    out["name"] = f"{config['name']}_clips"
    out["media_root"] = None
    for spec in REGISTRY:
        if spec.step != "main":
            out.setdefault("stages", {}).setdefault(spec.name, {})["enabled"] = False
    return out
