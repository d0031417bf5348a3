"""The caption's part of the run's report (``vidcap.stages.report``): the text the gallery shows, the
caption-length distribution, its API cost, and the models and prompts in provenance."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from vidcap.caption.cost import run_cost
from vidcap.io.tables import pair_counts
from vidcap.prompts import get_prompt
from vidcap.stages.report import Plot, ReportPart


class CaptionReport(ReportPart):
    def text(self, config: dict | None) -> tuple[str, str | None]:
        """The caption's output column (``text`` without a config) and the decoder of its frames."""
        cfg = self.section_config(config)
        return cfg.get("output_column", "text"), (cfg.get("frames") or {}).get("decoder")

    def plots(self, summary: dict) -> list[Plot]:
        return [Plot("Caption length", "hist", summary.get("caption_words"), xlabel="words", order=30,
                     stats_label="caption words")]

    def cost(self, run_root: Path) -> dict | None:
        return run_cost(run_root)

    def provenance(self, df: pd.DataFrame, config: dict | None) -> dict[str, list[dict]]:
        models = [{"stage": self.name, "model": model, "revision": revision, "rows": n}
                  for model, revision, n in pair_counts(df, "caption_model", "caption_revision")]
        prompts = []
        for name, recorded, n in pair_counts(df, "caption_prompt", "caption_prompt_hash"):
            entry = {"stage": self.name, "key": name, "hash": recorded, "rows": n, "system": "", "user": "",
                     "kind": "", "note": ""}
            try:
                p = get_prompt(name, (config or {}).get("prompts"))
                entry.update(system=p.system, user=p.user, kind=p.kind)
                if recorded and p.hash != recorded:
                    entry["note"] = (f"the wording below (hash {p.hash}) is today's; the rows were made with "
                                     f"another wording (hash {recorded})")
            except KeyError:
                entry["note"] = "wording unknown (not a built-in prompt and not in the config)"
            prompts.append(entry)
        return {"models": models, "prompts": prompts}
