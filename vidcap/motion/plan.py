"""The motion stage's plan hooks: its summary section (every camera-motion label counted)."""
from __future__ import annotations

from vidcap.stages.plan import PlanHooks, SummarySection


class MotionPlan(PlanHooks):
    def summary_sections(self) -> list[SummarySection]:
        return [SummarySection("cmotion", "labels", ("cmotion",), order=30)]
