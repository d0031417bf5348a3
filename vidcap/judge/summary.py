"""The judge's per-category table: raw relative score, position bias and bias-corrected score.

``category_table(rows)`` over ``vidcap.judge.core.JUDGE_COLUMNS`` rows, one row ``all`` then one per
category (sorted by name):

* ``n`` (rows with both averaged scores), ``failed`` (rows with ``judge_error``), ``mean_a``,
  ``mean_b``, ``relative`` = 100 × mean_b / mean_a and its bootstrap interval ``ci_low``/``ci_high``.
* ``position_bias``: the judge's mean advantage, in score points, for the answer it sees first
  (per row: ((A first − A second) + (B first − B second)) / 2; positive: the first-seen answer is
  favoured), over ``n_bias`` rows judged in both orders, with its interval ``bias_ci_low``/``high``.
* ``relative_corrected``: 100 × mean(B) / mean(A) where each answer's score is the one it got in
  the position the judge does NOT favour (the run's ``all`` bias decides which position that is,
  for every category); with its interval ``corrected_ci_low``/``high``. None without rows judged
  in both orders. The estimator and its assumptions are in docs/judge.md.

Intervals: percentile intervals at ``level`` of ``n_boot`` resamples of the category's rows with
replacement, ``numpy.random.default_rng(seed)``; the three statistics share each resample; None
when the category has fewer than 2 rows. Same rows and seed: same table.

``order_agreement(rows)``: how often both orders agree on the winner, and how often the answer shown
first wins (position bias at a glance).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from vidcap.judge.core import winner

_PER_ORDER = ("score_a_ab", "score_b_ab", "score_a_ba", "score_b_ba")


def _interval(values: np.ndarray, level: float) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if not len(values):
        return None, None
    lo, hi = np.percentile(values, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(lo), float(hi)


def row_bias(rows: pd.DataFrame) -> np.ndarray:
    """Per row: first-seen score minus second-seen score of the same answer, averaged over A and B
    (NaN where an order is missing)."""
    a_ab, b_ab, a_ba, b_ba = (pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=float) for c in _PER_ORDER)
    return ((a_ab - a_ba) + (b_ba - b_ab)) / 2.0


def favoured_position(rows: pd.DataFrame) -> str | None:
    """``first`` or ``second``: the position the judge favours over all ``rows`` judged in both
    orders (by the sign of the mean row bias); None when there are none or the bias is 0."""
    bias = row_bias(rows)
    bias = bias[np.isfinite(bias)]
    if not len(bias) or float(bias.mean()) == 0.0:
        return None
    return "first" if bias.mean() > 0 else "second"


def _unfavoured(part: pd.DataFrame, favoured: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) scores each answer got in the position the judge does not favour; with no bias the
    averaged scores (then the corrected score equals the raw one)."""
    if favoured is None:
        return part["score_a"].to_numpy(dtype=float), part["score_b"].to_numpy(dtype=float)
    a_col, b_col = ("score_a_ba", "score_b_ab") if favoured == "first" else ("score_a_ab", "score_b_ba")
    return (pd.to_numeric(part[a_col], errors="coerce").to_numpy(dtype=float),
            pd.to_numeric(part[b_col], errors="coerce").to_numpy(dtype=float))


def _ratio(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * b / a


def _stats(part: pd.DataFrame, favoured: str | None, n_boot: int, rng: np.random.Generator, level: float) -> dict:
    a = part["score_a"].to_numpy(dtype=float)
    b = part["score_b"].to_numpy(dtype=float)
    bias = row_bias(part)
    both = np.isfinite(bias)
    ca, cb = _unfavoured(part, favoured)
    n = len(a)
    out = {"n": n, "mean_a": float(a.mean()) if n else None, "mean_b": float(b.mean()) if n else None,
           "relative": float(100.0 * b.mean() / a.mean()) if n else None, "ci_low": None, "ci_high": None,
           "n_bias": int(both.sum()), "position_bias": float(bias[both].mean()) if both.any() else None,
           "bias_ci_low": None, "bias_ci_high": None, "relative_corrected": None,
           "corrected_ci_low": None, "corrected_ci_high": None}
    if both.all() and n:
        out["relative_corrected"] = float(_ratio(cb.mean(), ca.mean()))
    if n < 2:
        return out
    idx = rng.integers(0, n, size=(n_boot, n))
    out["ci_low"], out["ci_high"] = _interval(_ratio(b[idx].mean(axis=1), a[idx].mean(axis=1)), level)
    if both.all():
        out["bias_ci_low"], out["bias_ci_high"] = _interval(bias[idx].mean(axis=1), level)
        out["corrected_ci_low"], out["corrected_ci_high"] = _interval(
            _ratio(cb[idx].mean(axis=1), ca[idx].mean(axis=1)), level)
    return out


def category_table(rows: pd.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """The table the module docstring describes (columns: category, n, failed, mean_a, mean_b,
    relative, ci_low, ci_high, n_bias, position_bias, bias_ci_low, bias_ci_high,
    relative_corrected, corrected_ci_low, corrected_ci_high)."""
    err = rows["judge_error"].fillna("").astype(str) != ""
    scored = rows[~err & rows["score_a"].notna() & rows["score_b"].notna()]
    favoured = favoured_position(scored)
    rng = np.random.default_rng(seed)
    out = []
    groups = [("all", scored, rows)] + [
        (str(c), scored[scored["category"] == c], rows[rows["category"] == c])
        for c in sorted(set(rows["category"].fillna("").astype(str)))]
    for name, part, every in groups:
        stats = _stats(part, favoured, n_boot, rng, level)
        out.append({"category": name, "n": stats.pop("n"),
                    "failed": int((every["judge_error"].fillna("") != "").sum()), **stats})
    return pd.DataFrame(out)


def _f(v, d=2) -> str:
    return "-" if v is None or pd.isna(v) else f"{v:.{d}f}"


def _ci(lo, hi, d=1) -> str:
    return f"{_f(lo, d)} - {_f(hi, d)}" if lo is not None and pd.notna(lo) else "-"


def format_category_table(table: pd.DataFrame, label_a: str = "A", label_b: str = "B") -> str:
    """Markdown: category, n, failed, mean A, mean B, relative score B/A and its interval, the
    position bias (points for the first-seen answer) and its interval, the bias-corrected relative
    score and its interval."""
    head = (f"| category | n | failed | mean {label_a} | mean {label_b} | relative ({label_b}/{label_a}, %) | 95% CI "
            "| position bias | 95% CI | corrected relative (%) | 95% CI |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        bias = "-" if r.get("position_bias") is None or pd.isna(r.get("position_bias")) else f"{r['position_bias']:+.2f}"
        lines.append(f"| {r['category']} | {r['n']} | {r['failed']} | {_f(r['mean_a'])} | {_f(r['mean_b'])} | "
                     f"{_f(r['relative'], 1)} | {_ci(r['ci_low'], r['ci_high'])} | "
                     f"{bias} | {_ci(r.get('bias_ci_low'), r.get('bias_ci_high'), 2)} | "
                     f"{_f(r.get('relative_corrected'), 1)} | {_ci(r.get('corrected_ci_low'), r.get('corrected_ci_high'))} |")
    return "\n".join(lines)


def order_agreement(rows: pd.DataFrame) -> dict:
    """Over rows judged in both orders: ``pairs``, ``agree`` (same winner in both orders, ties
    included as a winner), ``share``, and ``first_position_wins``: how often the answer shown first
    won (a position-biased judge is above half of the decided verdicts)."""
    both = rows.dropna(subset=["score_a_ab", "score_b_ab", "score_a_ba", "score_b_ba"])
    pairs = len(both)
    agree = int(sum(winner(r.score_a_ab, r.score_b_ab) == winner(r.score_a_ba, r.score_b_ba)
                    for r in both.itertuples()))
    first = decided = 0
    for r in both.itertuples():
        for s1, s2 in ((r.score_a_ab, r.score_b_ab), (r.score_b_ba, r.score_a_ba)):   # (first shown, second)
            if s1 != s2:
                decided += 1
                first += s1 > s2
    return {"pairs": pairs, "agree": agree, "share": agree / pairs if pairs else None,
            "first_position_wins": first / decided if decided else None, "decided_verdicts": decided}
