"""The stage registry: the one list of stages, in the order their columns appear in the merged table.

It drives everything that needs to know the stages: the rule generated per stage
(``rules/stages.smk``), the ``vidcap <stage>`` subcommands (``vidcap.cli.workflow``), the config schema sections
(``vidcap/schema/stages/<name>.yaml``), ``status`` and the report's order.

Adding a stage = its package ``vidcap/<name>/`` (``stage.py``: a ``Stage`` subclass, contract in
``vidcap.stages.base``; ``plan.py`` when it wires into other stages: ``vidcap.stages.plan``), its schema
section, and one ``StageSpec`` line below. Nothing else (``docs/architecture.md`` has a worked example).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from vidcap.stages.plan import PlanHooks
from vidcap.stages.report import ReportPart


@dataclass(frozen=True)
class StageSpec:
    """What the workflow must know of a stage without importing it.

    ``target``: ``module:Class``. ``reads``: stages whose columns it reads, joined by row id (their
    per-shard outputs become inputs of its job when they are enabled). ``gpu``: its jobs may hold
    GPUs (``resources.gpu`` of its config section is exported as ``VIDCAP_GPUS_PER_JOB``).
    ``group``: cheap per-shard jobs that a cluster profile may bundle (``profiles/slurm``).
    ``plan``: ``module:Class`` of its plan hooks (``vidcap.stages.plan.PlanHooks``: cross-stage
    wiring, extra run outputs, merge options); none: the defaults. ``step``: ``main``, or the name of a
    step that runs alone before the main one and makes its manifest (``clips``: the shots step).
    ``command``: a module that makes ``vidcap <name>`` a command of its own as well as the stage's job:
    ``add_arguments(parser)`` adds the command's flags to the stage's subcommand (whose job flags
    ``--shard``/``--out``/``--journal`` become optional), ``RUN``: ``module:function`` of the
    ``run(args) -> int`` that runs it when ``--shard`` is not given, imported only then (the parser is
    built for every ``vidcap`` call); with ``--shard`` the job runs (``vidcap.cli.workflow``). Empty: the
    job only. ``report``: ``module:Class`` of what it adds to the run's report
    (``vidcap.stages.report.ReportPart``: plots, a section, cost, provenance); none: nothing.
    """

    name: str
    target: str
    reads: tuple[str, ...] = ()
    gpu: bool = False
    group: str = ""
    help: str = ""
    plan: str = ""
    step: str = "main"
    command: str = ""
    report: str = ""

    def load(self):
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)

    def hooks(self) -> PlanHooks:
        if not self.plan:
            return PlanHooks(self)
        module, _, cls = self.plan.partition(":")
        return getattr(importlib.import_module(module), cls)(self)

    def report_part(self) -> ReportPart:
        """What the stage adds to the report (``report``: ``module:Class``, ``vidcap.stages.report``)."""
        if not self.report:
            return ReportPart(self)
        module, _, cls = self.report.partition(":")
        return getattr(importlib.import_module(module), cls)(self)


REGISTRY: tuple[StageSpec, ...] = (
    StageSpec("shots", "vidcap.shots.stage:ShotsStage", plan="vidcap.shots.plan:ShotsPlan", step="clips",
              help="cut each video into shots: one row per clip (the shots step; docs/shots.md)"),
    StageSpec("probe", "vidcap.probe.stage:ProbeStage", group="cpu", report="vidcap.probe.report:ProbeReport",
              plan="vidcap.probe.plan:ProbePlan",
              help="container facts: frames, fps, size, codec; truncated and unreadable files"),
    StageSpec("caption", "vidcap.caption.stage:CaptionStage", gpu=True, plan="vidcap.caption.plan:CaptionPlan",
              report="vidcap.caption.report:CaptionReport",
              help="a caption per row from a vision-language model (local or API)"),
    StageSpec("clean", "vidcap.clean.stage:CleanStage", reads=("caption", "motion"), plan="vidcap.clean.plan:CleanPlan",
              help="caption hygiene: openings, whitespace, flags, word and token counts"),
    StageSpec("motion", "vidcap.motion.stage:MotionStage", group="cpu", report="vidcap.motion.report:MotionReport",
              plan="vidcap.motion.plan:MotionPlan",
              help="camera-motion label per row"),
    StageSpec("tags", "vidcap.tags.stage:TagsStage", reads=("caption",), gpu=True, plan="vidcap.tags.plan:TagsPlan",
              report="vidcap.tags.report:TagsReport",
              help="objects/actions/your keys as lists, from an LLM reading the caption"),
    StageSpec("judge", "vidcap.judge.stage:JudgeStage", reads=("caption", "motion"), gpu=True,
              plan="vidcap.judge.plan:JudgePlan", command="vidcap.judge.command", report="vidcap.judge.report:JudgeReport",
              help="an LLM judge scores two answers per row (reference vs caption): docs/judge.md"),
    StageSpec("scores", "vidcap.scores.stage:ScoresStage", reads=("caption",), plan="vidcap.scores.plan:ScoresPlan",
              group="cpu", report="vidcap.scores.report:ScoresReport",
              help="filter scores: motion, blur, exposure, stills, aesthetic, caption match, text area"),
)

SPECS: dict[str, StageSpec] = {s.name: s for s in REGISTRY}
STAGES: tuple[str, ...] = tuple(SPECS)


def get_spec(name: str) -> StageSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; known: {', '.join(STAGES)}") from None


def get_stage(name: str, params: dict | None = None):
    """The stage object for a name; ValueError lists the known names."""
    return get_spec(name).load()(params)
