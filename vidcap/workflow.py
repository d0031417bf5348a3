"""What the Snakemake workflow runs, computed from a validated config (``rules/common.smk`` uses it).

``Plan(config)`` answers, without importing any stage: the run's paths (``RunDir``), the shard
names, the enabled stages in registry order, each stage's result-changing settings as the JSON its
job receives, the enabled upstream stages it reads, and the merge's options. Cross-stage rules live
here, in one place:

* clean and tags read the caption from the caption stage's ``output_column`` when captioning is on,
  else from the manifest's ``text`` (or their own ``text_column``); clean without any text to clean
  is switched off with a note, tags without text is a config error;
* ``stages.motion.append_to_text`` is an alias of ``stages.clean.append_motion`` + ``replace_text``;
* clean's ``tokenizer: auto`` is the caption model's when captioning with the transformers runner (the
  pllava runner: its ``repo_id``, else ``weight_dir``);
* a user-defined prompt's text travels with the caption settings (``prompt_spec``), so editing the
  wording reruns the stage;
* the judge compares answer A (a column or ``reference_answers``) with answer B, by default the caption
  stage's output (then ``caption_error`` fails a row before any request); its question is the caption
  stage's ``prompt_column`` (else the manifest's ``prompt``), else the caption prompt's wording;
* a NeVA prompt-file manifest (``.jsonl``): its bad lines stop the run here, listed by number, or with
  ``prompt_file_bad_lines: report`` are skipped and listed (the shard rule passes the mode on); the merge writes ``<name>.answers.jsonl`` (NeVA's answer shape) when the
  caption stage's ``answers_file`` says so, and ``<name>.judge.csv`` (per-category scores) when the
  judge is on.

Raises ``ConfigError`` naming the key for a combination that cannot work, and ``TableError`` for an
unusable manifest.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from vidcap.errors import ConfigError, TableError
from vidcap.run_dir import RunDir
from vidcap.shards import resolve_shard_size, shard_names
from vidcap.stages import REGISTRY, SPECS
from vidcap.tables import parquet_intact, read_table

# settings that concern the workflow, not the stage's results
_WORKFLOW_KEYS = ("enabled", "resources", "append_to_text", "answers_file", "keep_failed")


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
        # stages.shots on: this run is the shots step (videos -> clip table); the other stages run on
        # the clip table in the next step (README "From raw videos to clips"; `vidcap run` does both)
        self.clip_step = bool(config["stages"]["shots"]["enabled"])
        if self.clip_step and any(config["stages"][s.name]["enabled"] for s in REGISTRY if s.name != "shots"):
            print(f"vidcap: stages.shots is on: this run cuts the videos into clips ({self.run.clips('parquet')}); "
                  "the other stages run on the clips in the next step (`vidcap run` does both)", file=sys.stderr)
        self.text_column = self._resolve_text_stages()
        self._check_questions_and_judge()

    def _count_manifest(self) -> int:
        """Rows of the manifest, checked before anything runs (``vidcap.table_batches.check_manifest``:
        encoding, Parquet folder schemas, a null path column; remembered in the run folder for an
        unchanged manifest); no rows is an error. A prompt file's bad
        lines fail here or, with ``prompt_file_bad_lines: report``, are listed on stderr (the shard
        rule passes the mode to the shard step)."""
        from vidcap.neva import is_prompt_file, scan_prompt_file
        from vidcap.table_batches import checked_row_count

        manifest, mode = self.config["manifest"], self.config.get("prompt_file_bad_lines", "fail")
        if not is_prompt_file(manifest):
            return _some_rows(manifest, checked_row_count(manifest, self.run.manifest_count))
        rows, bad = scan_prompt_file(manifest, mode)
        if bad:
            shown = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            print(f"vidcap: manifest {manifest}: {len(bad)} bad line(s) skipped (prompt_file_bad_lines: report): "
                  f"{shown}{more}", file=sys.stderr)
        return _some_rows(manifest, rows)

    def lock_run(self):
        """Hold ``run.lock`` for the life of this process (the Snakemake run); ConfigError naming the
        other run when another Snakemake process (any working directory, any host) holds it."""
        from vidcap.locks import FileLock, LockBusy, describe_holder

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
        """Stages this run runs, in registry (= merged column) order: ``shots`` alone in the shots step,
        else every enabled stage."""
        if self.clip_step:
            return ["shots"]
        return [s.name for s in REGISTRY if s.name != "shots" and self.config["stages"][s.name]["enabled"]]

    def upstream(self, stage: str) -> list[str]:
        """Enabled stages whose columns ``stage`` reads (their outputs are inputs of its jobs)."""
        return [s for s in SPECS[stage].reads if self.config["stages"][s]["enabled"]]

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
        """The stage's result-changing settings (the job's ``--params``; a change reruns it)."""
        stages = self.config["stages"]
        settings = {k: v for k, v in stages[stage].items() if k not in _WORKFLOW_KEYS}
        if stage in ("clean", "tags") and not settings.get("text_column"):
            settings["text_column"] = self.text_column
        if stage == "clean" and settings.get("tokenizer") == "auto":
            caption = stages["caption"]
            on = caption["enabled"] and caption["runner"] in ("transformers", "pllava")
            if on and caption["runner"] == "pllava":  # the tokenizer lives with the config (repo_id)
                settings["tokenizer"] = caption["pllava"]["repo_id"] or caption["pllava"]["weight_dir"]
            else:
                settings["tokenizer"] = caption["transformers"]["model"] if on else None
            settings["tokenizer_auto"] = True  # unavailable -> caption_tokens null instead of a failed job
        if stage == "judge":
            settings.update(self._judge_settings(settings))
        if stage == "shots" and settings["export"]["enabled"] and not settings["export"]["dir"]:
            settings["export"] = {**settings["export"], "dir": str(self.run.root / "clips")}
        from vidcap.prompts import with_user_prompts

        return with_user_prompts(settings, self.config["prompts"])  # a user-defined prompt travels along

    def settings_json(self, stage: str) -> str:
        return json.dumps(self.settings(stage), sort_keys=True)

    # ------------------------------------------------------------------------------------ merge

    def gather_options(self) -> list[str]:
        """Arguments of ``vidcap gather`` besides paths: duplicate captions, tag keys, summary top-k."""
        stages = self.config["stages"]
        opts = []
        if stages["clean"]["enabled"]:
            clean = stages["clean"]
            column = (clean["text_column"] or self.text_column) if clean["replace_text"] else "clean_text"
            opts += ["--duplicates-of", column]
        elif stages["caption"]["enabled"]:
            opts += ["--duplicates-of", stages["caption"]["output_column"]]
        if stages["tags"]["enabled"]:
            from vidcap.stages.tags import effective_keys

            for key in effective_keys(stages["tags"]["keys"]):
                opts += ["--tag-key", key]
        opts += ["--top-k", str(int(self.config["report"]["top_k"]))]
        if stages["caption"]["enabled"] and not stages["caption"]["keep_failed"]:
            opts += ["--drop-failed", "caption"]
        opts += self._answer_and_judge_options()
        return opts

    def gather_outputs(self) -> dict[str, str]:
        """Files the merge writes: table, summary, and the answers file and judge table when on."""
        run = self.run
        out = {"csv": run.table("csv"), "parquet": run.table("parquet"), "summary_json": run.summary_json,
               "summary_csv": run.summary_csv}
        opts = self._answer_and_judge_options()
        if "--answers" in opts:
            out["answers"] = run.answers
        if "--judge-table" in opts:
            out["judge"] = run.judge_table
        return {k: str(v) for k, v in out.items()}

    def _answer_and_judge_options(self) -> list[str]:
        from vidcap.neva import is_prompt_file

        stages = self.config["stages"]
        caption, opts = stages["caption"], []
        want = caption["answers_file"]
        if caption["enabled"] and (want == "always" or (want == "auto" and is_prompt_file(self.config["manifest"]))):
            opts += ["--answers", str(self.run.answers), "--answers-text-column", caption["output_column"],
                     "--answers-id-column", "question_id" if self._has_column("question_id") else "row_id"]
            if caption["prompt_column"]:
                opts += ["--answers-prompt-column", caption["prompt_column"]]
            else:
                opts += ["--answers-prompt", self._caption_prompt_text()]
        if stages["judge"]["enabled"]:
            opts += ["--judge-table", str(self.run.judge_table)]
        return opts

    def final_outputs(self) -> list[str]:
        """What ``rule all`` asks for: the merged table, summary and report, and every stage output
        (so a stage output that went missing is always made again, even when the table exists)."""
        run = self.run
        if self.clip_step:
            outputs = [run.clips("parquet"), run.clips("csv"), run.clips("failed.csv")]
        else:
            outputs = list(self.gather_outputs().values())
            if self.config["report"]["enabled"]:
                outputs.append(run.report)
        outputs += [run.output(stage, shard) for stage in self.stages for shard in self.shards]
        return [str(p) for p in outputs]

    def set_aside_damaged(self) -> list[Path]:
        """Rename shard tables and stage outputs that are not whole Parquet files to ``<name>.damaged``
        (each named on stderr), so their jobs run again: a stage output is rebuilt from its journal
        without computing any row again. Returns what was set aside."""
        run = self.run
        paths = [run.shard(s) for s in self.shards]
        paths += [run.output(stage, shard) for stage in self.stages for shard in self.shards]
        damaged = [p for p in paths if p.exists() and not parquet_intact(p)]
        for p in damaged:
            aside = p.with_name(p.name + ".damaged")
            os.replace(p, aside)
            print(f"vidcap: {p} is damaged (not a whole Parquet file): set aside as {aside.name}; "
                  "its job runs again (a stage output is rebuilt from its journal)", file=sys.stderr)
        return damaged

    # ------------------------------------------------------------------------------ cross-stage

    def _has_column(self, column: str) -> bool:
        caption = self.config["stages"]["caption"]
        if caption["enabled"] and column == caption["output_column"]:
            return True
        from vidcap.neva import is_prompt_file

        if is_prompt_file(self.config["manifest"]):   # no header to peek at: read once
            if not hasattr(self, "_prompt_columns"):
                mode = self.config.get("prompt_file_bad_lines", "fail")
                self._prompt_columns = set(read_table(self.config["manifest"], required=(), bad_lines=mode).columns)
            return column in self._prompt_columns
        if not hasattr(self, "_columns"):
            from vidcap.table_batches import table_columns

            self._columns = set(table_columns(self.config["manifest"]))
        return column in self._columns

    def _caption_prompt_text(self) -> str:
        from vidcap.prompts import get_prompt

        caption = self.config["stages"]["caption"]
        return get_prompt(caption["prompt"], self.config["prompts"]).user

    def _judge_settings(self, settings: dict) -> dict:
        """The judge's defaults that depend on other stages (module docstring)."""
        caption = self.config["stages"]["caption"]
        on = caption["enabled"]
        out = {}
        b = settings.get("answer_b_column") or (caption["output_column"] if on else "text")
        out["answer_b_column"] = b
        errors = list(settings.get("error_columns") or [])
        if on and b == caption["output_column"] and "caption_error" not in errors:
            errors.append("caption_error")
        out["error_columns"] = errors
        if not settings.get("question_column"):
            out["question_column"] = (caption["prompt_column"] if on and caption["prompt_column"]
                                      else "prompt" if self._has_column("prompt") else None)
        if not settings.get("question") and on:
            text = self._caption_prompt_text()
            if "{" not in text:   # a template with {question}/{text} is not a question
                out["question"] = text
        return out

    def _check_questions_and_judge(self) -> None:
        stages = self.config["stages"]
        caption, judge = stages["caption"], stages["judge"]
        if caption["enabled"] and caption["neva_inference"]:   # a typo in NeVA's block stops the run here
            from vidcap.neva import apply_neva_inference

            apply_neva_inference(caption["generation"], caption["neva_inference"], caption["insert_media_token"])
        if caption["enabled"] and caption["prompt_column"] and not self._has_column(caption["prompt_column"]):
            raise ConfigError(f"config key 'stages.caption.prompt_column': the manifest has no column "
                              f"{caption['prompt_column']!r}")
        if not judge["enabled"]:
            return
        resolved = {**judge, **self._judge_settings(judge)}
        if resolved["reference_answers"]:
            if not Path(resolved["reference_answers"]).is_file():
                raise ConfigError(f"config key 'stages.judge.reference_answers': no file {resolved['reference_answers']}")
            if not self._has_column(resolved["key_column"]):
                raise ConfigError(f"config key 'stages.judge.key_column': the manifest has no column "
                                  f"{resolved['key_column']!r} to find reference answers by")
        elif not resolved["answer_a_column"]:
            raise ConfigError("config key 'stages.judge': give answer A: answer_a_column or reference_answers")
        for key in ("answer_a_column", "answer_b_column"):
            col = resolved[key]
            if col and not self._has_column(col):
                raise ConfigError(f"config key 'stages.judge.{key}': no column {col!r} in the manifest"
                                  + ("" if caption["enabled"] else " (and the caption stage is off)"))

    def _resolve_text_stages(self) -> str:
        stages = self.config["stages"]
        caption_on = stages["caption"]["enabled"]
        default = stages["caption"]["output_column"] if caption_on else "text"
        clean, motion, tags = stages["clean"], stages["motion"], stages["tags"]
        if motion["enabled"] and motion["append_to_text"]:
            if not clean["enabled"]:
                raise ConfigError("config key 'stages.motion.append_to_text': needs stages.clean.enabled: true "
                                  "(the clean stage appends the camera-motion sentence)")
            clean["append_motion"] = clean["replace_text"] = True
        if clean["enabled"] and clean["append_motion"] and not motion["enabled"]:
            raise ConfigError("config key 'stages.clean.append_motion': needs stages.motion.enabled: true")
        if clean["enabled"] and not clean["append_motion"] and not self._has_column(clean["text_column"] or default):
            print(f"vidcap: stage clean skipped: no caption to clean (caption stage off and the manifest has "
                  f"no {clean['text_column'] or default!r} column)", file=sys.stderr)
            clean["enabled"] = False
        if tags["enabled"] and not self._has_column(tags["text_column"] or default):
            raise ConfigError(f"config key 'stages.tags': no caption to tag: switch stages.caption on or give the "
                              f"manifest a {tags['text_column'] or default!r} column (or set stages.tags.text_column)")
        return default


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
    from vidcap.config import validate_config

    return _or_exit(validate_config, config)


def plan(config: dict) -> Plan:
    """``Plan(config)``, stopping Snakemake with one line (e.g. which manifest to set) when it cannot."""
    return _or_exit(Plan, config)


def clip_step_config(user: dict, config: dict, workdir: Path | None = None) -> dict:
    """The config of the second step after the shots step: the user's config (as written) with the clip
    table as manifest, run name ``<name>_clips``, paths already absolute (no ``media_root``) and the
    shots stage off."""
    import copy

    out = copy.deepcopy(user)
    run = RunDir(Path(workdir or Path.cwd()) / config["results_dir"], config["name"])
    out["manifest"] = str(run.clips("parquet").resolve())
    out["name"] = f"{config['name']}_clips"
    out["media_root"] = None
    out.setdefault("stages", {}).setdefault("shots", {})["enabled"] = False
    return out
