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
benchmark; weights random, tokenizer tiny, config vocab kept at the 7B size).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava_next_video", "llava_onevision", "llava")
# Text-only chat models (``AutoModelForCausalLM`` + ``AutoTokenizer``): the tags stage's local runner.
TEXT_FAMILIES = ("qwen2", "llama")
STAMP = "vidcap_tiny.json"
BUILD_VERSION = "1"

_CORPUS = (
    "a video of a dog running on the beach at sunset with waves and sand. the camera pans left. "
    "a person walks in a city street at night under bright lights. a car drives on a road. "
    "the scene is a kitchen with a chef cutting vegetables. a cat sleeps on a sofa. "
    "subject scene atmosphere light shadow camera technique movement close up wide shot "
    "red green blue yellow white black gray orange purple pattern stripes moving square frame "
    "describe this video in detail in at most six sentences one sentence short caption image "
)

# --------------------------------------------------------------------------------------- templates

_QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_ONEVISION_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n"
    "{% elif c['type'] == 'video' %}<video>\n{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_VICUNA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['content'] is string %}{% set parts = [{'type': 'text', 'text': message['content']}] %}"
    "{% else %}{% set parts = message['content'] %}{% endif %}"
    "{% if message['role'] == 'system' %}{% for c in parts %}{{ c['text'] }}{% endfor %} "
    "{% elif message['role'] == 'user' %}USER: {% for c in parts %}{% if c['type'] == 'image' %}<image>\n"
    "{% elif c['type'] == 'video' %}<video>\n{% endif %}{% endfor %}"
    "{% for c in parts %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: {% for c in parts %}{{ c['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

_QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]
_ONEVISION_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
_VICUNA_SPECIAL = ["<unk>", "<s>", "</s>", "<image>", "<video>", "<pad>"]


def _tokenizer(special: list[str], eos: str, pad: str, bos: str | None, vocab_size: int = 400,
               extra: dict | None = None):
    """A byte-level BPE tokenizer trained on a tiny corpus, with ``special`` tokens first (ids 0..)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    kwargs = {"eos_token": eos, "pad_token": pad, "unk_token": None}
    if bos:
        kwargs["bos_token"] = bos
    kwargs.update(extra or {})
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    fast.padding_side = "left"
    return fast


def _ids(tok, names):
    return {n: tok.convert_tokens_to_ids(n) for n in names}


# ------------------------------------------------------------------------------------------ builders


def _build_qwen(family: str, max_pos: int, size: str):
    from transformers import (Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

    tok = _tokenizer(_QWEN_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>", bos=None)
    ids = _ids(tok, _QWEN_SPECIAL)
    vocab = len(tok)
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLForConditionalGeneration as Model
        from transformers import Qwen2_5_VLProcessor as Processor
    else:
        from transformers import Qwen2VLConfig as Config
        from transformers import Qwen2VLForConditionalGeneration as Model
        from transformers import Qwen2VLProcessor as Processor
    if size == "7b":
        if family != "qwen2_5_vl":
            raise ValueError("size='7b' is only defined for qwen2_5_vl")
        text = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                    num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                    rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24],
                                     "rope_theta": 1000000.0})
        vision = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                      window_size=112, fullatt_block_indexes=[7, 15, 23, 31], patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2)
    else:
        text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_pos,
                    rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3],
                                     "rope_theta": 10000.0})
        if family == "qwen2_5_vl":
            vision = dict(depth=2, hidden_size=32, intermediate_size=32, num_heads=2, out_hidden_size=32,
                          window_size=56, fullatt_block_indexes=[1], patch_size=14, spatial_merge_size=2,
                          temporal_patch_size=2, tokens_per_second=2)
        else:
            vision = dict(depth=2, embed_dim=32, hidden_size=32, mlp_ratio=2, num_heads=2, patch_size=14,
                          spatial_merge_size=2, temporal_patch_size=2)
    text.update(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])
    config = Config(text_config=text, vision_config=vision,
                    image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                    vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    if size == "7b":  # the released checkpoint's processor settings are the classes' defaults
        processor = Processor(image_processor=Qwen2VLImageProcessor(),
                              tokenizer=tok, video_processor=Qwen2VLVideoProcessor(cap_pixels_per_frame=True),
                              chat_template=_QWEN_TEMPLATE)
        return Model, config, processor
    pixels = dict(min_pixels=28 * 28, max_pixels=56 * 56)
    image_proc = Qwen2VLImageProcessor(size={"shortest_edge": pixels["min_pixels"],
                                             "longest_edge": pixels["max_pixels"]},
                                       patch_size=14, merge_size=2, temporal_patch_size=2)
    video_proc = Qwen2VLVideoProcessor(size={"shortest_edge": pixels["min_pixels"],
                                             "longest_edge": pixels["max_pixels"]},
                                       patch_size=14, merge_size=2, temporal_patch_size=2,
                                       cap_pixels_per_frame=True)
    processor = Processor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                          chat_template=_QWEN_TEMPLATE)
    return Model, config, processor


def _clip(size=28, hidden=32):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=hidden, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                            image_size=size, patch_size=14, projection_dim=hidden)


def _llama(vocab, ids, max_pos):
    return dict(model_type="llama", vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_pos,
                bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"])


_LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
_LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eot_id|>", "<|finetune_right_pad_id|>"]


def _build_text(family: str, max_pos: int):
    """A text-only chat model: (model class, config, tokenizer with the family's chat template)."""
    if family == "qwen2":
        from transformers import Qwen2Config as Config
        from transformers import Qwen2ForCausalLM as Model

        tok = _tokenizer(_QWEN_SPECIAL[:3], eos="<|im_end|>", pad="<|endoftext|>", bos=None)
        tok.chat_template = _QWEN_TEMPLATE
        ids = _ids(tok, _QWEN_SPECIAL[:3])
        bos, eos, pad = ids["<|endoftext|>"], ids["<|im_end|>"], ids["<|endoftext|>"]
    else:
        from transformers import LlamaConfig as Config
        from transformers import LlamaForCausalLM as Model

        tok = _tokenizer(_LLAMA3_SPECIAL, eos="<|eot_id|>", pad="<|finetune_right_pad_id|>",
                         bos="<|begin_of_text|>")
        tok.chat_template = _LLAMA3_TEMPLATE
        ids = _ids(tok, _LLAMA3_SPECIAL)
        bos, eos, pad = ids["<|begin_of_text|>"], ids["<|eot_id|>"], ids["<|finetune_right_pad_id|>"]
    config = Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_pos,
                    bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    return Model, config, tok


def _build_llava(max_pos: int):
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tok = _tokenizer(_VICUNA_SPECIAL, eos="</s>", pad="<pad>", bos="<s>", extra={"unk_token": "<unk>"})
    ids = _ids(tok, _VICUNA_SPECIAL)
    config = LlavaConfig(vision_config=_clip(), text_config=_llama(len(tok), ids, max_pos),
                         image_token_index=ids["<image>"], image_seq_length=4,
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    image_proc = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=image_proc, tokenizer=tok, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=_VICUNA_TEMPLATE)
    return LlavaForConditionalGeneration, config, processor


def _build_llava_next_video(max_pos: int):
    from transformers import (LlavaNextImageProcessor, LlavaNextVideoConfig,
                              LlavaNextVideoForConditionalGeneration, LlavaNextVideoProcessor,
                              LlavaNextVideoVideoProcessor)

    tok = _tokenizer(_VICUNA_SPECIAL, eos="</s>", pad="<pad>", bos="<s>", extra={"unk_token": "<unk>"})
    ids = _ids(tok, _VICUNA_SPECIAL)
    config = LlavaNextVideoConfig(vision_config=_clip(), text_config=_llama(len(tok), ids, max_pos),
                                  image_token_index=ids["<image>"], video_token_index=ids["<video>"],
                                  image_grid_pinpoints=[[28, 28]], spatial_pool_stride=2,
                                  vision_feature_select_strategy="default", vision_feature_layer=-2,
                                  image_seq_length=4, video_seq_length=1)
    image_proc = LlavaNextImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28},
                                         image_grid_pinpoints=[[28, 28]])
    video_proc = LlavaNextVideoVideoProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaNextVideoProcessor(video_processor=video_proc, image_processor=image_proc, tokenizer=tok,
                                        patch_size=14, vision_feature_select_strategy="default",
                                        num_additional_image_tokens=1, chat_template=_VICUNA_TEMPLATE)
    return LlavaNextVideoForConditionalGeneration, config, processor


def _build_llava_onevision(max_pos: int):
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessor, LlavaOnevisionProcessor,
                              LlavaOnevisionVideoProcessor, SiglipVisionConfig)

    tok = _tokenizer(_ONEVISION_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>", bos=None)
    ids = _ids(tok, _ONEVISION_SPECIAL)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                                image_size=28, patch_size=14)
    text = dict(model_type="qwen2", vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_pos,
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])
    config = LlavaOnevisionConfig(vision_config=vision, text_config=text, image_token_index=ids["<image>"],
                                  video_token_index=ids["<video>"], image_grid_pinpoints=[[28, 28]],
                                  vision_feature_select_strategy="full", vision_feature_layer=-1,
                                  vision_aspect_ratio="anyres_max_1")
    image_proc = LlavaOnevisionImageProcessor(size={"height": 28, "width": 28}, image_grid_pinpoints=[[28, 28]])
    video_proc = LlavaOnevisionVideoProcessor(size={"height": 28, "width": 28})
    processor = LlavaOnevisionProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                                        num_image_tokens=4, vision_feature_select_strategy="full",
                                        vision_aspect_ratio="anyres_max_1", chat_template=_ONEVISION_TEMPLATE)
    return LlavaOnevisionForConditionalGeneration, config, processor


# ------------------------------------------------------------------------------------------------ API


def build_tiny_model(family: str, outdir: str | Path, *, max_position_embeddings: int = 4096,
                     size: str = "tiny", seed: int = 0, force: bool = False) -> Path:
    """Write a random-weight ``family`` model folder at ``outdir`` (reused when already built alike).

    ``max_position_embeddings``: the text model's context (small values exercise the context check).
    Returns the folder. ValueError for an unknown family.
    """
    if family not in FAMILIES + TEXT_FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES + TEXT_FAMILIES)}")
    outdir = Path(outdir)
    spec = {"family": family, "max_position_embeddings": int(max_position_embeddings), "size": size,
            "seed": seed, "version": BUILD_VERSION}
    stamp = outdir / STAMP
    if not force and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == spec:
                return outdir
        except (OSError, json.JSONDecodeError):
            pass
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if family in TEXT_FAMILIES:
        model_cls, config, processor = _build_text(family, max_position_embeddings)
    elif family in ("qwen2_vl", "qwen2_5_vl"):
        model_cls, config, processor = _build_qwen(family, max_position_embeddings, size)
    elif family == "llava":
        model_cls, config, processor = _build_llava(max_position_embeddings)
    elif family == "llava_next_video":
        model_cls, config, processor = _build_llava_next_video(max_position_embeddings)
    else:
        model_cls, config, processor = _build_llava_onevision(max_position_embeddings)
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
    (tmp / STAMP).write_text(json.dumps(spec, indent=1))
    shutil.rmtree(outdir, ignore_errors=True)
    tmp.rename(outdir)
    return outdir


def default_cache_dir() -> Path:
    """``$VIDCAP_TINY_CACHE`` or ``~/.cache/vidcap/tiny``."""
    import os

    return Path(os.environ.get("VIDCAP_TINY_CACHE") or Path.home() / ".cache" / "vidcap" / "tiny")


def tiny_model(family: str, **kwargs) -> Path:
    """``build_tiny_model`` into the cache folder (one folder per family and context size)."""
    mp = kwargs.get("max_position_embeddings", 4096)
    return build_tiny_model(family, default_cache_dir() / f"{family}-ctx{mp}", **kwargs)
