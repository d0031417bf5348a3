"""The tags stage's part of the run's report (vidcap.stages.report): the top values per key, and the
tag columns the gallery shows and filters by."""
from __future__ import annotations

import pandas as pd

from vidcap.stages.report import Plot, ReportPart


class TagsReport(ReportPart):
    def plots(self, summary: dict) -> list[Plot]:
        return [Plot(f"Tags: {key}", "bar", pairs, heading=f"Top {key}", order=20)
                for key, pairs in (summary.get(self.name) or {}).items()]

    def list_columns(self, df: pd.DataFrame, summary: dict) -> dict[str, str]:
        """Tag key -> column holding its values (``tags_<key>`` or ``<key>``), for the summary's keys."""
        out = {}
        for key in (summary.get(self.name) or {}).keys():
            for col in (f"tags_{key}", key):
                if col in df.columns:
                    out[key] = col
                    break
        return out
