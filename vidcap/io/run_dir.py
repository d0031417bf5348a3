"""The one owner of a run's files: every path of a run is built here and nowhere else.

Layout of ``<results_dir>/<name>/`` (the run folder) and its siblings::

    <results_dir>/<name>.csv  .parquet  .summary.json  .summary.csv  .report.html
    <results_dir>/<name>.answers.jsonl  .judge.csv                 (questions; the judge stage)
    <results_dir>/<name>.clips.parquet  .clips.csv  .clips_failed.csv   (the shots step)
    <results_dir>/<name>/
        shards/<shard>.parquet, shards/manifest.json     the manifest split, with row ids
        stages/<stage>/<shard>.parquet                    a stage's output for a shard (Snakemake's)
        journal/<stage>/<shard>.jsonl                     finished rows (survive a killed job)
        journal/<stage>/<shard>.jsonl.lock                held by the job working on the shard
        stats/<stage>/<shard>.json                        what the job did (machine-readable)
        settings/<stage>.json                             the stage's result-changing settings
        logs/<stage>/<shard>.log, logs/<step>.log         job logs (for people)
        benchmarks/<stage>/<shard>.tsv                    Snakemake's time and memory per job
        run.lock                                          held by the Snakemake run using the folder
        manifest.count.json                               the manifest's rows, for its size and mtime
        config.json                                       the validated config (secrets scrubbed)

Any ``shard`` argument may be a Snakemake wildcard such as ``"{shard}"``: the result is then a pattern.
Readers of a finished or running run (status, cost, report) read stats files, never log text.
"""
from __future__ import annotations

import json
from pathlib import Path

SHARD_INFO = "manifest.json"


class RunDir:
    """Paths of one run. ``RunDir(results_dir, name)`` or ``RunDir.at(run_folder)``."""

    def __init__(self, results_dir: str | Path, name: str):
        self.results = Path(results_dir)
        self.name = name
        self.root = self.results / name

    @classmethod
    def at(cls, run_folder: str | Path) -> RunDir:
        """The run whose folder is ``run_folder`` (``<results_dir>/<name>``)."""
        run_folder = Path(run_folder)
        return cls(run_folder.parent, run_folder.name)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # ---------------------------------------------------------------------------------- outputs

    def table(self, suffix: str) -> Path:
        """The merged table: ``suffix`` ``csv`` or ``parquet``."""
        return self.results / f"{self.name}.{suffix}"

    @property
    def summary_json(self) -> Path:
        return self.results / f"{self.name}.summary.json"

    @property
    def summary_csv(self) -> Path:
        return self.results / f"{self.name}.summary.csv"

    @property
    def report(self) -> Path:
        return self.results / f"{self.name}.report.html"

    @property
    def answers(self) -> Path:
        """Caption answers in NeVA's shape (a prompt-file manifest)."""
        return self.results / f"{self.name}.answers.jsonl"

    @property
    def judge_table(self) -> Path:
        """The judge's per-category table."""
        return self.results / f"{self.name}.judge.csv"

    def clips(self, suffix: str) -> Path:
        """The shots step's clip table (``parquet``, ``csv``) or its failed source rows (``failed.csv``)."""
        return self.results / (f"{self.name}.clips.{suffix}" if suffix != "failed.csv" else f"{self.name}.clips_failed.csv")

    @property
    def config_json(self) -> Path:
        return self.root / "config.json"

    # ----------------------------------------------------------------------------------- shards

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    @property
    def shard_info_path(self) -> Path:
        return self.shards_dir / SHARD_INFO

    def shard(self, shard: str) -> Path:
        return self.shards_dir / f"{shard}.parquet"

    def shard_info(self) -> dict:
        """``manifest.json`` written by the shard step (rows, shard names, media base); FileNotFoundError
        with a readable message before the run has sharded."""
        if not self.shard_info_path.is_file():
            raise FileNotFoundError(f"{self.root}: no shards yet ({self.shard_info_path} missing); "
                                    "has the run started?")
        return json.loads(self.shard_info_path.read_text())

    def shard_names(self) -> list[str]:
        return list(self.shard_info()["shards"])

    # ---------------------------------------------------------------------------- per stage/shard

    def stage_dir(self, stage: str) -> Path:
        return self.root / "stages" / stage

    def output(self, stage: str, shard: str) -> Path:
        return self.stage_dir(stage) / f"{shard}.parquet"

    def journal(self, stage: str, shard: str) -> Path:
        return self.root / "journal" / stage / f"{shard}.jsonl"

    def journals(self, stage: str, stale: bool = False) -> list[Path]:
        """The stage's journals, by shard name (``stale``: those set aside after a settings change)."""
        folder = self.root / "journal" / stage
        pattern = "*.jsonl.stale" if stale else "*.jsonl"
        return sorted(folder.glob(pattern)) if folder.is_dir() else []

    def settings(self, stage: str) -> Path:
        return self.root / "settings" / f"{stage}.json"

    def stats(self, stage: str, shard: str) -> Path:
        return self.root / "stats" / stage / f"{shard}.json"

    def log(self, stage: str, shard: str | None = None) -> Path:
        """A job's log: ``logs/<stage>/<shard>.log``, or ``logs/<step>.log`` for one-job steps."""
        return self.root / "logs" / (f"{stage}.log" if shard is None else f"{stage}/{shard}.log")

    def benchmark(self, stage: str, shard: str | None = None) -> Path:
        return self.root / "benchmarks" / (f"{stage}.tsv" if shard is None else f"{stage}/{shard}.tsv")

    def lock(self, stage: str, shard: str) -> Path:
        """Held by the job working on (stage, shard): ``vidcap.stages.base.run_stage`` takes it."""
        return journal_lock(self.journal(stage, shard))

    @property
    def manifest_count(self) -> Path:
        """The plan's row count of the manifest, remembered for its size and mtime (``vidcap.io.table_batches``)."""
        return self.root / "manifest.count.json"

    @property
    def run_lock(self) -> Path:
        """Held by the Snakemake process running this folder (``vidcap.workflow.Plan.lock_run``)."""
        return self.root / "run.lock"

    def stage_names(self) -> list[str]:
        """Stages that have left any output, journal or stats in this run, sorted by name."""
        names: set[str] = set()
        for kind in ("stages", "journal", "stats"):
            folder = self.root / kind
            if folder.is_dir():
                names.update(p.name for p in folder.iterdir() if p.is_dir())
        return sorted(names)

    def read_stats(self, stage: str, shard: str) -> dict | None:
        """The stats a stage job wrote for a shard, or None (not run yet, or unreadable)."""
        path = self.stats(stage, shard)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None


def journal_lock(journal: str | Path) -> Path:
    """The lock file of a journal: ``<journal>.lock``."""
    journal = Path(journal)
    return journal.with_name(journal.name + ".lock")
