"""In-process Hugging Face text-only chat models: ``TextTransformersRunner`` (runner ``text_transformers``).

Reads like the model cards of Qwen2.5-Instruct / Llama-3-Instruct: ``AutoTokenizer`` (its chat template
renders system + user messages) and ``AutoModelForCausalLM``. Batching, background encoding, generation,
OOM splitting and decoding are ``vidcap.runners.local.LocalRunner``'s. Requests carry no frames.
Settings: ``model`` (hub id or folder), ``revision``, ``dtype``, ``attn_implementation``, ``device_map``,
``trust_remote_code``, ``generation``, ``batch_size``. A prompt longer than the model's context fails its
row (checked per batch).
"""
from __future__ import annotations

from vidcap.errors import RunnerFatal
from vidcap.runners.base import Request
from vidcap.runners.local import LocalRunner


class TextTransformersRunner(LocalRunner):
    name = "text_transformers"

    def load_processor(self, model_id: str) -> None:
        # heavy: transformers, only when a model or processor is built
        from transformers import AutoConfig, AutoTokenizer

        self.config = AutoConfig.from_pretrained(model_id, **self.hub_kwargs())
        self.processor = AutoTokenizer.from_pretrained(model_id, **self.hub_kwargs())
        if not getattr(self.processor, "chat_template", None):
            raise RunnerFatal(f"{model_id!r}: the tokenizer has no chat template (use an instruct/chat model)")
        self.family = getattr(self.config, "model_type", "")

    def _load_model(self, model_id: str, kwargs: dict):
        # heavy: transformers, only when a model or processor is built
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model_id, **kwargs)

    def encode(self, batch: list[Request]):
        texts = []
        for req in batch:
            messages = [{"role": "system", "content": req.system}] if req.system else []
            messages.append({"role": "user", "content": req.user})
            texts.append(self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        # the chat template already holds any BOS token: no second one
        inputs = self.processor(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        ctx = getattr(self.config, "max_position_embeddings", None)
        max_new = self.gen_kwargs()["max_new_tokens"]
        if ctx and inputs["input_ids"].shape[1] + max_new > int(ctx):
            raise ValueError(f"prompt of {inputs['input_ids'].shape[1]} tokens + max_new_tokens {max_new} "
                             f"exceeds the model's context {ctx}")
        return inputs
