"""The runner interface every model family implements.

A runner turns a stream of ``Request`` (prompt text, optional decoded frames) into a stream of
``(row_id, Generation | Exception)`` pairs, one per request, in any order, as soon as each is ready
(so the stage can journal it). A request's failure is returned as an exception for that row; only
``RunnerFatal`` (bad credentials, model not found, config that can never work) is raised, which
stops the job with its message.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from vidcap.media.frames import Frames


@dataclass
class Request:
    row_id: str
    user: str                      # rendered user prompt
    system: str = ""               # rendered system prompt ('' for none)
    frames: Frames | None = None   # None for text-only requests
    meta: dict = field(default_factory=dict)


@dataclass
class Generation:
    text: str
    finish_reason: str             # "stop" | "length"
    output_tokens: int
    prompt_tokens: int | None = None
    extra: dict = field(default_factory=dict)   # runner-specific per-row facts (e.g. retries)


class Runner:
    """Base class: ``load()`` once, then ``run(requests)``; ``provenance()`` names model and revision."""

    name = ""

    def __init__(self, settings: dict):
        self.settings = dict(settings)

    def load(self) -> None:
        """Load the model / create the client. Raise RunnerFatal when that cannot work."""

    def provenance(self) -> dict:
        return {"model": self.settings.get("model", ""), "revision": self.settings.get("revision", "")}

    def run(self, requests: Iterable[Request]) -> Iterator[tuple[str, Generation | BaseException]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the model / connections."""
