"""The scores stage's part of the run's report (``vidcap.stages.report``): each score's distribution and
example frames at a few quantiles, so a data team can choose ``vidcap filter`` thresholds (docs/scores.md).

Plots: a histogram per numeric score in the dataset summary (its ``summary_sections``: every row), a bar
of ``still``. Section (template ``report.html.j2`` next to this module): per numeric score column with
values, the rows nearest its p5, p25, p50, p75 and p95 (``quantile_rows``: nulls ignored) with a few
uniform frames of each (inside the row's ``start`` / ``end`` range, where the score was measured), the
value and row id under each, and a ``vidcap filter`` line with a threshold read off the quantiles; and
one example row per ``still`` label. The quantiles and examples come from the report's rows
(``inp.df``: a seeded sample when the table is larger than the report reads whole); the section says so.
"""
from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd

from vidcap.errors import StageRowError
from vidcap.io.media_paths import resolve_media_path
from vidcap.io.tables import cell_text
from vidcap.media.thumbs import thumbnails
from vidcap.media.timerange import row_range
from vidcap.scores.plan import NEAR_SIM, NUMBERS
from vidcap.stages.report import Plot, ReportInput, ReportPart, Section

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
FRAMES = 3         # frames per example at most (fewer when the report's ``thumbnails`` is smaller)
STILL = "still"

# column -> (unit for the histogram's x axis, what to keep: ">=" high, "<=" low, "range" the middle; a peer's
# threshold or caveat, from docs/scores.md)
SCORES: dict[str, tuple[str, str, str]] = {
    "motion_flow": ("source px per int(fps/2) frames", ">=", "EasyAnimate keeps motion ≥ 2"),
    "motion_mv": ("source px per int(fps/2) frames", ">=", "null for codecs without motion vectors"),
    "laplacian_var": ("variance of the Laplacian (lower = blurrier)", ">=",
                      "depends on resolution and content: compare within one resolution"),
    "brightness": ("mean grey level (0–255)", "range", ""),
    "dark_share": ("share of dark pixels (0–1)", "<=", ""),
    "overexposed_share": ("share of overexposed pixels (0–1)", "<=", ""),
    "aesthetic": ("LAION aesthetic score", ">=", "Open-Sora keeps ≥ 4.5–5"),
    "clip_match": ("CLIP cosine text ↔ frames (−1..1)", ">=", ""),
    "text_area": ("share of the frame in text boxes (0–1)", "<=", "EasyAnimate drops > 0.02"),
}


def _values(values) -> np.ndarray:
    """Every cell as a float; null, infinite and text that is no number: NaN."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        arr = values.astype(float)
    elif isinstance(values, pd.Series) and pd.api.types.is_numeric_dtype(values.dtype) \
            and not pd.api.types.is_bool_dtype(values.dtype):
        arr = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        arr = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(arr), arr, np.nan)


def quantile_rows(values, quantiles=QUANTILES) -> list[tuple[float, int, float, float]]:
    """Per quantile ``q``: (q, row position, the row's value, the quantile's value), the row whose value is
    nearest the ``q`` quantile (numpy's linear interpolation) of the non-null values; ties go to the
    first row in table order. Null (and non-numeric) cells are never picked and do not count; no
    values: []."""
    arr = _values(values)
    pos = np.flatnonzero(~np.isnan(arr))
    if not len(pos):
        return []
    vals = arr[pos]
    out = []
    for q in quantiles:
        target = float(np.quantile(vals, q))
        i = int(np.argmin(np.abs(vals - target)))   # the first of equally near rows
        out.append((float(q), int(pos[i]), float(vals[i]), target))
    return out


def _num(v: float, down: bool) -> str:
    """A threshold as the filter language reads it: 3 significant digits, rounded down (or up) so that a
    ``>=`` (``<=``) condition keeps every row it names; never in exponent form."""
    d = Decimal(repr(float(v)))
    if not d:
        return "0"
    step = Decimal(1).scaleb(d.adjusted() - 2)
    return format(d.quantize(step, rounding=ROUND_FLOOR if down else ROUND_CEILING).normalize(), "f")


def _hint(col: str, picks: list[tuple[float, int, float, float]], run: str) -> tuple[str, str]:
    """(``vidcap filter`` command, what it keeps) for a column, with thresholds at its quantiles."""
    by_q = {q: target for q, _, _, target in picks}
    keep = SCORES[col][1]
    if keep == ">=":
        where, what = f"{col} >= {_num(by_q[0.25], True)}", "keeps the rows at or above p25 (about 3 in 4)"
    elif keep == "<=":
        where, what = f"{col} <= {_num(by_q[0.75], False)}", "keeps the rows at or below p75 (about 3 in 4)"
    else:
        where = f"{_num(by_q[0.05], True)} <= {col} <= {_num(by_q[0.95], False)}"
        what = "keeps the rows between p5 and p95 (about 9 in 10)"
    return f'vidcap filter {run} -o kept.parquet --where "{where}"', what


def _run_folder(config: dict | None) -> str:
    cfg = config or {}
    if not cfg.get("name"):
        return "results/<name>"
    return shlex.quote(f"{str(cfg.get('results_dir') or 'results').rstrip('/')}/{cfg['name']}")


def _example(df: pd.DataFrame, pos: int, media_base: str) -> dict:
    row = df.iloc[pos]
    path = cell_text(row.get("path"))
    item = {"pos": pos, "row_id": cell_text(row.get("row_id")) or f"row {pos}", "path": path,
            "media": resolve_media_path(path, media_base) if path else "", "range": None, "range_error": ""}
    try:
        start, end = row_range({k: cell_text(row.get(k)) for k in ("start", "end")})
        if start is not None or end is not None:
            item["range"] = (start, end)
    except StageRowError as exc:
        item["range_error"] = str(exc)
    return item


def scores_section(df: pd.DataFrame, summary: dict, media_base: str, opts: dict, config: dict | None = None,
                   decoder: str | None = None, threads: int = 2) -> dict | None:
    """What the template's scores section shows, or None when no score column has a value."""
    seed = int(opts.get("seed", 0))
    run = _run_folder(config)
    examples: dict[int, dict] = {}
    columns = []
    for col in NUMBERS:
        if col not in df.columns:
            continue
        arr = _values(df[col])
        picks = quantile_rows(arr)
        if not picks:
            continue
        rows: dict[int, dict] = {}
        for q, pos, value, _ in picks:
            examples.setdefault(pos, _example(df, pos, media_base))
            entry = rows.setdefault(pos, {"pos": pos, "value": value, "quantiles": []})
            entry["quantiles"].append(f"p{round(100 * q)}")
        command, keeps = _hint(col, picks, run)
        columns.append({"column": col, "unit": SCORES[col][0], "note": SCORES[col][2], "command": command,
                        "keeps": keeps, "count": int(np.count_nonzero(~np.isnan(arr))),
                        "examples": list(rows.values())})
    labels = []
    if STILL in df.columns:
        still = df[STILL].astype("string").fillna("")
        rng = np.random.default_rng(seed)
        for label in sorted(v for v in still.unique() if v):
            candidates = np.flatnonzero((still == label).to_numpy(dtype=bool))
            pos = int(rng.choice(candidates))
            examples.setdefault(pos, _example(df, pos, media_base))
            labels.append({"label": label, "count": len(candidates), "pos": pos})
    if not columns and not labels:
        return None
    count = min(FRAMES, int(opts.get("thumbnails", FRAMES)))
    size = int(opts.get("thumb_size", 160))

    def thumbs(item):
        if count <= 0:
            return [], "", "report.thumbnails is 0"
        if item["range_error"]:
            return [], "", item["range_error"]
        if not item["media"]:
            return [], "", "no path"
        th, note, err = thumbnails(item["media"], None, count, size, decoder, time_range=item["range"])
        return th, ("uniform frames of the file" if note.startswith("uniform frames (no caption") else note), err

    items = list(examples.values())
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for item, (th, note, err) in zip(items, pool.map(thumbs, items)):
            item.update(thumbs=th, thumb_note=note, thumb_error=err)
    total = int(summary.get("rows", len(df)) or 0)
    return {"columns": columns, "labels": labels, "examples": examples, "rows": len(df), "total": total,
            "sampled": total > len(df), "seed": seed, "quantiles": [f"p{round(100 * q)}" for q in QUANTILES],
            "still_command": f"vidcap filter {run} -o kept.parquet --where \"still == 'moving'\""}


class ScoresReport(ReportPart):
    def plots(self, summary: dict) -> list[Plot]:
        plots = [Plot(f"Score: {col}", "hist", summary[col], heading=col, xlabel=SCORES[col][0], order=60 + i,
                      stats_label=col)
                 for i, col in enumerate(NUMBERS) if (summary.get(col) or {}).get("count")]
        if summary.get(STILL):
            plots.append(Plot("Score: still", "bar", summary.get(STILL), heading="Stills (still)", order=69))
        if (summary.get(NEAR_SIM) or {}).get("count"):   # count = rows marked near_duplicate_of
            plots.append(Plot("Near-duplicates", "hist", summary[NEAR_SIM], heading="Near-duplicates: cosine to the "
                              "earlier row", xlabel="near_duplicate_sim", order=70, stats_label=NEAR_SIM))
        return plots

    def section(self, inp: ReportInput) -> Section | None:
        data = scores_section(inp.df, inp.summary, inp.media_base, inp.opts, inp.config, inp.decoder, inp.threads)
        return None if data is None else Section("scores", "Scores", "vidcap.scores:report.html.j2", data)
