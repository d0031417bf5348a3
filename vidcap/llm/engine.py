"""An inference-engine server (vLLM or SGLang) run as a child of one job: start, wait, stop, no orphans.

``EngineServer(kind, settings, log_path)``; ``start()`` launches the engine's OpenAI-compatible server
from the engine's OWN Python (``settings["python"]``, never ours: the engine's pins never mix with
vidcap's) on 127.0.0.1 and a free port, on the GPUs this process holds (``CUDA_VISIBLE_DEVICES`` as
SLURM or ``vidcap.gpu.acquire_gpus`` set it; tensor-parallel size = their count, 1 without GPUs), then
waits until ``GET /health`` and ``GET /v1/models`` answer. ``base_url`` is then ``http://127.0.0.1:P/v1``.
``stop()`` ends it. ``RunnerFatal`` when it cannot start: exited, or not ready within
``startup_timeout_s``; the message carries the last lines of the server log.

Settings (``DEFAULTS``): ``model revision python served_model_name dtype quantization max_model_len
gpu_memory_utilization max_num_seqs limit_mm_per_prompt enforce_eager trust_remote_code
trust_request_mm_kwargs extra_args env startup_timeout_s stop_timeout_s tensor_parallel_size
api_server_count mm_processor_cache_gb``. ``env`` adds variables to the server's environment (e.g.
``VLLM_CPU_KVCACHE_SPACE``); ``extra_args`` are appended to its command line. The engine's own host work
(HTTP, chat template, the multimodal processor decoding and resizing every frame) is spread over
``api_server_count`` API processes (vLLM; then started as ``vllm serve``, the only entry point that runs
several), and ``mm_processor_cache_gb`` sizes vLLM's multimodal processor cache in each of them (0 = off:
real datasets never repeat a clip, so the cache only costs memory and hashing). ``gpus``: the GPUs this
server runs on (a replica's share, ``vidcap.runners.replicas``); None = all this process holds.

Process tree and clean-up: the server runs under a small supervisor (``python -m vidcap.llm.supervisor``, our
interpreter, stdlib only) that leads its own process group (its own session, so a terminal's Ctrl-C
reaches the job, not the engine). The supervisor tears the whole group down — SIGTERM, then SIGKILL
after ``stop_timeout_s`` — when (a) we ask it to (``stop()`` writes ``stop`` to its stdin), (b) its
parent (this process) is gone, even by SIGKILL (it polls ``getppid()`` every 0.2 s), or (c) the server
exits by itself (its engine-core children go with it). The server also gets
``PR_SET_PDEATHSIG(SIGKILL)`` tied to the supervisor, so killing the supervisor itself leaves no server
either. ``stop()`` is registered with ``atexit`` as well.

The key: vLLM reads ``VLLM_API_KEY`` from its environment; ``start()`` sets a random per-server key
there (never on a command line, which other users can read in ``ps``) and keeps it in ``api_key``.
SGLang takes a key only as ``--api-key``, so it runs without one (it listens on 127.0.0.1 only).
The server log (stdout and stderr) goes to ``log_path``, appended, one header line per start.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

from vidcap.errors import RunnerFatal
from vidcap.llm.supervisor import describe_status, kill_group, server_status
from vidcap.redact import register_secret, scrub

log = logging.getLogger("vidcap.llm.engine")

KINDS = ("vllm", "sglang")
HOST = "127.0.0.1"
TAIL_LINES = 40
PYTHON_ENV_VARS = {"vllm": "VIDCAP_VLLM_PYTHON", "sglang": "VIDCAP_SGLANG_PYTHON"}
DEFAULTS: dict[str, Any] = {
    "model": "",
    "revision": None,
    "python": None,                 # the engine env's python; None = $VIDCAP_VLLM_PYTHON / $VIDCAP_SGLANG_PYTHON
    "served_model_name": None,      # None = model
    "dtype": "auto",
    "quantization": None,           # e.g. fp8
    "max_model_len": None,
    "gpu_memory_utilization": None,  # engine default (vLLM 0.9, SGLang's own)
    "max_num_seqs": None,
    "limit_mm_per_prompt": None,    # e.g. {"image": 8, "video": 1} (vLLM only)
    "enforce_eager": False,
    "trust_remote_code": False,
    "trust_request_mm_kwargs": False,  # vLLM: accept per-request media_io_kwargs (video metadata)
    "tensor_parallel_size": None,   # None = number of GPUs this process holds (1 without GPUs)
    "api_server_count": None,       # vLLM: API server processes (HTTP, chat template, multimodal processing)
    "mm_processor_cache_gb": None,  # vLLM: multimodal processor cache per process (GiB; 0 = off); None = vLLM's
    "extra_args": [],
    "env": {},
    "startup_timeout_s": 1200.0,
    "stop_timeout_s": 20.0,
}
_PORT_TRIES = 3
# `vllm serve` (the only entry point that runs several API servers), dispatched without vLLM's CLI main, which
# asks for the metadata of a distribution named `vllm` (builds published under another name, vllm-cpu, lack it)
VLLM_SERVE = ("from vllm.entrypoints.cli.serve import ServeSubcommand\n"
              "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
              "parser = FlexibleArgumentParser(prog='vllm')\n"
              "cmd = ServeSubcommand()\n"
              "cmd.subparser_init(parser.add_subparsers(dest='subparser')).set_defaults(dispatch_function=cmd.cmd)\n"
              "args = parser.parse_args()\n"
              "cmd.validate(args)\n"
              "args.dispatch_function(args)\n")


def visible_gpus() -> list[str]:
    """The GPUs this process may use: the entries of ``CUDA_VISIBLE_DEVICES`` (``[]`` when unset or empty)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES") or ""
    return [d.strip() for d in value.split(",") if d.strip()]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def engine_python(kind: str, settings: dict) -> str:
    """The engine env's interpreter: ``settings["python"]``, else ``$VIDCAP_<KIND>_PYTHON``; RunnerFatal when
    neither is set, the file is missing, or it is this process's own interpreter."""
    var = PYTHON_ENV_VARS[kind]
    python = settings.get("python") or os.environ.get(var)
    if not python:
        hint = "bash envs/vllm-cpu.sh makes .venv-vllm/bin/python (CPU); " if kind == "vllm" else ""
        raise RunnerFatal(f"{kind}: no engine python configured: set {kind}.python or ${var} to the python of "
                          f"the engine's own environment ({hint}envs/engines/{kind}.yaml describes the GPU env)")
    path = Path(python).expanduser()
    if not path.is_absolute() and os.sep not in python:
        raise RunnerFatal(f"{kind}.python must be a path to an interpreter, not {python!r}")
    if not path.exists():
        raise RunnerFatal(f"{kind}.python {python} does not exist (create the engine env first)")
    if os.path.abspath(path) == os.path.abspath(sys.executable):
        raise RunnerFatal(f"{kind}.python is vidcap's own interpreter ({sys.executable}); the engine must run "
                          "from its own environment so that its pins never mix with vidcap's")
    return str(path)


def server_command(kind: str, settings: dict, python: str, port: int, tp: int) -> list[str]:
    """The engine server's argv (no secrets in it)."""
    s = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    model = str(s["model"])
    if not model:
        raise RunnerFatal(f"{kind}.model is empty")
    name = s["served_model_name"] or model
    if kind == "vllm":
        # several API servers exist only under `vllm serve` (its console script may lack metadata: run the module)
        entry = ["-c", VLLM_SERVE, "serve", model] if s["api_server_count"] else \
            ["-m", "vllm.entrypoints.openai.api_server", "--model", model]
        cmd = [python, *entry, "--served-model-name", name,
               "--host", HOST, "--port", str(port), "--tensor-parallel-size", str(tp), "--dtype", str(s["dtype"])]
        opts = {"--revision": s["revision"], "--quantization": s["quantization"],
                "--max-model-len": s["max_model_len"], "--gpu-memory-utilization": s["gpu_memory_utilization"],
                "--max-num-seqs": s["max_num_seqs"], "--api-server-count": s["api_server_count"],
                "--mm-processor-cache-gb": s["mm_processor_cache_gb"]}
        if s["limit_mm_per_prompt"]:
            opts["--limit-mm-per-prompt"] = json.dumps(dict(s["limit_mm_per_prompt"]), sort_keys=True)
        flags = {"--enforce-eager": s["enforce_eager"], "--trust-remote-code": s["trust_remote_code"],
                 "--trust-request-mm-kwargs": s["trust_request_mm_kwargs"]}
    elif kind == "sglang":
        cmd = [python, "-m", "sglang.launch_server", "--model-path", model, "--served-model-name", name,
               "--host", HOST, "--port", str(port), "--tp-size", str(tp), "--dtype", str(s["dtype"])]
        opts = {"--revision": s["revision"], "--quantization": s["quantization"],
                "--context-length": s["max_model_len"], "--mem-fraction-static": s["gpu_memory_utilization"],
                "--max-running-requests": s["max_num_seqs"]}
        for key in ("limit_mm_per_prompt", "api_server_count", "mm_processor_cache_gb"):
            if s[key]:
                log.warning("sglang: %s has no SGLang flag here; pass one in extra_args if needed", key)
        flags = {"--disable-cuda-graph": s["enforce_eager"], "--trust-remote-code": s["trust_remote_code"]}
    else:
        raise ValueError(f"unknown engine {kind!r}; known: {', '.join(KINDS)}")
    for flag, value in opts.items():
        if value is not None:
            cmd += [flag, str(value)]
    cmd += [flag for flag, on in flags.items() if on]
    extra = s["extra_args"]
    cmd += shlex.split(extra) if isinstance(extra, str) else [str(a) for a in extra]
    if any(a == "--api-key" or a.startswith("--api-key=") for a in cmd):
        raise RunnerFatal(f"{kind}.extra_args must not carry --api-key: a key on a command line is readable by "
                          "every user of the machine (vidcap sets a per-job key through the environment)")
    return cmd


def log_tail(path: str | Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (scrubbed of secrets); '' when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return scrub("\n".join(deque(text.splitlines(), maxlen=lines)))


class EngineServer:
    """One engine server for one job; see the module docstring."""

    def __init__(self, kind: str, settings: dict, log_path: str | Path, gpus: list[str] | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown engine {kind!r}; known: {', '.join(KINDS)}")
        self.kind = kind
        self.settings = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
        self.log_path = Path(log_path)
        self.port: int | None = None
        self.api_key = ""
        self.served_model = str(self.settings["served_model_name"] or self.settings["model"])
        self.startup_s: float | None = None
        self._sup: subprocess.Popen | None = None
        self._exit: int | None = None
        self.server_pid: int | None = None
        self.gpus = gpus   # None = the GPUs this process holds (visible_gpus); a replica gets its share

    # -- public
    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def pgid(self) -> int | None:
        """The engine's process group (the supervisor's pid), while it runs."""
        return self._sup.pid if self._sup is not None else None

    def start(self) -> EngineServer:
        """Start the server and wait until it is ready; RunnerFatal (server stopped) otherwise."""
        if self._sup is not None:
            return self
        python = engine_python(self.kind, self.settings)
        gpus = visible_gpus() if self.gpus is None else list(self.gpus)
        tp = int(self.settings["tensor_parallel_size"] or max(1, len(gpus)))
        if gpus and tp > len(gpus):
            raise RunnerFatal(f"{self.kind}: tensor_parallel_size {tp} > the {len(gpus)} GPU(s) this job holds "
                              f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')})")
        t0 = time.monotonic()
        for attempt in range(1, _PORT_TRIES + 1):
            self.port = free_port()
            cmd = server_command(self.kind, self.settings, python, self.port, tp)
            self._launch(cmd, gpus)
            try:
                self._wait_ready(t0)
                break
            except RunnerFatal as exc:
                tail = log_tail(self.log_path, 200)
                self.stop()
                if attempt < _PORT_TRIES and "address already in use" in tail.lower():
                    log.warning("%s: port %d was taken; trying another", self.kind, self.port)
                    continue
                raise exc
        self.startup_s = time.monotonic() - t0
        log.info("%s server ready at %s in %.1f s (model %s, tensor-parallel %d, GPUs %s; log %s)", self.kind,
                 self.base_url, self.startup_s, self.served_model, tp, ",".join(gpus) or "none", self.log_path)
        return self

    def alive(self) -> bool:
        """True while the server process runs (not exited, not a zombie) under its supervisor."""
        if self._sup is None or self._sup.poll() is not None or self.server_pid is None:
            return False
        try:
            with open(f"/proc/{self.server_pid}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            return False
        return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X")

    def exit_reason(self) -> str:
        """Why the server is not running (exit status and the last log lines), for error messages. Waits
        for the supervisor to finish tearing down when the server is gone but it still runs."""
        if self._sup is not None and not self.alive():
            try:
                self._sup.wait(timeout=float(self.settings["stop_timeout_s"]) + 5)
            except subprocess.TimeoutExpired:
                pass
        code = self._sup.poll() if self._sup is not None else self._exit
        what = "is not running" if code is None else f"exited ({describe_status(server_status(code))})"
        tail = log_tail(self.log_path, 8)
        return f"{self.kind} server {what}; last lines of {self.log_path}:\n{tail}" if tail else \
            f"{self.kind} server {what} (log {self.log_path} is empty)"

    def stop(self) -> None:
        """Stop the server and everything it started (idempotent). SIGTERM, SIGKILL after the grace."""
        sup, self._sup = self._sup, None
        if sup is None:
            return
        assert sup.stdin is not None and sup.stdout is not None  # _launch opens both as pipes
        grace = float(self.settings["stop_timeout_s"])
        try:
            if sup.poll() is None:
                try:
                    sup.stdin.write(b"stop\n")
                    sup.stdin.flush()
                except (BrokenPipeError, OSError, ValueError):
                    pass
                try:
                    sup.wait(timeout=grace + 10)
                except subprocess.TimeoutExpired:
                    log.warning("%s: supervisor did not finish; killing process group %d", self.kind, sup.pid)
                    kill_group(sup.pid, signal.SIGKILL)
                    sup.wait(timeout=10)
        finally:
            self._exit = sup.returncode
            for pipe in (sup.stdin, sup.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
            atexit.unregister(self.stop)

    def __enter__(self) -> EngineServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals
    def _launch(self, cmd: list[str], gpus: list[str]) -> None:
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in (self.settings.get("env") or {}).items()})
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus) if gpus else env.get("CUDA_VISIBLE_DEVICES", "")
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.kind == "vllm":
            self.api_key = env.get("VLLM_API_KEY") or "vidcap-" + secrets.token_urlsafe(24)
            env["VLLM_API_KEY"] = self.api_key
            register_secret(self.api_key)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as fh:
            fh.write(f"\n==== vidcap: starting {self.kind} server at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                     f"{shlex.join(cmd)} (CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']!r})\n")
        grace = float(self.settings["stop_timeout_s"])
        sup_cmd = [sys.executable, "-m", "vidcap.llm.supervisor", "--log", str(self.log_path), "--grace", str(grace),
                   "--", *cmd]
        self._sup = subprocess.Popen(sup_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, start_new_session=True, close_fds=True)
        atexit.register(self.stop)
        assert self._sup.stdout is not None  # opened as a pipe just above
        line = self._sup.stdout.readline()   # the supervisor prints the server's pid once it started it
        self.server_pid = int(line) if line.strip().isdigit() else None

    def _wait_ready(self, t0: float) -> None:
        timeout = float(self.settings["startup_timeout_s"])
        stage = "health"
        last = ""
        while True:
            if not self.alive():
                raise RunnerFatal(f"{self.kind} server failed to start: {self.exit_reason()}")
            waited = time.monotonic() - t0
            if waited > timeout:
                raise RunnerFatal(f"{self.kind} server not ready after {timeout:g} s (waiting for /{stage}"
                                  f"{': ' + last if last else ''}); last lines of {self.log_path}:\n"
                                  f"{log_tail(self.log_path)}")
            try:
                if stage == "health":
                    self._get(f"http://{HOST}:{self.port}/health")
                    stage = "v1/models"
                if stage == "v1/models":
                    models = json.loads(self._get(f"{self.base_url}/models"))
                    ids = [m.get("id") for m in models.get("data", [])]
                    if self.served_model in ids:
                        return
                    last = f"served models {ids} lack {self.served_model!r}"
            except (OSError, ValueError, urllib.error.URLError) as exc:
                last = scrub(str(getattr(exc, "reason", None) or exc))
            time.sleep(0.5)

    def _get(self, url: str) -> str:
        req = urllib.request.Request(url)
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.read().decode("utf-8", "replace")
