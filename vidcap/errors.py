"""Every error type vidcap raises on purpose, and how an error becomes one line of text.

Row-level errors (``MediaError``, ``FrameError``, ``StageRowError``) fail one row: the stage writes
``describe_error(exc)`` to that row's ``<stage>_error`` and goes on. Job-level errors stop a job with
their message: ``RunnerFatal`` (no row can succeed: bad key, missing model), ``ConfigError`` (a bad
config value), ``TableError`` (an unusable table), ``GatherError`` (stage outputs that do not cover
the shards exactly once). ``error_class`` turns a row's message into its class (paths, numbers and
ids stripped) so that 20,000 "file not found: /a/clip_000001.mp4" rows count as one kind of failure.
"""
from __future__ import annotations

import os
import re
import sys


class MediaError(Exception):
    """Readable reason a row's media can't be used (the message goes into ``<stage>_error``)."""


class FrameError(MediaError):
    """Readable reason a file's frames can't be read (missing, not a video, no video stream, decode failure...)."""


class StageRowError(ValueError):
    """A row a stage cannot process, with a message that says it all (written without the type name)."""


class RunnerFatal(RuntimeError):
    """A problem no row can get past (authentication, missing model): stop the job, say why."""


class ConfigError(ValueError):
    """One or more invalid configuration values; the message lists each."""


class TableError(ValueError):
    """A table that can't be used: missing, unreadable, unknown format or missing a required column."""


class GatherError(RuntimeError):
    """Stage outputs that do not cover the shards exactly once, or that cannot be read."""


_SELF_EXPLAINING = (MediaError, StageRowError)


def describe_error(exc: BaseException) -> str:
    """One readable line: the exception's message, with its type when the message alone is vague."""
    msg = " ".join(str(exc).split())
    if not msg:
        return type(exc).__name__
    return msg if isinstance(exc, _SELF_EXPLAINING) else f"{type(exc).__name__}: {msg}"


_CLASS_RULES = (
    (re.compile(r"""[^\s:,;'"()=]*/[^\s,;'"()]*"""), "<path>"),
    (re.compile(r"\b[\w.-]+\.(?:mp4|avi|mov|mkv|webm|m2ts|jpe?g|png|ppm|bmp|pgm|tiff?|webp|gif|csv|parquet|"
                r"jsonl?|ya?ml|log|txt)\b", re.I), "<path>"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<id>"),
    (re.compile(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b"), "<n>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<value>"),
)


def error_class(message: str) -> str:
    """The kind of an error message: file paths, long hex ids, numbers and quoted values replaced by
    ``<path>``, ``<id>``, ``<n>``, ``<value>``; whitespace collapsed. ``''`` for no error."""
    text = " ".join(str(message or "").split())
    for pattern, token in _CLASS_RULES:
        text = pattern.sub(token, text)
    return text


class ErrorGroups:
    """Error messages counted by ``error_class``, with up to ``examples`` distinct messages each.

    ``add(message)``, ``update(other)``; ``top(k)`` -> ``[(class, count, [examples])]`` commonest first;
    ``to_json()`` / ``from_json()`` for stats files and summaries.
    """

    def __init__(self, examples: int = 3):
        self.examples = examples
        self.counts: dict[str, int] = {}
        self.samples: dict[str, list[str]] = {}

    def add(self, message, n: int = 1) -> None:
        if not message:
            return
        cls = error_class(message)
        self.counts[cls] = self.counts.get(cls, 0) + n
        seen = self.samples.setdefault(cls, [])
        if len(seen) < self.examples and message not in seen:
            seen.append(str(message))

    def update(self, other: ErrorGroups) -> None:
        for cls, n in other.counts.items():
            self.counts[cls] = self.counts.get(cls, 0) + n
            seen = self.samples.setdefault(cls, [])
            for msg in other.samples.get(cls, []):
                if len(seen) < self.examples and msg not in seen:
                    seen.append(msg)

    def total(self) -> int:
        return sum(self.counts.values())

    def top(self, k: int | None = None) -> list[tuple[str, int, list[str]]]:
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(cls, n, list(self.samples.get(cls, []))) for cls, n in ranked[:k]]

    def to_json(self, k: int | None = None) -> list[dict]:
        return [{"class": c, "count": n, "examples": ex} for c, n, ex in self.top(k)]

    @classmethod
    def from_json(cls, items: list[dict] | None, examples: int = 3) -> ErrorGroups:
        groups = cls(examples)
        for item in items or []:
            groups.counts[item["class"]] = groups.counts.get(item["class"], 0) + int(item["count"])
            groups.samples.setdefault(item["class"], []).extend(item.get("examples", [])[:examples])
        return groups


def say_fatal(line: str) -> None:
    """Print a command's last line (why it failed) on stderr, the job's log. When that cannot be
    written (a full disk holds the log too), write it to the console instead: the file descriptor
    ``VIDCAP_CONSOLE_FD`` that the workflow's shell keeps open on Snakemake's stderr."""

    try:
        print(line, file=sys.stderr, flush=True)
        return
    except OSError:
        pass
    fd = os.environ.get("VIDCAP_CONSOLE_FD", "")
    if fd.isdigit():
        try:
            os.write(int(fd), (line + "\n").encode("utf-8", "replace"))
        except OSError:
            pass
