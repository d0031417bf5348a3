"""The caption stage's plan hooks (``vidcap.stages.plan``).

* Its output column is the run's text (``TextSource``): clean and tags read it, the judge compares it,
  and its ``caption_error`` fails a judged row before any request. Its question column is
  ``prompt_column`` (else the manifest's ``prompt``), its question the prompt's wording when that is
  not a template; its tokenizer the transformers model (the pllava runner: ``repo_id``, else
  ``weight_dir``).
* A typo in NeVA's sampling block (``neva_inference``) and a missing ``prompt_column`` stop the run.
* The merge marks duplicate captions, drops failed rows unless ``keep_failed``, and writes
  ``<name>.answers.jsonl`` (NeVA's answer shape) when ``answers_file`` says so (``auto``: when the
  manifest is a prompt file).
"""
from __future__ import annotations

from pathlib import Path

from vidcap.caption.neva_inference import apply_neva_inference
from vidcap.errors import ConfigError
from vidcap.prompts import get_prompt
from vidcap.stages.plan import PlanContext, PlanHooks, TextSource


class CaptionPlan(PlanHooks):
    def prompt_text(self, ctx: PlanContext) -> str:
        return get_prompt(self.section(ctx)["prompt"], ctx.config["prompts"]).user

    def text_source(self, ctx: PlanContext) -> TextSource:
        caption = self.section(ctx)
        text = self.prompt_text(ctx)
        runner = caption["runner"]
        if runner == "pllava":   # the tokenizer lives with the config (repo_id)
            tokenizer = caption["pllava"]["repo_id"] or caption["pllava"]["weight_dir"]
        else:
            tokenizer = caption["transformers"]["model"] if runner == "transformers" else None
        return TextSource(stage=self.name, column=caption["output_column"], error_column=f"{self.name}_error",
                          question_column=caption["prompt_column"] or None,
                          question=text if "{" not in text else None,   # a template is not a question
                          tokenizer=tokenizer)

    def check(self, ctx: PlanContext) -> None:
        caption = self.section(ctx)
        if caption["neva_inference"]:   # a typo in NeVA's block stops the run here

            apply_neva_inference(caption["generation"], caption["neva_inference"], caption["insert_media_token"])
        if caption["prompt_column"] and not ctx.has_column(caption["prompt_column"]):
            raise ConfigError(f"config key 'stages.{self.name}.prompt_column': the manifest has no column "
                              f"{caption['prompt_column']!r}")

    def duplicates_of(self, ctx: PlanContext) -> str:
        return self.section(ctx)["output_column"]

    def _answers_wanted(self, ctx: PlanContext) -> bool:
        want = self.section(ctx)["answers_file"]
        return want == "always" or (want == "auto" and ctx.is_prompt_file())

    def gather_options(self, ctx: PlanContext) -> list[str]:
        caption, opts = self.section(ctx), []
        if not caption["keep_failed"]:
            opts += ["--drop-failed", self.name]
        if self._answers_wanted(ctx):
            opts += ["--answers", str(ctx.run.answers), "--answers-text-column", caption["output_column"],
                     "--answers-id-column", "question_id" if ctx.has_column("question_id") else "row_id"]
            if caption["prompt_column"]:
                opts += ["--answers-prompt-column", caption["prompt_column"]]
            else:
                opts += ["--answers-prompt", self.prompt_text(ctx)]
        return opts

    def outputs(self, ctx: PlanContext) -> dict[str, Path]:
        return {"answers": ctx.run.answers} if self._answers_wanted(ctx) else {}
