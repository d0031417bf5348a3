"""Dataset summary of a merged table: what the set contains and what failed (written by ``gather``).

``Summary(top_k, tag_keys)`` is computed batch by batch (``add(frame)`` per part of the merged table,
then ``result()``), memory bounded by a batch: counts are kept per value, numbers spill to disk
(``vidcap.merge.numbers``). ``summarize(df, ...)`` is the same over one frame,
``summarize_table(where)`` over a merged table read in batches (``vidcap.io.results``). The sections
besides ``rows``, ``stages``, ``duplicates`` and the two counts of dropped rows come from the stages'
plan hooks (``summary_sections``, ``vidcap.stages.plan.SummarySection``). The format (the report reads
it; ``docs/tags.md`` has it)::

    {"rows": N,
     "stages": {"<stage>": {"failed": n, "top_errors": [["class", n], ...],      # every <stage>_error column,
                          "error_examples": {"class": ["message", ...]}}, ...}, # grouped by vidcap.errors.error_class
     "<tags>": {"objects": [["dog", 120], ...], "actions": [...]},                 # top_k values per key
     "caption_words": {"count": n, "mean": x, "p50": x, "p90": x, "max": x, "histogram": [[lo, hi, n], ...]},
     "cmotion": [["static", n], ...],
     "duration_s": {...same as caption_words...},
     "resolution": [["1920x1080", n], ...],                                        # width x height, top_k
     "duplicates": {"duplicated_captions": n},
     "dropped_failed_captions": n,                                                # only with keep_failed: false
     "skipped_manifest_lines": [{"line": n, "reason": "..."}, ...]}               # only when the shard step skipped some

A section is absent when its column is absent (``duplicates`` needs ``caption_duplicate``; ``resolution``
needs ``width`` and ``height``; ``duration_s`` needs ``duration``). Rules:

* Tag columns are detected (``tag_keys`` None) on the table's first 200 rows.
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
    dropped_failed_captions,,,<n>"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vidcap.errors import ErrorGroups
from vidcap.io.results import iter_result_batches
from vidcap.io.tables import write_table, write_text
from vidcap.merge.numbers import NumberSpill
from vidcap.stages import REGISTRY
from vidcap.stages.plan import SummarySection

HIST_BINS = 10
DEFAULT_TAG_KEYS = ("objects", "actions")
TAG_SAMPLE = 200
DUPLICATE = "caption_duplicate"


def sections() -> list[SummarySection]:
    """Every stage's summary sections (``summary_sections`` hooks), in summary order."""
    return sorted((s for spec in REGISTRY for s in spec.hooks().summary_sections()), key=lambda s: s.order)


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
    sample = [v for v in series.head(TAG_SAMPLE) if _present(v)]
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
    arr = _numbers(values)
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


def _numbers(values) -> np.ndarray:
    """The non-null numbers of ``values`` (text that is no number counts as null)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values[~np.isnan(values)]
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.ArrowDtype) and (
            pa.types.is_integer(values.dtype.pyarrow_dtype) or pa.types.is_floating(values.dtype.pyarrow_dtype)):
        return values.dropna().to_numpy(dtype=float)
    return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").dropna().to_numpy(dtype=float)


def _nonempty_mask(series: pd.Series) -> np.ndarray:
    """Rows whose cell is present and not only whitespace (as ``_nonempty``), vectorised for text."""
    if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_string(series.dtype.pyarrow_dtype):
        arr = pa.array(series)
        keep = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0), False)
        return keep.to_numpy(zero_copy_only=False)
    return np.array([_nonempty(v) for v in series], dtype=bool)


class Summary:
    """The dataset summary computed part by part (module docstring): ``add`` each part of the merged
    table in manifest order, then ``result()`` once."""

    def __init__(self, top_k: int = 20, tag_keys: list[str] | None = None, workdir: Path | None = None):
        self.top_k, self.tag_keys, self.workdir = top_k, tag_keys, workdir
        self.sections = sections()
        self.rows = 0
        self.errors: dict[str, ErrorGroups] = {}
        self.counters: dict[str, Counter] = {}
        self.tags: dict[str, dict[str, Counter]] = {}
        self.numbers: dict[str, NumberSpill] = {}
        self.present: set[str] = set()
        self.duplicated: int | None = None
        self._pending: list[pd.DataFrame] = []   # the first rows, until tag columns are decided
        self._keys: list[str] | None = None

    def add(self, df: pd.DataFrame) -> None:
        if self._keys is None and any(s.kind == "lists" for s in self.sections):
            self._pending.append(df)
            if sum(len(d) for d in self._pending) < TAG_SAMPLE:
                return
            self._decide_tags()
            pending, self._pending = self._pending, []
            for d in pending:
                self._add(d)
            return
        self._add(df)

    def _decide_tags(self) -> None:
        head = pd.concat(self._pending, ignore_index=True) if self._pending else pd.DataFrame()
        self._keys = (tag_columns(head.head(TAG_SAMPLE)) if self.tag_keys is None
                      else [k for k in self.tag_keys if k in head.columns])

    def _add(self, df: pd.DataFrame) -> None:
        self.rows += len(df)
        for col in df.columns:
            if col.endswith("_error") and not col.startswith("_"):
                groups = self.errors.setdefault(col, ErrorGroups())
                for v in df[col][_nonempty_mask(df[col])]:
                    groups.add(" ".join(str(v).split()))
        for sec in self.sections:
            if sec.kind == "lists":
                keys = self._keys or []
                if keys:
                    self.present.add(sec.key)
                for key in keys:
                    counter = self.tags.setdefault(sec.key, {}).setdefault(key, Counter())
                    for cell in df[key]:
                        items = _as_list(cell)
                        if items:
                            counter.update(set(str(v) for v in items))  # once per row
                continue
            if not all(c in df.columns for c in sec.columns):
                continue
            self.present.add(sec.key)
            col = df[sec.columns[0]]
            if sec.kind == "numbers":
                spill = self.numbers.get(sec.key) or self.numbers.setdefault(sec.key, NumberSpill(self.workdir))
                spill.add(_numbers(col))
            elif sec.kind == "labels":
                values = col[_nonempty_mask(col)].astype(str)
                self.counters.setdefault(sec.key, Counter()).update(values.value_counts().to_dict())
            elif sec.kind == "pairs":
                w, h = _to_numbers(col), _to_numbers(df[sec.columns[1]])
                ok = ~(np.isnan(w) | np.isnan(h))
                pairs = pd.DataFrame({"a": w[ok].astype(np.int64), "b": h[ok].astype(np.int64)}).value_counts()
                counter = self.counters.setdefault(sec.key, Counter())
                for (a, b), n in pairs.items():
                    counter[f"{a}x{b}"] += int(n)
        if DUPLICATE in df.columns:
            self.duplicated = (self.duplicated or 0) + int(_nonempty_mask(df[DUPLICATE]).sum())

    def result(self, dropped_failed_captions: int | None = None, skipped_lines: list[dict] | None = None) -> dict:
        """The summary (module docstring). ``dropped_failed_captions``: rows with a failed caption the
        merge left out (None: it dropped none). ``skipped_lines``: a prompt-file manifest's bad lines
        the shard step skipped (``{"line", "reason"}`` each, from ``shards/manifest.json``)."""
        if self._keys is None:
            self._decide_tags()
            pending, self._pending = self._pending, []
            for d in pending:
                self._add(d)
        out: dict = {"rows": int(self.rows)}
        stages = {}
        for col, groups in self.errors.items():
            top = groups.top(self.top_k)
            stages[col[: -len("_error")]] = {"failed": groups.total(), "top_errors": [[cls, n] for cls, n, _ in top],
                                             "error_examples": {cls: ex for cls, _, ex in top}}
        out["stages"] = stages
        for sec in self.sections:
            if sec.key not in self.present:
                continue
            if sec.kind == "lists":
                out[sec.key] = {k: _ranked(c, self.top_k) for k, c in self.tags.get(sec.key, {}).items()}
            elif sec.kind == "numbers":
                spill = self.numbers[sec.key]
                out[sec.key] = spill.stats(numeric_stats, HIST_BINS, _r)
                spill.close()
            else:
                out[sec.key] = _ranked(self.counters.get(sec.key, Counter()),
                                       self.top_k if sec.kind == "pairs" else None)
        if self.duplicated is not None:
            out["duplicates"] = {"duplicated_captions": int(self.duplicated)}
        if dropped_failed_captions is not None:
            out["dropped_failed_captions"] = int(dropped_failed_captions)
        if skipped_lines:
            out["skipped_manifest_lines"] = [{"line": int(b["line"]), "reason": str(b["reason"])} for b in skipped_lines]
        return out


def _to_numbers(series: pd.Series) -> np.ndarray:
    """Every cell as a float (null and text that is no number: NaN)."""
    if isinstance(series.dtype, pd.ArrowDtype) and (
            pa.types.is_integer(series.dtype.pyarrow_dtype) or pa.types.is_floating(series.dtype.pyarrow_dtype)):
        return series.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(pd.Series(list(series), dtype=object), errors="coerce").to_numpy(dtype=float)


def summarize(df: pd.DataFrame, top_k: int = 20, tag_keys: list[str] | None = None,
              dropped_failed_captions: int | None = None, skipped_lines: list[dict] | None = None) -> dict:
    """The dataset summary of one frame (format in the module docstring)."""
    summary = Summary(top_k, tag_keys)
    summary.add(df)
    return summary.result(dropped_failed_captions, skipped_lines)


def summarize_table(where: str | Path, top_k: int = 20, tag_keys: list[str] | None = None) -> dict:
    """The dataset summary of a merged table (``vidcap.io.results``), read in batches."""
    summary = Summary(top_k, tag_keys)
    for batch in iter_result_batches(where):
        summary.add(batch.to_pandas(types_mapper=pd.ArrowDtype))
    return summary.result()


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:g}" if abs(x) < 1e15 else repr(x)
    return str(x)


def summary_rows(summary: dict) -> list[dict]:
    """The long form of a summary: dicts with section, key, value, count (see the module docstring):
    stages, then tag sections, number sections, counted lists, in summary order within each kind."""
    rows = [{"section": "rows", "key": "", "value": "", "count": summary.get("rows", 0)}]

    def add(section, key, value, count):
        rows.append({"section": section, "key": key, "value": value, "count": count})

    for stage, s in summary.get("stages", {}).items():
        add("stages", stage, "", s["failed"])
        for msg, n in s["top_errors"]:
            add("stages", stage, msg, n)
    secs = sections()
    for sec in [s for s in secs if s.kind == "lists" and s.key in summary]:
        for key, items in summary[sec.key].items():
            for tag, n in items:
                add(sec.key, key, tag, n)
    for sec in [s for s in secs if s.kind == "numbers" and s.key in summary]:
        st = summary[sec.key]
        for stat in ("count", "mean", "p50", "p90", "max"):
            add(sec.key, stat, _fmt(st[stat]), "")
        for lo, hi, n in st["histogram"]:
            add(sec.key, "histogram", f"{_fmt(lo)}..{_fmt(hi)}", n)
    for sec in [s for s in secs if s.kind in ("labels", "pairs") and s.key in summary]:
        for value, n in summary[sec.key]:
            add(sec.key, "", value, n)
    if "duplicates" in summary:
        add("duplicates", "duplicated_captions", "", summary["duplicates"]["duplicated_captions"])
    if "dropped_failed_captions" in summary:
        add("dropped_failed_captions", "", "", summary["dropped_failed_captions"])
    for b in summary.get("skipped_manifest_lines", []):
        add("skipped_manifest_lines", f"line {b['line']}", b["reason"], 1)
    return rows


def write_summary(summary: dict, json_path: str | Path | None = None, csv_path: str | Path | None = None) -> None:
    """Write the summary as JSON and/or long-form CSV (each atomically)."""
    if json_path:
        write_text(json_path, json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    if csv_path:
        write_table(pd.DataFrame(summary_rows(summary), columns=["section", "key", "value", "count"]), csv_path)
