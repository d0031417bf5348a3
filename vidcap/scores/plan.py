"""The scores stage's plan hooks (``vidcap.stages.plan``).

``caption_match`` matches the run's text (``ctx.text_column``: the caption when captioning, else the
manifest's ``text``) unless ``text_column`` names another; the model scores need ``clip.model`` and the
aesthetic score its head file. ``near_duplicates``: the stage writes ``clip_embedding`` (only ``enabled``
changes its results); the merge compares the embeddings (``vidcap.merge.near_dups``) and, unless
``keep_embeddings``, leaves the column out of the merged table.
"""
from __future__ import annotations

from pathlib import Path

from vidcap.errors import ConfigError
from vidcap.stages.plan import PlanContext, PlanHooks, SummarySection

# the numeric score columns, in the order of the summary and the report (docs/scores.md)
NUMBERS = ("motion_flow", "motion_mv", "laplacian_var", "brightness", "dark_share", "overexposed_share",
           "aesthetic", "clip_match", "text_area")

EMBEDDING = "clip_embedding"   # the scores stage's embedding column (vidcap.scores.stage)
NEAR_SIM = "near_duplicate_sim"   # the merge's (vidcap.gather): its count is the rows marked near-duplicate


class ScoresPlan(PlanHooks):
    def settings(self, ctx: PlanContext, settings: dict) -> dict:
        match = dict(settings["caption_match"])
        if match["enabled"] and not match["text_column"]:
            match["text_column"] = ctx.text_column
        near = {"enabled": bool(settings["near_duplicates"]["enabled"])}   # the rest is the merge's
        return {**settings, "caption_match": match, "near_duplicates": near}

    def check(self, ctx: PlanContext) -> None:
        s = self.settings(ctx, self.section(ctx))
        key = f"stages.{self.name}"
        if (s["aesthetic"]["enabled"] or s["caption_match"]["enabled"] or s["near_duplicates"]["enabled"]) \
                and not s["clip"]["model"]:
            raise ConfigError(f"config key '{key}.clip.model': aesthetic, caption_match and near_duplicates need a CLIP model "
                              "(a folder with a transformers CLIPModel, e.g. openai/clip-vit-large-patch14)")
        head = s["aesthetic"]["head"]
        if s["aesthetic"]["enabled"] and not (head and Path(head).is_file()):
            raise ConfigError(f"config key '{key}.aesthetic.head': no file {head!r} (LAION's aesthetic "
                              "predictor weights, e.g. sac+logos+ava1-l14-linearMSE.pth)")
        column = s["caption_match"]["text_column"]
        if s["caption_match"]["enabled"] and not ctx.has_column(column):
            raise ConfigError(f"config key '{key}.caption_match.text_column': no column {column!r} in the "
                              "manifest" + ("" if ctx.text_source else " (and the caption stage is off)"))

    def gather_options(self, ctx: PlanContext) -> list[str]:
        near = self.section(ctx)["near_duplicates"]
        if not near["enabled"]:
            return []
        opts = ["--near-duplicates", EMBEDDING, "--near-threshold", str(near["threshold"]),
                "--near-probes", str(near["probes"]), "--near-rows-per-cluster", str(near["rows_per_cluster"])]
        return opts + ([] if near["keep_embeddings"] else ["--drop-column", EMBEDDING])

    def summary_sections(self) -> list[SummarySection]:
        """A ``numbers`` section per numeric score column (key = column) and ``still`` counted, after the
        other stages' sections (orders 60-69)."""
        return [*(SummarySection(col, "numbers", (col,), order=60 + i) for i, col in enumerate(NUMBERS)),
                SummarySection("still", "labels", ("still",), order=69),
                SummarySection(NEAR_SIM, "numbers", (NEAR_SIM,), order=70)]
