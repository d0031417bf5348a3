"""Runner ``openai``: any OpenAI-compatible chat-completions API (OpenAI, vLLM, SGLang, ...).

Frames become base64 JPEG data URLs (longest side capped at ``max_image_side``, ``detail`` low |
high | auto); the prompt goes in the system message (``prompt_role: system``, as the original GPT-4V
script) or in the user message before the images (``prompt_role: user``). Requests without frames
are text-only (the ``rewrite_structured`` prompt). Concurrency, limits, retries, the key and usage are
handled by ``vidcap.llm.client.ChatClient``; this module only turns ``Request`` into messages and
answers into ``Generation``.

Settings (the stage's ``openai`` block merged with its ``generation`` block, flat or nested under
``generation``):
``model base_url api_key_env detail max_image_side jpeg_quality prompt_role concurrency
requests_per_minute tokens_per_minute max_tries timeout_s backoff_s max_backoff_s
price_per_1m_input price_per_1m_output token_limit_param extra_sampling response_format insert_media_token`` and
``max_new_tokens min_new_tokens temperature top_p top_k repetition_penalty seed``.

``insert_media_token`` (NeVA's): ``left`` = the images before the prompt text in the user message,
``right`` = after; either puts the text in the user message whatever ``prompt_role`` says (the system
text stays the system message). Unset: as ``prompt_role`` says (``user``: text, then images).

Generation mapping: ``max_new_tokens`` -> ``max_tokens`` (or ``max_completion_tokens``, see
``token_limit_param``); ``temperature``, ``top_p``, ``seed`` as they are. ``top_k``,
``repetition_penalty`` and ``min_new_tokens`` (as ``min_tokens``) have no OpenAI equivalent: they go
in the request body for self-hosted servers (vLLM and SGLang read them) when ``extra_sampling`` is
``always``, or ``auto`` with a ``base_url`` that is not api.openai.com; otherwise they are left out
(logged once). ``response_format: json_object`` asks for a JSON object answer (OpenAI's JSON mode,
``{"type": "json_object"}``; vLLM and SGLang accept it too; the tags stage uses it). ``repetition_penalty`` is NOT mapped to ``frequency_penalty``: one multiplies logits,
the other subtracts a count-scaled value; they are not the same knob.
"""
from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Any

from vidcap.errors import RunnerFatal
from vidcap.llm.client import ChatClient, ChatError, ChatJob, ChatResult
from vidcap.media.images import EncodedFrame, Wire, WireFrames, encode_frame
from vidcap.redact import scrub
from vidcap.runners.base import Generation, Request, Runner

log = logging.getLogger("vidcap.runners.openai")

DEFAULTS = {
    "detail": "low",
    "max_image_side": 512,
    "jpeg_quality": 85,
    "prompt_role": "system",
    "token_limit_param": "max_tokens",
    "extra_sampling": "auto",
    "max_new_tokens": 300,
    "temperature": 0.0,
}


def image_tokens(width: int, height: int, detail: str) -> int:
    """OpenAI's published count for one image (GPT-4o family): 85 for low, 85 + 170 a 512-px tile."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        s = 2048 / max(w, h)
        w, h = w * s, h * s
    if min(w, h) > 768:
        s = 768 / min(w, h)
        w, h = w * s, h * s
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def text_tokens(text: str) -> int:
    """Rough token count of text (4 characters a token) for the TPM limiter and estimates."""
    return (len(text) + 3) // 4


class OpenAIRunner(Runner):
    name = "openai"

    def __init__(self, settings: dict):
        gen = settings.get("generation") or {}   # the stage passes its generation block nested
        flat = {k: v for k, v in settings.items() if k != "generation"}
        super().__init__({**DEFAULTS, **{k: v for k, v in gen.items() if v is not None},
                          **{k: v for k, v in flat.items() if v is not None}})
        s = self.settings
        if s["detail"] not in ("low", "high", "auto"):
            raise RunnerFatal(f"openai.detail must be low, high or auto; got {s['detail']!r}")
        if s["prompt_role"] not in ("system", "user"):
            raise RunnerFatal(f"openai.prompt_role must be system or user; got {s['prompt_role']!r}")
        self.client: ChatClient | None = None
        self._stats: dict = {}
        self.served_model = ""
        self._warned: set[str] = set()
        self._feed = {"request_s": 0.0, "response_s": 0.0}

    # -- Runner interface
    def load(self) -> None:
        if self.client is None:
            self.client = ChatClient(self.settings)  # ChatFatal (a RunnerFatal) when the key is missing
            self.client.start()

    def provenance(self) -> dict:
        return {"model": self.settings.get("model", ""),
                "revision": self.settings.get("revision") or self.served_model or ""}

    @property
    def stats(self) -> dict:
        """Counters of this runner's client: requests, tries, tokens, cost, waits (for the job's stats);
        ``request_s`` = CPU seconds building requests (encoding frames the feed did not), ``response_s`` = the
        requests' round trips summed (sent to answer parsed)."""
        if self.client is None:
            return dict(self._stats)
        st = self.client.stats
        self._stats = {"device": f"api {self.settings.get('base_url') or 'api.openai.com'}",
                       "requests_ok": st.items_ok, "requests_failed": st.items_failed, "tries": st.tries,
                       "retries": st.retries, "prompt_tokens": st.prompt_tokens,
                       "output_tokens": st.completion_tokens, "cost_usd": round(st.cost_usd, 6),
                       "limiter_wait_s": round(st.limiter_wait_s, 3), "max_in_flight": st.max_in_flight,
                       **{k: round(v, 3) for k, v in self._feed.items()}}
        return dict(self._stats)

    def close(self) -> None:
        if self.client is not None:
            self._stats = self.stats
            self.client.close()
            self.client = None

    def run(self, requests):
        """Yield ``(row_id, Generation | Exception)`` per request as answers arrive (any order)."""
        self.load()
        client = self.client
        assert client is not None  # made by load()
        failed: deque = deque()  # requests that could not even be built (e.g. frame encoding)

        def jobs():
            for req in requests:
                t = time.thread_time()
                try:
                    job = self.job(req)
                except RunnerFatal:
                    raise
                except Exception as exc:  # noqa: BLE001 - the row fails, the job goes on
                    failed.append((req.row_id, exc))
                    continue
                finally:
                    self._feed["request_s"] += time.thread_time() - t
                yield job

        for key, res in self._map(jobs()):
            while failed:
                yield failed.popleft()
            if not isinstance(res, BaseException):
                self._feed["response_s"] += res.seconds
            yield key, self._generation(res)
        while failed:
            yield failed.popleft()

    def _map(self, jobs):
        assert self.client is not None  # made by load()
        return self.client.map(jobs)

    # -- building requests
    def wire(self) -> Wire:
        """How this runner sends a frame (``vidcap.media.images.Wire``); feed workers encode ahead with it."""
        s = self.settings
        return Wire("jpeg", int(s["jpeg_quality"]), int(s["max_image_side"]))

    def encoded(self, frames) -> list[EncodedFrame]:
        """The frames of a request as ``wire()`` says: as a feed worker encoded them (``WireFrames``), else
        encoded here."""
        wire = self.wire()
        if isinstance(frames, WireFrames):
            if frames.wire != wire:   # their pixels are gone: they cannot be encoded again
                raise ValueError(f"frames were encoded as {frames.wire} but this runner sends {wire}")
            return frames.encoded
        return [encode_frame(f, wire) for f in frames.frames]

    def options(self) -> dict:
        s = self.settings
        opts: dict = {}
        if s.get("max_new_tokens"):
            opts[s["token_limit_param"]] = int(s["max_new_tokens"])
        if s.get("temperature") is not None:
            opts["temperature"] = float(s["temperature"])
        if s.get("top_p") is not None:
            opts["top_p"] = float(s["top_p"])
        if s.get("seed") is not None:
            opts["seed"] = int(s["seed"])
        if s.get("response_format") == "json_object":
            opts["response_format"] = {"type": "json_object"}
        extra = {}
        for src, dst in (("top_k", "top_k"), ("repetition_penalty", "repetition_penalty"),
                         ("min_new_tokens", "min_tokens")):
            if s.get(src) is not None:
                extra[dst] = s[src]
        if extra:
            if self._send_extra():
                opts["extra_body"] = extra
            elif "extra" not in self._warned:
                self._warned.add("extra")
                log.warning("%s: not supported by api.openai.com; left out (set extra_sampling: always "
                            "to send them anyway)", ", ".join(sorted(extra)))
        return opts

    def _send_extra(self) -> bool:
        mode = self.settings.get("extra_sampling", "auto")
        if mode in ("always", "never"):
            return mode == "always"
        url = self.settings.get("base_url") or ""
        return bool(url) and "api.openai.com" not in url

    def messages(self, req: Request) -> tuple[list, int]:
        """(chat messages, estimated prompt tokens) for one request."""
        s = self.settings
        images, est = [], 0
        if req.frames is not None:
            for enc in self.encoded(req.frames):
                url = "data:image/jpeg;base64," + enc.b64
                images.append({"type": "image_url", "image_url": {"url": url, "detail": s["detail"]}})
                est += image_tokens(enc.width, enc.height, s["detail"])
        msgs: list[dict[str, Any]] = []
        where = s.get("insert_media_token")   # NeVA's: left = images before the text, right = after
        if images and s["prompt_role"] == "system" and where is None:
            instruction = "\n\n".join(t for t in (req.system, req.user) if t)
            if instruction:
                msgs.append({"role": "system", "content": instruction})
            msgs.append({"role": "user", "content": images})
        else:
            if req.system:
                msgs.append({"role": "system", "content": req.system})
            if images:
                text = [{"type": "text", "text": req.user}]
                msgs.append({"role": "user", "content": images + text if where == "left" else text + images})
            else:
                msgs.append({"role": "user", "content": req.user})
        est += text_tokens(req.system) + text_tokens(req.user) + 4 * len(msgs)
        return msgs, est

    def job(self, req: Request) -> ChatJob:
        msgs, est = self.messages(req)
        return ChatJob(req.row_id, msgs, self.options(), est)

    def _generation(self, res: ChatResult | ChatError) -> Generation | BaseException:
        if isinstance(res, BaseException):
            return res
        if res.model and not self.served_model:
            self.served_model = res.model
        reason = "length" if res.finish_reason == "length" else "stop"
        extra = {"tries": res.tries, "cost_usd": res.cost_usd, "seconds": round(res.seconds, 3),
                 "model_served": res.model}
        if res.finish_reason not in ("stop", "length"):
            extra["finish_reason_raw"] = res.finish_reason
        if res.completion_tokens is None:
            extra["usage_missing"] = True
        return Generation(text=scrub(res.text) if _looks_secret(res.text) else res.text,
                          finish_reason=reason, output_tokens=int(res.completion_tokens or 0),
                          prompt_tokens=res.prompt_tokens, extra=extra)


def _looks_secret(text: str) -> bool:
    return scrub(text) != text
