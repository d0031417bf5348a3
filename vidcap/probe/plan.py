"""The probe stage's plan hooks: its summary sections (clip duration, resolution)."""
from __future__ import annotations

from vidcap.stages.plan import PlanHooks, SummarySection


class ProbePlan(PlanHooks):
    def summary_sections(self) -> list[SummarySection]:
        return [SummarySection("duration_s", "numbers", ("duration",), order=40),
                SummarySection("resolution", "pairs", ("width", "height"), order=50)]
