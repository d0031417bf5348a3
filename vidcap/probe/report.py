"""The probe's part of the run's report (``vidcap.stages.report``): clip duration and resolution."""
from __future__ import annotations

from vidcap.stages.report import Plot, ReportPart


class ProbeReport(ReportPart):
    def plots(self, summary: dict) -> list[Plot]:
        return [Plot("Clip duration", "hist", summary.get("duration_s"), xlabel="seconds", order=40,
                     stats_label="duration (s)"),
                Plot("Resolution", "bar", summary.get("resolution"), heading="Resolution (width×height)", order=50)]
