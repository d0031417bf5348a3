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
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

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
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

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
        # "engine": head_dim 32 (vLLM's CPU attention has no head_dim 16 kernel); mrope sections sum to
        # head_dim / 2; the vision tower's output width equals the text width.
        width = 64 if size == "engine" else 32
        mrope = [4, 6, 6] if size == "engine" else [2, 3, 3]
        text = dict(vocab_size=vocab, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_pos,
                    rope_parameters={"rope_type": "default", "mrope_section": mrope,
                                     "rope_theta": 10000.0})
        if family == "qwen2_5_vl":
            vision = dict(depth=2, hidden_size=32, intermediate_size=32, num_heads=2, out_hidden_size=width,
                          window_size=56, fullatt_block_indexes=[1], patch_size=14, spatial_merge_size=2,
                          temporal_patch_size=2, tokens_per_second=2)
        else:
            vision = dict(depth=2, embed_dim=32, hidden_size=width, mlp_ratio=2, num_heads=2, patch_size=14,
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
    from transformers import (
        LlavaNextImageProcessor,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

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
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        SiglipVisionConfig,
    )

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


# ------------------------------------------------------------------------ current families (head_dim 32)

# Every current family's text model: hidden 64, 2 heads of 32 (vLLM's CPU attention needs head_dim >= 32),
# one KV head, 2 layers.
_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=1, head_dim=32)
_TEXT_WIDTH = _TEXT["hidden_size"]

_GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{% if role == 'system' %}{% set role = 'user' %}{% endif %}<start_of_turn>{{ role }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<start_of_image>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_GEMMA_SPECIAL = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                  "<end_of_image>", "<image_soft_token>"]

_SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}: {{ message['content'] }}{% else %}"
    "{% if message['content'][0]['type'] == 'image' or message['content'][0]['type'] == 'video' %}:"
    "{% else %}: {% endif %}{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}"
    "{% elif c['type'] == 'image' %}<image>{% elif c['type'] == 'video' %}<video>{% endif %}{% endfor %}"
    "{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
_SMOLVLM_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>",
                    "<image>", "<global-img>", "<video>"]

_INTERNVL_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif c['type'] == 'video' %}<video>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_INTERNVL_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]

_GLM_TEMPLATE = (
    "[gMASK]<sop>{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<|begin_of_image|><|image|><|end_of_image|>"
    "{% elif c['type'] == 'video' %}<|begin_of_video|><|video|><|end_of_video|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_GLM_SPECIAL = ["<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>",
                "<|begin_of_image|>", "<|end_of_image|>", "<|image|>", "<|begin_of_video|>", "<|end_of_video|>",
                "<|video|>"]


def _build_qwen3(family: str, max_pos: int):
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    tok = _tokenizer(_QWEN_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>", bos=None)
    ids = _ids(tok, _QWEN_SPECIAL)
    text = dict(_TEXT, vocab_size=len(tok), max_position_embeddings=max_pos,
                rope_parameters={"rope_type": "default", "mrope_section": [4, 6, 6], "mrope_interleaved": True,
                                 "rope_theta": 5000000.0},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    if family == "qwen3_vl_moe":
        from transformers import Qwen3VLMoeConfig as Config
        from transformers import Qwen3VLMoeForConditionalGeneration as Model

        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64, decoder_sparse_step=1)
    else:
        from transformers import Qwen3VLConfig as Config
        from transformers import Qwen3VLForConditionalGeneration as Model
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=_TEXT_WIDTH, num_position_embeddings=16,
                  deepstack_visual_indexes=[0])
    config = Config(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                    video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                    vision_end_token_id=ids["<|vision_end|>"])
    pixels = {"shortest_edge": 32 * 32, "longest_edge": 64 * 64}
    image_proc = Qwen2VLImageProcessor(size=pixels, patch_size=16, merge_size=2, temporal_patch_size=2)
    video_proc = Qwen3VLVideoProcessor(size=pixels, patch_size=16, merge_size=2, temporal_patch_size=2,
                                       cap_pixels_per_frame=True, do_sample_frames=False)
    processor = Qwen3VLProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                                 chat_template=_QWEN_TEMPLATE)
    return Model, config, processor


def _build_internvl(max_pos: int):
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
        InternVLVisionConfig,
    )

    tok = _tokenizer(_INTERNVL_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>", bos=None,
                     extra={"extra_special_tokens": {"start_image_token": "<img>", "end_image_token": "</img>",
                                                     "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}})
    ids = _ids(tok, _INTERNVL_SPECIAL)
    # 56 px tiles of 14 px patches: 4 x 4 patches, pixel-shuffled by 0.5 -> 4 tokens a tile
    vision = InternVLVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                  image_size=56, patch_size=14)
    text = dict(_TEXT, model_type="qwen2", vocab_size=len(tok), max_position_embeddings=max_pos,
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    config = InternVLConfig(vision_config=vision, text_config=text, image_token_id=ids["<IMG_CONTEXT>"],
                            image_seq_length=4, downsample_ratio=0.5, vision_feature_layer=-1)
    image_proc = GotOcr2ImageProcessor(size={"height": 56, "width": 56}, crop_to_patches=True, max_patches=2)
    video_proc = InternVLVideoProcessor(size={"height": 56, "width": 56}, do_sample_frames=False)
    processor = InternVLProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                                  image_seq_length=4, chat_template=_INTERNVL_TEMPLATE)
    return InternVLForConditionalGeneration, config, processor


def _build_smolvlm(max_pos: int):
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
        SmolVLMVisionConfig,
    )

    tok = _tokenizer(_SMOLVLM_SPECIAL, eos="<end_of_utterance>", pad="<|endoftext|>", bos="<|im_start|>",
                     extra={"extra_special_tokens": {"fake_image_token": "<fake_token_around_image>",
                                                     "image_token": "<image>", "global_image_token": "<global-img>",
                                                     "end_of_utterance_token": "<end_of_utterance>",
                                                     "video_token": "<video>"}})
    ids = _ids(tok, _SMOLVLM_SPECIAL)
    # 32 px images of 8 px patches: 4 x 4 patches, pixel-shuffled by 2 -> 4 tokens an image
    vision = SmolVLMVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                 image_size=32, patch_size=8)
    text = dict(_TEXT, model_type="llama", vocab_size=len(tok), max_position_embeddings=max_pos,
                bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<end_of_utterance>"],
                pad_token_id=ids["<|endoftext|>"])
    config = SmolVLMConfig(vision_config=vision, text_config=text, image_token_id=ids["<image>"], scale_factor=2)
    sizes = dict(size={"longest_edge": 64}, max_image_size={"longest_edge": 32})
    image_proc = SmolVLMImageProcessor(do_image_splitting=True, **sizes)
    video_proc = SmolVLMVideoProcessor(do_sample_frames=False, **sizes)
    processor = SmolVLMProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                                 image_seq_len=4, chat_template=_SMOLVLM_TEMPLATE)
    return SmolVLMForConditionalGeneration, config, processor


def _build_gemma3(max_pos: int):
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
        SiglipVisionConfig,
    )

    tok = _tokenizer(_GEMMA_SPECIAL, eos="<end_of_turn>", pad="<pad>", bos="<bos>",
                     extra={"extra_special_tokens": {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                                                     "image_token": "<image_soft_token>"}})
    ids = _ids(tok, _GEMMA_SPECIAL)
    # 56 px images of 14 px patches: 4 x 4 patches, average-pooled to 2 x 2 = 4 tokens an image
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=56, patch_size=14, vision_use_head=False)
    text = dict(_TEXT, vocab_size=len(tok), max_position_embeddings=max_pos, sliding_window=64,
                query_pre_attn_scalar=32, bos_token_id=ids["<bos>"], eos_token_id=ids["<end_of_turn>"],
                pad_token_id=ids["<pad>"])
    config = Gemma3Config(vision_config=vision, text_config=text, mm_tokens_per_image=4,
                          boi_token_index=ids["<start_of_image>"], eoi_token_index=ids["<end_of_image>"],
                          image_token_index=ids["<image_soft_token>"])
    image_proc = Gemma3ImageProcessor(size={"height": 56, "width": 56})
    processor = Gemma3Processor(image_processor=image_proc, tokenizer=tok, image_seq_length=4,
                                chat_template=_GEMMA_TEMPLATE)
    return Gemma3ForConditionalGeneration, config, processor


def _build_glm4v(max_pos: int):
    from transformers import (
        Glm4vConfig,
        Glm4vForConditionalGeneration,
        Glm4vImageProcessor,
        Glm4vProcessor,
        Glm4vVideoProcessor,
    )

    tok = _tokenizer(_GLM_SPECIAL, eos="<|user|>", pad="<|endoftext|>", bos=None)
    ids = _ids(tok, _GLM_SPECIAL)
    # GLM-4.1V rotates half of each head (partial_rotary_factor 0.5): sections sum to head_dim / 4
    text = dict(_TEXT, vocab_size=len(tok), max_position_embeddings=max_pos,
                rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "partial_rotary_factor": 0.5,
                                 "rope_theta": 10000.0},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|user|>"], pad_token_id=ids["<|endoftext|>"])
    text.pop("head_dim")
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, image_size=28, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=_TEXT_WIDTH)
    config = Glm4vConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image|>"],
                         video_token_id=ids["<|video|>"], image_start_token_id=ids["<|begin_of_image|>"],
                         image_end_token_id=ids["<|end_of_image|>"], video_start_token_id=ids["<|begin_of_video|>"],
                         video_end_token_id=ids["<|end_of_video|>"])
    pixels = {"shortest_edge": 28 * 28, "longest_edge": 56 * 56}
    image_proc = Glm4vImageProcessor(size=pixels, patch_size=14, merge_size=2, temporal_patch_size=2)
    video_proc = Glm4vVideoProcessor(size=pixels, max_image_size={"longest_edge": 56 * 56 * 8}, patch_size=14,
                                     merge_size=2, temporal_patch_size=2, do_sample_frames=False)
    processor = Glm4vProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                               chat_template=_GLM_TEMPLATE)
    return Glm4vForConditionalGeneration, config, processor


def _build_llava_next(max_pos: int):
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tok = _tokenizer(_VICUNA_SPECIAL, eos="</s>", pad="<pad>", bos="<s>", extra={"unk_token": "<unk>"})
    ids = _ids(tok, _VICUNA_SPECIAL)
    text = dict(_llama(len(tok), ids, max_pos), **_TEXT)
    config = LlavaNextConfig(vision_config=_clip(), text_config=text, image_token_index=ids["<image>"],
                             image_grid_pinpoints=[[28, 28]], vision_feature_select_strategy="default",
                             vision_feature_layer=-2, image_seq_length=4)
    image_proc = LlavaNextImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28},
                                         image_grid_pinpoints=[[28, 28]])
    processor = LlavaNextProcessor(image_processor=image_proc, tokenizer=tok, patch_size=14,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=_VICUNA_TEMPLATE)
    return LlavaNextForConditionalGeneration, config, processor


_CURRENT_BUILDERS = {
    "qwen3_vl": lambda mp: _build_qwen3("qwen3_vl", mp),
    "qwen3_vl_moe": lambda mp: _build_qwen3("qwen3_vl_moe", mp),
    "internvl": _build_internvl,
    "smolvlm": _build_smolvlm,
    "gemma3": _build_gemma3,
    "glm4v": _build_glm4v,
    "llava_next": _build_llava_next,
}


# ------------------------------------------------------------------------------------------------ API


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
    elif family in _CURRENT_BUILDERS:
        model_cls, config, processor = _CURRENT_BUILDERS[family](max_position_embeddings)
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


def build_cached(outdir: Path, build) -> Path:
    """``build()`` under a lock beside ``outdir`` in the shared cache, so that processes building the
    same model at once (parallel test workers, concurrent jobs) never write or replace one another's
    folder; the second one waits, then reuses the folder the first one built."""
    from vidcap.io.locks import FileLock

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
