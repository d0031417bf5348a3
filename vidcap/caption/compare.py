"""The caption's side of ``vidcap compare`` (``vidcap.compare``): caption the sampled shard with one
config's result-changing settings, as the columns ``caption_<side>`` (+ ``_error``, ``_model``,
``_prompt``, ``_tokens``, ``_finish_reason``) and, for side ``a``, the frames its model saw."""
from __future__ import annotations

import pandas as pd

from vidcap.caption.stage import CaptionStage
from vidcap.config import stage_params
from vidcap.io.run_dir import RunDir
from vidcap.io.shards import ROW_ID
from vidcap.stages.base import run_stage

NAME = CaptionStage.name
_RENAME = {"caption_error": "error", "caption_model": "model", "caption_prompt": "prompt",
           "output_tokens": "tokens", "finish_reason": "finish_reason"}


def caption_side(run: RunDir, shard: str, config: dict, side: str, runner=None) -> pd.DataFrame:
    """Row id and ``caption_<side>*`` of ``shard`` captioned with ``config`` (journaled in ``run``)."""
    stage = CaptionStage(stage_params(config, NAME))
    if runner is not None:
        stage.runner = runner
    name = f"{NAME}_{side}"
    table = run_stage(stage, run.shard(shard), run.output(name, shard), run.journal(name, shard),
                      stats_path=run.stats(name, shard)).to_pandas()
    out = pd.DataFrame({ROW_ID: table[ROW_ID], name: table[stage.output_column]})
    for col, suffix in _RENAME.items():
        out[f"{name}_{suffix}"] = table[col]
    if side == "a":   # the report's thumbnails: the frames A's model saw
        out["caption_frame_indices"] = table["caption_frame_indices"]
    return out


def report_config(config_a: dict, column: str) -> dict:
    """The report's view of a comparison: ``column`` is the text shown, frames decoded as A's were."""
    return {"stages": {NAME: {"output_column": column, "frames": config_a["stages"][NAME]["frames"]}}}
