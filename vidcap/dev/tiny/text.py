"""Tiny text-only chat models (Qwen2, Llama 3; ``AutoModelForCausalLM`` + ``AutoTokenizer``) for the tags
stage's local runner: (model class, config, tokenizer) for ``vidcap.dev.tiny.build_tiny_model``.
"""
from __future__ import annotations

from typing import Any

from vidcap.dev.tiny.tokenizer import QWEN_SPECIAL, QWEN_TEMPLATE, bpe_tokenizer, token_ids

_LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
_LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eot_id|>", "<|finetune_right_pad_id|>"]


def build_text(family: str, max_pos: int):
    """A text-only chat model: (model class, config, tokenizer with the family's chat template)."""
    Config: Any    # the family's config and model classes (imported below, per family)
    Model: Any
    if family == "qwen2":
        # heavy: transformers, only when a model or processor is built
        from transformers import Qwen2Config as Config
        from transformers import Qwen2ForCausalLM as Model

        tok = bpe_tokenizer(QWEN_SPECIAL[:3], eos="<|im_end|>", pad="<|endoftext|>", bos=None)
        tok.chat_template = QWEN_TEMPLATE
        ids = token_ids(tok, QWEN_SPECIAL[:3])
        bos, eos, pad = ids["<|endoftext|>"], ids["<|im_end|>"], ids["<|endoftext|>"]
    else:
        # heavy: transformers, only when a model or processor is built
        from transformers import LlamaConfig as Config
        from transformers import LlamaForCausalLM as Model

        tok = bpe_tokenizer(_LLAMA3_SPECIAL, eos="<|eot_id|>", pad="<|finetune_right_pad_id|>",
                         bos="<|begin_of_text|>")
        tok.chat_template = _LLAMA3_TEMPLATE
        ids = token_ids(tok, _LLAMA3_SPECIAL)
        bos, eos, pad = ids["<|begin_of_text|>"], ids["<|eot_id|>"], ids["<|finetune_right_pad_id|>"]
    config = Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_pos,
                    bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    return Model, config, tok
