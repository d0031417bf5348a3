"""One entry point for every tiny model family ``vidcap tiny-model`` can write.

``ALL_FAMILIES``: ``vidcap.dev.tiny``' families (vision-language, current, text-only) and
``pllava`` (``vidcap.dev.tiny_pllava``: the released checkpoint layout, LoRA included).
``build_family(family, outdir, size=..., max_position_embeddings=..., force=...)`` writes the folder
and returns it; ValueError for an unknown family or a size the family does not have (``pllava``:
``tiny``, or ``7b`` / ``13b`` = the full-size config and processor without weights).
"""
from __future__ import annotations

from pathlib import Path

from vidcap.dev.tiny import CURRENT_FAMILIES, FAMILIES, TEXT_FAMILIES, build_tiny_model
from vidcap.dev.tiny_pllava import build_tiny_pllava

PLLAVA_SIZES = ("tiny", "7b", "13b")
ALL_FAMILIES = FAMILIES + CURRENT_FAMILIES + TEXT_FAMILIES + ("pllava",)


def build_family(family: str, outdir: str | Path, *, size: str = "tiny", max_position_embeddings: int = 4096,
                 force: bool = False) -> Path:
    """Write the tiny ``family`` model folder at ``outdir`` (reused when already built alike)."""
    if family == "pllava":
        if size not in PLLAVA_SIZES:
            raise ValueError(f"pllava sizes: {', '.join(PLLAVA_SIZES)}; got {size!r}")
        return build_tiny_pllava(outdir, size=size, max_position_embeddings=max_position_embeddings, force=force)
    if family not in ALL_FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(ALL_FAMILIES)}")
    return build_tiny_model(family, outdir, max_position_embeddings=max_position_embeddings, force=force, size=size)
