"""The run's HTML report: ``vidcap report RUN_DIR`` and the workflow's last rule (docs/report.md).

One self-contained page (no network: thumbnails are base64 JPEG, plots are base64 SVG data URIs,
CSS and the small filter script are inline) with

* a gallery: ``worst`` rows with problems (a stage error, a caption cut at ``max_new_tokens``
  (``finish_reason == length``), ``unclassified`` motion) and ``sample`` random rows, each with
  thumbnails of the frames the caption model saw (``caption_frame_indices``; uniform frames when the
  row has none), its caption, motion label and tags; filters by motion label, tag and kind;
* distributions of the dataset summary (``vidcap.summary.summarize``): camera motion, top tags per
  key, caption length, clip duration, resolution;
* throughput and cost per stage and per shard from the ``benchmark:`` files, the stage logs and
  ``vidcap.cost.run_cost``;
* failures per stage with the commonest messages;
* provenance: models, revisions, prompts (key, hash, wording), software versions, the config used.

Size does not grow with the table: the gallery is a sample, plots are drawn from aggregates, the
per-shard table lists the slowest shards only. Everything taken from the data (captions are model
output, paths and errors come from users' files) is HTML-escaped by the template (autoescape).
"""
from __future__ import annotations

import base64
import copy
import csv
import datetime as _dt
import hashlib
import io
import json
import logging
import math
import platform
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from vidcap.redact import public_config

log = logging.getLogger("vidcap.report")

TEMPLATE = "page.html.j2"
# Options of the report (config block ``report``); schema defaults are the authority.
OPTION_KEYS = ("sample", "worst", "thumbnails", "thumb_size", "top_k", "seed")
SHARD_ROWS_SHOWN = 60  # per stage, slowest first, in the per-shard table


# ------------------------------------------------------------------------------------------- config


def report_options(config: dict | None, **overrides) -> dict:
    """The ``report`` block: schema defaults < ``config['report']`` < non-None ``overrides``."""
    from vidcap.config import fill_defaults, load_schema

    schema = load_schema()
    opts = fill_defaults((config or {}).get("report", {}), schema["properties"]["report"], schema)
    opts.update({k: v for k, v in overrides.items() if v is not None})
    return opts


# ------------------------------------------------------------------------------------------ summary


def dataset_summary(df: pd.DataFrame, top_k: int = 20, summary_json: Path | None = None,
                    table: Path | None = None) -> dict:
    """The dataset summary of issue 6 (``vidcap.summary.summarize``).

    Read from ``summary_json`` (gather's ``<name>.summary.json``) when it is at least as new as the
    table, else computed with ``summarize(df, top_k)``.
    """
    if summary_json is not None and summary_json.is_file() and (
            table is None or summary_json.stat().st_mtime >= table.stat().st_mtime):
        try:
            return json.loads(summary_json.read_text())
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", summary_json, exc)
    from vidcap.summary import summarize

    return summarize(df, top_k=top_k)


# ------------------------------------------------------------------------------------------ gallery


def _s(v) -> str:
    """A cell as text ('' for null)."""
    if v is None:
        return ""
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    return str(v)


def _list(v) -> list:
    """A list cell (Arrow list, numpy array, JSON text) as a Python list."""
    if v is None:
        return []
    if isinstance(v, str):
        try:
            v = json.loads(v) if v.strip().startswith("[") else [v]
        except ValueError:
            return [v]
    if isinstance(v, (list, tuple, np.ndarray)):
        return [x for x in (v.tolist() if isinstance(v, np.ndarray) else v) if x is not None]
    try:
        if pd.isna(v):
            return []
    except (TypeError, ValueError):
        pass
    return [v]


def tag_columns(df: pd.DataFrame, keys) -> dict[str, str]:
    """Tag key -> column holding its values (``tags_<key>`` or ``<key>``)."""
    out = {}
    for key in keys:
        for col in (f"tags_{key}", key):
            if col in df.columns:
                out[key] = col
                break
    return out


def pick_rows(df: pd.DataFrame, sample: int, worst: int, seed: int = 0) -> list[tuple[int, list[str]]]:
    """(row position, kinds) for the gallery: up to ``worst`` problem rows, then ``sample`` random ones.

    Kinds of problems: ``error`` (any ``*_error``), ``truncated`` (``finish_reason == length``),
    ``unclassified`` (``cmotion``). Problem rows are taken round-robin over the kinds (each drawn at
    random) so every kind shows; random rows exclude them. Cost: a few vectorised masks, any size.
    """
    rng = np.random.default_rng(seed)
    n = len(df)
    masks: dict[str, np.ndarray] = {}
    err = np.zeros(n, dtype=bool)
    for col in [c for c in df.columns if c.endswith("_error")]:
        e = df[col].astype("string").fillna("")
        err |= (e != "").to_numpy(dtype=bool)
    masks["error"] = err
    if "finish_reason" in df.columns:
        masks["truncated"] = (df["finish_reason"].astype("string").fillna("") == "length").to_numpy(dtype=bool)
    if "cmotion" in df.columns:
        masks["unclassified"] = (df["cmotion"].astype("string").fillna("") == "unclassified").to_numpy(dtype=bool)
    pools = []
    for kind, mask in masks.items():
        idx = np.flatnonzero(mask)
        if len(idx) > worst:
            idx = rng.choice(idx, size=worst, replace=False)
        else:
            idx = rng.permutation(idx)
        pools.append(list(idx))
    chosen: list[int] = []
    seen: set[int] = set()
    while len(chosen) < worst and any(pools):
        for pool in pools:
            while pool:
                i = int(pool.pop(0))
                if i not in seen:
                    seen.add(i)
                    chosen.append(i)
                    break
            if len(chosen) >= worst:
                break
    rand: list[int] = []
    if sample and n:
        take = rng.choice(n, size=min(n, sample + len(seen)), replace=False)
        rand = [int(i) for i in take if int(i) not in seen][:sample]
    out = []
    for i in chosen:
        out.append((i, [k for k, m in masks.items() if m[i]]))
    for i in sorted(rand):
        out.append((i, ["random"] + [k for k, m in masks.items() if m[i]]))
    return out


def _jpeg_uri(frame: np.ndarray, size: int, quality: int = 70) -> str:
    from PIL import Image

    im = Image.fromarray(frame)
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnails(path: str, indices: list[int] | None, count: int, size: int,
               decoder: str | None = None) -> tuple[list[dict], str, str]:
    """(thumbs, note, error) for one row: ``count`` of ``indices`` evenly, else ``count`` uniform frames."""
    from vidcap.frames import read_frames, sample_frames

    if count <= 0:
        return [], "", ""
    try:
        if indices:
            pos = sorted({int(round(p)) for p in np.linspace(0, len(indices) - 1, min(count, len(indices)))})
            fr = read_frames(path, [indices[p] for p in pos], resize_short=size, decoder=decoder)
            note = "frames the caption model saw" + (f" ({len(pos)} of {len(indices)})" if len(pos) < len(indices) else "")
        else:
            fr = sample_frames(path, count, "uniform", resize_short=size, decoder=decoder)
            note = "uniform frames (no caption frames recorded)"
    except Exception as exc:  # FrameError, ValueError, decoder errors: shown, never fatal for the report
        return [], "", f"{type(exc).__name__}: {exc}"
    if fr.media_type == "image":
        fr.frames, fr.indices, fr.timestamps = fr.frames[:1], fr.indices[:1], fr.timestamps[:1]
        note = "the image"
    thumbs = []
    for frame, i, t in zip(fr.frames, fr.indices, fr.timestamps):
        label = "image" if fr.media_type == "image" else f"#{i} · {t:.2f} s"
        thumbs.append({"src": _jpeg_uri(frame, size), "label": label})
    return thumbs, note, ""


def gallery(df: pd.DataFrame, picks, media_base: str, opts: dict, caption_column: str,
            tag_cols: dict[str, str], decoder: str | None = None, threads: int = 2) -> list[dict]:
    from vidcap.shards import resolve_media_path

    has_caption = "caption_model" in df.columns or "caption_error" in df.columns
    err_cols = [c for c in df.columns if c.endswith("_error")]
    items = []
    for pos, kinds in picks:
        row = df.iloc[pos]
        path = _s(row.get("path"))
        tags = [(k, [_s(v).replace("\n", " ") for v in _list(row.get(c))]) for k, c in tag_cols.items()]
        w, h = _s(row.get("width")), _s(row.get("height"))
        meta = [f"row {pos}"]
        if _s(row.get("duration")):
            meta.append(f"{float(row['duration']):.2f} s")
        if w and h:
            meta.append(f"{w}×{h}")
        for col in ("codec", "media_type"):
            if _s(row.get(col)):
                meta.append(_s(row.get(col)))
        items.append({
            "pos": pos, "kinds": kinds, "path": path, "row_id": _s(row.get("row_id")),
            "media": resolve_media_path(path, media_base) if path else "",
            "caption": _s(row.get(caption_column)) if (has_caption or caption_column in df.columns) else "",
            "caption_label": caption_column if has_caption else f"{caption_column} (manifest)",
            "caption_kept": has_caption and bool(_s(row.get("caption_error"))),
            "finish_reason": _s(row.get("finish_reason")), "output_tokens": _s(row.get("output_tokens")),
            "cmotion": _s(row.get("cmotion")), "motion_reason": _s(row.get("motion_reason")),
            "tags": tags, "tag_values": sorted({v for _, vs in tags for v in vs}),
            "errors": [(c[: -len("_error")], _s(row.get(c))) for c in err_cols if _s(row.get(c))],
            "meta": " · ".join(meta),
            "indices": [int(i) for i in _list(row.get("caption_frame_indices"))],
        })

    def thumbs(item):
        if not item["media"]:
            return [], "", "no path"
        return thumbnails(item["media"], item["indices"], int(opts["thumbnails"]), int(opts["thumb_size"]),
                          decoder)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for item, (th, note, err) in zip(items, pool.map(thumbs, items)):
            item.update(thumbs=th, thumb_note=note, thumb_error=err)
    return items


# -------------------------------------------------------------------------------------------- plots


def _svg_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.add_subplot()


def _rc():
    import matplotlib

    # parse_math off: a tag or label with '$' is text, not mathtext; svg text stays text (small);
    # a fixed hash salt gives byte-identical SVGs for identical data.
    return matplotlib.rc_context({"text.parse_math": False, "svg.fonttype": "none", "svg.hashsalt": "vidcap",
                                  "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})


COLOR = "#3b6ea8"


def bar_plot(pairs, title: str, xlabel: str = "rows") -> str | None:
    """Horizontal bars of ``[[label, count], ...]`` (largest on top); None when empty."""
    from matplotlib.ticker import MaxNLocator

    pairs = [(str(k)[:40], int(n)) for k, n in (pairs or [])][:40]
    if not pairs:
        return None
    with _rc():
        fig, ax = _figure(5.2, 0.6 + 0.24 * len(pairs))
        labels = [k for k, _ in pairs][::-1]
        values = [n for _, n in pairs][::-1]
        bars = ax.barh(range(len(pairs)), values, color=COLOR)
        ax.set_yticks(range(len(pairs)), labels)
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=7)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, loc="left")
        ax.margins(x=0.12)
        return _svg_uri(fig)


def hist_plot(stats: dict | None, title: str, xlabel: str) -> str | None:
    """Bars of a ``{"histogram": [[lo, hi, n], ...], ...}`` summary with p50/p90 marked."""
    from matplotlib.ticker import MaxNLocator

    if not stats or not stats.get("histogram"):
        return None
    hist = stats["histogram"]
    with _rc():
        fig, ax = _figure(5.2, 2.6)
        lo = [float(a) for a, _, _ in hist]
        width = [max(float(b) - float(a), 1e-9) for a, b, _ in hist]
        ax.bar(lo, [int(n) for _, _, n in hist], width=width, align="edge", color=COLOR, edgecolor="white",
               linewidth=0.5)
        for q, style in (("p50", "-"), ("p90", "--")):
            if stats.get(q) is not None:
                ax.axvline(float(stats[q]), color="#c0392b", linestyle=style, linewidth=1,
                           label=f"{q} {float(stats[q]):.3g}")
        ax.legend(frameon=False, fontsize=7, loc="upper right", bbox_to_anchor=(1.0, 1.18), ncols=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("rows")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, loc="left")
        return _svg_uri(fig)


def throughput_plot(shards: list[dict]) -> str | None:
    """videos/s of every shard job, one series per stage."""
    series: dict[str, list[tuple[int, float]]] = {}
    for r in shards:
        if r.get("videos_per_s") is not None:
            series.setdefault(r["stage"], []).append((r["index"], r["videos_per_s"]))
    if not series:
        return None
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    with _rc():
        fig, ax = _figure(5.2, 2.6)
        for stage, pts in series.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, linewidth=1, label=stage)
        ax.set_xlabel("shard")
        ax.set_ylabel("videos/s (one job)")
        values = [p[1] for pts in series.values() for p in pts if p[1] > 0]
        if values and max(values) / min(values) > 50:  # stages differ by orders of magnitude
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(frameon=False, fontsize=7)
        ax.set_title("Throughput per shard job", loc="left")
        return _svg_uri(fig)


# ----------------------------------------------------------------------------------------- throughput


def read_benchmark(path: Path) -> dict | None:
    """Snakemake's benchmark TSV (s, max_rss, cpu_time, ...) as floats; the last repeat when several."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return None
    if not rows:
        return None
    out = {}
    for k, v in rows[-1].items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            out[k] = None
    return out


_LOG_PATTERNS = {
    "reused": re.compile(r": \S+: (\d+) rows, (\d+) already in the journal, (\d+) to process"),
    "wait": re.compile(r"caption: \d+ rows in [\d.]+ s; the model waited [\d.]+ s \((\d+)%\) for input"),
    "device": re.compile(r"loaded .* on (\S+), dtype"),
}


def read_stage_log(path: Path) -> dict:
    """Runner stats a stage job logs: rows taken from the journal, model wait share, device."""
    out: dict = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for m in _LOG_PATTERNS["reused"].finditer(text):
        out["reused"] = int(m.group(2))
    for m in _LOG_PATTERNS["wait"].finditer(text):
        out["model_wait_pct"] = int(m.group(1))
    for m in _LOG_PATTERNS["device"].finditer(text):
        out["device"] = m.group(1).rstrip(",")
    return out


def throughput(run_dir: Path, config: dict | None) -> dict:
    """Per stage and per shard job: wall time, videos/s, CPU hours, memory, GPU hours, tokens, cost.

    GPU hours are *reserved* hours: each job's wall time × the GPUs its rule requested
    (``stages.<stage>.resources.gpu``), model loading and waits included; not measured utilisation.
    """
    bench = run_dir / "benchmarks"
    stages_cfg = (config or {}).get("stages", {})
    shards, totals = [], {}
    cost_rows = {}
    if (run_dir / "stages" / "caption").is_dir() or (run_dir / "journal" / "caption").is_dir():
        from vidcap.cost import run_cost

        try:
            cost = run_cost(run_dir)
            cost_rows = {r["shard"]: r for r in cost["shards"]}
        except (OSError, ValueError) as exc:
            log.warning("cost: %s", exc)
            cost = None
    else:
        cost = None
    if not bench.is_dir():
        return {"stages": [], "shards": [], "cost": cost, "hidden": 0}
    order = {s: i for i, s in enumerate(["shard", "probe", "caption", "motion", "tags", "clean", "gather", "report"])}
    entries = []
    for p in sorted(bench.iterdir()):
        if p.is_dir():
            entries += [(p.name, t.stem, t) for t in sorted(p.glob("*.tsv"))]
        elif p.suffix == ".tsv":
            entries.append((p.stem, "", p))
    for index, (stage, shard, path) in enumerate(entries):
        b = read_benchmark(path)
        if b is None:
            continue
        out = run_dir / "stages" / stage / f"{shard}.parquet"
        rows = pq.ParquetFile(out).metadata.num_rows if shard and out.is_file() else None
        logs = read_stage_log(run_dir / "logs" / stage / f"{shard}.log") if shard else {}
        gpu = (stages_cfg.get(stage, {}).get("resources", {}) or {}).get("gpu", 0) or 0
        s = b.get("s") or 0.0
        processed = rows - logs.get("reused", 0) if rows is not None else None
        r = {"stage": stage, "shard": shard or "-", "index": int(shard) if shard.isdigit() else index,
             "rows": rows, "reused": logs.get("reused"), "s": s,
             "videos_per_s": (processed / s) if processed and s > 0 else None,
             "cpu_s": b.get("cpu_time"), "max_rss_mb": b.get("max_rss"), "gpus": gpu, "gpu_h": s * gpu / 3600.0,
             "model_wait_pct": logs.get("model_wait_pct"), "device": logs.get("device", "")}
        if stage == "caption" and shard in cost_rows:
            c = cost_rows[shard]
            r.update(prompt_tokens=c["prompt_tokens"], output_tokens=c["output_tokens"], cost_usd=c["cost_usd"],
                     retries=c["retries"])
        shards.append(r)
        t = totals.setdefault(stage, {"stage": stage, "jobs": 0, "rows": None, "processed": 0, "s": 0.0, "max_s": 0.0,
                                      "cpu_s": 0.0, "max_rss_mb": 0.0, "gpus": gpu, "gpu_h": 0.0, "waits": [],
                                      "devices": Counter()})
        t["jobs"] += 1
        if rows is not None:
            t["rows"] = (t["rows"] or 0) + rows
        t["processed"] += processed or 0
        t["s"] += s
        t["max_s"] = max(t["max_s"], s)
        t["cpu_s"] += r["cpu_s"] or 0.0
        t["max_rss_mb"] = max(t["max_rss_mb"], r["max_rss_mb"] or 0.0)
        t["gpu_h"] += r["gpu_h"]
        if r["model_wait_pct"] is not None:
            t["waits"].append(r["model_wait_pct"])
        if r["device"]:
            t["devices"][r["device"]] += 1
    stage_rows = []
    for stage, t in sorted(totals.items(), key=lambda kv: order.get(kv[0], 50)):
        row = {**t, "videos_per_s": (t["processed"] / t["s"]) if t["processed"] and t["s"] > 0 else None,
               "cpu_h": t["cpu_s"] / 3600.0, "wall_h": t["s"] / 3600.0,
               "model_wait_pct": (sum(t["waits"]) / len(t["waits"])) if t["waits"] else None,
               "device": ", ".join(f"{d} ×{n}" for d, n in t["devices"].most_common())}
        if stage == "caption" and cost:
            c = cost["total"]
            row.update(prompt_tokens=c["prompt_tokens"], output_tokens=c["output_tokens"], cost_usd=c["cost_usd"],
                       retries=c["retries"])
        stage_rows.append(row)
    # the per-shard table lists the slowest jobs of each stage (all of them for small runs)
    shown, hidden = [], 0
    by_stage: dict[str, list[dict]] = {}
    for r in shards:
        by_stage.setdefault(r["stage"], []).append(r)
    for stage, rs in sorted(by_stage.items(), key=lambda kv: order.get(kv[0], 50)):
        rs = sorted(rs, key=lambda r: r["s"], reverse=True)
        shown += sorted(rs[:SHARD_ROWS_SHOWN], key=lambda r: r["index"])
        hidden += max(0, len(rs) - SHARD_ROWS_SHOWN)
    return {"stages": stage_rows, "shards": shown, "all_shards": shards, "cost": cost, "hidden": hidden}


# ----------------------------------------------------------------------------------------- provenance


def _versions() -> list[tuple[str, str]]:
    from importlib import metadata

    out = [("python", platform.python_version())]
    for pkg in ("vidcap", "snakemake", "torch", "transformers", "av", "openai", "pandas", "pyarrow", "matplotlib"):
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            pass
    return out


def _pair_counts(df: pd.DataFrame, key: str, detail: str) -> list[tuple[str, str, int]]:
    """(key, detail, rows) for each distinct non-empty ``key`` value with its ``detail`` ('' when the
    detail column is absent), commonest first; [] when ``key`` is not a column."""
    if key not in df.columns:
        return []
    cols = [c for c in (key, detail) if c in df.columns]
    sub = df[cols].astype("string").fillna("")
    sub = sub[sub[key] != ""]
    out = []
    for values, n in sub.value_counts().items():
        values = values if isinstance(values, tuple) else (values,)
        out.append((values[0], values[1] if len(values) > 1 else "", int(n)))
    return out


def provenance(df: pd.DataFrame, config: dict | None) -> dict:
    from vidcap.prompts import get_prompt

    models = [{"stage": "caption", "model": model, "revision": revision, "rows": n}
              for model, revision, n in _pair_counts(df, "caption_model", "caption_revision")]
    configured = []
    with_column = {m["stage"] for m in models}
    for stage, sc in ((config or {}).get("stages") or {}).items():
        if not isinstance(sc, dict) or not sc.get("enabled") or stage in with_column:
            continue
        runner = sc.get("runner")
        block = sc.get(runner, {}) if runner else {}
        if isinstance(block, dict) and block.get("model"):
            configured.append({"stage": stage, "runner": runner, "model": block.get("model"),
                               "revision": block.get("revision") or "", "base_url": block.get("base_url") or ""})
    prompts = []
    for name, recorded, n in _pair_counts(df, "caption_prompt", "caption_prompt_hash"):
        entry = {"stage": "caption", "key": name, "hash": recorded, "rows": n, "system": "", "user": "",
                 "kind": "", "note": ""}
        try:
            p = get_prompt(name, (config or {}).get("prompts"))
            entry.update(system=p.system, user=p.user, kind=p.kind)
            if recorded and p.hash != recorded:
                entry["note"] = (f"the wording below (hash {p.hash}) is today's; the rows were made with "
                                 f"another wording (hash {recorded})")
        except KeyError:
            entry["note"] = "wording unknown (not a built-in prompt and not in the config)"
        prompts.append(entry)
    return {"models": models, "configured": configured, "prompts": prompts, "versions": _versions(),
            "config": json.dumps(public_config(config), indent=1, sort_keys=True) if config else ""}


# ------------------------------------------------------------------------------------------- report


def _write_utf8(path: Path, text: str) -> None:
    """Atomic UTF-8 write (whatever the locale)."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # a page to share: readable like any new file (mkstemp gives 0600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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


def build_report(run_dir: str | Path, out: str | Path | None = None, table: str | Path | None = None,
                 config: dict | None = None, threads: int = 2, **options) -> Path:
    """Write the HTML report of ``run_dir`` (``results/<name>``); returns its path.

    ``out``: default ``<results_dir>/<name>.report.html``; ``table``: the merged Parquet table
    (default ``<results_dir>/<name>.parquet``); ``config``: the run's validated config (when given it
    is also saved, scrubbed, as ``run_dir/config.json``; when not, that file is read if present).
    ``options``: ``sample``, ``worst``, ``thumbnails``, ``thumb_size``, ``top_k``, ``seed`` (None =
    the config's ``report`` block, else the schema defaults).
    """
    import jinja2

    from vidcap.tables import write_text

    run_dir = Path(run_dir)
    name = run_dir.name
    table = Path(table) if table else run_dir.parent / f"{name}.parquet"
    out = Path(out) if out else run_dir.parent / f"{name}.report.html"
    saved = run_dir / "config.json"
    if config is not None:
        config = public_config(config)
        write_text(saved, json.dumps(config, indent=1, sort_keys=True) + "\n")
    elif saved.is_file():
        config = json.loads(saved.read_text())
    opts = report_options(config, **{k: options.get(k) for k in OPTION_KEYS})
    info_path = run_dir / "shards" / "manifest.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}

    df = pq.read_table(table).to_pandas(types_mapper=pd.ArrowDtype)
    summary = dataset_summary(df, int(opts["top_k"]), run_dir.parent / f"{name}.summary.json", table)
    cap_cfg = ((config or {}).get("stages") or {}).get("caption") or {}
    caption_column = cap_cfg.get("output_column", "text")
    decoder = (cap_cfg.get("frames") or {}).get("decoder")
    tag_cols = tag_columns(df, (summary.get("tags") or {}).keys())

    picks = pick_rows(df, int(opts["sample"]), int(opts["worst"]), int(opts["seed"]))
    items = gallery(df, picks, info.get("media_base") or str(table.parent), opts, caption_column, tag_cols,
                    decoder, threads)
    motions = Counter(it["cmotion"] for it in items if it["cmotion"])
    tag_counts = Counter(v for it in items for v in it["tag_values"])

    plots = []
    plots.append(("Camera motion", bar_plot(summary.get("cmotion"), "Camera motion (cmotion)")))
    for key, pairs in (summary.get("tags") or {}).items():
        plots.append((f"Tags: {key}", bar_plot(pairs, f"Top {key}")))
    plots.append(("Caption length", hist_plot(summary.get("caption_words"), "Caption length", "words")))
    plots.append(("Clip duration", hist_plot(summary.get("duration_s"), "Clip duration", "seconds")))
    plots.append(("Resolution", bar_plot(summary.get("resolution"), "Resolution (width×height)")))
    plots = [(t, p) for t, p in plots if p]
    stats = [(label, summary[key]) for key, label in (("caption_words", "caption words"),
                                                       ("duration_s", "duration (s)")) if summary.get(key)]

    tp = throughput(run_dir, config)
    tp_plot = throughput_plot(tp.get("all_shards", []))
    failures = []
    rows = int(summary.get("rows", len(df)) or 0)
    for stage, s in (summary.get("stages") or {}).items():
        failures.append({"stage": stage, "failed": int(s.get("failed", 0)),
                         "share": (100.0 * s.get("failed", 0) / rows) if rows else 0.0,
                         "top": [(str(m), int(n)) for m, n in s.get("top_errors", [])]})

    env = jinja2.Environment(loader=jinja2.PackageLoader("vidcap.report", "."),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    env.filters["usd"] = _usd
    script = (Path(__file__).with_name("filter.js")).read_text(encoding="utf-8")
    html = env.get_template(TEMPLATE).render(
        script=script, script_hash="sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode(),
        name=name, rows=rows, shards=len(info.get("shards", [])), table=str(table), run_dir=str(run_dir),
        manifest=info.get("manifest", ""),
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        opts=opts, items=items, motions=motions.most_common(), tags=tag_counts.most_common(200),
        n_problem=sum(1 for it in items if "random" not in it["kinds"]),
        plots=plots, stats=stats, summary=summary, tp=tp, tp_plot=tp_plot, failures=failures,
        prov=provenance(df, config), has_config=config is not None,
    )
    _write_utf8(out, html)
    log.info("report of %d rows (%d in the gallery) -> %s (%.0f kB)", rows, len(items), out, len(html) / 1024)
    return out
