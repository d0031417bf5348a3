"""The clean stage's plan hooks (``vidcap.stages.plan``).

* It cleans the run's text (``ctx.text_column``: the caption when captioning, else the manifest's
  ``text``) unless ``text_column`` says otherwise; without any text (and no motion sentence to append)
  it is switched off with a note.
* ``stages.motion.append_to_text`` (motion is a stage clean reads) is an alias of ``append_motion`` +
  ``replace_text``; ``append_motion`` needs the motion stage on.
* ``tokenizer: auto`` is the text source's tokenizer (the caption model's); when that is unavailable
  ``caption_tokens`` is null instead of a failed job (``tokenizer_auto``).
* The merge marks duplicates of the cleaned text (the text column itself with ``replace_text``).
"""
from __future__ import annotations

from vidcap.errors import ConfigError
from vidcap.stages.plan import PlanContext, PlanHooks, SummarySection

MOTION = "motion"   # the stage whose label sentence clean appends (one of clean's registry `reads`)


class CleanPlan(PlanHooks):
    def prepare(self, ctx: PlanContext) -> None:
        motion, clean = ctx.section(MOTION), self.section(ctx)
        if motion["enabled"] and motion["append_to_text"]:
            if not clean["enabled"]:
                raise ConfigError(f"config key 'stages.{MOTION}.append_to_text': needs stages.{self.name}.enabled: "
                                  "true (the clean stage appends the camera-motion sentence)")
            clean["append_motion"] = clean["replace_text"] = True

    def check(self, ctx: PlanContext) -> None:
        clean = self.section(ctx)
        if clean["append_motion"] and not ctx.enabled(MOTION):
            raise ConfigError(f"config key 'stages.{self.name}.append_motion': needs stages.{MOTION}.enabled: true")
        column = clean["text_column"] or ctx.text_column
        if not clean["append_motion"] and not ctx.has_column(column):
            ctx.disable(self.name, f"no caption to clean (caption stage off and the manifest has no {column!r} column)")

    def settings(self, ctx: PlanContext, settings: dict) -> dict:
        if not settings.get("text_column"):
            settings["text_column"] = ctx.text_column
        if settings.get("tokenizer") == "auto":
            settings["tokenizer"] = ctx.text_source.tokenizer if ctx.text_source else None
            settings["tokenizer_auto"] = True  # unavailable -> caption_tokens null instead of a failed job
        return settings

    def duplicates_of(self, ctx: PlanContext) -> str:
        clean = self.section(ctx)
        return (clean["text_column"] or ctx.text_column) if clean["replace_text"] else "clean_text"

    def summary_sections(self) -> list[SummarySection]:
        return [SummarySection("caption_words", "numbers", ("caption_words",), order=20)]
