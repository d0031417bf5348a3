"""Building the run's HTML report from the merged table, the dataset summary and the run folder.

``build_report`` gathers the parts (``gallery``, ``plots``, ``throughput``, ``provenance``) and what each
stage adds (its ``ReportPart``, ``vidcap.stages.report``: plots, a section of its own, cost, provenance),
renders ``page.html.j2`` (autoescape: everything from the data is HTML-escaped) and writes the page
atomically. Options come from the config's ``report`` block (schema defaults filled in). Names no stage.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import importlib.resources
import json
import logging
import math
from collections import Counter
from pathlib import Path

import jinja2
import pandas as pd

from vidcap.config import fill_defaults, load_schema
from vidcap.io.run_dir import RunDir
from vidcap.io.tables import write_json, write_text
from vidcap.redact import public_config
from vidcap.report.gallery import gallery, pick_rows
from vidcap.report.plots import draw, throughput_plot
from vidcap.report.provenance import provenance
from vidcap.report.reading import report_rows
from vidcap.report.throughput import throughput
from vidcap.stages import REGISTRY
from vidcap.stages.report import ReportInput
from vidcap.summary import summarize, summarize_table

log = logging.getLogger("vidcap.report")

TEMPLATE = "page.html.j2"
# Options of the report (config block ``report``); schema defaults are the authority.
OPTION_KEYS = ("sample", "worst", "thumbnails", "thumb_size", "top_k", "seed")


def report_options(config: dict | None, **overrides) -> dict:
    """The ``report`` block: schema defaults < ``config['report']`` < non-None ``overrides``."""

    schema = load_schema()
    opts = fill_defaults((config or {}).get("report", {}), schema["properties"]["report"], schema)
    opts.update({k: v for k, v in overrides.items() if v is not None})
    return opts


def dataset_summary(df: pd.DataFrame, top_k: int = 20, summary_json: Path | None = None,
                    table: Path | None = None) -> dict:
    """The dataset summary of issue 6 (``vidcap.summary.summarize``).

    Read from ``summary_json`` (gather's ``<name>.summary.json``) when it is at least as new as the
    table, else computed over every row of ``table`` in batches (``summarize_table``; without a table
    ``summarize(df, top_k)``).
    """
    if summary_json is not None and summary_json.is_file() and (
            table is None or summary_json.stat().st_mtime >= table.stat().st_mtime):
        try:
            return json.loads(summary_json.read_text())
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", summary_json, exc)

    return summarize(df, top_k=top_k) if table is None else summarize_table(table, top_k=top_k)


def _fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v and abs(v) < 10 ** -digits:
            return f"{v:.2g}"
        return f"{v:,.{digits}f}"
    return str(v)


def _usd(v) -> str:
    if v is None:
        return "–"
    return f"${v:,.6f}" if abs(v) < 0.01 else f"${v:,.4f}"


def _feature_template(name: str) -> str | None:
    """A stage's section template, named ``package:file`` (``vidcap.stages.report.Section``)."""
    package, sep, file = name.partition(":")
    if not sep:
        return None
    return (importlib.resources.files(package) / file).read_text(encoding="utf-8")


def build_report(run_dir: str | Path, out: str | Path | None = None, table: str | Path | None = None,
                 config: dict | None = None, threads: int = 2, **options) -> Path:
    """Write the HTML report of ``run_dir`` (``results/<name>``); returns its path.

    ``out``: default ``<results_dir>/<name>.report.html``; ``table``: the merged Parquet table
    (default ``<results_dir>/<name>.parquet``); ``config``: the run's validated config (when given it
    is also saved, scrubbed, as ``run_dir/config.json``; when not, that file is read if present).
    ``options``: ``sample``, ``worst``, ``thumbnails``, ``thumb_size``, ``top_k``, ``seed`` (None =
    the config's ``report`` block, else the schema defaults).
    """
    run = RunDir.at(run_dir)
    name = run.name
    table = Path(table) if table else (run.root / "table" if (run.root / "table").is_dir() else run.table("parquet"))
    out = Path(out) if out else run.report
    if config is not None:
        config = public_config(config)
        write_json(run.config_json, config)
    elif run.config_json.is_file():
        config = json.loads(run.config_json.read_text())
    opts = report_options(config, **{k: options.get(k) for k in OPTION_KEYS})
    try:
        info = run.shard_info()
    except FileNotFoundError:
        info = {}

    df = report_rows(table, seed=int(opts["seed"]))
    summary = dataset_summary(df, int(opts["top_k"]), run.summary_json, table)
    parts = [spec.report_part() for spec in REGISTRY]
    caption_column, decoder = next((t for t in (part.text(config) for part in parts) if t), ("text", None))
    tag_cols = {k: c for part in parts for k, c in part.list_columns(df, summary).items()}

    picks = pick_rows(df, int(opts["sample"]), int(opts["worst"]), int(opts["seed"]))
    media_base = info.get("media_base") or str(table.parent)
    items = gallery(df, picks, media_base, opts, caption_column, tag_cols, decoder, threads)
    inp = ReportInput(df, summary, config, opts, media_base, decoder, threads)
    sections = [sec for sec in (part.section(inp) for part in parts) if sec is not None]
    motions = Counter(it["cmotion"] for it in items if it["cmotion"])
    tag_counts = Counter(v for it in items for v in it["tag_values"])

    specs = sorted((plot for part in parts for plot in part.plots(summary)), key=lambda plot: plot.order)
    plots = [(plot.title, uri) for plot in specs if (uri := draw(plot))]
    stats = [(plot.stats_label, plot.data) for plot in specs if plot.stats_label and plot.data]

    tp = throughput(run.root, config, parts)
    tp_plot = throughput_plot(tp.get("all_shards", []))
    failures = []
    rows = int(summary.get("rows", len(df)) or 0)
    for stage, s in (summary.get("stages") or {}).items():
        failures.append({"stage": stage, "failed": int(s.get("failed", 0)),
                         "share": (100.0 * s.get("failed", 0) / rows) if rows else 0.0,
                         "top": [(str(m), int(n), (s.get("error_examples") or {}).get(m, []))
                                 for m, n in s.get("top_errors", [])]})

    env = jinja2.Environment(loader=jinja2.ChoiceLoader([jinja2.PackageLoader("vidcap.report", "."),
                                                         jinja2.FunctionLoader(_feature_template)]),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    env.filters["usd"] = _usd
    script = (Path(__file__).with_name("filter.js")).read_text(encoding="utf-8")
    html = env.get_template(TEMPLATE).render(
        script=script, script_hash="sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode(),
        name=name, rows=rows, shards=len(info.get("shards", [])), table=str(table), run_dir=str(run.root),
        manifest=info.get("manifest", ""),
        generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        opts=opts, items=items, motions=motions.most_common(), tags=tag_counts.most_common(200),
        n_problem=sum(1 for it in items if "random" not in it["kinds"]),
        plots=plots, stats=stats, summary=summary, tp=tp, tp_plot=tp_plot, failures=failures,
        prov=provenance(df, config, parts), has_config=config is not None, sections=sections,
        skipped=info.get("bad_lines") or [],
    )
    write_text(out, html)
    log.info("report of %d rows (%d in the gallery) -> %s (%.0f kB)", rows, len(items), out, len(html) / 1024)
    return out
