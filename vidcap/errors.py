"""Every error type vidcap raises on purpose, and how an error becomes one line of text.

Row-level errors (``MediaError``, ``FrameError``, ``StageRowError``) fail one row: the stage writes
``describe_error(exc)`` to that row's ``<stage>_error`` and goes on. Job-level errors stop a job with
their message: ``RunnerFatal`` (no row can succeed: bad key, missing model), ``ConfigError`` (a bad
config value), ``TableError`` (an unusable table), ``GatherError`` (stage outputs that do not cover
the shards exactly once). ``error_class`` turns a row's message into its class (paths, numbers and
ids stripped) so that 20,000 "file not found: /a/clip_000001.mp4" rows count as one kind of failure.
"""
from __future__ import annotations

import re


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
    (re.compile(r"""(?:(?<=\s)|(?<=^)|(?<=[(:=]))(?:~|\.{1,2})?/[^\s:,;'"()]*"""), "<path>"),
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
