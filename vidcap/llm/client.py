"""A reusable chat-completions client for any OpenAI-compatible endpoint (OpenAI, vLLM, SGLang, ...).

Built on the official ``openai`` package (``AsyncOpenAI``, with the package's own retries disabled so that
every try is ours and counted). Nothing here is caption-specific: a stage hands over ``ChatJob`` items (an
id, the ``messages`` list, generation options, an estimate of its tokens) and gets
``(id, ChatResult | ChatError)`` pairs back as they finish. Later text stages (tags, judge) use it the same way.

Semantics (``docs/api.md`` has the long form):

* **Concurrency**: at most ``concurrency`` requests in flight (one asyncio event loop in a background
  thread; ``map`` is an ordinary iterator for the calling thread). Jobs are pulled lazily from the
  input iterable, a bounded number ahead, so a caller that decodes frames lazily is not drained.
* **Limits shared by the client** (one client per job): ``requests_per_minute`` and
  ``tokens_per_minute`` are enforced by pacing (each request reserves its slot on a schedule, so in
  any window of W seconds at most ``rpm*W/60 + 1`` requests start and at most
  ``tpm*W/60 + one request's tokens`` tokens are reserved). A request reserves its estimated tokens
  (prompt estimate + max output tokens) and the reservation is corrected with the real usage.
* **Retries, non-retryable and fatal statuses**: ``vidcap.llm.retry`` (``RetryPolicy``). A 429
  also pauses every request of the client until its wait is over (the server said the whole key is
  over its limit). After ``max_tries`` tries the item fails with a ``ChatError`` naming the last
  problem. A fatal status (401/403/404) raises ``ChatFatal`` (a ``RunnerFatal``) from
  ``map``/``complete``: nothing else can succeed, stop the job.
* **The key** comes from the environment variable named by ``api_key_env``. A missing variable is
  fatal and the message names the variable. The key is scrubbed from every message this module
  produces and from log records of this package, ``openai`` and ``httpx``; it never leaves this
  process except in the ``Authorization`` header.
* **Usage**: ``ChatResult`` carries prompt/completion tokens, tries, seconds and cost (from
  ``price_per_1m_input`` / ``price_per_1m_output``; None when no price is configured).
* **Busy time**: ``busy_seconds()`` is the client's total time with at least one HTTP try in flight,
  over its life (``vidcap.llm.stats.BusyClock`` says what counts).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vidcap.errors import RunnerFatal
from vidcap.llm import retry
from vidcap.llm import stats as usage
from vidcap.llm.retry import Pacer, RetryPolicy, TryFailed
from vidcap.llm.stats import BusyClock, ClientStats
from vidcap.redact import register_secret

log = logging.getLogger("vidcap.llm")

DEFAULTS = {
    "model": "gpt-4o-mini",
    "base_url": None,
    "api_key_env": "OPENAI_API_KEY",
    "concurrency": 16,
    "requests_per_minute": None,
    "tokens_per_minute": None,
    "max_tries": 6,
    "timeout_s": 60.0,
    "backoff_s": 1.0,
    "max_backoff_s": 60.0,
    "price_per_1m_input": None,
    "price_per_1m_output": None,
}


class ChatFatal(RunnerFatal):
    """No request can succeed (bad key, no permission, wrong URL/model, missing key variable)."""


class ChatError(RuntimeError):
    """One item failed for good (non-retryable error, or tries exhausted). ``tries``: HTTP tries made."""

    def __init__(self, message: str, tries: int = 0, status: int | None = None):
        super().__init__(message)
        self.tries = tries
        self.status = status


@dataclass
class ChatJob:
    key: object                       # the caller's id, returned with the result
    messages: list                    # chat-completions messages
    options: dict = field(default_factory=dict)   # extra create() arguments (max_tokens, ...)
    est_tokens: int = 0               # prompt-token estimate for the TPM limiter


@dataclass
class ChatResult:
    text: str
    finish_reason: str                # as the server said: stop, length, content_filter, ...
    prompt_tokens: int | None
    completion_tokens: int | None
    tries: int
    seconds: float                    # first try sent -> result, waits included
    cost_usd: float | None
    model: str = ""                   # the model the server says answered


# ------------------------------------------------------------------------------------------- key


def api_key_from_env(var: str | None, what: str = "api_key_env") -> str:
    """The key held by environment variable ``var``; ChatFatal naming the variable when it is unset.

    A variable set to the empty string means "no key" (local vLLM/SGLang servers): a placeholder
    is sent, as those servers expect.
    """
    if not var:
        raise ChatFatal(f"no API key variable configured ({what} is empty)")
    if var not in os.environ:
        raise ChatFatal(f"environment variable {var} is not set: it must hold the API key "
                        f"({what} names the variable; the key itself never goes in config)")
    value = os.environ[var].strip()
    if not value:
        return "EMPTY"
    register_secret(value)
    return value


# ------------------------------------------------------------------------------------------ client


class ChatClient:
    """Chat completions with concurrency, RPM/TPM limits, retries and usage; see the module docstring.

    ``settings``: the keys of ``DEFAULTS`` (others are ignored). Use ``map(jobs)`` from ordinary code,
    or ``await acomplete(job)`` from inside ``run_async``. ``close()`` when done.
    """

    def __init__(self, settings: dict):
        s = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None or k == "base_url"}}
        self.settings = s
        self.model = s["model"]
        self.concurrency = int(s["concurrency"])
        self.timeout_s = float(s["timeout_s"])
        self.policy = RetryPolicy(s["max_tries"], s["backoff_s"], s["max_backoff_s"])
        self.price_in = s["price_per_1m_input"]
        self.price_out = s["price_per_1m_output"]
        self._rpm = Pacer(s["requests_per_minute"]) if s["requests_per_minute"] else None
        self._tpm = Pacer(s["tokens_per_minute"]) if s["tokens_per_minute"] else None
        self.stats = ClientStats()
        self._api_key = api_key_from_env(s["api_key_env"])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None  # openai.AsyncOpenAI once started (openai is imported lazily)
        self._sem: asyncio.Semaphore | None = None
        self._pause_until = 0.0
        self._busy = BusyClock()
        self._fatal: ChatFatal | None = None

    # -- lifecycle
    def start(self) -> None:
        if self._loop is not None:
            return
        loop = self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def _run():
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=_run, name="vidcap-llm-loop", daemon=True)
        self._thread.start()
        ready.wait()
        self.run_async(self._setup()).result()

    async def _setup(self) -> None:
        import openai  # heavy (1-2 s to import): only when a client is made

        for name in ("httpx", "httpx2"):  # one INFO line per HTTP request is too much at scale
            lg = logging.getLogger(name)
            if lg.level == logging.NOTSET:
                lg.setLevel(logging.WARNING)

        self._sem = asyncio.Semaphore(self.concurrency)
        limits = openai.DEFAULT_CONNECTION_LIMITS
        http = openai.DefaultAsyncHttpxClient(
            limits=type(limits)(max_connections=max(self.concurrency * 2, 10),
                                max_keepalive_connections=max(self.concurrency, 10),
                                keepalive_expiry=limits.keepalive_expiry))
        self._client = openai.AsyncOpenAI(
            api_key=self._api_key, base_url=self.settings["base_url"] or None, max_retries=0,
            timeout=openai.Timeout(self.timeout_s, connect=min(self.timeout_s, 10.0)), http_client=http)

    def run_async(self, coro):
        """Schedule ``coro`` on the client's loop; returns a concurrent.futures.Future."""
        if self._loop is None:
            self.start()
        assert self._loop is not None  # start() set it
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def close(self) -> None:
        if self._loop is None:
            return
        if self._client is not None:
            try:
                self.run_async(self._client.close()).result(timeout=10)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None  # start() sets it together with the loop
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = self._client = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def busy_seconds(self) -> float:
        """Seconds with at least one try in flight so far (the interval under way included)."""
        return self._busy.seconds()

    # -- public API
    def complete(self, messages: list, **options) -> ChatResult:
        """One request, synchronously; raises ChatError / ChatFatal."""
        (_, res), = list(self.map([ChatJob(0, messages, options)]))
        if isinstance(res, BaseException):
            raise res
        return res

    def map(self, jobs: Iterable[ChatJob], ahead: int | None = None) -> Iterator[tuple[object, ChatResult | ChatError]]:
        """Run ``jobs`` concurrently; yield ``(key, ChatResult | ChatError)`` as each finishes.

        Jobs are taken from the iterable lazily, at most ``ahead`` (default ``2 * concurrency``) beyond
        those finished. A ``ChatFatal`` is raised as soon as one occurs; requests still in flight
        are cancelled. An exception raised by the ``jobs`` iterable itself propagates after the
        in-flight requests finish and their results are yielded.
        """
        self.start()
        ahead = ahead or 2 * self.concurrency
        done: queue.Queue = queue.Queue()
        futures: set[concurrent.futures.Future] = set()
        it = iter(jobs)
        exhausted = False
        source_error: BaseException | None = None
        try:
            while True:
                while not exhausted and len(futures) < ahead:
                    try:
                        job = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    except Exception as exc:  # noqa: BLE001 - re-raised below, after in-flight work
                        source_error = exc
                        exhausted = True
                        break
                    fut = self.run_async(self._run_job(job))
                    futures.add(fut)
                    fut.add_done_callback(lambda f, j=job: done.put((j, f)))
                if not futures:
                    break
                job, fut = done.get()
                futures.discard(fut)
                err = fut.exception()
                if isinstance(err, ChatFatal):
                    raise err
                if err is not None:  # a bug of ours: fail the item, keep the job
                    log.error("chat request %r failed unexpectedly: %s", job.key, retry.short(repr(err)))
                    yield job.key, ChatError(f"internal error: {retry.short(str(err))}")
                    continue
                yield job.key, fut.result()
        finally:
            for fut in futures:
                fut.cancel()
        if source_error is not None:
            raise source_error

    # -- the work
    async def _wait_limits(self, est_tokens: int) -> None:
        loop_now = time.monotonic()
        wait = 0.0
        if self._rpm:
            wait = max(wait, self._rpm.reserve(1, loop_now))
        if self._tpm:
            wait = max(wait, self._tpm.reserve(max(1, est_tokens), loop_now))
        wait = max(wait, self._pause_until - loop_now)
        if wait > 0:
            self.stats.limiter_wait_s += wait
            await asyncio.sleep(wait)
        # a 429 that arrived while we slept pauses us too
        while (left := self._pause_until - time.monotonic()) > 0:
            await asyncio.sleep(left)

    def _est_total(self, job: ChatJob) -> int:
        opts = job.options
        out = opts.get("max_completion_tokens") or opts.get("max_tokens") or 0
        return int(job.est_tokens) + int(out)

    def _cost(self, prompt_tokens, completion_tokens) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        return ((prompt_tokens or 0) * float(self.price_in or 0)
                + (completion_tokens or 0) * float(self.price_out or 0)) / 1e6

    async def _attempt(self, job: ChatJob, tries: int, t0: float) -> ChatResult:
        """One HTTP try. Returns the result, or raises ``TryFailed`` saying what went wrong (with the
        status and Retry-After when the server sent them); the retry policy decides what follows."""
        import openai  # heavy (1-2 s to import): only when a client is made

        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=self.model, messages=job.messages, **job.options)
            resp = raw.parse()
            if isinstance(resp, str | bytes):   # a 200 that is not JSON (a proxy's HTML page): openai hands back text
                head = resp[:80] if isinstance(resp, str) else resp[:80].decode("utf-8", "replace")
                raise ValueError(f"the response was not JSON (content-type {raw.headers.get('content-type') or '-'}): "
                                 f"{head!r}")
            return self._result(resp, tries, t0)
        except openai.APIStatusError as exc:
            raise TryFailed(f"HTTP {exc.status_code}: {retry.error_message(exc)}", exc.status_code,
                            retry.retry_after(exc.response.headers), retry.error_message(exc)) from None
        except openai.APITimeoutError:
            raise TryFailed(f"timed out after {self.timeout_s:g} s") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise TryFailed(f"connection error: {retry.short(str(cause) or type(cause).__name__)}") from None
        except (openai.APIResponseValidationError, ValueError, KeyError, TypeError,
                AttributeError, IndexError) as exc:
            raise TryFailed(f"malformed response: {retry.short(str(exc) or type(exc).__name__, 200)}") from None

    async def _run_job(self, job: ChatJob) -> ChatResult | ChatError:
        """Tries of one job under the limits and ``self.policy``: a result, or a ChatError after the last
        try; raises ChatFatal when the policy says no request can succeed."""
        if self._fatal is not None:
            raise self._fatal
        t0 = time.monotonic()
        est = self._est_total(job)
        failure: TryFailed | None = None
        tries = 0
        assert self._sem is not None  # _setup() created it when the loop started
        while tries < self.policy.max_tries:
            async with self._sem:
                await self._wait_limits(est)
                if self._fatal is not None:
                    raise self._fatal
                tries += 1
                self._busy.track(+1)
                self.stats.max_in_flight = max(self.stats.max_in_flight, self._busy.in_flight)
                sent = time.monotonic()
                try:
                    result = await self._attempt(job, tries, t0)
                except TryFailed as exc:
                    failure = exc
                else:
                    self._count_ok(result, time.monotonic() - sent, est)
                    return result
                finally:
                    self._busy.track(-1)
            action = self.policy.action(failure.status)
            if action == "fatal":
                assert failure.status is not None  # only statuses in FATAL_STATUS are fatal
                self._fatal = ChatFatal(retry.fatal_message(failure.status, failure.server_message, self.settings["base_url"],
                                                      self.settings["api_key_env"], self.model))
                raise self._fatal
            if action == "fail":
                usage.count_item(self.stats, tries, ok=False)
                return ChatError(str(failure), tries, failure.status)
            if self._tpm:  # the failed try used no tokens: give the reservation back
                self._tpm.adjust(-max(1, est), time.monotonic())
            wait = self.policy.wait(tries, failure.retry_after)
            if failure.status == 429:  # the whole key is over its limit: pause every request
                self._pause_until = max(self._pause_until, time.monotonic() + wait)
            if tries >= self.policy.max_tries:
                break
            log.info("chat %r: try %d/%d failed (%s); retrying in %.2f s", job.key, tries,
                     self.policy.max_tries, failure, wait)
            await asyncio.sleep(wait)
        usage.count_item(self.stats, tries, ok=False)
        return ChatError(f"gave up after {tries} tries: {failure}", tries, failure.status if failure else None)

    def _count_ok(self, result: ChatResult, took: float, est: int) -> None:
        usage.count_request(self.stats, took)
        used = (result.prompt_tokens or 0) + (result.completion_tokens or 0)
        if self._tpm and used:  # correct the reservation with the real usage
            self._tpm.adjust(used - max(1, est), time.monotonic())
        usage.count_item(self.stats, result.tries, ok=True, result=result)

    def _result(self, resp, tries: int, t0: float) -> ChatResult:
        if not getattr(resp, "choices", None):
            raise ValueError("no choices in the response")
        choice = resp.choices[0]
        text = "" if choice.message.content is None else choice.message.content
        if not isinstance(text, str):
            raise TypeError("message content is not text")
        usage = getattr(resp, "usage", None)
        pt = getattr(usage, "prompt_tokens", None) if usage is not None else None
        ct = getattr(usage, "completion_tokens", None) if usage is not None else None
        return ChatResult(text=text, finish_reason=str(choice.finish_reason or ""), prompt_tokens=pt,
                          completion_tokens=ct, tries=tries, seconds=time.monotonic() - t0,
                          cost_usd=self._cost(pt, ct), model=str(getattr(resp, "model", "") or ""))
