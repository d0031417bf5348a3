"""The judge's side of ``vidcap compare`` (``vidcap.compare``): judge the caption pairs with the caption
rubric (``vidcap.judge.rules.RULES["caption"]``: accuracy, detail, hallucination, camera and motion)."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from vidcap.judge import run as judge_run
from vidcap.judge.stage import JudgeStage

log = logging.getLogger("vidcap.compare")

NAME = JudgeStage.name     # its folder in the comparison and its key in ``runners``
RULE = "caption"           # the rubric, and the category of pairs without one


def judge_pairs(pairs: pd.DataFrame, root: Path, config_a: dict, settings: dict | None = None,
                runner=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(judged pairs, per-category table) of ``pairs`` judged into ``root/judge``: the judge's settings
    are ``settings`` when given, else config A's ``stages.judge``; the rule is the caption rubric."""
    settings = dict(settings if settings is not None else config_a["stages"][NAME])
    settings["rule"] = RULE
    est = judge_run.estimate_folder(pairs, root / NAME, settings)   # nothing sent: rendered requests
    log.info("compare: judging %d pairs, before any request:\n%s", est["pairs"], judge_run.format_estimate(est))
    return judge_run.judge_folder(pairs, root / NAME, settings, runner=runner)
