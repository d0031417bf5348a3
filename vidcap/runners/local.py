"""In-process generation with Hugging Face models: the one base of every local-model runner.

``LocalRunner`` owns what every in-process model shares; subclasses say only how their model and
processor load and how a batch of requests becomes model inputs:

* ``load()``: GPU slot (``vidcap.gpu.acquire_gpus``), ``load_processor(model_id)`` (subclass: config,
  processor or tokenizer, family), ``check_context()`` (subclass, optional), then the weights with the
  configured dtype (``auto`` = bfloat16 on GPU, float32 on CPU), attention kernel and device map, in
  eval mode (``load_weights``; ``_load_model`` is the hook benchmarks override for random weights).
* ``run(requests)``: requests grouped into batches of one size (``size_key``) from a window of
  ``WINDOW_BATCHES * batch_size`` pending ones; each batch is encoded (``encode``: chat template +
  processor/tokenizer) in a background thread while the previous batch generates, so the model never
  waits for preprocessing; then ``generate`` with left padding, greedy unless temperature > 0.
* Failures: ``torch.OutOfMemoryError`` empties the cache, splits the batch in halves and retries
  recursively; any other batch error is retried row by row; a single row that still fails gets the
  error. No row is lost. ``finish_reason`` = ``length`` when ``max_new_tokens`` tokens came without
  EOS, else ``stop``.
* ``stats``: ``device``, ``preprocess_s`` (encoding time, in the thread), ``preprocess_wait_s`` (time the
  model waited for encoding), ``generate_s``, ``batches``, ``prompt_tokens``, ``output_tokens``.

Fault injection: ``VIDCAP_FAULT_OOM=N`` makes the first N generate calls raise OutOfMemoryError.
"""
from __future__ import annotations

import concurrent.futures as cf
import copy
import gc
import logging
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from typing import Any

from vidcap.errors import RunnerFatal
from vidcap.gpu import acquire_gpus
from vidcap.runners.base import Generation, Request, Runner

log = logging.getLogger("vidcap.runners.local")

WINDOW_BATCHES = 4   # pending requests looked at when forming a batch: WINDOW_BATCHES * batch_size
ENCODE_AHEAD = 2     # batches encoded ahead of the one generating


class LocalRunner(Runner):
    """Base of in-process runners; see the module docstring. Subclasses implement ``load_processor``,
    ``encode`` and ``_load_model`` (and may override ``check_context`` and ``size_key``)."""

    def __init__(self, settings: dict):
        super().__init__(settings)
        self.generation = dict(self.settings.get("generation") or {})
        self.batch_size = max(1, int(self.settings.get("batch_size", 8)))
        # transformers objects (untyped here), set by load_processor and load_weights
        self.model: Any = None
        self.processor: Any = None
        self.config: Any = None
        self.family = ""
        self.device = "cpu"
        self._fault_oom = int(os.environ.get("VIDCAP_FAULT_OOM", "0") or 0)
        self._encode_lock = threading.Lock()
        self._decoder: Any = None   # a copy of the tokenizer for decoding while the encoder thread works
        self.stats: dict[str, Any] = {"device": "", "preprocess_s": 0.0, "preprocess_wait_s": 0.0, "generate_s": 0.0,
                      "batches": 0, "prompt_tokens": 0, "output_tokens": 0}

    # ------------------------------------------------------------------------------------- hooks

    def load_processor(self, model_id: str) -> None:
        """Set ``self.config``, ``self.processor`` (processor or tokenizer) and ``self.family``."""
        raise NotImplementedError

    def check_context(self) -> None:
        """Check before the weights load that requests fit the model's context (optional)."""

    def encode(self, batch: list[Request]):
        """Model inputs (a ``BatchEncoding`` with ``input_ids`` and ``attention_mask``) for a batch."""
        raise NotImplementedError

    def _load_model(self, model_id: str, kwargs: dict):
        """The weights (``from_pretrained`` of the family's auto class); benchmarks override this."""
        raise NotImplementedError

    def size_key(self, req: Request) -> tuple:
        """Requests with equal keys batch together (same visual shape, similar prompt length)."""
        shape = tuple(req.frames.frames.shape) if req.frames is not None else ()
        return (shape, (len(req.user) + len(req.system)) // 64)

    # ----------------------------------------------------------------------------------- loading

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    def hub_kwargs(self) -> dict:
        kw = {"trust_remote_code": bool(self.settings.get("trust_remote_code", False))}
        if self.settings.get("revision"):
            kw["revision"] = self.settings["revision"]
        return kw

    def load(self) -> None:
        """GPU slot, config and processor, context check, then the weights."""

        acquire_gpus()
        model_id = self.settings.get("model")
        if not model_id:
            raise RunnerFatal(f"{self.name} runner: no model given (transformers.model)")
        try:
            self.load_processor(model_id)
        except (OSError, ValueError) as exc:
            raise RunnerFatal(f"cannot load model config/processor {model_id!r}: {exc}") from None
        tok = self.tokenizer
        tok.padding_side = "left"
        if getattr(tok, "pad_token_id", None) is None and getattr(tok, "eos_token", None) is not None:
            tok.pad_token = tok.eos_token
        self.check_context()
        self._decoder = copy.deepcopy(tok)
        self.load_weights(model_id)

    def load_weights(self, model_id: str) -> None:
        # heavy: torch, only when a model runs
        import torch

        cuda = torch.cuda.is_available()
        self.device = "cuda" if cuda else "cpu"
        dtype = self.settings.get("dtype", "auto") or "auto"
        torch_dtype = (torch.bfloat16 if cuda else torch.float32) if dtype == "auto" else getattr(torch, dtype)
        kwargs = dict(self.hub_kwargs(), dtype=torch_dtype)
        if self.settings.get("attn_implementation"):
            kwargs["attn_implementation"] = self.settings["attn_implementation"]
        if self.settings.get("device_map"):
            kwargs["device_map"] = self.settings["device_map"]
        try:
            self.model = self._load_model(model_id, kwargs)
        except (OSError, ValueError) as exc:
            raise RunnerFatal(f"cannot load model {model_id!r}: {exc}") from None
        if not self.settings.get("device_map"):
            self.model.to(self.device)
        self.model.eval()
        if self.generation.get("seed") is not None:
            # heavy: transformers, only when a model or processor is built
            from transformers import set_seed

            set_seed(int(self.generation["seed"]))
        self.stats["device"] = torch.cuda.get_device_name(0) if cuda else "cpu"
        log.info("loaded %s (%s) on %s, dtype %s, attention %s", model_id, self.family, self.device,
                 torch_dtype, kwargs.get("attn_implementation", "default"))

    def provenance(self) -> dict:
        rev = self.settings.get("revision") or ""
        if not rev and self.config is not None:
            rev = getattr(self.config, "_commit_hash", None) or ""
        return {"model": self.settings.get("model", ""), "revision": rev}

    def close(self) -> None:
        self.model = None
        self._empty_cache()

    # ---------------------------------------------------------------------------------- batching

    def batches(self, requests: Iterable[Request]) -> Iterator[list[Request]]:
        """Batches of ``batch_size`` requests of one size, from a window of pending ones; when the
        input ends or the window fills without a full batch of one size, topped up with others."""
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
                key = self.size_key(req)
                pending[key].append(req)
                n_pending += 1
                if len(pending[key]) >= self.batch_size:
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
            for k in list(pending):
                while pending[k] and len(group) < self.batch_size:
                    group.append(pending[k].pop(0))
                    n_pending -= 1
                if not pending[k]:
                    del pending[k]
            yield group

    def run(self, requests: Iterable[Request]) -> Iterator[tuple[str, Generation | BaseException]]:
        """Batch, encode ahead in a background thread, generate; yield every row once."""
        with cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidcap-encode") as pool:
            ahead: deque = deque()
            for batch in self.batches(requests):
                ahead.append((batch, pool.submit(self._timed_encode, batch)))
                if len(ahead) > ENCODE_AHEAD:
                    yield from self._run_encoded(*ahead.popleft())
            while ahead:
                yield from self._run_encoded(*ahead.popleft())

    def _timed_encode(self, batch: list[Request]):
        with self._encode_lock:  # one encoder at a time: fast tokenizers are not reentrant
            t = time.perf_counter()
            try:
                return self.encode(batch)
            finally:
                self.stats["preprocess_s"] += time.perf_counter() - t

    def _run_encoded(self, batch: list[Request], future: cf.Future):
        t = time.perf_counter()
        try:
            inputs = future.result()
        except Exception as exc:  # noqa: BLE001 - encoding failed: find the row(s) one by one
            inputs = exc
        self.stats["preprocess_wait_s"] += time.perf_counter() - t
        yield from self._run_batch(batch, inputs)

    def _run_batch(self, batch: list[Request], inputs=None) -> Iterator[tuple[str, Generation | BaseException]]:
        # heavy: torch, only when a model runs
        import torch

        try:
            if isinstance(inputs, BaseException):
                raise inputs
            results = self._generate(batch, inputs if inputs is not None else self._timed_encode(batch))
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

    # -------------------------------------------------------------------------------- generation

    def gen_kwargs(self) -> dict:
        g = self.generation
        kw: dict[str, Any] = {"max_new_tokens": int(g.get("max_new_tokens", 300))}
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

    def _generate(self, batch: list[Request], inputs) -> list[tuple[str, Generation]]:
        # heavy: torch, only when a model runs
        import torch

        inputs = inputs.to(self.model.device)
        dtype = getattr(self.model, "dtype", None)
        for k in ("pixel_values", "pixel_values_videos"):
            if k in inputs and dtype is not None and inputs[k].is_floating_point():
                inputs[k] = inputs[k].to(dtype)
        if self._fault_oom > 0:
            self._fault_oom -= 1
            raise torch.OutOfMemoryError("injected out of memory (VIDCAP_FAULT_OOM)")
        gen_kw = self.gen_kwargs()
        t = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen_kw, pad_token_id=self.tokenizer.pad_token_id)
        self.stats["generate_s"] += time.perf_counter() - t
        self.stats["batches"] += 1
        prompt_len = inputs["input_ids"].shape[1]
        new = out[:, prompt_len:].cpu()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        eos = self.eos_ids()
        results = []
        for i, req in enumerate(batch):
            ids = new[i].tolist()
            stop = next((j for j, t in enumerate(ids) if t in eos), None)
            kept = ids if stop is None else ids[:stop]
            finish = "stop" if stop is not None else ("length" if len(ids) >= gen_kw["max_new_tokens"] else "stop")
            self.stats["prompt_tokens"] += int(prompt_tokens[i])
            self.stats["output_tokens"] += len(kept)
            results.append((req.row_id, Generation(text=self._decoder.decode(kept, skip_special_tokens=True),
                                                    finish_reason=finish, output_tokens=len(kept),
                                                    prompt_tokens=int(prompt_tokens[i]))))
        return results

    def eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (getattr(self.model, "generation_config", None), getattr(self.config, "text_config", None),
                    self.config):
            v = getattr(src, "eos_token_id", None) if src is not None else None
            if v is None:
                continue
            ids.update(v if isinstance(v, (list, tuple)) else [v])
        if getattr(self.tokenizer, "eos_token_id", None) is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _empty_cache(self) -> None:
        # heavy: torch, only when a model runs
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
