"""Dataset summary of a merged table: what the set contains and what failed (written by ``gather``).

``summarize(df, top_k=20, tag_keys=None) -> dict`` (the report reads it; ``docs/tags.md`` has the format)::

    {"rows": N,
     "stages": {"probe": {"failed": n, "top_errors": [["class", n], ...],      # every <stage>_error column,
                          "error_examples": {"class": ["message", ...]}}, ...}, # grouped by vidcap.errors.error_class
     "tags": {"objects": [["dog", 120], ...], "actions": [...]},                 # top_k values per key
     "caption_words": {"count": n, "mean": x, "p50": x, "p90": x, "max": x, "histogram": [[lo, hi, n], ...]},
     "cmotion": [["static", n], ...],
     "duration_s": {...same as caption_words...},
     "resolution": [["1920x1080", n], ...],                                        # width x height, top_k
     "duplicates": {"duplicated_captions": n},
     "dropped_failed_captions": n,                                                # only with keep_failed: false
     "skipped_manifest_lines": [{"line": n, "reason": "..."}, ...]}               # only when the shard step skipped some

A section is absent when its column is absent (``duplicates`` needs ``caption_duplicate``; ``resolution``
needs ``width`` and ``height``; ``duration_s`` needs ``duration``). Rules:

* Counted lists are sorted by count (descending), then by value; ``top_errors``, ``tags`` and
  ``resolution`` keep the first ``top_k``; ``cmotion`` keeps every label (combined labels as they are,
  e.g. ``pan_left+tilt_up``).
* An error counts when its cell is non-empty; a tag counts once per row holding it (lists are
  deduplicated by the stage); rows with a null tag list count nothing.
* Numbers (``caption_words``, ``duration_s``) use the non-null values: ``count``, ``mean``, ``p50`` /
  ``p90`` (linear interpolation, numpy's default), ``max``; ``histogram`` = ``HIST_BINS`` equal-width bins
  from the minimum to the maximum, each ``[lo, hi, n]`` with the last bin closed (``numpy.histogram``); a
  single distinct value gives one bin ``[v, v, n]``; no values give ``count`` 0, other fields null and an
  empty histogram. Floats are rounded to 4 decimals.
* ``duplicated_captions`` = rows whose caption repeats an earlier row's (``caption_duplicate`` non-empty),
  i.e. the rows a deduplication would drop.
* ``dropped_failed_captions`` = rows the merge left out because their caption failed
  (``stages.caption.keep_failed: false``); present only when the merge was asked to drop them (then also
  when 0). ``rows`` and every other section count the rows kept.
* ``skipped_manifest_lines`` = a prompt-file manifest's bad lines the shard step skipped
  (``prompt_file_bad_lines: report``), line number and reason each; absent when none were skipped.
  Long form: ``skipped_manifest_lines,line <n>,<reason>,1``.
* ``tag_keys`` None: the columns ``objects``, ``actions`` and any other column whose values are lists of
  strings (``caption_frame_*`` excluded). List cells may be lists, arrays or JSON text (a CSV read back).

``summary_rows(summary)`` is the long form written as CSV: columns ``section,key,value,count``::

    rows,,,N
    stages,<stage>,,<failed>                 stages,<stage>,<message>,<n>
    tags,<key>,<tag>,<n>
    caption_words,<count|mean|p50|p90|max>,<x>,      caption_words,histogram,<lo>..<hi>,<n>
    cmotion,,<label>,<n>      resolution,,<WxH>,<n>      duplicates,duplicated_captions,,<n>
    dropped_failed_captions,,,<n>
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from vidcap.errors import ErrorGroups

HIST_BINS = 10
DEFAULT_TAG_KEYS = ("objects", "actions")


def _present(value) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    try:
        if value is pd.NA or value is pd.NaT:
            return False
    except TypeError:
        pass
    return True


def _nonempty(value) -> bool:
    return _present(value) and str(value).strip() != ""


def _ranked(counter: Counter, top_k: int | None) -> list[list]:
    items = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    if top_k is not None:
        items = items[: max(0, int(top_k))]
    return [[str(k), int(n)] for k, n in items]


def _as_list(value) -> list | None:
    if not _present(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [v for v in value if _present(v)]
    return None


def _is_tag_column(series: pd.Series) -> bool:
    sample = [v for v in series.head(200) if _present(v)]
    parsed = [_as_list(v) for v in sample if not isinstance(v, str) or v.strip().startswith("[")]
    lists = [x for x in parsed if x is not None]
    if not lists or len(lists) < len(sample):
        return False
    values = [v for lst in lists for v in lst]
    return all(isinstance(v, str) for v in values)


def tag_columns(df: pd.DataFrame) -> list[str]:
    """Columns summarised as tags when none are named: objects, actions, other lists of strings."""
    out = [c for c in DEFAULT_TAG_KEYS if c in df.columns]
    for c in df.columns:
        if c in out or c.startswith("caption_frame") or c.startswith("_"):
            continue
        if df[c].dtype == object or "list" in str(df[c].dtype):
            if _is_tag_column(df[c]):
                out.append(c)
    return out


def _r(x) -> float | None:
    return None if x is None else round(float(x), 4)


def numeric_stats(values) -> dict:
    """count, mean, p50, p90, max and a histogram of the non-null numeric ``values``."""
    arr = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").dropna().to_numpy(dtype=float)
    if len(arr) == 0:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "max": None, "histogram": []}
    lo, hi = float(arr.min()), float(arr.max())
    if lo == hi:
        hist = [[_r(lo), _r(hi), int(len(arr))]]
    else:
        counts, edges = np.histogram(arr, bins=HIST_BINS, range=(lo, hi))
        hist = [[_r(edges[i]), _r(edges[i + 1]), int(counts[i])] for i in range(len(counts))]
    return {"count": int(len(arr)), "mean": _r(arr.mean()), "p50": _r(np.percentile(arr, 50)),
            "p90": _r(np.percentile(arr, 90)), "max": _r(hi), "histogram": hist}


def summarize(df: pd.DataFrame, top_k: int = 20, tag_keys: list[str] | None = None,
              dropped_failed_captions: int | None = None, skipped_lines: list[dict] | None = None) -> dict:
    """The dataset summary of a merged table (format in the module docstring).

    ``dropped_failed_captions``: rows with a failed caption the merge left out (None: it dropped none).
    ``skipped_lines``: a prompt-file manifest's bad lines the shard step skipped
    (``prompt_file_bad_lines: report``; ``{"line", "reason"}`` each, from ``shards/manifest.json``).
    """
    out: dict = {"rows": int(len(df))}
    stages = {}
    for col in df.columns:
        if col.endswith("_error") and not col.startswith("_"):
            groups = ErrorGroups()
            for v in df[col]:
                if _nonempty(v):
                    groups.add(" ".join(str(v).split()))
            top = groups.top(top_k)
            stages[col[: -len("_error")]] = {"failed": groups.total(),
                                             "top_errors": [[cls, n] for cls, n, _ in top],
                                             "error_examples": {cls: ex for cls, _, ex in top}}
    out["stages"] = stages
    keys = tag_columns(df) if tag_keys is None else [k for k in tag_keys if k in df.columns]
    if keys:
        tags = {}
        for key in keys:
            counter: Counter = Counter()
            for cell in df[key]:
                items = _as_list(cell)
                if items:
                    counter.update(set(str(v) for v in items))  # once per row
            tags[key] = _ranked(counter, top_k)
        out["tags"] = tags
    if "caption_words" in df.columns:
        out["caption_words"] = numeric_stats(df["caption_words"])
    if "cmotion" in df.columns:
        out["cmotion"] = _ranked(Counter(str(v) for v in df["cmotion"] if _nonempty(v)), None)
    if "duration" in df.columns:
        out["duration_s"] = numeric_stats(df["duration"])
    if "width" in df.columns and "height" in df.columns:
        w = pd.to_numeric(pd.Series(list(df["width"]), dtype=object), errors="coerce")
        h = pd.to_numeric(pd.Series(list(df["height"]), dtype=object), errors="coerce")
        res = Counter(f"{int(a)}x{int(b)}" for a, b in zip(w, h) if not (pd.isna(a) or pd.isna(b)))
        out["resolution"] = _ranked(res, top_k)
    if "caption_duplicate" in df.columns:
        out["duplicates"] = {"duplicated_captions": int(sum(1 for v in df["caption_duplicate"] if _nonempty(v)))}
    if dropped_failed_captions is not None:
        out["dropped_failed_captions"] = int(dropped_failed_captions)
    if skipped_lines:
        out["skipped_manifest_lines"] = [{"line": int(b["line"]), "reason": str(b["reason"])} for b in skipped_lines]
    return out


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:g}" if abs(x) < 1e15 else repr(x)
    return str(x)


def summary_rows(summary: dict) -> list[dict]:
    """The long form of a summary: dicts with section, key, value, count (see the module docstring)."""
    rows = [{"section": "rows", "key": "", "value": "", "count": summary.get("rows", 0)}]

    def add(section, key, value, count):
        rows.append({"section": section, "key": key, "value": value, "count": count})

    for stage, s in summary.get("stages", {}).items():
        add("stages", stage, "", s["failed"])
        for msg, n in s["top_errors"]:
            add("stages", stage, msg, n)
    for key, items in summary.get("tags", {}).items():
        for tag, n in items:
            add("tags", key, tag, n)
    for section in ("caption_words", "duration_s"):
        if section in summary:
            st = summary[section]
            for stat in ("count", "mean", "p50", "p90", "max"):
                add(section, stat, _fmt(st[stat]), "")
            for lo, hi, n in st["histogram"]:
                add(section, "histogram", f"{_fmt(lo)}..{_fmt(hi)}", n)
    for section in ("cmotion", "resolution"):
        for value, n in summary.get(section, []):
            add(section, "", value, n)
    if "duplicates" in summary:
        add("duplicates", "duplicated_captions", "", summary["duplicates"]["duplicated_captions"])
    if "dropped_failed_captions" in summary:
        add("dropped_failed_captions", "", "", summary["dropped_failed_captions"])
    for b in summary.get("skipped_manifest_lines", []):
        add("skipped_manifest_lines", f"line {b['line']}", b["reason"], 1)
    return rows


def write_summary(summary: dict, json_path: str | Path | None = None, csv_path: str | Path | None = None) -> None:
    """Write the summary as JSON and/or long-form CSV (each atomically)."""
    from vidcap.io.tables import write_table, write_text

    if json_path:
        write_text(json_path, json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    if csv_path:
        write_table(pd.DataFrame(summary_rows(summary), columns=["section", "key", "value", "count"]), csv_path)
