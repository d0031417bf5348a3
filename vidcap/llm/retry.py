"""What follows a failed chat request, and the pacing of requests and tokens (``vidcap.llm.client``).

* **Retries**: 429, 408, 409, 425, 5xx, timeouts, dropped connections and malformed responses are
  retried with exponential backoff ``backoff_s * 2**(k-1)`` capped at ``max_backoff_s``, with
  "equal jitter" (a uniform wait between half and all of that); a ``Retry-After`` /
  ``retry-after-ms`` header replaces the computed wait (it is honoured even above
  ``max_backoff_s``).
* **Non-retryable** 4xx (400, 413, 422, ...) fail only their item at once.
* **Fatal**: 401/403 (authentication, permission) and 404 (wrong ``base_url`` or model): no request
  can succeed.
* **Pacing**: ``Pacer`` spreads requests (or tokens) evenly over the minute, with no burst.

Every message built here is scrubbed of registered secrets (``vidcap.redact``).
"""
from __future__ import annotations

import email.utils
import random
import time

from vidcap.redact import scrub

RETRY_STATUS = {408, 409, 425, 429}
FATAL_STATUS = {401: "authentication failed", 403: "permission denied", 404: "not found"}


class Pacer:
    """Spreads units (requests or tokens) at ``per_minute / 60`` per second, first come first served.

    ``reserve(n)`` returns the seconds to wait before using ``n`` units; ``adjust(delta)`` corrects an
    earlier reservation once the real count is known. No burst: within any window of W seconds at
    most ``rate*W`` units start, plus the units of one reservation.
    """

    def __init__(self, per_minute: float):
        self.rate = float(per_minute) / 60.0
        self.tat = 0.0  # when the units reserved so far are "paid for"

    def reserve(self, n: float, now: float) -> float:
        start = max(self.tat, now)
        self.tat = start + n / self.rate
        return start - now

    def adjust(self, delta: float, now: float) -> None:
        self.tat = max(self.tat + delta / self.rate, min(self.tat, now))


def retry_after(headers) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, or ``retry-after`` as seconds or an
    HTTP date); None when it did not say or said something unreadable."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def short(text: str, limit: int = 300) -> str:
    """``text`` scrubbed, on one line, at most ``limit`` characters."""
    text = " ".join(scrub(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_message(exc) -> str:
    """The server's own error message when it sent one, else the exception text (scrubbed)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return short(str(inner["message"]))
        if isinstance(inner, str):
            return short(inner)
    return short(getattr(exc, "message", None) or str(exc) or type(exc).__name__)


def fatal_message(status: int, msg: str, base_url: str | None, api_key_env: str, model: str) -> str:
    """The message of a fatal status (``FATAL_STATUS``): what failed, where, and what to check."""
    where = base_url or "api.openai.com"
    what = FATAL_STATUS[status]
    hint = {401: f"check the key in environment variable {api_key_env}",
            403: "the key may lack access to this model or endpoint",
            404: f"check base_url ({where}) and model ({model!r})"}[status]
    return f"API {what} (HTTP {status}) at {where}: {msg}; {hint}. Stopping: no request can succeed."


class TryFailed(Exception):
    """One try that did not give a result: ``status`` (HTTP, None for timeouts, dropped connections and
    malformed answers), ``retry_after`` (seconds the server asked for) and the server's own message."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None,
                 server_message: str = ""):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.server_message = server_message or message


class RetryPolicy:
    """What follows a failed try, apart from how a try is made.

    ``action(status)``: ``fatal`` for 401/403/404 (no request can succeed), ``retry`` for 408, 409,
    425, 429, 5xx and failures without a status (timeouts, dropped connections, malformed answers),
    ``fail`` for other 4xx (only that item fails). ``wait(tries, retry_after)``: the server's
    Retry-After when given (even above ``max_backoff_s``), else ``backoff_s * 2**(tries-1)`` capped at
    ``max_backoff_s`` with equal jitter (uniform between half and all of it).
    """

    def __init__(self, max_tries: int = 6, backoff_s: float = 1.0, max_backoff_s: float = 60.0):
        self.max_tries = max(1, int(max_tries))
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)

    def action(self, status: int | None) -> str:
        if status in FATAL_STATUS:
            return "fatal"
        if status is None or status in RETRY_STATUS or status >= 500:
            return "retry"
        return "fail"

    def wait(self, tries: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return retry_after
        cap = min(self.max_backoff_s, self.backoff_s * (2 ** (tries - 1)))
        return random.uniform(cap / 2, cap)
