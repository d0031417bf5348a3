"""Tiny builds of current model families for the generic AutoProcessor / chat-template path, all with text
head_dim 32: Qwen3-VL dense and MoE, InternVL3, SmolVLM2, Gemma 3, GLM-4.1V and LLaVA-NeXT 1.6.
``CURRENT_BUILDERS``: family -> ``build(max_pos)`` giving (model class, config, processor).
"""
from __future__ import annotations

from typing import Any

from vidcap.dev.tiny.llava import clip_vision, llama_text
from vidcap.dev.tiny.tokenizer import (
    QWEN_SPECIAL,
    QWEN_TEMPLATE,
    VICUNA_SPECIAL,
    VICUNA_TEMPLATE,
    bpe_tokenizer,
    token_ids,
)

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
    # heavy: transformers, only when a model or processor is built
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    tok = bpe_tokenizer(QWEN_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>", bos=None)
    ids = token_ids(tok, QWEN_SPECIAL)
    text = dict(_TEXT, vocab_size=len(tok), max_position_embeddings=max_pos,
                rope_parameters={"rope_type": "default", "mrope_section": [4, 6, 6], "mrope_interleaved": True,
                                 "rope_theta": 5000000.0},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    Config: Any    # the family's config and model classes (imported below, per family)
    Model: Any
    if family == "qwen3_vl_moe":
        # heavy: transformers, only when a model or processor is built
        from transformers import Qwen3VLMoeConfig as Config
        from transformers import Qwen3VLMoeForConditionalGeneration as Model

        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64, decoder_sparse_step=1)
    else:
        # heavy: transformers, only when a model or processor is built
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
                                 chat_template=QWEN_TEMPLATE)
    return Model, config, processor


def _build_internvl(max_pos: int):
    # heavy: transformers, only when a model or processor is built
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
        InternVLVisionConfig,
    )

    tok = bpe_tokenizer(_INTERNVL_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>", bos=None,
                     extra={"extra_special_tokens": {"start_image_token": "<img>", "end_image_token": "</img>",
                                                     "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}})
    ids = token_ids(tok, _INTERNVL_SPECIAL)
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
    # heavy: transformers, only when a model or processor is built
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
        SmolVLMVisionConfig,
    )

    tok = bpe_tokenizer(_SMOLVLM_SPECIAL, eos="<end_of_utterance>", pad="<|endoftext|>", bos="<|im_start|>",
                     extra={"extra_special_tokens": {"fake_image_token": "<fake_token_around_image>",
                                                     "image_token": "<image>", "global_image_token": "<global-img>",
                                                     "end_of_utterance_token": "<end_of_utterance>",
                                                     "video_token": "<video>"}})
    ids = token_ids(tok, _SMOLVLM_SPECIAL)
    # 32 px images of 8 px patches: 4 x 4 patches, pixel-shuffled by 2 -> 4 tokens an image
    vision = SmolVLMVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                 image_size=32, patch_size=8)
    text = dict(_TEXT, model_type="llama", vocab_size=len(tok), max_position_embeddings=max_pos,
                bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<end_of_utterance>"],
                pad_token_id=ids["<|endoftext|>"])
    config = SmolVLMConfig(vision_config=vision, text_config=text, image_token_id=ids["<image>"], scale_factor=2)
    sizes: dict[str, Any] = dict(size={"longest_edge": 64}, max_image_size={"longest_edge": 32})
    image_proc = SmolVLMImageProcessor(do_image_splitting=True, **sizes)
    video_proc = SmolVLMVideoProcessor(do_sample_frames=False, **sizes)
    processor = SmolVLMProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                                 image_seq_len=4, chat_template=_SMOLVLM_TEMPLATE)
    return SmolVLMForConditionalGeneration, config, processor


def _build_gemma3(max_pos: int):
    # heavy: transformers, only when a model or processor is built
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
        SiglipVisionConfig,
    )

    tok = bpe_tokenizer(_GEMMA_SPECIAL, eos="<end_of_turn>", pad="<pad>", bos="<bos>",
                     extra={"extra_special_tokens": {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                                                     "image_token": "<image_soft_token>"}})
    ids = token_ids(tok, _GEMMA_SPECIAL)
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
    # heavy: transformers, only when a model or processor is built
    from transformers import (
        Glm4vConfig,
        Glm4vForConditionalGeneration,
        Glm4vImageProcessor,
        Glm4vProcessor,
        Glm4vVideoProcessor,
    )

    tok = bpe_tokenizer(_GLM_SPECIAL, eos="<|user|>", pad="<|endoftext|>", bos=None)
    ids = token_ids(tok, _GLM_SPECIAL)
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
    # transformers types __init__ with the base ImagesKwargs; Glm4v's valid_kwargs take these keys
    image_proc = Glm4vImageProcessor(size=pixels, patch_size=14, merge_size=2,  # type: ignore[call-arg]
                                     temporal_patch_size=2)
    video_proc = Glm4vVideoProcessor(size=pixels, max_image_size={"longest_edge": 56 * 56 * 8}, patch_size=14,
                                     merge_size=2, temporal_patch_size=2, do_sample_frames=False)
    processor = Glm4vProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                               chat_template=_GLM_TEMPLATE)
    return Glm4vForConditionalGeneration, config, processor


def _build_llava_next(max_pos: int):
    # heavy: transformers, only when a model or processor is built
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tok = bpe_tokenizer(VICUNA_SPECIAL, eos="</s>", pad="<pad>", bos="<s>", extra={"unk_token": "<unk>"})
    ids = token_ids(tok, VICUNA_SPECIAL)
    text = dict(llama_text(len(tok), ids, max_pos), **_TEXT)
    config = LlavaNextConfig(vision_config=clip_vision(), text_config=text, image_token_index=ids["<image>"],
                             image_grid_pinpoints=[[28, 28]], vision_feature_select_strategy="default",
                             vision_feature_layer=-2, image_seq_length=4)
    image_proc = LlavaNextImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28},
                                         image_grid_pinpoints=[[28, 28]])
    processor = LlavaNextProcessor(image_processor=image_proc, tokenizer=tok, patch_size=14,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=VICUNA_TEMPLATE)
    return LlavaNextForConditionalGeneration, config, processor


CURRENT_BUILDERS = {
    "qwen3_vl": lambda mp: _build_qwen3("qwen3_vl", mp),
    "qwen3_vl_moe": lambda mp: _build_qwen3("qwen3_vl_moe", mp),
    "internvl": _build_internvl,
    "smolvlm": _build_smolvlm,
    "gemma3": _build_gemma3,
    "glm4v": _build_glm4v,
    "llava_next": _build_llava_next,
}
