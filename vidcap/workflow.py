"""What the Snakemake workflow runs, computed from a validated config (``rules/common.smk`` uses it).

``Plan(config)`` answers, without importing any stage: the run's paths (``RunDir``), the shard
names, the enabled stages in registry order, each stage's result-changing settings as the JSON its
job receives, the enabled upstream stages it reads, and the merge's options. Cross-stage rules live
here, in one place:

* clean and tags read the caption from the caption stage's ``output_column`` when captioning is on,
  else from the manifest's ``text`` (or their own ``text_column``); clean without any text to clean
  is switched off with a note, tags without text is a config error;
* ``stages.motion.append_to_text`` is an alias of ``stages.clean.append_motion`` + ``replace_text``;
* clean's ``tokenizer: auto`` is the caption model's when captioning with the transformers runner;
* a user-defined prompt's text travels with the caption settings (``prompt_spec``), so editing the
  wording reruns the stage.

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
from vidcap.shards import shard_names
from vidcap.stages import REGISTRY, SPECS
from vidcap.tables import count_rows, parquet_intact, read_table_columns

# settings that concern the workflow, not the stage's results
_WORKFLOW_KEYS = ("enabled", "resources", "append_to_text")


class Plan:
    def __init__(self, config: dict):
        self.config = config
        self.run = RunDir(config["results_dir"], config["name"])
        try:
            self.rows = count_rows(config["manifest"])
        except TableError as exc:
            raise TableError(f"config key 'manifest': {exc}. Set manifest: to your table of clips (CSV or "
                             "Parquet with a path column) in your config, or --config manifest=clips.csv") from None
        self.shards = shard_names(self.rows, config["shard_size"])
        self.text_column = self._resolve_text_stages()

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
        """Enabled stages, in registry (= merged column) order."""
        return [s.name for s in REGISTRY if self.config["stages"][s.name]["enabled"]]

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
            on = caption["enabled"] and caption["runner"] == "transformers"
            settings["tokenizer"] = caption["transformers"]["model"] if on else None
            settings["tokenizer_auto"] = True  # unavailable -> caption_tokens null instead of a failed job
        prompt = settings.get("prompt")
        if prompt in self.config["prompts"]:
            settings["prompt_spec"] = self.config["prompts"][prompt]  # a user-defined prompt travels along
        return settings

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
        return opts

    def final_outputs(self) -> list[str]:
        """What ``rule all`` asks for: the merged table, summary and report, and every stage output
        (so a stage output that went missing is always made again, even when the table exists)."""
        run = self.run
        outputs = [run.table("csv"), run.table("parquet"), run.summary_json, run.summary_csv]
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
        try:
            read_table_columns(self.config["manifest"], [column])
            return True
        except TableError:
            return False

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
