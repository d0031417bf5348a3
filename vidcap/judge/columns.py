"""The judge stage's columns: ``JUDGE_COLUMNS`` rows under prefixed names in a stage output or the
merged table (``STAGE_COLUMNS``), and back (``from_stage_table``) for ``vidcap.judge.summary``."""
from __future__ import annotations

import pandas as pd

from vidcap.judge.core import JUDGE_COLUMNS

# JUDGE_COLUMNS -> the judge stage's column (prefixed, so they never clash with other stages' in the
# merged table); ``question_id`` is the row itself (``row_id``) and has none.
STAGE_COLUMNS = {c: (c if c.startswith("judge_") else f"judge_{c}") for c in JUDGE_COLUMNS if c != "question_id"}


def to_stage_row(row: dict) -> dict:
    """A ``JUDGE_COLUMNS`` row with the judge stage's column names (``STAGE_COLUMNS``)."""
    return {STAGE_COLUMNS[k]: v for k, v in row.items() if k in STAGE_COLUMNS}


def from_stage_table(df: pd.DataFrame, key_column: str = "row_id") -> pd.DataFrame:
    """The judge stage's columns of a table (a stage output or the merged table) back under
    ``JUDGE_COLUMNS`` names (``question_id`` from ``key_column``), for ``category_table`` and
    ``order_agreement``. Rows the stage never saw (no ``judge_requests`` and no ``judge_error``) are
    dropped; null errors become ''."""
    have = {k: v for k, v in STAGE_COLUMNS.items() if v in df.columns}
    out = pd.DataFrame({k: df[v].astype(object).where(df[v].notna(), None) for k, v in have.items()})
    out.insert(0, "question_id", df[key_column].astype(str).to_numpy() if key_column in df.columns else "")
    for c in JUDGE_COLUMNS:
        if c not in out.columns:
            out[c] = None
    out["judge_error"] = out["judge_error"].fillna("").astype(str)
    out["category"] = out["category"].fillna("").astype(str)
    for c in ("score_a", "score_b", "score_a_ab", "score_b_ab", "score_a_ba", "score_b_ba", "cost_usd"):
        out[c] = pd.to_numeric(out[c], errors="coerce")
    seen = out["judge_requests"].notna() | (out["judge_error"] != "")
    return out[seen][list(JUDGE_COLUMNS)].reset_index(drop=True)
