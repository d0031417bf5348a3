"""Report parts: what a stage adds to the run's HTML report (``vidcap/report/`` names no stage).

A stage's part lives in its package, ``vidcap/<feature>/report.py``, as a ``ReportPart`` subclass named
by its registry line (``StageSpec.report``). ``vidcap.report.build_report`` asks every stage's part, in
registry order, and renders what they give; a feature never imports the report (app layer):

* ``plots(summary)``: distributions drawn from the dataset summary, as data (``Plot``: bars of
  ``[[label, count], ...]`` or a histogram summary); the report draws them, ordered by ``Plot.order``.
* ``text(config)``: the column of the run's text and the decoder its frames were read with (the
  gallery shows it); the first part that answers wins.
* ``list_columns(df, summary)``: list columns the gallery shows per row and filters by (label → column).
* ``cost(run_root)``: the stage's tokens and cost (``{"total", "shards", "stale"}``), for the
  throughput table; None when it has none.
* ``provenance(df, config)``: ``{"models": [...], "prompts": [...]}`` rows of the provenance section.
* ``section(inp)``: a section of its own (``Section``: an anchor, a menu label, a Jinja template in the
  feature's package and the data it renders); None when the table has nothing for it.

A new section = a module in the feature's package with a ``ReportPart`` subclass (and its template
next to it), and ``report="vidcap.<feature>.report:<Class>"`` on its registry line
(``docs/architecture.md``, "Adding a report section"). Parts stay light to import (no plotting
library: the report draws); they may read the merged table (``inp.df``), the summary and the run folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only
    import pandas as pd

    from vidcap.stages import StageSpec


@dataclass(frozen=True)
class Plot:
    """A distribution plot, as data. ``kind`` ``bar``: ``data`` is ``[[label, count], ...]``, ``xlabel``
    under the bars; ``hist``: ``data`` is a summary's ``{"histogram": [[lo, hi, n], ...], "p50", "p90"}``
    and ``xlabel`` is its unit. ``order``: place among the distributions (lower first; motion 10, tags
    20, caption 30, probe 40-50)."""

    title: str
    kind: str
    data: Any
    heading: str = ""      # the plot's own title (default ``title``)
    xlabel: str = "rows"
    order: int = 50
    stats_label: str = ""  # a histogram's row in the statistics table above the plots (none: no row)


@dataclass(frozen=True)
class Section:
    """A report section of a stage's own: ``id`` (anchor), ``nav`` (menu label), ``template``
    (``package:file``, a Jinja template rendered with ``section`` = ``data``)."""

    id: str
    nav: str
    template: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReportInput:
    """What a part may read: the merged table, the dataset summary, the run's config (or None), the
    report options (``report`` block), where relative media paths resolve, the decoder and threads
    for thumbnails."""

    df: pd.DataFrame
    summary: dict
    config: dict | None
    opts: dict
    media_base: str
    decoder: str | None = None
    threads: int = 2


class ReportPart:
    """Defaults: the stage adds nothing to the report."""

    def __init__(self, spec: StageSpec):
        self.spec = spec
        self.name = spec.name

    def section_config(self, config: dict | None) -> dict:
        """This stage's block of ``config`` ({} when absent)."""
        return ((config or {}).get("stages") or {}).get(self.name) or {}

    def text(self, config: dict | None) -> tuple[str, str | None] | None:
        return None

    def plots(self, summary: dict) -> list[Plot]:
        return []

    def list_columns(self, df: pd.DataFrame, summary: dict) -> dict[str, str]:
        return {}

    def cost(self, run_root: Path) -> dict | None:
        return None

    def provenance(self, df: pd.DataFrame, config: dict | None) -> dict[str, list[dict]]:
        return {}

    def section(self, inp: ReportInput) -> Section | None:
        return None
