"""The worked example of docs/architecture.md, run: a tiny stage with cross-stage wiring, written in the
shape every stage has (a ``Stage``, its ``PlanHooks``, one ``StageSpec``), planned by the real ``Plan``
and run by the real ``run_stage``. Keep it in step with the doc."""
from __future__ import annotations

import copy
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import one_shard
from vidcap import workflow
from vidcap.errors import ConfigError
from vidcap.io.shards import ROW_ID
from vidcap.stages import REGISTRY, StageSpec
from vidcap.stages.base import run_stage
from vidcap.stages.plan import PlanContext, PlanHooks, SummarySection
from vidcap.stages.report import Plot, ReportInput, ReportPart, Section
from vidcap.stages.rows import RowStage


# --- vidcap/words/stage.py -----------------------------------------------------------------------
class WordsStage(RowStage):
    """Counts the words of the run's text (``text_column``, resolved by the plan hooks below)."""

    name = "words"
    version = "1"
    reads_media = False          # text only: no media path, no start/end
    columns = {"text_words": pa.int64()}

    def __init__(self, params=None):
        params = dict(params or {})
        super().__init__({"text_column": params.get("text_column") or "text"})
        self.input_columns = (ROW_ID, self.params["text_column"])

    def process_row(self, row):
        return {"text_words": len(str(row.get(self.params["text_column"]) or "").split())}


# --- vidcap/words/plan.py ------------------------------------------------------------------------
class WordsPlan(PlanHooks):
    def check(self, ctx: PlanContext) -> None:
        column = self.section(ctx).get("text_column") or ctx.text_column
        if not ctx.has_column(column):
            raise ConfigError(f"config key 'stages.{self.name}.text_column': no column {column!r} to count")

    def settings(self, ctx: PlanContext, settings: dict) -> dict:
        return {**settings, "text_column": settings.get("text_column") or ctx.text_column}

    def gather_options(self, ctx: PlanContext) -> list[str]:
        return ["--top-k", "5"]

    def summary_sections(self) -> list[SummarySection]:
        return [SummarySection("words_per_row", "labels", ("text_words",), order=60)]


# --- vidcap/words/report.py (and its template, tests/stage_example_report.html.j2) ---------------
class WordsReport(ReportPart):
    def plots(self, summary: dict) -> list[Plot]:
        return [Plot("Words per row", "bar", summary.get("words_per_row"), order=60)]

    def section(self, inp: ReportInput) -> Section | None:
        if "text_words" not in inp.df.columns:
            return None
        return Section("words", "Words", "tests:stage_example_report.html.j2",
                       {"total": int(inp.df["text_words"].sum())})


# --- one line in vidcap/stages/__init__.py ------------------------------------------------------
SPEC = StageSpec("words", f"{__name__}:WordsStage", reads=("caption",), plan=f"{__name__}:WordsPlan",
                 report=f"{__name__}:WordsReport", help="words of the run's text")


@pytest.fixture
def with_words(monkeypatch):
    registry = (*REGISTRY, SPEC)
    monkeypatch.setattr(workflow, "REGISTRY", registry)
    monkeypatch.setattr(workflow, "SPECS", {s.name: s for s in registry})


def _config(tmp_path, manifest, caption_on: bool):
    import yaml

    from vidcap.config import validate_config

    base = yaml.safe_load(open("config/demo.yaml"))
    cfg = validate_config({**base, "manifest": str(manifest), "results_dir": str(tmp_path / "results"),
                           "stages": {"caption": {"enabled": caption_on}, "clean": {"enabled": False},
                                      "tags": {"enabled": False}, "motion": {"enabled": False}}})
    cfg = copy.deepcopy(cfg)
    cfg["stages"]["words"] = {"enabled": True, "resources": {"threads": 1}, "text_column": None}
    return cfg


def test_a_new_stage_gets_its_wiring_from_its_own_hooks(tmp_path, with_words):
    shard = one_shard(tmp_path, ["a.mp4", "b.mp4"], text=["two words", "three more words"])
    plan = workflow.Plan(_config(tmp_path, tmp_path / "m.csv", caption_on=True))
    assert plan.stages[-1] == "words" and plan.upstream("words") == ["caption"]
    # the caption is the run's text (the caption stage's hooks say so): the new stage counts it
    assert plan.settings("words")["text_column"] == plan.config["stages"]["caption"]["output_column"]
    assert "--top-k" in plan.gather_options()

    plan = workflow.Plan(_config(tmp_path, tmp_path / "m.csv", caption_on=False))
    settings = json.loads(plan.settings_json("words"))
    assert settings["text_column"] == "text"
    out = tmp_path / "words.parquet"
    run_stage(WordsStage(settings), shard, out, tmp_path / "words.jsonl")
    assert pq.read_table(out).column("text_words").to_pylist() == [2, 3]


def test_a_new_stage_check_names_its_key(tmp_path, with_words):
    one_shard(tmp_path, ["a.mp4"])   # no text column, caption off
    with pytest.raises(ConfigError, match="stages.words.text_column"):
        workflow.Plan(_config(tmp_path, tmp_path / "m.csv", caption_on=False))


def test_a_new_stage_adds_its_report_section(tmp_path, monkeypatch):
    """The report loops over the registry: the stage's part adds a menu entry, its section (its own
    template) and its plot, from the summary section its plan hooks declare; nothing in vidcap/report/
    or vidcap/summary.py changes."""
    from vidcap import summary
    from vidcap.report import build

    monkeypatch.setattr(build, "REGISTRY", (*REGISTRY, SPEC))
    monkeypatch.setattr(summary, "REGISTRY", (*REGISTRY, SPEC))
    run = tmp_path / "results" / "words"
    run.mkdir(parents=True)
    table = tmp_path / "results" / "words.parquet"
    pq.write_table(pa.table({ROW_ID: ["a", "b", "c"], "path": ["", "", ""], "text": ["a b", "c d", "e f g"],
                             "text_words": [2, 2, 3]}), table)
    html = build.build_report(run, table=table, thumbnails=0).read_text()
    assert '<a href="#words">Words</a>' in html
    assert '<section id="words">' in html and "7 words in all" in html
    assert 'alt="Words per row"' in html
