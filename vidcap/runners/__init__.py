"""Model runners behind one interface (``vidcap.runners.base.Runner``).

``get_runner(name, settings)``: ``transformers`` (in-process Hugging Face model) or ``openai``
(any OpenAI-compatible HTTP API). No model name is hard-coded outside a runner and the config.
"""
from __future__ import annotations

RUNNERS = ("transformers", "openai")


def get_runner(name: str, settings: dict):
    if name == "transformers":
        from vidcap.runners.hf import TransformersRunner

        return TransformersRunner(settings)
    if name == "openai":
        from vidcap.runners.openai_api import OpenAIRunner

        return OpenAIRunner(settings)
    raise ValueError(f"unknown runner {name!r}; known: {', '.join(RUNNERS)}")
