"""Stages: each turns a shard into a table keyed by row id (contract in ``vidcap.stage``)."""
from __future__ import annotations


def get_stage(name: str, params: dict | None = None):
    """The stage object for a name; ValueError lists the known names."""
    if name == "probe":
        from vidcap.stages.probe import ProbeStage

        return ProbeStage(params)
    if name == "caption":
        from vidcap.stages.caption import CaptionStage

        return CaptionStage(params)
    if name == "motion":
        from vidcap.stages.motion import MotionStage

        return MotionStage(params)
    if name == "clean":
        from vidcap.stages.clean import CleanStage

        return CleanStage(params)
    if name == "tags":
        from vidcap.stages.tags import TagsStage

        return TagsStage(params)
    raise ValueError(f"unknown stage {name!r}; known: {', '.join(STAGES)}")


STAGES = ("probe", "caption", "clean", "motion", "tags")
