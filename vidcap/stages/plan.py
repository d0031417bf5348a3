"""Plan hooks: what a stage adds to the workflow's plan besides one job per shard.

A stage's cross-stage wiring lives with the stage, in ``vidcap/<feature>/plan.py``, as a
``PlanHooks`` subclass named by its registry line (``StageSpec.plan``). ``vidcap.workflow.Plan``
calls the hooks of every enabled stage, in registry order, and names no stage itself:

1. ``prepare(ctx)``: aliases that set keys of this stage's own section from the sections of the
   stages it reads (e.g. clean takes ``stages.motion.append_to_text``).
2. ``text_source(ctx)``: when the stage writes text that later stages read (the caption), which
   column, its error column, its question column and tokenizer. The last enabled stage in registry
   order that offers one is ``ctx.text_source``; without one the manifest's ``text`` is the text.
3. ``check(ctx)``: combinations that cannot work raise ``ConfigError`` naming the key; a stage that
   has nothing to do may switch itself off with a note (``ctx.disable``).
4. ``settings(ctx, settings)``: the job's result-changing settings resolved from the whole config.
5. ``duplicates_of(ctx)``: a text column whose duplicate values the merge marks (the last enabled
   stage that offers one wins); ``gather_options(ctx)``: further ``vidcap gather`` arguments;
   ``outputs(ctx)``: extra files the merge writes (name → path).
6. ``summary_sections()``: the sections of the dataset summary the stage's columns give
   (``SummarySection``; ``vidcap.summary`` computes them, a section whose columns are absent is left out).
7. ``step_outputs(ctx)``: for a stage that runs as a step of its own (``StageSpec.step``), the files
   that step ends with (they are the next step's manifest).

Hooks stay light (no model, no media library): Snakemake imports them while it reads the workflow.
A hook names only its own stage and the stages it reads (``StageSpec.reads``); ``tests/test_layout.py``
checks that.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: the plan context is implemented by vidcap.workflow.Plan
    from vidcap.io.run_dir import RunDir
    from vidcap.stages import StageSpec


@dataclass(frozen=True)
class TextSource:
    """Text a stage writes for later stages (clean, tags, the judge) to read."""

    stage: str
    column: str
    error_column: str
    question_column: str | None = None   # the per-row question column it answered, if any
    question: str | None = None          # the question text it asked every row, if it is one question
    tokenizer: str | None = None         # the model's tokenizer, when it is a local Hugging Face model


@dataclass(frozen=True)
class SummarySection:
    """A section of the dataset summary (``vidcap.summary``) a stage's columns give.

    ``kind``: ``numbers`` (count, mean, p50, p90, max and a histogram of ``columns[0]``), ``labels``
    (every value of ``columns[0]`` counted), ``pairs`` (``columns[0]`` x ``columns[1]`` counted, top_k),
    ``lists`` (list-of-strings columns, top_k values per column; ``columns`` empty: the ``--tag-key``
    columns, else detected). ``order``: place among the sections (JSON keys and CSV rows).
    """

    key: str
    kind: str
    columns: tuple[str, ...] = ()
    order: int = 0


class PlanContext(Protocol):
    """What hooks may read of the plan (``vidcap.workflow.Plan`` implements it)."""

    config: dict
    run: RunDir
    text_source: TextSource | None

    @property
    def text_column(self) -> str: ...

    def section(self, stage: str) -> dict: ...

    def enabled(self, stage: str) -> bool: ...

    def disable(self, stage: str, why: str) -> None: ...

    def has_column(self, column: str) -> bool: ...

    def is_prompt_file(self) -> bool: ...


class PlanHooks:
    """Defaults: no alias, no text, no check, settings as configured, nothing extra to merge."""

    def __init__(self, spec: StageSpec):
        self.spec = spec
        self.name = spec.name

    def section(self, ctx: PlanContext) -> dict:
        return ctx.section(self.name)

    def prepare(self, ctx: PlanContext) -> None:
        return None

    def text_source(self, ctx: PlanContext) -> TextSource | None:
        return None

    def check(self, ctx: PlanContext) -> None:
        return None

    def settings(self, ctx: PlanContext, settings: dict) -> dict:
        return settings

    def duplicates_of(self, ctx: PlanContext) -> str | None:
        return None

    def gather_options(self, ctx: PlanContext) -> list[str]:
        return []

    def outputs(self, ctx: PlanContext) -> dict[str, Path]:
        return {}

    def step_outputs(self, ctx: PlanContext) -> dict[str, Path]:
        return {}

    def summary_sections(self) -> list[SummarySection]:
        return []
