"""The judge stage's plan hooks (``vidcap.stages.plan``).

The judge compares answer A (a column, or ``reference_answers`` found by ``key_column``) with answer B,
by default the run's text (``ctx.text_source``: the caption); then the text source's error column
(``caption_error``) fails a row before any request. Its question is the text source's question column
(else the manifest's ``prompt``), else the question the text source asked every row. The merge writes
the per-category table ``<name>.judge.csv``.
"""
from __future__ import annotations

from pathlib import Path

from vidcap.errors import ConfigError
from vidcap.stages.plan import PlanContext, PlanHooks


class JudgePlan(PlanHooks):
    def settings(self, ctx: PlanContext, settings: dict) -> dict:
        source = ctx.text_source
        out = dict(settings)
        b = settings.get("answer_b_column") or ctx.text_column
        out["answer_b_column"] = b
        errors = list(settings.get("error_columns") or [])
        if source and b == source.column and source.error_column not in errors:
            errors.append(source.error_column)
        out["error_columns"] = errors
        if not settings.get("question_column"):
            out["question_column"] = (source.question_column if source and source.question_column
                                      else "prompt" if ctx.has_column("prompt") else None)
        if not settings.get("question") and source and source.question:
            out["question"] = source.question
        return out

    def check(self, ctx: PlanContext) -> None:
        resolved = self.settings(ctx, self.section(ctx))
        key = f"stages.{self.name}"
        if resolved["reference_answers"]:
            if not Path(resolved["reference_answers"]).is_file():
                raise ConfigError(f"config key '{key}.reference_answers': no file {resolved['reference_answers']}")
            if not ctx.has_column(resolved["key_column"]):
                raise ConfigError(f"config key '{key}.key_column': the manifest has no column "
                                  f"{resolved['key_column']!r} to find reference answers by")
        elif not resolved["answer_a_column"]:
            raise ConfigError(f"config key '{key}': give answer A: answer_a_column or reference_answers")
        for name in ("answer_a_column", "answer_b_column"):
            col = resolved[name]
            if col and not ctx.has_column(col):
                raise ConfigError(f"config key '{key}.{name}': no column {col!r} in the manifest"
                                  + ("" if ctx.text_source else " (and the caption stage is off)"))

    def gather_options(self, ctx: PlanContext) -> list[str]:
        return ["--judge-table", str(ctx.run.judge_table)]

    def outputs(self, ctx: PlanContext) -> dict[str, Path]:
        return {"judge": ctx.run.judge_table}
