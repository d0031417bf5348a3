"""Tiny LLaVA-1.5, LLaVA-NeXT-Video and LLaVA-OneVision: (model class, config, processor) for
``vidcap.dev.tiny.build_tiny_model``; ``clip_vision`` and ``llama_text`` are the small towers they share.
"""
from __future__ import annotations

from vidcap.dev.tiny.tokenizer import VICUNA_SPECIAL, VICUNA_TEMPLATE, bpe_tokenizer, token_ids

_ONEVISION_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n"
    "{% elif c['type'] == 'video' %}<video>\n{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


_ONEVISION_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]


def clip_vision(size=28, hidden=32):
    # heavy: transformers, only when a model or processor is built
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=hidden, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                            image_size=size, patch_size=14, projection_dim=hidden)


def llama_text(vocab, ids, max_pos):
    return dict(model_type="llama", vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_pos,
                bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"])


def build_llava(max_pos: int):
    # heavy: transformers, only when a model or processor is built
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tok = bpe_tokenizer(VICUNA_SPECIAL, eos="</s>", pad="<pad>", bos="<s>", extra={"unk_token": "<unk>"})
    ids = token_ids(tok, VICUNA_SPECIAL)
    config = LlavaConfig(vision_config=clip_vision(), text_config=llama_text(len(tok), ids, max_pos),
                         image_token_index=ids["<image>"], image_seq_length=4,
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    image_proc = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=image_proc, tokenizer=tok, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=VICUNA_TEMPLATE)
    return LlavaForConditionalGeneration, config, processor


def build_llava_next_video(max_pos: int):
    # heavy: transformers, only when a model or processor is built
    from transformers import (
        LlavaNextImageProcessor,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

    tok = bpe_tokenizer(VICUNA_SPECIAL, eos="</s>", pad="<pad>", bos="<s>", extra={"unk_token": "<unk>"})
    ids = token_ids(tok, VICUNA_SPECIAL)
    config = LlavaNextVideoConfig(vision_config=clip_vision(), text_config=llama_text(len(tok), ids, max_pos),
                                  image_token_index=ids["<image>"], video_token_index=ids["<video>"],
                                  image_grid_pinpoints=[[28, 28]], spatial_pool_stride=2,
                                  vision_feature_select_strategy="default", vision_feature_layer=-2,
                                  image_seq_length=4, video_seq_length=1)
    image_proc = LlavaNextImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28},
                                         image_grid_pinpoints=[[28, 28]])
    video_proc = LlavaNextVideoVideoProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaNextVideoProcessor(video_processor=video_proc, image_processor=image_proc, tokenizer=tok,
                                        patch_size=14, vision_feature_select_strategy="default",
                                        num_additional_image_tokens=1, chat_template=VICUNA_TEMPLATE)
    return LlavaNextVideoForConditionalGeneration, config, processor


def build_llava_onevision(max_pos: int):
    # heavy: transformers, only when a model or processor is built
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        SiglipVisionConfig,
    )

    tok = bpe_tokenizer(_ONEVISION_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>", bos=None)
    ids = token_ids(tok, _ONEVISION_SPECIAL)
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
