"""Model runners behind one interface (``vidcap.runners.base.Runner``).

``get_runner(name, settings)``: ``transformers`` (in-process Hugging Face vision-language model,
``vidcap.runners.hf``), ``text_transformers`` (in-process text-only chat model, ``vidcap.runners.hf_text``)
or ``openai`` (any OpenAI-compatible HTTP API, images optional, ``vidcap.runners.openai_api``). Local
runners share ``vidcap.runners.local.LocalRunner``. No model name is hard-coded outside a runner and the
config.

``runner_for(block, media)``: the one mapping from a config block (a stage's ``runner:`` value:
``transformers``, ``openai``, ``pllava``, ``vllm``, ``sglang``) to a runner name, for a stage that sends
media (caption, a judge that attaches frames) or text only (tags, window summaries, a text judge);
``load_runner(block, settings, media)`` builds it. ValueError names the block and what is allowed.

``result_settings(block, settings)``: a runner's config block without the settings that cannot change
results (speed, limits, retries, prices), for a stage's journal fingerprint.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the runner modules load on demand (they pull in media and model code)
    from vidcap.runners.base import Runner

RUNNERS = {
    "transformers": "vidcap.runners.hf:TransformersRunner",
    "text_transformers": "vidcap.runners.hf_text:TextTransformersRunner",
    "openai": "vidcap.runners.openai_api:OpenAIRunner",
    "pllava": "vidcap.runners.pllava:PllavaRunner",
    "vllm": "vidcap.runners.engine:VLLMRunner",
    "sglang": "vidcap.runners.engine:SGLangRunner",
}

# Per config block (stages.<stage>.<block>): settings that do not change results.
_NOT_RESULT = {
    "transformers": {"attn_implementation", "device_map"},
    "pllava": {"attn_implementation"},
    "openai": {"api_key_env", "concurrency", "requests_per_minute", "tokens_per_minute", "max_tries",
               "timeout_s", "backoff_s", "max_backoff_s", "price_per_1m_input", "price_per_1m_output"},
}
# engines started per job: where they run from, how long to wait, how hard to push them
_NOT_RESULT["vllm"] = _NOT_RESULT["sglang"] = {
    "python", "env", "startup_timeout_s", "stop_timeout_s", "gpu_memory_utilization", "max_num_seqs",
    "tensor_parallel_size", "concurrency", "timeout_s", "max_tries", "backoff_s", "max_backoff_s", "server_log",
    "replicas", "api_server_count", "mm_processor_cache_gb"}


# config block -> (runner for media requests, runner for text-only requests); None: not offered
_BLOCKS = {
    "transformers": ("transformers", "text_transformers"),
    "openai": ("openai", "openai"),
    "pllava": ("pllava", None),
    "vllm": ("vllm", "vllm"),
    "sglang": ("sglang", "sglang"),
}


def runner_for(block: str, media: bool) -> str:
    """The runner name for config block ``block`` when requests carry media (``media``) or text only."""
    pair = _BLOCKS.get(block)
    name = pair and pair[0 if media else 1]
    if not name:
        allowed = [b for b, p in _BLOCKS.items() if p[0 if media else 1]]
        raise ValueError(f"runner {block!r} cannot serve {'media' if media else 'text-only'} requests; "
                         f"allowed: {', '.join(allowed)}")
    return name


def load_runner(block: str, settings: dict, media: bool) -> Runner:
    return get_runner(runner_for(block, media), settings)


def get_runner(name: str, settings: dict) -> Runner:
    if name not in RUNNERS:
        raise ValueError(f"unknown runner {name!r}; known: {', '.join(RUNNERS)}")
    module, _, cls = RUNNERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(settings)


def result_settings(block: str, settings: dict) -> dict:
    """``settings`` of config block ``block`` (``transformers``, ``openai``, ...) minus those that do not
    change results."""
    skip = _NOT_RESULT.get(block, set())
    return {k: v for k, v in settings.items() if k not in skip}
