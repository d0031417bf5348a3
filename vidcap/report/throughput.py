"""The report's throughput and cost: per stage and per shard job, from files of the run folder only.

Sources: each job's stats file (``RunDir.stats``: rows, rows reused from the journal, stage counters
such as model wait and device), Snakemake's benchmark TSV (wall, CPU time, max RSS) and
the cost of the stages that have one (their ``ReportPart.cost``: tokens and cost). Never log text.

GPU hours are *reserved* hours: each job's wall time × the GPUs its rule requested
(``stages.<stage>.resources.gpu``), model loading and waits included; not measured utilisation.
"""
from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from vidcap.io.run_dir import RunDir
from vidcap.stages import STAGES
from vidcap.stages.report import ReportPart

log = logging.getLogger("vidcap.report")

SHARD_ROWS_SHOWN = 60  # per stage, slowest first, in the per-shard table
ORDER = {s: i for i, s in enumerate(["shard", *STAGES, "gather", "report"])}


def read_benchmark(path: Path) -> dict | None:
    """Snakemake's benchmark TSV (s, max_rss, cpu_time, ...) as floats; the last repeat when several."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return None
    if not rows:
        return None
    out: dict[str, float | None] = {}
    for k, v in rows[-1].items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            out[k] = None
    return out


def model_wait_pct(stats: dict) -> float | None:
    """Share of a job's streaming time the model spent waiting for decoded frames or preprocessing."""
    stream = stats.get("stream_s")
    if not stream or "input_wait_s" not in stats:
        return None
    return round(100.0 * (stats["input_wait_s"] + stats.get("preprocess_wait_s", 0.0)) / stream)


def _jobs(run: RunDir) -> list[tuple[str, str, Path]]:
    folder = run.root / "benchmarks"
    if not folder.is_dir():
        return []
    entries = []
    for p in sorted(folder.iterdir()):
        if p.is_dir():
            entries += [(p.name, t.stem, t) for t in sorted(p.glob("*.tsv"))]
        elif p.suffix == ".tsv":
            entries.append((p.stem, "", p))
    return entries


def _costs(run: RunDir, parts: list[ReportPart]) -> dict[str, dict]:
    """Stage -> its cost (``ReportPart.cost``), for the stages of the run that have one."""
    costs = {}
    names = run.stage_names()
    for part in parts:
        if part.name not in names:
            continue
        try:
            cost = part.cost(run.root)
        except (OSError, ValueError) as exc:
            log.warning("cost: %s", exc)
            continue
        if cost is not None:
            costs[part.name] = cost
    return costs


def throughput(run_dir: Path, config: dict | None, parts: list[ReportPart]) -> dict:
    """``{"stages": [per-stage totals], "shards": [slowest jobs], "all_shards", "cost", "hidden"}``
    (``cost``: the first stage's with one, for its set-aside spending)."""
    run = RunDir.at(run_dir)
    stages_cfg = (config or {}).get("stages", {})
    costs = _costs(run, parts)
    cost = next(iter(costs.values()), None)
    cost_rows = {(stage, r["shard"]): r for stage, c in costs.items() for r in c["shards"]}
    shards: list[dict[str, Any]] = []
    totals: dict[str, dict[str, Any]] = {}
    for index, (stage, shard, path) in enumerate(_jobs(run)):
        b = read_benchmark(path)
        if b is None:
            continue
        st = (run.read_stats(stage, shard) if shard else None) or {}
        gpu = (stages_cfg.get(stage, {}).get("resources", {}) or {}).get("gpu", 0) or 0
        s = b.get("s") or 0.0
        processed = st.get("processed")
        r = {"stage": stage, "shard": shard or "-", "index": int(shard) if shard.isdigit() else index,
             "rows": st.get("rows"), "reused": st.get("reused"), "s": s,
             "videos_per_s": (processed / s) if processed and s > 0 else None,
             "cpu_s": b.get("cpu_time"), "max_rss_mb": b.get("max_rss"), "gpus": gpu, "gpu_h": s * gpu / 3600.0,
             "model_wait_pct": model_wait_pct(st), "device": st.get("device", "")}
        if (stage, shard) in cost_rows:
            c = cost_rows[(stage, shard)]
            r.update(prompt_tokens=c["prompt_tokens"], output_tokens=c["output_tokens"], cost_usd=c["cost_usd"],
                     retries=c["retries"])
        shards.append(r)
        t = totals.setdefault(stage, {"stage": stage, "jobs": 0, "rows": None, "processed": 0, "s": 0.0, "max_s": 0.0,
                                      "cpu_s": 0.0, "max_rss_mb": 0.0, "gpus": gpu, "gpu_h": 0.0, "waits": [],
                                      "devices": Counter()})
        t["jobs"] += 1
        if r["rows"] is not None:
            t["rows"] = (t["rows"] or 0) + r["rows"]
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
    for stage, t in sorted(totals.items(), key=lambda kv: ORDER.get(kv[0], 50)):
        row = {**t, "videos_per_s": (t["processed"] / t["s"]) if t["processed"] and t["s"] > 0 else None,
               "cpu_h": t["cpu_s"] / 3600.0, "wall_h": t["s"] / 3600.0,
               "model_wait_pct": (sum(t["waits"]) / len(t["waits"])) if t["waits"] else None,
               "device": ", ".join(f"{d} ×{n}" for d, n in t["devices"].most_common())}
        if stage in costs:
            c = costs[stage]["total"]
            row.update(prompt_tokens=c["prompt_tokens"], output_tokens=c["output_tokens"], cost_usd=c["cost_usd"],
                       retries=c["retries"])
        stage_rows.append(row)
    # the per-shard table lists the slowest jobs of each stage (all of them for small runs)
    shown, hidden = [], 0
    by_stage: dict[str, list[dict]] = {}
    for r in shards:
        by_stage.setdefault(r["stage"], []).append(r)
    for _stage, rs in sorted(by_stage.items(), key=lambda kv: ORDER.get(kv[0], 50)):
        rs = sorted(rs, key=lambda r: r["s"], reverse=True)
        shown += sorted(rs[:SHARD_ROWS_SHOWN], key=lambda r: r["index"])
        hidden += max(0, len(rs) - SHARD_ROWS_SHOWN)
    return {"stages": stage_rows, "shards": shown, "all_shards": shards, "cost": cost, "hidden": hidden}
