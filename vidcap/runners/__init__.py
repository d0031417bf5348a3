"""Model runners behind one interface (``vidcap.runners.base.Runner``).

``get_runner(name, settings)``: ``transformers`` (in-process Hugging Face vision-language model),
``text_transformers`` (in-process text-only chat model, ``vidcap.runners.hf_text``) or ``openai``
(any OpenAI-compatible HTTP API, images optional). No model name is hard-coded outside a runner and the config.
"""
from __future__ import annotations

RUNNERS = ("transformers", "text_transformers", "openai")


def get_runner(name: str, settings: dict):
    if name == "transformers":
        from vidcap.runners.hf import TransformersRunner

        return TransformersRunner(settings)
    if name == "text_transformers":
        from vidcap.runners.hf_text import TextTransformersRunner

        return TextTransformersRunner(settings)
    if name == "openai":
        from vidcap.runners.openai_api import OpenAIRunner

        return OpenAIRunner(settings)
    raise ValueError(f"unknown runner {name!r}; known: {', '.join(RUNNERS)}")
