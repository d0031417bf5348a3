"""The motion stage's part of the run's report (``vidcap.stages.report``): the camera-motion distribution."""
from __future__ import annotations

from vidcap.stages.report import Plot, ReportPart


class MotionReport(ReportPart):
    def plots(self, summary: dict) -> list[Plot]:
        return [Plot("Camera motion", "bar", summary.get("cmotion"), heading="Camera motion (cmotion)", order=10)]
