"""PLLaVA on transformers' LLaVA classes: per-frame CLIP features, projector, then 3-D average pooling.

PLLaVA (``magic-research/PLLaVA``, ``models/pllava/modeling_pllava.py``) is LLaVA with one change: each
frame of a video goes through the CLIP tower (``vision_feature_layer`` = -2, CLS token dropped), then
through the projector (``linear_1``, GELU, ``linear_2``), and only then is the (frames, 24, 24) grid of
projected features average-pooled to ``pooling_shape`` (T, H, W) with ``AdaptiveAvgPool3d``. The pooled
T*H*W tokens (in T, H, W order) replace the one ``<image>`` token of the prompt. So ``PllavaModel`` only
overrides ``get_image_features``; the LLM, generation and the KV cache are ``LlavaForConditionalGeneration``'s.

Contracts:

* ``config`` is a ``LlavaConfig`` with two extra attributes: ``num_frames`` (frames per video) and
  ``pooling_shape`` ([T, H, W]). ``pllava_config(size)`` builds the released sizes ("7b", "13b") and
  the test size ("tiny").
* ``PllavaProcessor(text=[...], videos=[...])``: each text holds exactly one image token, each video is
  ``num_frames`` RGB uint8 frames (N, H, W, 3), or one frame (an image), repeated to ``num_frames``
  frames as PLLaVA does for images. With ``stretch=True`` a clip of 2 .. num_frames-1 frames (a clip
  shorter than the request: vidcap's sampler never repeats a frame) is stretched to ``num_frames`` in
  time order, each frame filling an equal share of the slots (``stretch_positions``), as the released
  sampler's repeated segment indices do for short clips. Repetition happens here, in the model's input,
  never in the sampler. Frames are resized to short side = the CLIP input size and centre-cropped square
  (``CLIPImageProcessor``). Left padding. ValueError for any other shape.
* ``generate_captions``: greedy, one ``max_new_tokens`` per row (a batch generates up to the largest;
  under greedy decoding a row's first k tokens do not depend on the limit, so cutting at the row's own
  limit equals generating with it: ``cut_output``). Newlines in the output become spaces (as Open-Sora does).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaModel
from transformers.feature_extraction_utils import BatchFeature
from transformers.models.llava.modeling_llava import LlavaPreTrainedModel

# CLIP ViT-L/14 at 336 px (openai/clip-vit-large-patch14-336): 24 x 24 patches a frame.
_CLIP_L_336 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                   image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu", layer_norm_eps=1e-5)
# Vicuna v1.5 as in llava-hf/llava-v1.6-vicuna-{7b,13b}-hf (the released PLLaVA configs' text_config).
_VICUNA = dict(model_type="llama", vocab_size=32064, max_position_embeddings=4096, rms_norm_eps=1e-5,
               bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
_TEXT = {
    "7b": dict(_VICUNA, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32),
    "13b": dict(_VICUNA, hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
                num_key_value_heads=40),
    "tiny": dict(_VICUNA, vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=2, num_key_value_heads=2),
}
_VISION = {"7b": _CLIP_L_336, "13b": _CLIP_L_336,
           "tiny": dict(_CLIP_L_336, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                        image_size=56, projection_dim=32)}
IMAGE_TOKEN_INDEX = 32000  # "<image>" in the llava-hf Vicuna tokenizers


def patch_grid(config) -> int:
    """Patches per side of one frame (24 for CLIP ViT-L/14 at 336 px)."""
    return int(config.vision_config.image_size) // int(config.vision_config.patch_size)


def default_pooling_shape(num_frames: int, grid: int) -> tuple[int, int, int]:
    """(num_frames, grid/2, grid/2): no temporal pooling, 2 x 2 spatial (4-12-12 for 4 frames of 24 x 24)."""
    return int(num_frames), max(1, grid // 2), max(1, grid // 2)


def set_pooling(config, num_frames: int, pooling_shape=None):
    """Set ``config.num_frames`` and ``config.pooling_shape`` (default: ``default_pooling_shape``); returns config.

    ``pooling_shape``: three positive ints, a list or "T-H-W" (Open-Sora's ``--pooling_shape 4-12-12``).
    ValueError for anything else or a shape larger than the input grid.
    """
    grid = patch_grid(config)
    if num_frames is None or int(num_frames) < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames!r}")
    shape: tuple[int, ...]
    if pooling_shape is None:
        shape = default_pooling_shape(int(num_frames), grid)
    else:
        parts = pooling_shape.split("-") if isinstance(pooling_shape, str) else list(pooling_shape)
        try:
            shape = tuple(int(p) for p in parts)
        except (TypeError, ValueError):
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"pooling_shape must be three positive ints T-H-W, got {pooling_shape!r}")
    if shape[0] > int(num_frames) or shape[1] > grid or shape[2] > grid:
        raise ValueError(f"pooling_shape {'-'.join(map(str, shape))} is larger than the input "
                         f"{num_frames}-{grid}-{grid} (frames-patches-patches)")
    config.num_frames = int(num_frames)
    config.pooling_shape = list(shape)
    return config


def pllava_config(size: str = "13b", *, num_frames: int = 4, pooling_shape=None, text: dict | None = None,
                  image_token_index: int = IMAGE_TOKEN_INDEX) -> LlavaConfig:
    """The LLaVA config of PLLaVA ``size`` ("7b", "13b": the released models; "tiny": tests), pooled.

    ``text``: overrides of the text config (the tiny builder passes its tokenizer's size and ids).
    Full size: CLIP ViT-L/14-336 (penultimate layer, CLS dropped), GELU projector, Vicuna v1.5 with a
    4096-token context; pooling (num_frames, 12, 12) unless ``pooling_shape`` is given.
    """
    if size not in _TEXT:
        raise ValueError(f"unknown PLLaVA size {size!r}; known: {', '.join(_TEXT)}")
    config = LlavaConfig(vision_config=dict(_VISION[size], model_type="clip_vision_model"),
                         text_config=dict(_TEXT[size], **(text or {})), image_token_index=image_token_index,
                         projector_hidden_act="gelu", vision_feature_layer=-2,
                         vision_feature_select_strategy="default", multimodal_projector_bias=True,
                         tie_word_embeddings=False)
    return set_pooling(config, num_frames, pooling_shape)


def stretch_positions(available: int, num_frames: int) -> list[int]:
    """Which of ``available`` frames (in time order) fill each of ``num_frames`` slots, for
    ``available <= num_frames``: slot i takes frame ``floor(i * available / num_frames)``, so every frame is
    used and each fills an equal share (+-1) of the slots, in order. E.g. 3 into 4: [0, 0, 1, 2]."""
    if not 1 <= available <= num_frames:
        raise ValueError(f"cannot stretch {available} frames to {num_frames}")
    return [i * int(available) // int(num_frames) for i in range(int(num_frames))]


def cut_output(ids: list[int], limit: int, eos_ids) -> tuple[list[int], str]:
    """A row's generated ids cut at its own ``limit``, then before its first EOS: (kept ids, finish reason).

    ``finish_reason``: ``stop`` when an EOS came (or generation ended early), ``length`` when ``limit``
    tokens came without one. Greedy decoding of a row does not depend on the batch's limit, so this equals
    generating the row alone with ``max_new_tokens=limit``.
    """
    eos = set(eos_ids)
    ids = list(ids[:limit])
    stop = next((j for j, t in enumerate(ids) if t in eos), None)
    kept = ids if stop is None else ids[:stop]
    return kept, "stop" if stop is not None or len(ids) < limit else "length"


def visual_token_count(config) -> int:
    """Visual tokens one video (or image) takes in the prompt: T*H*W of ``pooling_shape`` (576 for 4-12-12)."""
    return math.prod(int(v) for v in config.pooling_shape)


def pool_video_features(features: torch.Tensor, num_frames: int, grid: int, pooling_shape) -> torch.Tensor:
    """(videos * num_frames, grid*grid, D) frame features -> (videos, T*H*W, D), 3-D adaptive average pooling.

    Frames of one video are consecutive; output tokens are in T, H, W order (PLLaVA's rearrange).
    ValueError when the shapes do not fit.
    """
    n, tokens, dim = features.shape
    if tokens != grid * grid or n % num_frames:
        raise ValueError(f"cannot pool {n} frames of {tokens} tokens as videos of {num_frames} frames of "
                         f"{grid}x{grid} patches")
    x = features.reshape(n // num_frames, num_frames, grid, grid, dim).permute(0, 4, 1, 2, 3)
    t, h, w = (int(v) for v in pooling_shape)
    x = F.adaptive_avg_pool3d(x, (t, h, w))
    return x.flatten(2).transpose(1, 2)


class PllavaModel(LlavaModel):
    """``LlavaModel`` whose image features are pooled per video after the projector (PLLaVA's order)."""

    def get_image_features(self, pixel_values, vision_feature_layer=None, vision_feature_select_strategy=None,
                           **kwargs):
        out = super().get_image_features(pixel_values, vision_feature_layer=vision_feature_layer,
                                         vision_feature_select_strategy=vision_feature_select_strategy, **kwargs)
        frames = torch.stack(list(out.pooler_output))  # (videos * num_frames, grid*grid, text hidden)
        pooled = pool_video_features(frames, self.config.num_frames, patch_grid(self.config),
                                     self.config.pooling_shape)
        out.pooler_output = list(pooled)
        return out


class PllavaForConditionalGeneration(LlavaForConditionalGeneration):
    """``LlavaForConditionalGeneration`` with ``PllavaModel`` inside; same weights, same ``generate``."""

    def __init__(self, config: LlavaConfig):
        LlavaPreTrainedModel.__init__(self, config)
        self.model = PllavaModel(config)
        text: Any = config.text_config  # a PreTrainedConfig once LlavaConfig is built (annotated as maybe a dict)
        self.lm_head = nn.Linear(text.hidden_size, text.vocab_size, bias=False)
        self.post_init()


def random_pllava(config, *, device="cpu", dtype=torch.float32) -> PllavaForConditionalGeneration:
    """A PLLaVA with random weights built directly on ``device`` in ``dtype`` (benchmarks; the merged LoRA
    adds no parameters, so this is the inference-time model of a real checkpoint)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = PllavaForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


class PllavaProcessor:
    """Tokenizer + ``CLIPImageProcessor`` for PLLaVA (what ``PllavaProcessor`` of the released code loads).

    ``prompt(system, user)`` renders the Vicuna conversation Open-Sora's PLLaVA captioner uses
    (``"{system} USER:<image> {user} ASSISTANT:"``); ``__call__`` expands the one image token to
    ``visual_token_count`` tokens and returns ``input_ids``, ``attention_mask`` and ``pixel_values``.
    """

    def __init__(self, tokenizer, image_processor, config):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.num_frames = int(config.num_frames)
        self.visual_tokens = visual_token_count(config)
        self.image_token = tokenizer.convert_ids_to_tokens(int(config.image_token_id))
        if self.image_token is None or tokenizer.convert_tokens_to_ids(self.image_token) != config.image_token_id:
            raise ValueError(f"the tokenizer has no token for image_token_index {config.image_token_id}")
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token

    @classmethod
    def from_pretrained(cls, repo_id, config, **kwargs) -> PllavaProcessor:
        """Tokenizer (``AutoTokenizer``) and ``CLIPImageProcessor`` from ``repo_id`` (hub id or folder)."""
        # heavy: transformers, only when a model or processor is built
        from transformers import AutoTokenizer, CLIPImageProcessor

        return cls(AutoTokenizer.from_pretrained(repo_id, **kwargs),
                   CLIPImageProcessor.from_pretrained(repo_id, **kwargs), config)

    def save_pretrained(self, folder) -> None:
        self.tokenizer.save_pretrained(folder)
        self.image_processor.save_pretrained(folder)

    def prompt(self, system: str, user: str) -> str:
        head = f"{system.strip()} " if system and system.strip() else ""
        return f"{head}USER:{self.image_token} {user.strip()} ASSISTANT:"

    def _expand(self, text: str) -> str:
        if text.count(self.image_token) != 1:
            raise ValueError(f"a PLLaVA prompt holds exactly one {self.image_token}, got "
                             f"{text.count(self.image_token)}")
        return text.replace(self.image_token, self.image_token * self.visual_tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens of one rendered prompt once its image token is expanded (visual + text)."""
        return len(self.tokenizer(self._expand(text))["input_ids"])

    def _frames(self, video, stretch: bool) -> list[np.ndarray]:
        arr = np.asarray(video)
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"a video is (N, H, W, 3) uint8 frames, got {arr.shape} {arr.dtype}")
        if len(arr) == 1:
            arr = np.repeat(arr, self.num_frames, axis=0)
        elif stretch and 1 < len(arr) < self.num_frames:
            arr = arr[stretch_positions(len(arr), self.num_frames)]
        if len(arr) != self.num_frames:
            fewer = ", or fewer with stretch" if not stretch and len(arr) < self.num_frames else ""
            raise ValueError(f"PLLaVA takes {self.num_frames} frames a video (or 1 for an image{fewer}), "
                             f"got {len(arr)}")
        return list(arr)

    def __call__(self, text: list[str], videos: list, return_tensors: str = "pt", *,
                 stretch: bool = False) -> BatchFeature:
        """``stretch``: accept clips of fewer than ``num_frames`` frames (see the module docstring)."""
        if len(text) != len(videos):
            raise ValueError(f"{len(text)} prompts for {len(videos)} videos")
        frames = [f for v in videos for f in self._frames(v, stretch)]
        pixels = self.image_processor(images=frames, return_tensors=return_tensors)["pixel_values"]
        enc = self.tokenizer([self._expand(t) for t in text], padding=True, return_tensors=return_tensors)
        return BatchFeature({**enc, "pixel_values": pixels}, tensor_type=return_tensors)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)


@dataclass
class PllavaOutput:
    text: str
    finish_reason: str  # "stop" (EOS) | "length" (the row's max_new_tokens reached)
    output_tokens: int
    prompt_tokens: int


def generate_captions(model, processor: PllavaProcessor, videos: list, prompts: list[str],
                      max_new_tokens: int | list[int], *, min_new_tokens: int | None = None) -> list[PllavaOutput]:
    """Greedy captions for a batch: ``videos`` (N, H, W, 3) uint8 each, ``prompts`` rendered by ``prompt()``.

    ``max_new_tokens``: one limit, or one per row. Raises what the processor or the model raise
    (``torch.OutOfMemoryError`` included) for the whole batch; the caller splits and retries.
    """
    limits = [int(max_new_tokens)] * len(prompts) if isinstance(max_new_tokens, int) else [int(v) for v in
                                                                                           max_new_tokens]
    if len(limits) != len(prompts):
        raise ValueError(f"{len(limits)} max_new_tokens for {len(prompts)} prompts")
    tok = processor.tokenizer
    inputs = processor(text=prompts, videos=videos).to(model.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    kw = {"min_new_tokens": int(min_new_tokens)} if min_new_tokens else {}
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max(limits), do_sample=False, num_beams=1,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **kw)
    new = out[:, inputs["input_ids"].shape[1]:].cpu().tolist()
    prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
    results = []
    for ids, limit, n_prompt in zip(new, limits, prompt_tokens):
        kept, finish = cut_output(ids, limit, {tok.eos_token_id})
        text = tok.decode(kept, skip_special_tokens=True).replace("\n", " ").strip()
        results.append(PllavaOutput(text, finish, len(kept), int(n_prompt)))
    return results
