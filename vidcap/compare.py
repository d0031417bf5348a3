"""``vidcap compare CONFIG_A CONFIG_B --sample N``: caption the same N rows two ways, judge them, show it.

Before spending GPU-weeks on a model or a prompt: ``N`` rows sampled (seeded) from config A's manifest
are captioned with A's caption settings and with B's (runner, model, prompt, frames, generation; the
caption stage under ``run_stage``, journaled: ``vidcap.caption.compare``), then every pair goes to the
judge stage with the caption rubric (``vidcap.judge.compare``: accuracy, detail, hallucination, camera
and motion), both orders averaged. The judge's settings are A's ``stages.judge`` block unless given
(``judge``). A is the reference: the relative score is 100 × mean(B) / mean(A).

Output folder ``out``::

    compare.csv, compare.parquet     per row: the manifest's columns, caption_a, caption_b (+ _error,
                                     _model, _prompt), the judge's columns (scores, winner, reasons,
                                     per-criterion scores)
    compare.categories.csv           all + per category (the manifest's category column, else caption):
                                     n, failed, mean A, mean B, relative, 95 % bootstrap interval
    compare.report.html              the report: per-category table, side by side (frames, both
                                     captions, scores, winner, reasons), gallery, failures
    compare/                         shards, stage outputs, journals and stats (a rerun resumes)

A caption that failed fails its pair (``judge_error``); nothing is substituted. Config B's manifest is
not read: both sides caption A's sampled rows.
"""
from __future__ import annotations

import logging
import random
from pathlib import Path

import pandas as pd
import yaml

from vidcap.caption.compare import caption_side, report_config
from vidcap.config import validate_config
from vidcap.io.media_paths import media_base, resolve_media_path
from vidcap.io.run_dir import RunDir
from vidcap.io.shards import MEDIA_PATH, ROW_ID, ROW_INDEX, make_shards
from vidcap.io.tables import read_table, write_table
from vidcap.judge.columns import from_stage_table
from vidcap.judge.compare import NAME as JUDGE
from vidcap.judge.compare import RULE, judge_pairs
from vidcap.judge.summary import format_category_table, order_agreement
from vidcap.report import build_report

log = logging.getLogger("vidcap.compare")

SHARD = "00000"
QUESTION = "Write a caption of this video clip for a dataset that trains video models."


def load_config(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return validate_config(yaml.safe_load(fh) or {})


def sample_manifest(config: dict, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows (all when fewer) picked with ``random.Random(seed)``, in manifest order, paths absolute."""

    manifest = config["manifest"]
    df = read_table(manifest, bad_lines=config.get("prompt_file_bad_lines", "fail"))
    if not len(df):
        raise ValueError(f"{manifest}: no rows to sample")
    picked = sorted(random.Random(seed).sample(range(len(df)), min(int(n), len(df))))
    part = df.iloc[picked].copy().reset_index(drop=True)
    base = media_base(manifest, config.get("media_root"))
    part["path"] = ["" if pd.isna(p) else resolve_media_path(str(p), base) for p in part["path"]]
    return part


def compare(config_a: str | Path, config_b: str | Path, sample: int, out: str | Path, seed: int = 0,
            judge: dict | None = None, report: bool = True, runners: dict | None = None) -> dict:
    """Run the comparison into ``out`` (module docstring); returns what ``format_compare`` prints.
    ``runners``: optional runner objects for ``a``, ``b`` and ``judge`` (benches, tests)."""

    runners = runners or {}
    cfg_a, cfg_b = load_config(config_a), load_config(config_b)
    if Path(cfg_b["manifest"]).resolve() != Path(cfg_a["manifest"]).resolve():
        log.warning("compare: config B's manifest (%s) is not used: both sides caption rows of A's (%s)",
                    cfg_b["manifest"], cfg_a["manifest"])
    out = Path(out)
    run = RunDir(out, "compare")
    part = sample_manifest(cfg_a, sample, seed)
    write_table(part, run.root / "sample.parquet")
    make_shards(run.root / "sample.parquet", run.shards_dir, len(part))
    shard = pd.read_parquet(run.shard(SHARD))
    caps = [caption_side(run, SHARD, cfg, side, runners.get(side)) for side, cfg in (("a", cfg_a), ("b", cfg_b))]
    rows = shard
    for c in caps:
        rows = rows.merge(c, on=ROW_ID, how="left", validate="one_to_one")
    category = rows["category"].astype(str) if "category" in rows.columns else RULE
    pairs = pd.DataFrame({
        "path": rows[MEDIA_PATH], "question_id": rows[ROW_ID], "question": QUESTION, "category": category,
        "answer_a": rows["caption_a"], "answer_b": rows["caption_b"],
        "error_a": rows["caption_a_error"].map(lambda e: f"caption A failed: {e}" if isinstance(e, str) and e else ""),
        "error_b": rows["caption_b_error"].map(lambda e: f"caption B failed: {e}" if isinstance(e, str) and e else ""),
    }).fillna("").astype(str)
    judged, cats = judge_pairs(pairs, run.root, cfg_a, judge, runners.get(JUDGE))
    judge_cols = [c for c in judged.columns if c.startswith("judge_")]
    table = rows.merge(judged[["question_id", *judge_cols]].rename(columns={"question_id": ROW_ID}), on=ROW_ID,
                       how="left", validate="one_to_one")
    table = table.sort_values(ROW_INDEX).drop(columns=[ROW_INDEX, MEDIA_PATH]).reset_index(drop=True)
    write_table(table, out / "compare.csv")
    write_table(table, out / "compare.parquet")
    write_table(cats, out / "compare.categories.csv")
    agree = order_agreement(from_stage_table(table))
    winners = table["judge_winner"].fillna("").astype(str)
    result = {"rows": len(table), "labels": (str(config_a), str(config_b)), "categories": cats,
              "wins": {w: int((winners == w).sum()) for w in ("A", "B", "tie")},
              "failed": int((table["judge_error"].fillna("").astype(str) != "").sum()),
              "order_agreement": agree, "table": str(out / "compare.csv"), "report": None}
    if report:
        config = {**report_config(cfg_a, "caption_b"),
                  "compare": {"a": str(config_a), "b": str(config_b), "sample": int(sample), "seed": int(seed)}}
        result["report"] = str(build_report(run.root, out=out / "compare.report.html", table=out / "compare.parquet",
                                            config=config))
    return result


def format_compare(result: dict) -> str:
    a, b = result["labels"]
    w = result["wins"]
    agree = result["order_agreement"]
    share = "-" if agree["share"] is None else f"{100 * agree['share']:.1f}% of {agree['pairs']}"
    lines = [f"A = {a}", f"B = {b}", "", format_category_table(result["categories"], "A", "B"), "",
             f"{result['rows']} rows: B better {w['B']}, A better {w['A']}, tie {w['tie']}, "
             f"not judged {result['failed']}; order agreement {share}", f"table: {result['table']}"]
    if result["report"]:
        lines.append(f"report: {result['report']}")
    return "\n".join(lines)
