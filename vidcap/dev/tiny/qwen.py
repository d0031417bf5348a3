"""Tiny Qwen2-VL and Qwen2.5-VL (``tiny``, ``engine`` and the config-only ``7b``): (model class, config,
processor) for ``vidcap.dev.tiny.build_tiny_model``.
"""
from __future__ import annotations

from typing import Any

from vidcap.dev.tiny.tokenizer import QWEN_SPECIAL, QWEN_TEMPLATE, bpe_tokenizer, token_ids


def build_qwen(family: str, max_pos: int, size: str):
    # heavy: transformers, only when a model or processor is built
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    tok = bpe_tokenizer(QWEN_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>", bos=None)
    ids = token_ids(tok, QWEN_SPECIAL)
    vocab = len(tok)
    Config: Any    # the family's config, model and processor classes (imported below, per family)
    Model: Any
    Processor: Any
    if family == "qwen2_5_vl":
        # heavy: transformers, only when a model or processor is built
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLForConditionalGeneration as Model
        from transformers import Qwen2_5_VLProcessor as Processor
    else:
        # heavy: transformers, only when a model or processor is built
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
                              chat_template=QWEN_TEMPLATE)
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
                          chat_template=QWEN_TEMPLATE)
    return Model, config, processor
