"""Runners ``vllm`` and ``sglang``: start an inference-engine server for the job, then talk to it as the
``openai`` runner does (concurrency, retries, exactly-once results through ``ChatClient``).

``load()`` takes the job's GPUs (``vidcap.gpu.acquire_gpus``: SLURM's assignment or a local slot lock),
starts the engine (``vidcap.llm.engine.EngineServer``: its own Python env, tensor-parallel over those GPUs,
readiness wait, log at ``server_log``), and points the client at it. ``close()`` stops the server.
``run()`` yields ``(row_id, Generation | Exception)`` like every runner; when the server has died it
raises ``RunnerFatal`` with the exit status and the server log's last lines instead of failing rows
(rows not yet journaled are redone by the next run).

Frames on the wire as ``frame_format`` says (``jpeg`` at ``jpeg_quality`` 95 by default, ``png`` lossless,
``bmp`` uncompressed; ``vidcap.media.images.Wire``; the caption stage's feed workers encode them ahead,
bench/feed measured the choice): one frame (an image row) is an ``image_url``. A clip's sampled frames are, with
``frames_as: video``, ONE ``video_url`` part holding the frames themselves — vLLM's
``data:video/jpeg;base64,<frame>,<frame>,...`` form: the frames are decoded one by one with PIL, so
PNG frames work and nothing is re-encoded as a video — plus the metadata the model's processor needs,
sent as the request's ``media_io_kwargs.video`` (``fps``, ``frames_indices``, ``total_num_frames``,
``duration``, ``num_frames``; ``do_sample_frames`` false: the engine keeps exactly our frames, as the
transformers runner does). With ``frames_as: images`` each frame is an ``image_url`` (models without
video input). ``auto`` = video for the model types in ``VIDEO_MODEL_TYPES`` under vLLM (read from the
model's config), images otherwise and always under SGLang (its OpenAI server takes video files, not frame
lists). The message layout matches the transformers runner: an optional system message, then one user
message with the visual part(s) first and the prompt text last.

Settings: the engine's (``vidcap.llm.engine.DEFAULTS``), the client's (``concurrency timeout_s max_tries
backoff_s max_backoff_s``; defaults in ``DEFAULTS`` below, tuned for a local server), ``frames_as
frame_format jpeg_quality max_image_side`` (null = frames as decoded), ``num_frames`` (sizes vLLM's
``limit_mm_per_prompt`` for image lists when that is not set), ``server_log`` (path of the server log;
default: a file in the temp folder) and the generation block (as the ``openai`` runner maps it; top_k,
repetition_penalty and min_new_tokens are always sent).

``replicas`` (default 1): that many engine servers for the job, each on its own port and share of the job's
GPUs (``vidcap.runners.replicas.split_gpus``; server logs ``<log>.<i>.log``), one client each, requests
spread over them (``spread``); a replica that dies stops the run as one server would.

``stats`` adds ``busy_s`` to the ``openai`` runner's counters: the client's time with at least one request
in flight, so ``1 - busy_s / wall`` is a lower bound of the engine's idle share over a run.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from vidcap.errors import RunnerFatal
from vidcap.gpu import acquire_gpus
from vidcap.llm.client import ChatClient, ChatJob
from vidcap.llm.engine import DEFAULTS as ENGINE_DEFAULTS
from vidcap.llm.engine import EngineServer, visible_gpus
from vidcap.media.images import WIRE_FORMATS, Wire
from vidcap.runners.base import Request
from vidcap.runners.openai_api import OpenAIRunner, text_tokens
from vidcap.runners.replicas import split_gpus, spread

log = logging.getLogger("vidcap.runners.engine")

KEY_ENV = "VIDCAP_ENGINE_API_KEY"   # holds the per-job key of the local server ('' = none)
VIDEO_MODEL_TYPES = frozenset({"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "glm4v", "glm4v_moe",
                               "llava_next_video", "llava_onevision"})
DEFAULTS = {
    "concurrency": 64,          # requests in flight: the engine batches them continuously
    "timeout_s": 600.0,
    "max_tries": 3,
    "backoff_s": 0.5,
    "max_backoff_s": 5.0,
    "extra_sampling": "always",
    "frames_as": "auto",        # auto | video | images
    "frame_format": "jpeg",     # jpeg (at jpeg_quality) | png (lossless) | bmp (uncompressed)
    "jpeg_quality": 95,
    "max_image_side": None,     # None = send frames as decoded (the frames block sizes them)
    "num_frames": None,
    "server_log": None,
    "replicas": 1,              # engine servers per job, requests spread over them (vidcap.runners.replicas)
}


def model_type(model: str, revision: str | None = None) -> str:
    """``model_type`` from the model's config (a local folder's config.json, else the Hub cache/Hub);
    '' when it cannot be read."""
    path = Path(model).expanduser()
    try:
        if path.is_dir():
            return str(json.loads((path / "config.json").read_text()).get("model_type", ""))
        # heavy: transformers, only when a model or processor is built
        from transformers import AutoConfig

        return str(AutoConfig.from_pretrained(model, revision=revision).model_type)
    except Exception as exc:  # noqa: BLE001 - any failure means "unknown": the caller falls back to images
        log.warning("could not read the model type of %s (%s)", model, exc)
        return ""


class EngineRunner(OpenAIRunner):
    """Base of ``VLLMRunner`` / ``SGLangRunner``; see the module docstring."""

    name = ""

    def __init__(self, settings: dict):
        gen = settings.get("generation") or {}
        flat = {k: v for k, v in settings.items() if k != "generation" and v is not None}
        if not flat.get("num_frames") and isinstance(flat.get("frames"), dict):   # the caption stage's frames
            flat["num_frames"] = flat["frames"].get("num_frames")
        super().__init__({**DEFAULTS, **flat, "generation": gen, "prompt_role": "user"})
        s = self.settings
        s["max_image_side"] = flat.get("max_image_side")   # None = as decoded (not the openai runner's 512 px cap)
        if s["frames_as"] not in ("auto", "video", "images"):
            raise RunnerFatal(f"{self.name}.frames_as must be auto, video or images; got {s['frames_as']!r}")
        if s["frame_format"] not in WIRE_FORMATS:
            raise RunnerFatal(f"{self.name}.frame_format must be one of {', '.join(WIRE_FORMATS)}; "
                              f"got {s['frame_format']!r}")
        if self.name == "sglang" and s["frames_as"] == "video":
            raise RunnerFatal("sglang.frames_as: video is not supported (SGLang's OpenAI server takes video files, "
                              "not frame lists); use images")
        self.server: EngineServer | None = None   # the first replica's
        self.servers: list[EngineServer] = []
        self.clients: list[ChatClient] = []
        self.video = False

    # -- lifecycle
    def engine_settings(self) -> dict:
        s = {k: self.settings[k] for k in ENGINE_DEFAULTS if k in self.settings}
        if self.name == "vllm" and not s.get("limit_mm_per_prompt"):
            n = int(self.settings.get("num_frames") or 8)
            s["limit_mm_per_prompt"] = {"image": 1 if self.video else max(1, n), "video": 1 if self.video else 0}
        if self.name == "vllm" and self.video:
            # the video metadata travels as per-request media_io_kwargs; the per-job key keeps other clients out
            s["trust_request_mm_kwargs"] = True
        return s

    def server_log(self) -> Path:
        """``server_log``, else next to the job's log (``$VIDCAP_JOB_LOG``, set by the workflow's rules:
        ``logs/<stage>/<shard>.log`` -> ``logs/<stage>/<shard>.<engine>.log``), else a temp file."""
        path = self.settings.get("server_log")
        job_log = os.environ.get("VIDCAP_JOB_LOG")
        if not path and job_log:
            path = str(Path(job_log).with_suffix(f".{self.name}.log"))
        return Path(path) if path else Path(tempfile.gettempdir()) / f"vidcap-{self.name}-{os.getpid()}.log"

    def load(self) -> None:
        if self.client is not None:
            return

        try:
            acquire_gpus()
        except RuntimeError as exc:
            raise RunnerFatal(f"{self.name}: {exc}") from exc
        mode = self.settings["frames_as"]
        if mode == "auto":
            mode = "video" if self.name == "vllm" and model_type(
                str(self.settings.get("model", "")), self.settings.get("revision")) in VIDEO_MODEL_TYPES else "images"
        self.video = mode == "video"
        n = int(self.settings.get("replicas") or 1)
        try:
            shares = split_gpus(visible_gpus(), n, self.settings.get("gpu_memory_utilization"))
        except ValueError as exc:
            raise RunnerFatal(f"{self.name}.replicas: {exc}") from None
        log_path = self.server_log()
        self.servers = [EngineServer(self.name, self.engine_settings(), log_path if n == 1 else
                                     log_path.with_suffix(f".{i}{log_path.suffix}"), gpus=g) for i, g in enumerate(shares)]
        self.server = self.servers[0]
        try:
            with cf.ThreadPoolExecutor(len(self.servers)) as pool:   # replicas start side by side
                for fut in [pool.submit(srv.start) for srv in self.servers]:
                    fut.result()
            for srv in self.servers:
                os.environ[KEY_ENV] = srv.api_key
                client = ChatClient({**self.settings, "base_url": srv.base_url, "model": srv.served_model,
                                     "api_key_env": KEY_ENV})
                client.start()
                self.clients.append(client)
            self.settings["base_url"] = self.server.base_url
            self.client = self.clients[0]
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            for extra in self.clients[1:]:
                extra.close()
            self.clients = []
            super().close()
        finally:
            for srv in self.servers:
                srv.stop()

    def _map(self, jobs):
        """Requests spread over the replicas (``vidcap.runners.replicas.spread``)."""
        return spread(self.clients or [self.client], jobs)

    @property
    def stats(self) -> dict:
        """The ``openai`` runner's counters, plus ``busy_s`` (seconds with at least one request in flight:
        ``ChatClient.busy_seconds``; kept after ``close``), the engine's address and start-up time."""
        out = dict(super().stats)
        if self.client is not None:
            out["busy_s"] = round(self.client.busy_seconds(), 3)
        if len(self.clients) > 1:
            out["replica_requests"] = [c.stats.items_ok + c.stats.items_failed for c in self.clients]
            for key, attr in (("requests_ok", "items_ok"), ("requests_failed", "items_failed"), ("tries", "tries")):
                out[key] = sum(getattr(c.stats, attr) for c in self.clients)
        if self.server is not None:
            out["device"] = f"{self.name} {self.server.base_url}"
            out["engine_startup_s"] = round(self.server.startup_s or 0.0, 2)
        return out

    def run(self, requests):
        """As ``OpenAIRunner.run``; RunnerFatal naming the server's exit when it dies during the run."""
        self.load()
        server = self.server
        assert server is not None  # started by load()
        for srv in self.servers or [server]:
            if not srv.alive():
                raise RunnerFatal(srv.exit_reason())
        for key, res in super().run(requests):
            dead = [srv for srv in self.servers or [server] if not srv.alive()] if isinstance(res, BaseException) else []
            if dead:
                raise RunnerFatal(f"{dead[0].exit_reason()}\n(stopping: no request can succeed; rows not "
                                  "journaled yet are redone by the next run)")
            yield key, res

    # -- requests
    def messages(self, req: Request) -> tuple[list, int]:
        msgs: list[dict[str, Any]] = [{"role": "system", "content": req.system}] if req.system else []
        if req.frames is None:
            msgs.append({"role": "user", "content": req.user})
            return msgs, text_tokens(req.system) + text_tokens(req.user) + 8
        encoded = self.encoded(req.frames)
        if req.frames.media_type == "image":
            encoded = encoded[:1]
        if self.video and req.frames.media_type == "video":
            url = "data:video/jpeg;base64," + ",".join(e.b64 for e in encoded)
            parts = [{"type": "video_url", "video_url": {"url": url}}]
        else:
            mime = self.wire().mime
            parts = [{"type": "image_url", "image_url": {"url": f"data:{mime};base64,{e.b64}"}} for e in encoded]
        msgs.append({"role": "user", "content": parts + [{"type": "text", "text": req.user}]})
        return msgs, text_tokens(req.system) + text_tokens(req.user) + 8

    def wire(self) -> Wire:
        s = self.settings
        side = s.get("max_image_side")
        # JPEG with colour at full resolution: only the quantisation differs from the decoded frame
        return Wire(str(s["frame_format"]), int(s["jpeg_quality"]), int(side) if side else None, full_chroma=True)

    def video_metadata(self, req: Request) -> dict | None:
        """vLLM ``media_io_kwargs.video`` for a clip sent as a video: the real indices, fps and length."""
        fr = req.frames
        if fr is None or not self.video or fr.media_type != "video":
            return None
        n = len(fr.frames)
        fps = float(fr.fps) if fr.fps else 1.0
        total = max(int(fr.total_frames or n), n)
        indices = [int(i) for i in fr.indices] if len(fr.indices) == n else list(range(n))
        return {"num_frames": n, "fps": fps, "frames_indices": indices, "total_num_frames": total,
                "duration": total / fps, "do_sample_frames": False}

    def job(self, req: Request) -> ChatJob:
        msgs, est = self.messages(req)
        opts = self.options()
        meta = self.video_metadata(req)
        if meta is not None:
            opts["extra_body"] = {**opts.get("extra_body", {}), "media_io_kwargs": {"video": meta}}
        return ChatJob(req.row_id, msgs, opts, est)


class VLLMRunner(EngineRunner):
    name = "vllm"


class SGLangRunner(EngineRunner):
    name = "sglang"
