"""The shots stage's plan hooks (``vidcap.stages.plan``).

With ``stages.shots`` on, a run is the shots step (``StageSpec.step``: ``clips``): it cuts the videos
into clips and ends with the clip table (``<name>.clips.parquet`` / ``.csv``, and
``.clips_failed.csv`` for videos that gave none), the manifest of the next step where the other
stages run (``vidcap run`` does both). ``export.dir`` defaults to the run folder's ``clips/``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from vidcap.stages.plan import PlanContext, PlanHooks


class ShotsPlan(PlanHooks):
    def check(self, ctx: PlanContext) -> None:
        others = [name for name, section in ctx.config["stages"].items()
                  if name != self.name and section.get("enabled")]
        if others:
            print(f"vidcap: stages.{self.name} is on: this run cuts the videos into clips "
                  f"({ctx.run.clips('parquet')}); the other stages run on the clips in the next step "
                  "(`vidcap run` does both)", file=sys.stderr)

    def settings(self, ctx: PlanContext, settings: dict) -> dict:
        if settings["export"]["enabled"] and not settings["export"]["dir"]:
            settings["export"] = {**settings["export"], "dir": str(ctx.run.root / "clips")}
        return settings

    def step_outputs(self, ctx: PlanContext) -> dict[str, Path]:
        run = ctx.run
        return {"parquet": run.clips("parquet"), "csv": run.clips("csv"), "failed": run.clips("failed.csv")}
