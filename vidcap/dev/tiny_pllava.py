"""A tiny random-weight PLLaVA checkpoint in the released layout, built offline (tests, demo, benchmarks).

``build_tiny_pllava(outdir)`` writes one folder that serves as both ``repo_id`` and ``weight_dir`` (as the
released ``pllava-13b`` folder does): ``config.json`` (a ``LlavaConfig`` with ``num_frames`` and
``pooling_shape``), a byte-level BPE tokenizer with the Vicuna special tokens (``<image>`` included), a
``CLIPImageProcessor`` at 56 px (4 x 4 patches a frame) and the weights in the released key layout: the
LLM wrapped by peft LoRA (rank ``lora_r`` on ``q_proj``/``v_proj``, random non-zero A and B, so merging
changes the weights), split into ``shards`` ``model-0000i-of-0000n.safetensors`` files plus
``model.safetensors.index.json``. ``vidcap.models.pllava_checkpoint.load_pllava`` reads it exactly as a
real checkpoint. A folder whose ``vidcap_tiny.json`` stamp matches the request is reused as is.
Random weights give random text: assert on counts and shapes, never on wording.

``size="13b"`` (or "7b") writes the full-size config (CLIP ViT-L/14-336, Vicuna, pooling for
``num_frames``), the tiny tokenizer and a 336 px ``CLIPImageProcessor``, and no weights: the GPU benchmark
creates random weights on the device with ``vidcap.models.pllava.random_pllava``.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from vidcap.dev.tiny import build_cached, built_alike, default_cache_dir, publish
from vidcap.dev.tiny.tokenizer import VICUNA_SPECIAL, bpe_tokenizer, token_ids

BUILD_VERSION = "1"
LORA_TARGETS = ("q_proj", "v_proj")


def build_tiny_pllava(outdir, *, num_frames: int = 4, pooling_shape=None, lora_r: int = 8, shards: int = 2,
                      max_position_embeddings: int = 4096, size: str = "tiny", seed: int = 0,
                      force: bool = False) -> Path:
    """Write the tiny checkpoint folder at ``outdir`` (reused when already built alike); returns it.

    ``pooling_shape``: default (num_frames, grid/2, grid/2): 4-2-2 tiny, 4-12-12 full size.
    """
    outdir = Path(outdir)
    spec = {"family": "pllava", "size": size, "num_frames": int(num_frames),
            "pooling_shape": None if pooling_shape is None else list(pooling_shape), "lora_r": int(lora_r),
            "shards": int(shards), "max_position_embeddings": int(max_position_embeddings), "seed": int(seed),
            "version": BUILD_VERSION}
    if not force and built_alike(outdir, spec):
        return outdir
    # heavy: torch, only when a model runs
    import torch
    from transformers import CLIPImageProcessor

    # imports torch and transformers at its top: only when the model loads
    from vidcap.models.pllava import PllavaForConditionalGeneration, PllavaProcessor, pllava_config
    from vidcap.models.pllava_checkpoint import save_released, wrap_lora

    tok = bpe_tokenizer(VICUNA_SPECIAL, eos="</s>", pad="<pad>", bos="<s>", extra={"unk_token": "<unk>"})
    ids = token_ids(tok, VICUNA_SPECIAL)
    text = dict(bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"])
    if size == "tiny":  # full sizes keep Vicuna's vocabulary (32064) and context (4096)
        text.update(vocab_size=len(tok), max_position_embeddings=int(max_position_embeddings))
    config = pllava_config(size, num_frames=num_frames, pooling_shape=pooling_shape, text=text,
                           image_token_index=ids["<image>"])
    vision: Any = config.vision_config  # a PreTrainedConfig once LlavaConfig is built (annotated as maybe a dict)
    side = vision.image_size
    image_processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    processor = PllavaProcessor(tok, image_processor, config)

    tmp = outdir.with_name(outdir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if size == "tiny":
        torch.manual_seed(seed)
        model = PllavaForConditionalGeneration(config).eval()
        wrap_lora(model, lora_r, 4.0, list(LORA_TARGETS), init_lora_weights=False)
        save_released(model, tmp, shards=shards)
    config.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    return publish(tmp, outdir, spec)


def tiny_pllava(**kwargs) -> Path:
    """``build_tiny_pllava`` into the tiny-model cache folder (one folder per size and frame count)."""
    outdir = default_cache_dir() / f"pllava-{kwargs.get('size', 'tiny')}-f{kwargs.get('num_frames', 4)}"
    return build_cached(outdir, lambda: build_tiny_pllava(outdir, **kwargs))
