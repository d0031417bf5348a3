"""Media on object storage: ``s3://``, ``gs://``, ``az://``, ``https://`` ... URLs read through fsspec.

Contracts:

* ``is_url(path)``: a ``scheme://`` path. URLs are never joined to a media base or normalised.
* ``open_remote(url, whole_reads=True)``: a read-only, seekable binary file (``RemoteFile``) that
  fetches byte ranges as they are read: ``MIN_FETCH`` after each jump, doubling on every contiguous
  refill up to ``MAX_AHEAD`` (a probe reads kilobytes; a long read streams in a few requests). A
  reader that knows what it will read next says so with ``expect(start, end)`` (a decoder, from the
  container's index: a GOP from its keyframe to the wanted frame): a refill at a position inside
  ``[start, end)`` fetches through ``end`` in one request; the spans it will read after that one
  (``plan(spans)``: the other frames a sampler wants) are fetched in the same request while it fetches
  at most ``PLAN_GAP`` or an eighth more than a request each would (a short clip's GOPs: one request).
  ``whole_reads=False``: ``read(n)`` may return fewer than ``n`` bytes (what the buffer holds), as
  FFmpeg's I/O allows, so its read size does not set the fetch size. ``read_behind``: bytes also
  fetched before the first unannounced jump into the object's second half (an index at the end, as
  MP4's ``moov`` after the media), for a reader that will decode the end: a small clip's last GOP
  comes with the index. A fetch stops where kept bytes begin. Memory: one buffer of at most
  ``MAX_AHEAD`` bytes a file, and the blocks kept for the next open of the same object (``KEEP_TOTAL``
  bytes a process, shared by its threads: a job's URL rows may run in threads, ``vidcap.stages.rows``).
* ``s3://`` objects are read by ranged GETs of a presigned URL over kept-open connections
  (``vidcap.io.ranged_http``: a fraction of s3fs's CPU per request), and an object's size comes with its
  first block (one request, not a metadata request and then a read); other stores, S3 settings a
  presigned URL cannot carry, and answers it cannot get past (a redirect to another region, 400, 401,
  403) go through fsspec (``fs.info``, ``fs.cat_file``).
* Every request goes through ``call``: a missing object is ``RemoteError("object not found: URL")``,
  a refused one ``RemoteError("permission denied: URL")`` at once; anything else (``503 SlowDown``,
  a connection cut, a short body) is retried ``RETRIES`` times with exponential backoff and jitter,
  then becomes ``RemoteError("cannot read URL: ...")``. A row error, never bytes that are not the
  object's.
* Credentials and endpoints come from where the filesystem library looks (environment such as
  ``AWS_ENDPOINT_URL``/``AWS_PROFILE``, ``FSSPEC_<PROTOCOL>_<KEY>`` variables, ``~/.aws``, fsspec
  config files, instance roles); vidcap holds none. Messages name ``public_url(url)``: no user info,
  no query string (signatures of presigned URLs).
* ``STATS``: requests and bytes fetched by this process (the benchmark reads it).
"""
from __future__ import annotations

import io
import os
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from vidcap.env import env_float, env_int
from vidcap.errors import MediaError
from vidcap.io import ranged_http
from vidcap.redact import register_storage_secrets, scrub

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
RETRIES = env_int("VIDCAP_REMOTE_RETRIES", 5)      # tries after the first
ROWS_IN_FLIGHT = env_int("VIDCAP_REMOTE_ROWS_IN_FLIGHT", 8, least=1)   # URL rows a job handles at once
BACKOFF_S = env_float("VIDCAP_REMOTE_BACKOFF_S", 0.25, positive=False)
MAX_BACKOFF_S = 8.0
MAX_AHEAD = 8 << 20
MIN_FETCH = 32 << 10          # the least fetched after a jump (FFmpeg then reads 8 KB at a time)
PLAN_GAP = 8 << 10            # bytes between planned spans always fetched with them (less than a request costs)
KEEP_BLOCK, KEEP_TOTAL = MAX_AHEAD, 32 << 20   # blocks kept for the next open of the same object
STATS = {"requests": 0, "bytes": 0, "retries": 0}
SIZE_TTL_S, _SIZES_KEPT = 60.0, 64
_SIZES: dict[str, tuple[int, float]] = {}
_FS: dict[str, tuple[Any, str]] = {}
_S3FS: dict[str, Any] = {}   # scheme -> s3fs instance, while fsspec still caches it
os.register_at_fork(after_in_child=_S3FS.clear)   # fsspec makes a child its own


class RemoteError(MediaError):
    """An object that cannot be read: missing, refused, or failing after the retries."""


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local file name."""
    return bool(_URL.match(str(path or "")))


def public_url(url: str) -> str:
    """``url`` without ``user:password@`` and without its query string (presigned signatures)."""
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@?#]*@", r"\1", str(url))
    return url.split("?", 1)[0].split("#", 1)[0]


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path within it) for ``url``; kept for the last ``_SIZES_KEPT`` URLs (a row
    opens its object several times), and the s3fs instance of plain ``s3://`` URLs (fsspec's lookup)."""
    import fsspec  # heavy/optional library: loaded only when this runs

    kept = _FS.get(url)
    if kept is not None:
        return kept
    register_storage_secrets()
    scheme, _, rest = url.partition("://")
    plain = scheme in ("s3", "s3a") and "?" not in rest and "#" not in rest   # no per-URL options
    fs = _S3FS.get(scheme) if plain else None
    if fs is not None and _still_cached(fs):
        found = (fs, fs._strip_protocol(url))
    else:
        try:
            found = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise RemoteError(f"cannot read {scheme}:// URLs here ({exc}); see docs/storage.md") from None
        if plain:
            _S3FS[scheme] = found[0]
    _put(_FS, url, found)
    return found


def _still_cached(fs: Any) -> bool:
    """Whether fsspec still hands out ``fs`` (not after ``clear_instance_cache``)."""
    return getattr(type(fs), "_cache", {}).get(getattr(fs, "_fs_token_", None)) is fs


def _put(cache: dict, url: str, value: Any) -> None:
    """``cache[url] = value``, the oldest entry dropped past ``_SIZES_KEPT`` (rows may run in threads)."""
    with _LOCK:
        if url not in cache and len(cache) >= _SIZES_KEPT:
            cache.pop(next(iter(cache)))
        cache[url] = value


def _fatal(exc: BaseException, url: str) -> RemoteError | None:
    """The RemoteError that no retry can fix, or None when ``exc`` may pass."""
    if isinstance(exc, FileNotFoundError):
        return RemoteError(f"object not found: {public_url(url)}")
    if isinstance(exc, PermissionError):
        return RemoteError(f"permission denied: {public_url(url)}")
    if isinstance(exc, IsADirectoryError):
        return RemoteError(f"is a prefix, not an object: {public_url(url)}")
    if isinstance(exc, RemoteError):
        return exc
    return None


def _why(exc: BaseException) -> str:

    text = " ".join(str(exc).split()) or type(exc).__name__
    text = scrub(text)
    return text if len(text) <= 160 else text[:157] + "..."


def call(fn: Callable[[], Any], url: str, retries: int | None = None) -> Any:
    """``fn()`` with the retry policy of the module docstring; RemoteError when it gives up."""
    tries = (RETRIES if retries is None else retries) + 1
    for attempt in range(tries):
        try:
            _count("requests", 1)
            return fn()
        except Exception as exc:  # noqa: BLE001 - sorted below into fatal and retryable
            fatal = _fatal(exc, url)
            if fatal is not None:
                raise fatal from None
            if attempt + 1 >= tries:
                raise RemoteError(f"cannot read {public_url(url)} after {tries} tries: {_why(exc)}") from None
            _count("retries", 1)
            delay = min(MAX_BACKOFF_S, BACKOFF_S * 2 ** attempt)
            time.sleep(delay * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")


def _count(key: str, n: int) -> None:
    with _LOCK:
        STATS[key] += n


_BLOCKS: dict[str, list[tuple[int, bytes]]] = {}
_KEPT = [0]
_LOCK = threading.Lock()


def _keep_block(url: str, start: int, data: bytes) -> None:
    """Keep a fetched block (headers, an index at the end, GOPs) for reads that come back to it: FFmpeg
    returns to the file's start after reading its index, a stage may open the object again (motion's
    later rounds decode frames between the first ones). At most ``KEEP_TOTAL`` bytes, the least
    recently used objects dropped first."""
    if len(data) > KEEP_BLOCK:
        return
    with _LOCK:   # a job's URL rows run in threads (``vidcap.stages.rows``)
        blocks = _BLOCKS.pop(url, [])
        blocks.append((start, data))
        _BLOCKS[url] = blocks
        _KEPT[0] += len(data)
        while _KEPT[0] > KEEP_TOTAL and _BLOCKS:
            _KEPT[0] -= sum(len(d) for _, d in _BLOCKS.pop(next(iter(_BLOCKS))))


def _kept(url: str) -> list[tuple[int, bytes]]:
    size = _SIZES.get(url)   # blocks are used as long as the object's size is (SIZE_TTL_S)
    if size is None or time.monotonic() - size[1] >= SIZE_TTL_S:
        return []
    return _BLOCKS.get(url, [])


def _kept_block(url: str, pos: int) -> tuple[int, bytes] | None:
    for start, data in reversed(_kept(url)):
        if start <= pos < start + len(data):
            return start, data
    return None


def _kept_from(url: str, pos: int, end: int) -> int:
    """``end``, or where a kept block that holds the bytes through ``end`` begins after ``pos``."""
    for start, data in _kept(url):
        if pos < start < end <= start + len(data):
            end = start
    return end


def forget() -> None:
    """Drop every kept size, block and presigned URL (the next read of any object asks the store again)."""
    ranged_http.forget()
    with _LOCK:
        _SIZES.clear()
        _FS.clear()
        _BLOCKS.clear()
        _KEPT[0] = 0


def object_size(url: str) -> int:
    """Size in bytes of the object at ``url``; RemoteError when it is missing, a prefix or refused.
    The last ``_SIZES_KEPT`` answers are kept for ``SIZE_TTL_S`` seconds: a row's check and its open
    (and a probe then a sampling of the same clip) cost one metadata request, not one each."""
    now = time.monotonic()
    kept = _SIZES.get(url)
    if kept is not None and now - kept[1] < SIZE_TTL_S:
        return kept[0]
    fs, path = filesystem(url)
    size = _size_with_first_block(url, fs, path)
    if size is None:
        info = call(lambda: fs.info(path), url)
        if info.get("type") == "directory":
            raise RemoteError(f"is a prefix, not an object: {public_url(url)}")
        size = info.get("size")
        if size is None:
            raise RemoteError(f"cannot tell the size of {public_url(url)}")
    _put(_SIZES, url, (int(size), now))
    return int(size)


def _size_with_first_block(url: str, fs: Any, path: str) -> int | None:
    """The object's size from a ranged GET of its first ``MIN_FETCH`` bytes, which are kept for the
    reads that follow (``_keep_block``); None where the light path does not apply, the object is not
    found or no range of it can be read (then ``fs.info`` names a missing object or a prefix, or sizes
    an empty one)."""
    signed = ranged_http.direct_url(fs, path, url)
    if signed is None:
        return None

    def fetch() -> tuple[bytes, int]:
        try:
            return ranged_http.get_range(signed, 0, MIN_FETCH)
        except (FileNotFoundError, ranged_http.RangeNotSatisfiable, ranged_http.NotDirect):
            ranged_http.refuse(url)   # fs.info names a missing object, a prefix or a refusal, sizes an
            return b"", -1            # empty one, and follows a region or refreshed credentials

    data, size = call(fetch, url)
    if size < 0:
        return None
    _count("bytes", len(data))
    if data:
        _keep_block(url, 0, data)
    return size


def read_range(url: str, start: int, end: int, fs: Any = None, path: str | None = None) -> bytes:
    """Bytes ``[start, end)`` of the object (``end`` clipped by the caller to its size); a short or
    long answer is retried like a cut connection."""
    if end <= start:
        return b""
    if fs is None or path is None:
        fs, path = filesystem(url)

    def fetch() -> bytes:
        signed = ranged_http.direct_url(fs, path, url)
        try:
            data = ranged_http.get_range(signed, start, end)[0] if signed else None
        except ranged_http.NotDirect:   # another region, credentials refreshed, or a refusal: s3fs tells
            ranged_http.refuse(url)
            data = None
        if data is None:
            data = fs.cat_file(path, start=start, end=end)
        if len(data) != end - start:
            raise OSError(f"short read: got {len(data)} of {end - start} bytes at {start}")
        _count("bytes", len(data))
        return data

    return call(fetch, url)


class RemoteFile(io.RawIOBase):
    """A seekable read-only view of one object (module docstring); ``fetched``: bytes received."""

    def __init__(self, url: str, size: int | None = None, whole_reads: bool = True, read_behind: int = 0):
        super().__init__()
        self.url = url
        self.fs, self.path = filesystem(url)
        self.size = object_size(url) if size is None else size
        self.whole_reads = whole_reads
        self.read_behind = read_behind
        self.pos = 0
        self.fetched = 0
        self._buf, self._buf_start, self._ahead = b"", 0, 0
        self._expect = (0, 0)
        self._plan: list[tuple[int, int]] = []

    def expect(self, start: int, end: int) -> None:
        """The next reads go from ``start`` (or a position after it) through ``end`` (module docstring)."""
        self._expect = (max(0, start), min(self.size, end))

    def plan(self, spans: list[tuple[int, int]]) -> None:
        """The spans ``[start, end)`` the reader will read after the one it expects (module docstring)."""
        self._plan = sorted((max(0, a), min(self.size, b)) for a, b in spans if b > a)

    def _through_plan(self, start: int, end: int) -> int:
        """``end``, moved past the planned spans that follow while one request fetches at most
        ``PLAN_GAP`` or an eighth more than a request each would (each at least ``MIN_FETCH``)."""
        separate = max(end - start, MIN_FETCH)
        for lo, hi in self._plan:
            if hi <= end:
                continue
            separate += max(hi - max(lo, end), MIN_FETCH)
            merged = hi - start
            if merged > MAX_AHEAD or merged > separate + max(PLAN_GAP, merged // 8):
                break
            end = hi
        return end

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}.get(whence)
        if base is None:
            raise ValueError(f"unsupported whence {whence}")
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        parts = []
        while n > 0:    # whole reads (as a buffered file gives them): PIL relies on it
            lo = self.pos - self._buf_start
            if not 0 <= lo < len(self._buf):
                kept = _kept_block(self.url, self.pos)
                if kept is not None:
                    self._buf_start, self._buf = kept
                else:
                    self._fill(n)
                lo = self.pos - self._buf_start
            part = self._buf[lo:lo + n]
            parts.append(part)
            self.pos += len(part)
            n -= len(part)
            if not self.whole_reads:
                break
        return b"".join(parts)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def _fill(self, n: int) -> None:
        lo, hi = self._expect
        told = lo <= self.pos < hi
        start = self.pos
        if told:   # the reader said how far it goes: one request (then small steps again)
            want = min(MAX_AHEAD, max(self._through_plan(self.pos, hi) - self.pos, MIN_FETCH))
        elif self._buf and self.pos == self._buf_start + len(self._buf):   # contiguous: double
            want = min(MAX_AHEAD, max(2 * self._ahead, MIN_FETCH))
        else:
            want = MIN_FETCH
            if self.read_behind and self.pos > self.size // 2:   # the index at the end, and the last GOP
                start, self.read_behind = max(0, self.pos - self.read_behind), 0
        if self.whole_reads:
            want = max(want, n)
        end = _kept_from(self.url, self.pos, min(self.size, self.pos + want))
        self._buf = read_range(self.url, start, end, self.fs, self.path)
        self._buf_start = start
        self._ahead = MIN_FETCH // 2 if told else len(self._buf)
        self.fetched += len(self._buf)
        _keep_block(self.url, self._buf_start, self._buf)

    def close(self) -> None:
        self._buf = b""
        super().close()


def open_remote(url: str, whole_reads: bool = True, read_behind: int = 0) -> RemoteFile:
    """``RemoteFile`` of ``url`` (its size: a first block, kept); RemoteError when it cannot be read."""
    return RemoteFile(url, whole_reads=whole_reads, read_behind=read_behind)
