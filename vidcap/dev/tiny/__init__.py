"""Tiny random-weight vision-language models for tests, the demo and benchmarks (no hub needed).

``build_tiny_model(family, outdir)`` writes a folder that the REAL ``from_pretrained`` path loads
(``AutoConfig``/``AutoProcessor``/``AutoModelForImageTextToText``), exactly as a downloaded checkpoint:
a config object with tiny sizes, random weights, a byte-level BPE tokenizer trained in a second with
the family's special tokens (wrapped in ``PreTrainedTokenizerFast``), small image/video processors and
the family's chat template. Families: ``FAMILIES`` (vision-language) and ``TEXT_FAMILIES`` (text-only chat models,
``AutoModelForCausalLM`` + ``AutoTokenizer``, for the tags stage). Random weights give random text: assert on counts,
shapes and columns, never on wording.

The folder is cached: a ``vidcap_tiny.json`` stamp holds the build spec; a folder with the same spec is
reused as is. ``size="7b"`` (qwen2_5_vl only) builds the full Qwen2.5-VL-7B configuration (for the GPU
benchmark; weights random, tokenizer tiny, config vocab kept at the 7B size). ``size="engine"`` (qwen2_vl,
qwen2_5_vl) builds a tiny model that vLLM's CPU attention can run: text hidden 64 with 2 heads (head_dim 32;
CPU attention has no kernel for head_dim 16), mrope sections summing to head_dim / 2, vision output width =
text width.

``CURRENT_FAMILIES``: tiny builds of current model families for the generic AutoProcessor /
chat-template path (all with text head_dim 32): Qwen3-VL dense (``qwen3_vl``) and MoE (``qwen3_vl_moe``),
InternVL3 (``internvl``), SmolVLM2 (``smolvlm``), Gemma 3 (``gemma3``), GLM-4.1V (``glm4v``) and
LLaVA-NeXT 1.6 (``llava_next``). ``VIDEO_FAMILIES`` lists those whose processor takes a video (frames
plus metadata); the others take frames as several images.

One module per family group builds (model class, config, processor): ``qwen`` (Qwen2-VL, Qwen2.5-VL),
``llava`` (LLaVA-1.5, LLaVA-NeXT-Video, LLaVA-OneVision), ``current`` (``CURRENT_FAMILIES``), ``text``
(``TEXT_FAMILIES``); ``tokenizer`` holds the shared tokenizer, chat templates and special tokens.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from vidcap.dev.tiny.current import CURRENT_BUILDERS
from vidcap.dev.tiny.llava import build_llava, build_llava_next_video, build_llava_onevision
from vidcap.dev.tiny.qwen import build_qwen
from vidcap.dev.tiny.text import build_text
from vidcap.io.locks import FileLock

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava_next_video", "llava_onevision", "llava")
# Current families (generic AutoProcessor / chat-template path); kept apart from FAMILIES, which the
# transformers runner's family-specific code covers.
CURRENT_FAMILIES = ("qwen3_vl", "qwen3_vl_moe", "internvl", "smolvlm", "gemma3", "glm4v", "llava_next")
# Families whose processor takes a video input (the rest take frames as images).
VIDEO_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava_next_video", "llava_onevision", "qwen3_vl", "qwen3_vl_moe",
                  "internvl", "smolvlm", "glm4v")
SIZES = ("tiny", "engine", "7b")
# Text-only chat models (``AutoModelForCausalLM`` + ``AutoTokenizer``): the tags stage's local runner.
TEXT_FAMILIES = ("qwen2", "llama")
STAMP = "vidcap_tiny.json"
BUILD_VERSION = "1"


def built_alike(outdir: Path, spec: dict) -> bool:
    """A model folder already built with exactly ``spec`` (its STAMP file says so)."""
    try:
        return json.loads((Path(outdir) / STAMP).read_text()) == spec
    except (OSError, json.JSONDecodeError):
        return False


def build_tiny_model(family: str, outdir: str | Path, *, max_position_embeddings: int = 4096,
                     size: str = "tiny", seed: int = 0, force: bool = False) -> Path:
    """Write a random-weight ``family`` model folder at ``outdir`` (reused when already built alike).

    ``max_position_embeddings``: the text model's context (small values exercise the context check).
    ``size``: ``tiny`` (default), ``engine`` (qwen2_vl / qwen2_5_vl sized for vLLM's CPU attention) or ``7b``
    (qwen2_5_vl config only). Returns the folder. ValueError for an unknown family or size.
    """
    known = FAMILIES + TEXT_FAMILIES + CURRENT_FAMILIES
    if family not in known:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(known)}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    if size == "engine" and family not in ("qwen2_vl", "qwen2_5_vl"):
        raise ValueError("size='engine' is defined for qwen2_vl and qwen2_5_vl (current families are engine-sized)")
    outdir = Path(outdir)
    spec = {"family": family, "max_position_embeddings": int(max_position_embeddings), "size": size,
            "seed": seed, "version": BUILD_VERSION}
    if not force and built_alike(outdir, spec):
        return outdir
    # heavy: torch, only when a model runs
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if family in TEXT_FAMILIES:
        model_cls, config, processor = build_text(family, max_position_embeddings)
    elif family in ("qwen2_vl", "qwen2_5_vl"):
        model_cls, config, processor = build_qwen(family, max_position_embeddings, size)
    elif family == "llava":
        model_cls, config, processor = build_llava(max_position_embeddings)
    elif family == "llava_next_video":
        model_cls, config, processor = build_llava_next_video(max_position_embeddings)
    elif family in CURRENT_BUILDERS:
        model_cls, config, processor = CURRENT_BUILDERS[family](max_position_embeddings)
    else:
        model_cls, config, processor = build_llava_onevision(max_position_embeddings)
    torch.manual_seed(seed)
    tmp = outdir.with_name(outdir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if size == "7b":
        # config only: the benchmark instantiates the weights itself on the GPU (14 GB of bf16)
        config.save_pretrained(tmp)
    else:
        model = model_cls(config).eval()
        gen = model.generation_config
        text_config = getattr(config, "text_config", None) or config
        gen.pad_token_id = text_config.pad_token_id
        gen.eos_token_id = text_config.eos_token_id
        gen.bos_token_id = text_config.bos_token_id
        model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    return publish(tmp, outdir, spec)


def publish(tmp: Path, outdir: Path, spec: dict) -> Path:
    """Stamp a model folder built in ``tmp`` with its ``spec`` and move it to ``outdir`` (replacing it)."""
    (tmp / STAMP).write_text(json.dumps(spec, indent=1))
    shutil.rmtree(outdir, ignore_errors=True)
    tmp.rename(outdir)
    return outdir


def default_cache_dir() -> Path:
    """``$VIDCAP_TINY_CACHE`` or ``~/.cache/vidcap/tiny``."""
    return Path(os.environ.get("VIDCAP_TINY_CACHE") or Path.home() / ".cache" / "vidcap" / "tiny")


def build_cached(outdir: Path, build) -> Path:
    """``build()`` under a lock beside ``outdir`` in the shared cache, so that processes building the
    same model at once (parallel test workers, concurrent jobs) never write or replace one another's
    folder; the second one waits, then reuses the folder the first one built."""
    lock = FileLock(outdir.with_name(outdir.name + ".lock"), "building a tiny model").acquire(wait_s=1800)
    try:
        return build()
    finally:
        lock.release()


def tiny_model(family: str, **kwargs) -> Path:
    """``build_tiny_model`` into the cache folder (one folder per family, size and context size)."""
    mp = kwargs.get("max_position_embeddings", 4096)
    size = kwargs.get("size", "tiny")
    name = f"{family}-ctx{mp}" if size == "tiny" else f"{family}-{size}-ctx{mp}"
    outdir = default_cache_dir() / name
    return build_cached(outdir, lambda: build_tiny_model(family, outdir, **kwargs))
