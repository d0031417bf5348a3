"""The judge's part of the run's report (``vidcap.stages.report``): a section with the per-category
table and pairs side by side (template ``report.html.j2`` next to this module).

Present when the table has the judge stage's columns (a workflow run with ``stages.judge`` on, or
``vidcap compare``). Per category: n, failed, mean A, mean B, relative score 100 × mean(B) / mean(A)
with its seeded 95 % bootstrap interval, the judge's position bias and the bias-corrected relative
score with theirs (``vidcap.judge.summary.category_table``), and the order agreement.
Side by side: up to ``count`` pairs picked round-robin over B better / A better / tie / not judged
(seeded), each with thumbnails of the clip (the frames the caption model saw when recorded), the
question, both answers, both scores, the winner, the per-criterion scores and the judge's reasons.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from vidcap.io.media_paths import resolve_media_path
from vidcap.io.tables import cell_list, cell_text
from vidcap.judge.columns import from_stage_table
from vidcap.judge.summary import category_table, order_agreement
from vidcap.media.thumbs import thumbnails
from vidcap.stages.report import ReportInput, ReportPart, Section


def _labels(config: dict | None) -> tuple[str, str]:
    pair = (config or {}).get("compare") or {}
    if pair.get("a") and pair.get("b"):
        return str(pair["a"]), str(pair["b"])
    return "reference", "answer"


def _pick(df: pd.DataFrame, count: int, seed: int) -> list[int]:
    winner = df["judge_winner"].astype("string").fillna("")
    error = df["judge_error"].astype("string").fillna("") != ""
    seen = (df["judge_requests"].notna() | error).to_numpy(dtype=bool)
    rng = np.random.default_rng(seed)
    pools = []
    for mask in ((winner == "B").to_numpy(dtype=bool), (winner == "A").to_numpy(dtype=bool),
                 (winner == "tie").to_numpy(dtype=bool), error.to_numpy(dtype=bool)):
        pools.append(list(rng.permutation(np.flatnonzero(mask & seen))))
    chosen: list[int] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(int(pool.pop(0)))
    return sorted(chosen)


def _num(v) -> float | None:
    """A score cell as a float, or None (null, NaN, pandas NA)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def _criteria(cell) -> list[tuple[str, str, str]]:
    text = cell_text(cell)
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return [(k.replace("_", " "), f"{v[0]:g}", f"{v[1]:g}") for k, v in data.items()
            if isinstance(v, list) and len(v) == 2]


def judge_section(df: pd.DataFrame, media_base: str, opts: dict, config: dict | None = None,
                  decoder: str | None = None, threads: int = 2, count: int = 24) -> dict | None:
    """What the template's judge section shows, or None when the table has no judge columns."""
    if "judge_score_a" not in df.columns or "judge_error" not in df.columns:
        return None
    rows = from_stage_table(df)
    if not len(rows):
        return None
    cats = category_table(rows, seed=int(opts.get("seed", 0)))
    agree = order_agreement(rows)
    label_a, label_b = _labels(config)
    winners = rows["winner"].fillna("").astype(str)
    items = []
    for pos in _pick(df, min(count, max(1, int(opts.get("sample", count)))), int(opts.get("seed", 0))):
        row = df.iloc[pos]
        path = cell_text(row.get("path"))
        items.append({
            "pos": pos, "path": path, "media": resolve_media_path(path, media_base) if path else "",
            "question": cell_text(row.get("prompt")), "category": cell_text(row.get("judge_category")),
            "a": cell_text(row.get("judge_answer_a")), "b": cell_text(row.get("judge_answer_b")),
            "score_a": _num(row.get("judge_score_a")), "score_b": _num(row.get("judge_score_b")),
            "winner": cell_text(row.get("judge_winner")), "error": cell_text(row.get("judge_error")),
            "agree": cell_text(row.get("judge_order_agree")),
            "reasons": [r for r in (cell_text(row.get("judge_reason_ab")), cell_text(row.get("judge_reason_ba"))) if r],
            "criteria": _criteria(row.get("judge_criteria")),
            "indices": [int(i) for i in cell_list(row.get("caption_frame_indices"))],
        })

    def thumbs(item):
        if not item["media"]:
            return [], "", "no path"
        return thumbnails(item["media"], item["indices"], int(opts.get("thumbnails", 4)),
                          int(opts.get("thumb_size", 160)), decoder)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for item, (th, note, err) in zip(items, pool.map(thumbs, items)):
            item.update(thumbs=th, thumb_note=note, thumb_error=err)
    numeric = ("mean_a", "mean_b", "relative", "ci_low", "ci_high", "position_bias", "bias_ci_low", "bias_ci_high",
               "relative_corrected", "corrected_ci_low", "corrected_ci_high")
    categories = [{k: (_num(v) if k in numeric else v) for k, v in c.items()} for c in cats.to_dict("records")]
    return {"label_a": label_a, "label_b": label_b, "categories": categories,
            "judged": int(rows["score_a"].notna().sum()), "failed": int((rows["judge_error"] != "").sum()),
            "wins": {w: int((winners == w).sum()) for w in ("A", "B", "tie")}, "agreement": agree,
            "models": sorted({m for m in rows["judge_model"].fillna("").astype(str) if m}),
            "items": items}


class JudgeReport(ReportPart):
    def section(self, inp: ReportInput) -> Section | None:
        data = judge_section(inp.df, inp.media_base, inp.opts, inp.config, inp.decoder, inp.threads)
        return None if data is None else Section("judge", "Judge", "vidcap.judge:report.html.j2", data)
