"""In-process Hugging Face text-only chat models: ``TextTransformersRunner`` (runner ``text_transformers``).

Reads like the model cards of Qwen2.5-Instruct / Llama-3-Instruct: ``AutoTokenizer`` (its chat template
renders system + user messages) and ``AutoModelForCausalLM``; batches are left-padded and greedy unless
``generation.temperature`` > 0. Requests carry no frames (``Request.frames`` is None).

Batching, out-of-memory splitting, per-row isolation of failures, ``finish_reason`` and the generation
settings are those of ``vidcap.runners.hf.TransformersRunner`` (this class only replaces how the model
loads and how a batch is encoded). Settings: ``model`` (hub id or folder), ``revision``, ``dtype``
(``auto`` = bfloat16 on GPU, float32 on CPU), ``attn_implementation``, ``device_map``,
``trust_remote_code``, ``generation``, ``batch_size``. A job takes a GPU slot the same way as the caption
stage (``vidcap.gpu.acquire_gpus``; ``resources.gpu`` of the stage).
"""
from __future__ import annotations

import logging

from vidcap.runners.base import Generation, Request
from vidcap.errors import RunnerFatal
from vidcap.runners.hf import TransformersRunner

log = logging.getLogger("vidcap.runners.hf_text")


class TextTransformersRunner(TransformersRunner):
    name = "text_transformers"

    def load(self) -> None:
        from vidcap.gpu import acquire_gpus

        acquire_gpus()
        from transformers import AutoConfig, AutoTokenizer

        model_id = self.settings.get("model")
        if not model_id:
            raise RunnerFatal("text_transformers runner: no model given (transformers.model)")
        try:
            self.config = AutoConfig.from_pretrained(model_id, **self._hub_kwargs())
            tok = AutoTokenizer.from_pretrained(model_id, **self._hub_kwargs())
        except (OSError, ValueError) as exc:
            raise RunnerFatal(f"cannot load model config/tokenizer {model_id!r}: {exc}") from None
        if not getattr(tok, "chat_template", None):
            raise RunnerFatal(f"{model_id!r}: the tokenizer has no chat template (use an instruct/chat model)")
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.processor = tok   # the base class's helpers read the tokenizer from ``processor``
        self.family = getattr(self.config, "model_type", "")
        self.load_weights(model_id)

    def _load_model(self, model_id: str, kwargs: dict):
        from transformers import AutoModelForCausalLM

        try:
            return AutoModelForCausalLM.from_pretrained(model_id, **kwargs)
        except (OSError, ValueError) as exc:
            raise RunnerFatal(f"cannot load model {model_id!r}: {exc}") from None

    def check_context(self) -> None:  # text rows are checked by length per batch, not up front
        return

    def prompt_text(self, req: Request) -> str:
        messages = []
        if req.system:
            messages.append({"role": "system", "content": req.system})
        messages.append({"role": "user", "content": req.user})
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _generate(self, batch: list[Request]) -> list[tuple[str, Generation]]:
        import torch

        tok = self.processor
        texts = [self.prompt_text(req) for req in batch]
        # the chat template already holds any BOS token: no second one
        inputs = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        if self._fault_oom > 0:
            self._fault_oom -= 1
            raise torch.OutOfMemoryError("injected out of memory (VIDCAP_FAULT_OOM)")
        gen_kw = self._gen_kwargs()
        ctx = getattr(self.config, "max_position_embeddings", None)
        if ctx and inputs["input_ids"].shape[1] + gen_kw["max_new_tokens"] > int(ctx):
            raise ValueError(f"prompt of {inputs['input_ids'].shape[1]} tokens + max_new_tokens "
                             f"{gen_kw['max_new_tokens']} exceeds the model's context {ctx}")
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen_kw, pad_token_id=tok.pad_token_id)
        prompt_len = inputs["input_ids"].shape[1]
        new = out[:, prompt_len:].cpu()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        eos = self._eos_ids()
        results = []
        for i, req in enumerate(batch):
            ids = new[i].tolist()
            stop = next((j for j, t in enumerate(ids) if t in eos), None)
            kept = ids if stop is None else ids[:stop]
            finish = "stop" if stop is not None else ("length" if len(ids) >= gen_kw["max_new_tokens"] else "stop")
            results.append((req.row_id, Generation(text=tok.decode(kept, skip_special_tokens=True),
                                                    finish_reason=finish, output_tokens=len(kept),
                                                    prompt_tokens=int(prompt_tokens[i]))))
        return results
