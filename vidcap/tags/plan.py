"""The tags stage's plan hooks (``vidcap.stages.plan``): it tags the run's text (``ctx.text_column``,
or its own ``text_column``), which must exist; the merge counts the values of every effective key
(built-in keys updated by the user's ``keys``) for the summary."""
from __future__ import annotations

from vidcap.errors import ConfigError
from vidcap.stages.plan import PlanContext, PlanHooks, SummarySection
from vidcap.tags.stage import effective_keys


class TagsPlan(PlanHooks):
    def check(self, ctx: PlanContext) -> None:
        column = self.section(ctx)["text_column"] or ctx.text_column
        if not ctx.has_column(column):
            raise ConfigError(f"config key 'stages.{self.name}': no caption to tag: switch stages.caption on or give "
                              f"the manifest a {column!r} column (or set stages.{self.name}.text_column)")

    def settings(self, ctx: PlanContext, settings: dict) -> dict:
        if not settings.get("text_column"):
            settings["text_column"] = ctx.text_column
        return settings

    def gather_options(self, ctx: PlanContext) -> list[str]:
        opts: list[str] = []
        for key in effective_keys(self.section(ctx)["keys"]):
            opts += ["--tag-key", key]
        return opts

    def summary_sections(self) -> list[SummarySection]:
        return [SummarySection("tags", "lists", order=10)]
