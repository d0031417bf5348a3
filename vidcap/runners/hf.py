"""In-process Hugging Face vision-language models: ``TransformersRunner``.

Reads like the model cards: ``AutoProcessor`` + ``AutoModelForImageTextToText``, the chat template
renders the messages, the processor gets the decoded frames (arrays, never paths: transformers must
not decode videos itself), ``generate`` with left padding.

Families (detected from the model config's ``model_type``, never from the name): ``FAMILIES``.
Qwen2-VL / Qwen2.5-VL, LLaVA-NeXT-Video and LLaVA-OneVision get a video input; LLaVA 1.5 / 1.6
(``llava``, ``llava_next``) get the frames as several images. An image row is one image everywhere.

Settings (the stage's ``transformers`` block plus ``generation``, ``frames``, ``batch_size``):
``model`` (hub id or folder), ``revision``, ``dtype`` (``auto`` = bfloat16 on GPU, float32 on CPU),
``attn_implementation``, ``device_map``, ``trust_remote_code``, ``fit_context`` (fail | reduce).

Contracts:
* Context check before the weights load (config + processor only): visual + prompt + max_new_tokens
  tokens must fit ``max_position_embeddings``; ``fail`` raises ``RunnerFatal`` with the numbers,
  ``reduce`` lowers frames, then resolution, until it fits and logs it (``self.frames`` holds the
  frame settings to decode with).
* Batches are grouped by size (same visual shape, similar prompt length) from a window of pending
  requests; left padding; greedy unless temperature > 0.
* ``torch.OutOfMemoryError``: empty the cache, split the batch in halves, retry recursively; a single
  row that still fails gets the error. Any other batch error is retried row by row. No row is lost.
* ``finish_reason`` = ``length`` when max_new_tokens tokens came without EOS, else ``stop``.
* Fault injection: ``VIDCAP_FAULT_OOM=N`` makes the first N generate calls raise OutOfMemoryError.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator

import numpy as np

from vidcap.runners.base import Generation, Request, Runner
from vidcap.errors import RunnerFatal

log = logging.getLogger("vidcap.runners.hf")

VIDEO_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava_next_video", "llava_onevision")
IMAGE_FAMILIES = ("llava", "llava_next")
FAMILIES = VIDEO_FAMILIES + IMAGE_FAMILIES
WINDOW_BATCHES = 4          # pending requests looked at when forming a batch: WINDOW_BATCHES * batch_size
MIN_SIDE = 28               # reduce: resolution never goes below this (one 2x2 group of 14 px patches)
ASSUMED_ASPECT = 16 / 9     # context check: frames are assumed this wide (worst common case)
ASSUMED_SHORT = 720         # ... and this tall when frames are not resized


def detect_family(config) -> str:
    """The family of a loaded ``PretrainedConfig`` (its ``model_type``); RunnerFatal when unsupported."""
    mt = getattr(config, "model_type", "")
    if mt in FAMILIES:
        return mt
    raise RunnerFatal(f"model type {mt!r} is not supported by the transformers runner; "
                      f"supported: {', '.join(FAMILIES)}")


def context_length(config) -> int | None:
    text = getattr(config, "text_config", None)
    for c in (text, config):
        v = getattr(c, "max_position_embeddings", None) if c is not None else None
        if v:
            return int(v)
    return None


class TransformersRunner(Runner):
    name = "transformers"

    def __init__(self, settings: dict):
        super().__init__(settings)
        self.generation = dict(self.settings.get("generation") or {})
        self.frames = dict(self.settings.get("frames") or {})
        self.batch_size = max(1, int(self.settings.get("batch_size", 8)))
        self.model = self.processor = self.config = None
        self.family = ""
        self.device = "cpu"
        self._fault_oom = int(os.environ.get("VIDCAP_FAULT_OOM", "0") or 0)
        self.fit_report: dict = {}

    # ------------------------------------------------------------------------------------- loading

    def _hub_kwargs(self) -> dict:
        kw = {"trust_remote_code": bool(self.settings.get("trust_remote_code", False))}
        if self.settings.get("revision"):
            kw["revision"] = self.settings["revision"]
        return kw

    def load(self) -> None:
        """Pick the device (GPU slot), check the context fit from config + processor, load weights."""
        from vidcap.gpu import acquire_gpus

        acquire_gpus()
        import torch
        from transformers import AutoConfig, AutoProcessor

        model_id = self.settings.get("model")
        if not model_id:
            raise RunnerFatal("transformers runner: no model given (stages.caption.transformers.model)")
        try:
            self.config = AutoConfig.from_pretrained(model_id, **self._hub_kwargs())
            self.processor = AutoProcessor.from_pretrained(model_id, **self._hub_kwargs())
        except (OSError, ValueError) as exc:
            raise RunnerFatal(f"cannot load model config/processor {model_id!r}: {exc}") from None
        self.family = detect_family(self.config)
        tok = getattr(self.processor, "tokenizer", self.processor)
        tok.padding_side = "left"
        self.check_context()
        self.load_weights(model_id)

    def load_weights(self, model_id: str) -> None:
        """Weights via ``_load_model`` with the configured dtype (auto: bf16 on GPU, fp32 on CPU),
        attention kernel and device map, in eval mode, on the GPU unless a device map places them."""
        import torch

        cuda = torch.cuda.is_available()
        self.device = "cuda" if cuda else "cpu"
        dtype = self.settings.get("dtype", "auto") or "auto"
        torch_dtype = (torch.bfloat16 if cuda else torch.float32) if dtype == "auto" else getattr(torch, dtype)
        kwargs = dict(self._hub_kwargs(), dtype=torch_dtype)
        if self.settings.get("attn_implementation"):
            kwargs["attn_implementation"] = self.settings["attn_implementation"]
        if self.settings.get("device_map"):
            kwargs["device_map"] = self.settings["device_map"]
        self.model = self._load_model(model_id, kwargs)
        if not self.settings.get("device_map"):
            self.model.to(self.device)
        self.model.eval()
        if self.generation.get("seed") is not None:
            from transformers import set_seed

            set_seed(int(self.generation["seed"]))
        log.info("loaded %s (%s) on %s, dtype %s, attention %s", model_id, self.family, self.device,
                 torch_dtype, kwargs.get("attn_implementation", "default"))

    def _load_model(self, model_id: str, kwargs: dict):
        """The weights (``from_pretrained``); benchmarks override this to use random weights."""
        from transformers import AutoModelForImageTextToText

        try:
            return AutoModelForImageTextToText.from_pretrained(model_id, **kwargs)
        except (OSError, ValueError) as exc:
            raise RunnerFatal(f"cannot load model {model_id!r}: {exc}") from None

    def provenance(self) -> dict:
        rev = self.settings.get("revision") or ""
        if not rev and self.config is not None:
            rev = getattr(self.config, "_commit_hash", None) or ""
        return {"model": self.settings.get("model", ""), "revision": rev}

    # ------------------------------------------------------------------------------ context check

    def _prompt_text(self, user: str, system: str, kind: str, n_frames: int) -> str:
        content = []
        if kind == "video" and self.family in VIDEO_FAMILIES:
            content.append({"type": "video"})
        elif kind == "video":
            content += [{"type": "image"}] * n_frames
        elif kind == "image":
            content.append({"type": "image"})
        content.append({"type": "text", "text": user})
        messages = []
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.append({"role": "user", "content": content})
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def count_prompt_tokens(self, n_frames: int, short: int | None, kind: str = "video",
                            user: str = "", system: str = "") -> int:
        """Tokens of one request (visual + text) for ``n_frames`` frames of an assumed 16:9 size."""
        s = int(short or ASSUMED_SHORT)
        h, w = s, max(s, int(round(s * ASSUMED_ASPECT)))
        frames = np.zeros((max(1, n_frames), h, w, 3), dtype=np.uint8)
        text = self._prompt_text(user, system, kind, n_frames)
        inputs = self._process([text], [(kind, frames, None)])
        return int(inputs["input_ids"].shape[1])

    def check_context(self) -> None:
        """Visual + prompt + max_new_tokens must fit the context: fail clearly or reduce (``fit_context``)."""
        ctx = context_length(self.config)
        if not ctx:
            log.warning("model config gives no max_position_embeddings; context fit not checked")
            return
        max_new = int(self.generation.get("max_new_tokens", 300))
        n = int(self.frames.get("num_frames", 4))
        if self.frames.get("policy") == "single":
            n = 1
        short = self.frames.get("resize_short")
        user = self.settings.get("prompt_user", "")
        system = self.settings.get("prompt_system", "")
        kind = self.settings.get("prompt_kind", "video")
        if kind == "text":
            return  # the text is the row's own; checked per row by the model's own limits
        need = self.count_prompt_tokens(n, short, kind, user, system) + max_new
        self.fit_report = {"context": ctx, "needed": need, "num_frames": n, "resize_short": short,
                           "max_new_tokens": max_new}
        if need <= ctx:
            log.info("context check: %d frames at short side %s: %d tokens (incl. %d new) <= %d", n,
                     short or "native", need, max_new, ctx)
            return
        mode = self.settings.get("fit_context", "fail")
        if mode != "reduce":
            raise RunnerFatal(
                f"request does not fit the model's context: {n} frames at short side "
                f"{short or 'native (assumed ' + str(ASSUMED_SHORT) + ')'} + prompt + max_new_tokens {max_new} "
                f"= {need} tokens > max_position_embeddings {ctx}. Lower frames.num_frames or "
                f"frames.resize_short or generation.max_new_tokens, or set transformers.fit_context: reduce")
        orig = (n, short, need)
        s = int(short or ASSUMED_SHORT)
        while need > ctx:
            if n > 1:
                n = max(1, n // 2)
            elif s > MIN_SIDE:
                s = max(MIN_SIDE, int(s * 0.75))
            else:
                raise RunnerFatal(f"request does not fit the model's context even at 1 frame of {s} px: "
                                  f"{need} tokens > {ctx}; lower generation.max_new_tokens")
            need = self.count_prompt_tokens(n, s, kind, user, system) + max_new
        new_short = s if (short or s != ASSUMED_SHORT) else short
        self.frames["num_frames"] = n
        self.frames["resize_short"] = new_short
        self.fit_report.update({"needed": need, "num_frames": n, "resize_short": new_short,
                                "reduced_from": {"num_frames": orig[0], "resize_short": orig[1], "needed": orig[2]}})
        log.warning("context check: reduced %d frames at short side %s (%d tokens) to %d frames at %s "
                    "(%d tokens) to fit max_position_embeddings %d", orig[0], orig[1] or "native", orig[2], n,
                    new_short or "native", need, ctx)

    # -------------------------------------------------------------------------------- processing

    def _request_kind(self, req: Request) -> str:
        if req.frames is None:
            return "text"
        if req.frames.media_type == "image":
            return "image"
        return "video"

    def _process(self, texts: list[str], visuals: list[tuple[str, np.ndarray | None, object]]):
        """Run the processor on a batch: ``visuals`` = (kind, frames array or None, Frames or None)."""
        images, videos, metas = [], [], []
        for kind, arr, fr in visuals:
            if kind == "image":
                images.append(arr[0])
            elif kind == "video" and self.family in VIDEO_FAMILIES:
                videos.append(arr)
                metas.append(_metadata(fr, arr))
            elif kind == "video":
                images.extend(list(arr))
        kw = {"text": texts, "padding": True, "return_tensors": "pt"}
        if images:
            kw["images"] = images
        if videos:
            kw["videos"] = videos
            if self.family in ("qwen2_vl", "qwen2_5_vl"):
                kw["video_metadata"] = metas
            kw["do_sample_frames"] = False
        return self.processor(**kw)

    def _size_key(self, req: Request) -> tuple:
        kind = self._request_kind(req)
        shape = tuple(req.frames.frames.shape) if req.frames is not None else ()
        chars = len(req.user) + len(req.system)
        return (kind, shape, chars // 64)

    def run(self, requests: Iterable[Request]) -> Iterator[tuple[str, Generation | BaseException]]:
        """Group requests by size into batches (from a window of pending ones), generate, yield each row."""
        it = iter(requests)
        window = self.batch_size * WINDOW_BATCHES
        pending: dict[tuple, list[Request]] = defaultdict(list)
        n_pending = 0
        exhausted = False
        while True:
            while not exhausted and n_pending < window:
                try:
                    req = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending[self._size_key(req)].append(req)
                n_pending += 1
                if len(pending[self._size_key(req)]) >= self.batch_size:
                    break  # a full batch of one size is ready: run it without waiting for more input
            if n_pending == 0:
                return
            key = max(pending, key=lambda k: len(pending[k]))
            if len(pending[key]) < self.batch_size and not exhausted and n_pending < window:
                continue
            group = pending[key][: self.batch_size]
            pending[key] = pending[key][self.batch_size:]
            if not pending[key]:
                del pending[key]
            n_pending -= len(group)
            if len(group) < self.batch_size:
                # input ended or the window is full without a full batch of one size: top up with
                # rows of other sizes (left padding handles it) rather than run small batches
                for k in list(pending):
                    while pending[k] and len(group) < self.batch_size:
                        group.append(pending[k].pop(0))
                        n_pending -= 1
                    if not pending[k]:
                        del pending[k]
            yield from self._run_batch(group)

    def _run_batch(self, batch: list[Request]) -> Iterator[tuple[str, Generation | BaseException]]:
        import torch

        try:
            results = self._generate(batch)
        except torch.OutOfMemoryError as exc:
            self._empty_cache()
            if len(batch) == 1:
                log.error("out of memory on a single row (%s): giving up on it", batch[0].row_id)
                yield batch[0].row_id, exc
                return
            half = len(batch) // 2
            log.warning("out of memory on a batch of %d rows: splitting into %d + %d and retrying",
                        len(batch), half, len(batch) - half)
            yield from self._run_batch(batch[:half])
            yield from self._run_batch(batch[half:])
            return
        except Exception as exc:  # noqa: BLE001 - isolate the failing row(s), never lose a row
            if len(batch) == 1:
                yield batch[0].row_id, exc
                return
            log.warning("batch of %d rows failed (%s: %s); retrying row by row", len(batch),
                        type(exc).__name__, exc)
            for req in batch:
                yield from self._run_batch([req])
            return
        yield from results

    def _empty_cache(self) -> None:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _gen_kwargs(self) -> dict:
        g = self.generation
        kw = {"max_new_tokens": int(g.get("max_new_tokens", 300))}
        if g.get("min_new_tokens"):
            kw["min_new_tokens"] = int(g["min_new_tokens"])
        temp = float(g.get("temperature") or 0)
        if temp > 0:
            kw.update(do_sample=True, temperature=temp)
            if g.get("top_p") is not None:
                kw["top_p"] = float(g["top_p"])
            if g.get("top_k") is not None:
                kw["top_k"] = int(g["top_k"])
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if g.get("repetition_penalty") is not None:
            kw["repetition_penalty"] = float(g["repetition_penalty"])
        return kw

    def _generate(self, batch: list[Request]) -> list[tuple[str, Generation]]:
        import torch

        texts, visuals = [], []
        for req in batch:
            kind = self._request_kind(req)
            arr = req.frames.frames if req.frames is not None else None
            n = 0 if arr is None else len(arr)
            texts.append(self._prompt_text(req.user, req.system, kind, n))
            visuals.append((kind, arr, req.frames))
        inputs = self._process(texts, visuals)
        inputs = inputs.to(self.model.device)
        dtype = getattr(self.model, "dtype", None)
        for k in ("pixel_values", "pixel_values_videos"):
            if k in inputs and dtype is not None and inputs[k].is_floating_point():
                inputs[k] = inputs[k].to(dtype)
        if self._fault_oom > 0:
            self._fault_oom -= 1
            raise torch.OutOfMemoryError("injected out of memory (VIDCAP_FAULT_OOM)")
        gen_kw = self._gen_kwargs()
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen_kw)
        prompt_len = inputs["input_ids"].shape[1]
        new = out[:, prompt_len:].cpu()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        eos = self._eos_ids()
        tok = getattr(self.processor, "tokenizer", self.processor)
        results = []
        for i, req in enumerate(batch):
            ids = new[i].tolist()
            stop = next((j for j, t in enumerate(ids) if t in eos), None)
            kept = ids if stop is None else ids[:stop]
            finish = "stop" if stop is not None else ("length" if len(ids) >= gen_kw["max_new_tokens"] else "stop")
            text = tok.decode(kept, skip_special_tokens=True)
            results.append((req.row_id, Generation(text=text, finish_reason=finish, output_tokens=len(kept),
                                                    prompt_tokens=int(prompt_tokens[i]))))
        return results

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (getattr(self.model, "generation_config", None), getattr(self.config, "text_config", None),
                    self.config):
            v = getattr(src, "eos_token_id", None) if src is not None else None
            if v is None:
                continue
            ids.update(v if isinstance(v, (list, tuple)) else [v])
        tok = getattr(self.processor, "tokenizer", self.processor)
        if getattr(tok, "eos_token_id", None) is not None:
            ids.add(tok.eos_token_id)
        return ids

    def close(self) -> None:
        self.model = None
        self._empty_cache()


def _metadata(frames, arr: np.ndarray):
    """VideoMetadata for the processor from our ``Frames`` (real fps and indices; no resampling)."""
    from transformers.video_utils import VideoMetadata

    if frames is None or not frames.fps:
        return VideoMetadata(total_num_frames=len(arr), fps=2.0, frames_indices=list(range(len(arr))),
                             height=arr.shape[1], width=arr.shape[2])
    return VideoMetadata(total_num_frames=frames.total_frames, fps=float(frames.fps),
                         frames_indices=list(frames.indices), height=arr.shape[1], width=arr.shape[2],
                         duration=frames.total_frames / frames.fps)
