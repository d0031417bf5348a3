"""In-process Hugging Face vision-language models: ``TransformersRunner`` (runner ``transformers``).

Reads like the model cards: ``AutoProcessor`` + ``AutoModelForImageTextToText``, the chat template
renders the messages, the processor gets the decoded frames (arrays, never paths: transformers must
not decode videos itself). Batching, background encoding, generation, OOM splitting and decoding are
``vidcap.runners.local.LocalRunner``'s; this module says how the model loads and how a batch of
requests with frames becomes model inputs.

Families (detected from the model config's ``model_type``, never from the name): ``FAMILIES``.
Qwen2-VL / Qwen2.5-VL / Qwen3-VL (dense and MoE), GLM-4.1V, InternVL3, SmolVLM2, LLaVA-NeXT-Video and
LLaVA-OneVision get a video input (with the frames' real timestamps as ``VideoMetadata`` where the
processor uses them); LLaVA 1.5 / 1.6 (``llava``, ``llava_next``) and Gemma 3 get the frames as several
images. An image row is one image everywhere. ``processor_kwargs`` go to every processor call (e.g. a
pixel budget: ``{min_pixels: ..., max_pixels: ...}`` for the Qwen families); the context check runs the
same processor, so it counts each family's visual tokens as they will be.

Settings (the stage's ``transformers`` block plus ``generation``, ``frames``, ``batch_size``):
``model`` (hub id or folder), ``revision``, ``dtype`` (``auto`` = bfloat16 on GPU, float32 on CPU),
``attn_implementation``, ``device_map``, ``trust_remote_code``, ``fit_context`` (fail | reduce),
``insert_media_token`` (``right``: the media parts after the prompt text; else before).

Context check before the weights load (config + processor only): visual + prompt + max_new_tokens
tokens must fit ``max_position_embeddings``; ``fail`` raises ``RunnerFatal`` with the numbers,
``reduce`` lowers frames, then resolution, until it fits and logs it (``self.frames`` holds the frame
settings to decode with).
"""
from __future__ import annotations

import logging

import numpy as np

from vidcap.errors import RunnerFatal
from vidcap.media.frames import Frames
from vidcap.runners.base import Request
from vidcap.runners.local import LocalRunner

log = logging.getLogger("vidcap.runners.hf")

VIDEO_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "glm4v", "internvl", "smolvlm",
                  "llava_next_video", "llava_onevision")
IMAGE_FAMILIES = ("llava", "llava_next", "gemma3")
# video processors that take our frames' real timestamps (fps, indices) as VideoMetadata
_METADATA_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "glm4v", "internvl", "smolvlm")
FAMILIES = VIDEO_FAMILIES + IMAGE_FAMILIES
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


class TransformersRunner(LocalRunner):
    name = "transformers"

    def __init__(self, settings: dict):
        super().__init__(settings)
        self.frames = dict(self.settings.get("frames") or {})
        self.fit_report: dict = {}

    def load_processor(self, model_id: str) -> None:
        # heavy: transformers, only when a model or processor is built
        from transformers import AutoConfig, AutoProcessor

        self.config = AutoConfig.from_pretrained(model_id, **self.hub_kwargs())
        self.processor = AutoProcessor.from_pretrained(model_id, **self.hub_kwargs())
        self.family = detect_family(self.config)

    def _load_model(self, model_id: str, kwargs: dict):
        # heavy: transformers, only when a model or processor is built
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText.from_pretrained(model_id, **kwargs)

    # ------------------------------------------------------------------------------ context check

    def _prompt_text(self, user: str, system: str, kind: str, n_frames: int) -> str:
        content = []
        if kind == "video" and self.family in VIDEO_FAMILIES:
            content.append({"type": "video"})
        elif kind == "video":
            content += [{"type": "image"}] * n_frames
        elif kind == "image":
            content.append({"type": "image"})
        text = {"type": "text", "text": user}
        # NeVA's insert_media_token: right = the media parts after the text; left / unset = before
        content = content + [text] if self.settings.get("insert_media_token") != "right" else [text] + content
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

    def _process(self, texts: list[str], visuals: list[tuple[str, np.ndarray | None, Frames | None]]):
        """Run the processor on a batch: ``visuals`` = (kind, frames array or None, Frames or None)."""
        images, videos, metas = [], [], []
        for kind, arr, fr in visuals:
            if kind == "text":
                continue
            assert arr is not None, kind  # image and video requests carry frames
            if kind == "image":
                images.append([arr[0]])
            elif kind == "video" and self.family in VIDEO_FAMILIES:
                videos.append(arr)
                metas.append(_metadata(fr, arr))
            elif kind == "video":
                images.append(list(arr))
        kw = {"text": texts, "padding": True, "return_tensors": "pt", **(self.settings.get("processor_kwargs") or {})}
        if images:
            kw["images"] = images
        if videos:
            kw["videos"] = videos
            if self.family in _METADATA_FAMILIES:
                kw["video_metadata"] = metas
            kw["do_sample_frames"] = False
        return self.processor(**kw)

    def size_key(self, req: Request) -> tuple:
        return (self._request_kind(req), *super().size_key(req))

    def encode(self, batch: list[Request]):
        texts, visuals = [], []
        for req in batch:
            kind = self._request_kind(req)
            arr = req.frames.frames if req.frames is not None else None
            n = 0 if arr is None else len(arr)
            texts.append(self._prompt_text(req.user, req.system, kind, n))
            visuals.append((kind, arr, req.frames))
        return self._process(texts, visuals)


def _metadata(frames: Frames | None, arr: np.ndarray):
    """VideoMetadata for the processor from our ``Frames`` (real fps and indices; no resampling)."""
    # heavy: transformers, only when a model or processor is built
    from transformers.video_utils import VideoMetadata

    if frames is None or not frames.fps:
        return VideoMetadata(total_num_frames=len(arr), fps=2.0, frames_indices=list(range(len(arr))),
                             height=arr.shape[1], width=arr.shape[2])
    return VideoMetadata(total_num_frames=frames.total_frames, fps=float(frames.fps),
                         frames_indices=list(frames.indices), height=arr.shape[1], width=arr.shape[2],
                         duration=frames.total_frames / frames.fps)
