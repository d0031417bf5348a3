"""Token and cost accounting of API stages: ``vidcap cost RUN_DIR`` and ``vidcap estimate``.

``run_cost(run_dir)``: per shard and for the whole run, from the caption stage's finished outputs
(``stages/caption/<shard>.parquet``) and, for unfinished shards, its journals
(``journal/caption/<shard>.jsonl``), so a killed run's spend is counted too. Journals set aside after
a settings change (``*.jsonl.stale``) are money spent on results no longer used: reported on their
own line, not in the total.

``estimate(config, sample)``: samples rows of the manifest, runs them through the configured caption
stage for real (same runner, prompt, frames, limits), and projects cost and time for the whole
manifest at the configured concurrency and limits, before the big run spends anything.
"""
from __future__ import annotations

import math
import random
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from vidcap.config import stage_params
from vidcap.io.media_paths import media_base, resolve_media_path
from vidcap.io.run_dir import RunDir
from vidcap.io.shards import make_shards
from vidcap.io.tables import read_table, write_table
from vidcap.llm import stats as llm_stats
from vidcap.stages import get_stage
from vidcap.stages.base import run_stage
from vidcap.stages.journal import read_journal

STAGE = "caption"
COLS = ("prompt_tokens", "output_tokens", "caption_cost_usd", "caption_tries", "caption_error")


def _summ(df: pd.DataFrame) -> dict:
    def col(name):
        return pd.to_numeric(df[name], errors="coerce") if name in df else pd.Series([], dtype=float)

    err = df["caption_error"] if "caption_error" in df else pd.Series([None] * len(df))
    failed = int(err.fillna("").astype(str).ne("").sum())
    tries = col("caption_tries")
    cost = col("caption_cost_usd")
    return {"rows_done": len(df), "failed": failed,
            "prompt_tokens": int(col("prompt_tokens").fillna(0).sum()),
            "output_tokens": int(col("output_tokens").fillna(0).sum()),
            "tries": int(tries.fillna(0).sum()), "retries": int((tries.fillna(1) - 1).clip(lower=0).sum()),
            "cost_usd": float(cost.fillna(0).sum()) if cost.notna().any() else None}


def run_cost(run_dir: str | Path, stage: str = STAGE) -> dict:
    """``{"shards": [per-shard dict], "total": dict, "stale": dict | None}`` for ``run_dir``."""
    run = RunDir.at(run_dir)
    info = run.shard_info()
    shards, frames = [], []
    for name in info["shards"]:
        size = pq.ParquetFile(run.shard(name)).metadata.num_rows
        out, journal = run.output(stage, name), run.journal(stage, name)
        if out.exists():
            schema_names = pq.ParquetFile(out).schema_arrow.names
            df = pq.read_table(out, columns=[c for c in COLS if c in schema_names]).to_pandas()
            source = "output"
        elif journal.exists():
            df = pd.DataFrame(list(read_journal(journal)[1].values()))
            source = "journal"
        else:
            df, source = pd.DataFrame(), "-"
        row = {"shard": name, "rows": size, "source": source, **_summ(df)}
        shards.append(row)
        frames.append(df)
    total = {"shard": "total", "rows": info["rows"], "source": "",
             **_summ(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())}
    stale = run.journals(stage, stale=True)
    stale_sum = None
    if stale:
        stale_sum = {"shard": "set aside (.stale)", "rows": None, "source": f"{len(stale)} journals",
                     **_summ(pd.DataFrame([r for p in stale for r in read_journal(p)[1].values()]))}
    return {"shards": shards, "total": total, "stale": stale_sum}


def _fmt(v, kind="") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if kind == "usd":
        return f"${v:,.6f}" if abs(v) < 0.01 else f"${v:,.4f}"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def format_cost(summary: dict) -> str:
    head = ["shard", "rows", "done", "failed", "prompt tok", "output tok", "tries", "retries", "cost", "from"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = summary["shards"] + [summary["total"]] + ([summary["stale"]] if summary["stale"] else [])
    for r in rows:
        cells = [r["shard"], _fmt(r["rows"]), _fmt(r["rows_done"]), _fmt(r["failed"]), _fmt(r["prompt_tokens"]),
                 _fmt(r["output_tokens"]), _fmt(r["tries"]), _fmt(r["retries"]), _fmt(r["cost_usd"], "usd"),
                 r["source"]]
        lines.append("| " + " | ".join(cells) + " |")
    t = summary["total"]
    if t["cost_usd"] is None:
        lines.append("\ncost: no prices configured (stages.caption.openai.price_per_1m_input/_output), "
                     "or not an API runner")
    elif t["rows_done"] > t["failed"]:
        per = t["cost_usd"] / max(1, t["rows_done"] - t["failed"])
        lines.append(f"\n{t['rows_done'] - t['failed']} rows captioned, ${per:.5f} a row")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- estimate


def estimate(config: dict, sample: int = 8, seed: int = 0, jobs: int = 1, workdir: str | None = None) -> dict:
    """Run ``sample`` random manifest rows through the caption stage; project the whole manifest.

    ``config``: a validated workflow config (defaults filled in). ``jobs``: caption jobs that will run
    at the same time (each has its own concurrency and limits). Returns the measurements and the
    projection (see ``format_estimate``).
    """

    manifest = config["manifest"]
    df = read_table(manifest)
    total = len(df)
    n = min(int(sample), total)
    if n < 1:
        raise ValueError("the manifest has no rows")
    picked = sorted(random.Random(seed).sample(range(total), n))
    part = df.iloc[picked].copy()
    base = media_base(manifest, config.get("media_root"))
    part["path"] = ["" if pd.isna(p) else resolve_media_path(str(p), base) for p in part["path"]]

    params = stage_params(config, "caption")
    runner = params.get("runner", "transformers")
    with tempfile.TemporaryDirectory(prefix="vidcap-estimate-", dir=workdir) as tmp_name:
        tmp = Path(tmp_name)
        write_table(part, tmp / "sample.parquet")
        shard = make_shards(tmp / "sample.parquet", tmp / "shards", n)[0]
        stage = get_stage(STAGE, params)
        stats = llm_stats.reset_process_stats()
        t0 = time.monotonic()
        try:
            table = run_stage(stage, shard, tmp / "out.parquet", tmp / "journal.jsonl")
        finally:
            close = getattr(stage, "close", None)
            if close:
                close()
        wall = time.monotonic() - t0
    out = table.to_pandas()
    err = out["caption_error"].fillna("").astype(str)
    ok = out[err == ""]
    cost = pd.to_numeric(ok.get("caption_cost_usd"), errors="coerce") if "caption_cost_usd" in ok else None
    pt = pd.to_numeric(ok["prompt_tokens"], errors="coerce")
    ot = pd.to_numeric(ok["output_tokens"], errors="coerce")
    res = {"runner": runner, "model": (ok["caption_model"].iloc[0] if len(ok) else ""),
           "manifest_rows": total, "sample_rows": n, "sample_ok": len(ok), "sample_failed": n - len(ok),
           "sample_wall_s": wall,
           "errors": sorted(set(err[err != ""]))[:3],
           "prompt_tokens_mean": float(pt.mean()) if len(ok) else None,
           "output_tokens_mean": float(ot.mean()) if len(ok) else None,
           "cost_per_row": float(cost.mean()) if cost is not None and cost.notna().any() else None}
    # throughput of one job
    rate: float | None
    if runner == "openai":
        o = config["stages"][STAGE]["openai"]
        lat = stats.item_seconds or stats.request_seconds
        res["latency_s_mean"] = statistics.fmean(lat) if lat else None
        limits: dict[str, float] = {}
        if res["latency_s_mean"]:
            limits["concurrency"] = o["concurrency"] / res["latency_s_mean"]
        if o.get("requests_per_minute"):
            limits["requests_per_minute"] = o["requests_per_minute"] / 60.0
        if o.get("tokens_per_minute") and res["prompt_tokens_mean"] is not None:
            per = res["prompt_tokens_mean"] + max(res["output_tokens_mean"] or 0, 1)
            limits["tokens_per_minute"] = o["tokens_per_minute"] / 60.0 / per
        res["rate_limits"] = limits
        rate = min(limits.values()) if limits else n / wall
        res["bound_by"] = min(limits, key=limits.__getitem__) if limits else "sample wall time"
        res["retries"] = stats.retries
    else:
        rate = n / wall if wall > 0 else None
        res["bound_by"] = "sample wall time (includes model load)"
    res["rows_per_s_per_job"] = rate
    res["jobs"] = jobs
    res["projected_hours"] = (total / (rate * jobs) / 3600.0) if rate else None
    res["projected_cost_usd"] = (res["cost_per_row"] * total * (len(ok) / n)
                                 if res["cost_per_row"] is not None else None)
    return res


def format_estimate(e: dict) -> str:
    rows = [
        ("runner / model", f"{e['runner']} / {e['model'] or '-'}"),
        ("sample", f"{e['sample_rows']} rows of {e['manifest_rows']:,} ({e['sample_failed']} failed), "
                   f"{e['sample_wall_s']:.1f} s"),
        ("prompt tokens / row", _fmt(e["prompt_tokens_mean"])),
        ("output tokens / row", _fmt(e["output_tokens_mean"])),
    ]
    if "latency_s_mean" in e:
        rows.append(("latency / row (s)", _fmt(e["latency_s_mean"])))
        rows.append(("retries in sample", _fmt(e.get("retries"))))
        for k, v in e.get("rate_limits", {}).items():
            rows.append((f"rows/s allowed by {k}", _fmt(v)))
    rows += [
        ("rows/s per job", f"{_fmt(e['rows_per_s_per_job'])} (bound by {e['bound_by']})"),
        ("cost / row", _fmt(e["cost_per_row"], "usd") if e["cost_per_row"] is not None else "- (no prices)"),
        (f"projected cost, {e['manifest_rows']:,} rows",
         _fmt(e["projected_cost_usd"], "usd") if e["projected_cost_usd"] is not None else "- (no prices)"),
        (f"projected time, {e['jobs']} job(s) at once",
         f"{e['projected_hours']:.2f} h" if e["projected_hours"] is not None else "-"),
    ]
    if e["errors"]:
        rows.append(("sample errors", "; ".join(e["errors"])))
    width = max(len(k) for k, _ in rows)
    return "\n".join(["| quantity | value |", "|---|---|"] + [f"| {k:<{width}} | {v} |" for k, v in rows])
