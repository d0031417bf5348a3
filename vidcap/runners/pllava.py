"""PLLaVA in the caption stage: ``PllavaRunner`` (runner ``pllava``), Open-Sora's PLLaVA-13B captioner.

Model, processor and the released checkpoint layout are ``vidcap.models.pllava*``'s (``docs/pllava.md``);
GPU slot, batching window, background encoding, OOM split and row-by-row retry are ``LocalRunner``'s.
This module says how PLLaVA loads, what each row is asked and how a batch with mixed limits is cut.

* ``load()``: GPU slot; config (``load_config``: ``num_frames``, ``pooling_shape``) and processor from
  ``repo_id`` (default ``weight_dir``); the context preflight; then the weights of ``weight_dir``
  (``load_weights``: released key layout mapped key by key, LoRA merged). ``RunnerFatal`` for no
  ``weight_dir``, a prompt kind other than ``video``, a checkpoint problem, or a request that cannot fit.
* Context preflight, before the weights load: visual tokens (``visual_token_count`` = T*H*W of the pooling
  shape: 576 for 4-12-12, 2304 for 16-12-12) + the rendered prompt's text tokens + the row's token limit,
  for each caption length rows can get, must fit ``max_position_embeddings``; else ``RunnerFatal`` with
  the numbers. (Frame size does not matter: every frame becomes 24 x 24 patches pooled to H x W.)
* Frames: ``self.frames`` = the segment policy, ``num_frames`` (4 or 16) frames, short side 672; the caption
  stage decodes with these (``CaptionStage.setup`` reads them after ``load``). An image (one frame) is
  repeated to ``num_frames`` by the processor, as PLLaVA does; a clip with fewer frames than asked (the
  sampler never repeats one) is stretched in time by the processor (``stretch_positions``).
* Prompts: each row's from its ``row_id`` alone (``pllava_prompt(row_id, template, short_caption_ratio)``):
  ``template`` general | person, long (256 tokens) or short (128; ``max_new_tokens`` sets other limits per
  length). The stage's ``prompt`` is not used.
  ``Generation.extra`` records it: ``prompt`` (``pllava:<template>:<length>``, the stage's
  ``caption_prompt``), ``prompt_hash``, ``prompt_template``, ``caption_length``, ``max_new_tokens``.
* Generation: greedy unless ``generation.temperature`` > 0; a batch generates up to its largest row limit
  and each row is cut at its own (``cut_output``: under greedy decoding equal to generating it alone);
  ``generation.max_new_tokens`` is not used (the limit is the row's length), ``min_new_tokens`` is capped
  at it. Rows of one length batch together first (``size_key``). Newlines become spaces (as Open-Sora).

Settings (the stage's ``pllava`` block plus ``generation``, ``batch_size``, ``prompt_kind``):
``weight_dir``, ``repo_id``, ``revision``, ``num_frames``, ``pooling_shape`` ("T-H-W"), ``lora_alpha``,
``dtype`` (``auto`` = bfloat16 on GPU, float32 on CPU), ``attn_implementation``, ``template``,
``short_caption_ratio``, ``max_new_tokens`` (``{long: 256, short: 128}``).
"""
from __future__ import annotations

import logging
import time

from vidcap.errors import RunnerFatal
from vidcap.models.pllava_prompts import lengths_in_use, pllava_prompt, prompt_for
from vidcap.runners.base import Generation, Request
from vidcap.runners.local import LocalRunner

log = logging.getLogger("vidcap.runners.pllava")

FRAME_POLICY = "segment"   # PLLaVA's get_index: segment centres
RESIZE_SHORT = 672         # Open-Sora resizes the short side to 672 before the processor


class PllavaRunner(LocalRunner):
    name = "pllava"

    def __init__(self, settings: dict):
        super().__init__(settings)
        self.weight_dir = str(self.settings.get("weight_dir") or "")
        self.repo_id = str(self.settings.get("repo_id") or self.weight_dir)
        self.settings["model"] = self.weight_dir   # provenance: caption_model
        self.template = self.settings.get("template") or "general"
        self.short_caption_ratio = float(self.settings.get("short_caption_ratio") or 0.0)
        self.num_frames = int(self.settings.get("num_frames") or 4)
        self.limits = dict(self.settings.get("max_new_tokens") or {})   # per length; default 256 / 128
        self.frames = {"num_frames": self.num_frames, "policy": FRAME_POLICY, "resize_short": RESIZE_SHORT}
        self.fit_report: dict = {}

    # ----------------------------------------------------------------------------------- loading

    def hub_kwargs(self) -> dict:
        return {"revision": self.settings["revision"]} if self.settings.get("revision") else {}

    def load(self) -> None:
        if not self.weight_dir:
            raise RunnerFatal("pllava runner: no weights: set stages.caption.pllava.weight_dir to the folder of a "
                              "released PLLaVA checkpoint (e.g. a local copy of ermu2001/pllava-13b)")
        kind = self.settings.get("prompt_kind", "video")
        if kind != "video":
            raise RunnerFatal(f"pllava runner: it captions clips with its own prompts (stages.caption.pllava.template);"
                              f" stages.caption.prompt must be a video prompt (the default), got kind {kind!r}")
        try:
            pllava_prompt("", self.template, self.short_caption_ratio, self.limits)
        except ValueError as exc:
            raise RunnerFatal(f"pllava runner: {exc}") from None
        super().load()

    def load_processor(self, model_id: str) -> None:
        # imports torch and transformers at its top: only when the model loads
        from vidcap.models.pllava_checkpoint import load_config, load_processor

        self.config = load_config(self.repo_id, num_frames=self.num_frames,
                                  pooling_shape=self.settings.get("pooling_shape"), **self.hub_kwargs())
        self.processor = load_processor(self.repo_id, self.config, **self.hub_kwargs())
        self.family = "pllava"

    def _load_model(self, model_id: str, kwargs: dict):
        # imports torch and transformers at its top: only when the model loads
        from vidcap.models.pllava_checkpoint import load_weights

        if kwargs.get("attn_implementation"):
            self.config._attn_implementation = kwargs["attn_implementation"]
        return load_weights(self.weight_dir, self.config, lora_alpha=float(self.settings.get("lora_alpha", 4.0)),
                            dtype=kwargs["dtype"], device=self.device)

    def check_context(self) -> None:
        """Visual (pooled) + prompt + the row limit, for each length in use, must fit the context."""
        # imports torch and transformers at its top: only when the model loads
        from vidcap.models.pllava import visual_token_count

        ctx = getattr(self.config.text_config, "max_position_embeddings", None)
        visual = visual_token_count(self.config)
        pooling = "-".join(map(str, self.config.pooling_shape))
        need = {}
        for length in lengths_in_use(self.short_caption_ratio):
            p = prompt_for(self.template, length, self.limits)
            total = self.processor.count_tokens(self.processor.prompt(p.system, p.user))
            need[length] = (total - visual, p.max_new_tokens, total + p.max_new_tokens)
        length, (text, new, worst) = max(need.items(), key=lambda kv: kv[1][2])
        self.fit_report = {"context": ctx, "needed": worst, "visual_tokens": visual, "pooling_shape": pooling,
                           "num_frames": self.num_frames, "text_tokens": text, "max_new_tokens": new,
                           "length": length}
        if not ctx:
            log.warning("PLLaVA config gives no max_position_embeddings; context fit not checked")
            return
        if worst > ctx:
            raise RunnerFatal(
                f"PLLaVA request does not fit the model's context: {visual} visual tokens (pooling {pooling} of "
                f"{self.num_frames} frames) + {text} prompt tokens + {new} new tokens ({self.template}, {length} "
                f"caption) = {worst} tokens > max_position_embeddings {ctx}. Lower stages.caption.pllava.num_frames "
                f"or pooling_shape, or give short captions (short_caption_ratio)")
        log.info("context check: %d visual (pooling %s) + %d prompt + %d new = %d tokens <= %d", visual, pooling,
                 text, new, worst, ctx)

    # -------------------------------------------------------------------------------- requests

    def row_prompt(self, req: Request):
        """The row's ``PllavaPrompt``: fixed by its id, template and ratio (same on every run and machine)."""

        return pllava_prompt(req.row_id, self.template, self.short_caption_ratio, self.limits)

    def prompt_description(self) -> str:
        """What the job log names as the prompt: PLLaVA's own, per row (the stage's ``prompt`` is unused)."""
        short = f"{100 * self.short_caption_ratio:g}% short" if self.short_caption_ratio else "all long"
        return f"pllava:{self.template} per row ({short}; stages.caption.prompt not used)"

    def size_key(self, req: Request) -> tuple:
        """Rows of one caption length batch together (the visual input is the same size for every row)."""
        return (self.row_prompt(req).length,)

    def encode(self, batch: list[Request]):
        texts, videos = [], []
        for req in batch:
            if req.frames is None:
                raise ValueError("the pllava runner captions frames; this request has none")
            p = self.row_prompt(req)
            texts.append(self.processor.prompt(p.system, p.user))
            videos.append(req.frames.frames)
        return self.processor(text=texts, videos=videos, stretch=True)

    def _generate(self, batch: list[Request], inputs) -> list[tuple[str, Generation]]:
        """Generate up to the batch's largest row limit; cut each row at its own (see the module docstring)."""
        # heavy: torch, only when a model runs
        import torch

        # imports torch and transformers at its top: only when the model loads
        from vidcap.models.pllava import cut_output

        prompts = [self.row_prompt(req) for req in batch]
        limit = max(p.max_new_tokens for p in prompts)
        inputs = inputs.to(self.model.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        if self._fault_oom > 0:
            self._fault_oom -= 1
            raise torch.OutOfMemoryError("injected out of memory (VIDCAP_FAULT_OOM)")
        gen_kw = {**self.gen_kwargs(), "max_new_tokens": limit}
        if "min_new_tokens" in gen_kw:
            gen_kw["min_new_tokens"] = min(int(gen_kw["min_new_tokens"]), limit)
        eos = self.eos_ids()
        t = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen_kw, eos_token_id=sorted(eos),
                                      pad_token_id=self.tokenizer.pad_token_id)
        self.stats["generate_s"] += time.perf_counter() - t
        self.stats["batches"] += 1
        new = out[:, inputs["input_ids"].shape[1]:].cpu().tolist()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        results = []
        for req, p, ids, n_prompt in zip(batch, prompts, new, prompt_tokens):
            kept, finish = cut_output(ids, p.max_new_tokens, eos)
            text = self._decoder.decode(kept, skip_special_tokens=True).replace("\n", " ").strip()
            self.stats["prompt_tokens"] += int(n_prompt)
            self.stats["output_tokens"] += len(kept)
            results.append((req.row_id, Generation(text=text, finish_reason=finish, output_tokens=len(kept),
                                                    prompt_tokens=int(n_prompt), extra=dict(p.provenance))))
        return results
