"""Ranged GETs of ``s3://`` objects over kept-open HTTP connections: the light path of ``vidcap.io.remote``.

A ranged read through s3fs/aiobotocore costs this process several times the CPU of the same GET of a
presigned URL over a kept-open connection (signing, event hooks, response parsing on an event loop),
and ``http.client`` spends half of its own per-request CPU parsing headers with the ``email`` package
(``bench/objectstore``). A row makes several such reads, so this path carries them with the least it
needs: one GET, the status line, the headers, a body of ``Content-Length`` bytes (or chunked, or to
the end of the connection).

Contracts:

* ``direct_url(fs, path, url)``: a presigned GET URL of the object (Signature Version 4, which every
  region takes), signed with the settings of a botocore client made from the s3fs filesystem's (its
  key, secret, token, endpoint, region and client config when given; otherwise botocore's own chain:
  environment such as ``AWS_ENDPOINT_URL``/``AWS_DEFAULT_REGION``, ``~/.aws``, instance roles, as
  s3fs's; ``vidcap.io.s3_presign``), kept ``KEEP_S`` seconds for at most ``KEPT`` objects; None where
  this path does not apply: not s3fs, anonymous access, requester-pays or customer-key settings
  (headers a presigned URL does not carry), a ``verify`` client setting (s3fs's own TLS settings), an
  HTTP(S) proxy in the environment for the endpoint, a URL with a query or fragment,
  ``VIDCAP_REMOTE_CLIENT=fsspec`` (read when an object is first signed), or signing failing. Then
  ``remote`` uses fsspec.
* ``get_range(signed, start, end)``: ``(bytes [start, end), object size)`` over a connection kept
  open for the next request to the same endpoint (at most ``IDLE_PER_HOST`` idle ones an endpoint, none
  shared with a forked child; TLS verified against the system's CAs or ``AWS_CA_BUNDLE``). A kept
  connection that the server closed meanwhile is dropped and the GET sent again at once on the next
  kept or a new one (a GET is idempotent); an error on a new connection is the caller's to retry.
  404 -> ``FileNotFoundError``; a redirect, 400, 401 or 403 -> ``NotDirect`` (a bucket in another
  region, credentials that expired after signing, or a refusal: the caller asks again through s3fs,
  which follows regions, refreshes credentials and names a real refusal, and ``refuse(url)`` sends that
  object's reads to s3fs for ``KEEP_S``); 416 -> ``(b"", 0)`` when it names an empty object, else
  ``RangeNotSatisfiable`` (an ``OSError``); anything else (5xx such as ``503 SlowDown``, 429, a refused
  or cut connection, a timeout, a malformed answer, a short or long body) -> ``OSError``, which
  ``remote.call`` retries. No message carries the signed URL: they name the status or the error class
  only (the caller adds ``public_url``).
"""
from __future__ import annotations

import os
import re
import socket
import ssl
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from vidcap.env import env_float
from vidcap.io import s3_presign

KEEP_S = 600.0
KEPT = 256
TIMEOUT_S = env_float("VIDCAP_REMOTE_TIMEOUT_S", 60.0)
_SIGNED: dict[str, tuple[str, float]] = {}
_FITS: dict[int, tuple[Any, bool]] = {}
IDLE_PER_HOST = 4
_IDLE: dict[tuple[str, str, int], list[_Connection]] = {}
_IDLE_LOCK = threading.Lock()
_TLS: list[ssl.SSLContext] = []
_TARGETS: dict[str, tuple[tuple[str, str, int], bytes]] = {}
_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+)")
_MAX_LINE, _MAX_HEAD, _MAX_HEADERS = 65536, 65536, 100
_RECV = 65536


class RangeNotSatisfiable(OSError):
    """416 without the object's size (S3 answers so for any range of an empty object)."""


class NotDirect(OSError):
    """An answer the presigned URL cannot get past (redirect, 400, 401, 403): ask through s3fs."""


def direct_url(fs: Any, path: str, url: str) -> str | None:
    """The presigned GET URL of ``url`` (``fs``/``path``: its fsspec filesystem), or None (module docstring)."""
    now = time.monotonic()
    kept = _SIGNED.get(url)
    if kept is not None and now - kept[1] < KEEP_S:
        return kept[0] or None   # "": refused (``refuse``)
    if os.environ.get("VIDCAP_REMOTE_CLIENT", "").lower() == "fsspec" or "?" in url or "#" in url or not _fits(fs):
        return None
    bucket, _, key = path.partition("/")
    try:
        signed = s3_presign.presign(fs, bucket, key)
    except Exception:  # noqa: BLE001 - no credentials, no botocore: use fsspec
        return None
    if not isinstance(signed, str) or not signed.startswith(("http://", "https://")) or _proxied(signed):
        return None
    _put(_SIGNED, url, (signed, now))
    return signed


def _fits(fs: Any) -> bool:
    """Whether a presigned URL carries all of the filesystem's settings (asked once a filesystem)."""
    kept = _FITS.get(id(fs))
    if kept is None or kept[0] is not fs:
        fits = not ("s3" not in getattr(fs, "protocol", ()) or getattr(fs, "req_kw", None)
                    or getattr(fs, "requester_pays", False) or getattr(fs, "anon", False)
                    or (getattr(fs, "s3_additional_kwargs", None) or {}).get("SSECustomerKey")
                    or (getattr(fs, "client_kwargs", None) or {}).get("verify") is not None)
        kept = _FITS[id(fs)] = (fs, fits)   # holding fs keeps its id unique
    return kept[1]


def refuse(url: str) -> None:
    """Read ``url`` through s3fs for the next ``KEEP_S`` seconds (after a ``NotDirect`` answer)."""
    _put(_SIGNED, url, ("", time.monotonic()))


def forget() -> None:
    """Drop the kept presigned URLs and refusals."""
    _SIGNED.clear()
    _TARGETS.clear()


_PROXIED: dict[str, bool] = {}


def _proxied(signed: str) -> bool:
    """Whether the environment sends requests to this URL's host through a proxy (s3fs's path then);
    asked once a host."""
    netloc = signed.split("/", 3)[2]
    if netloc not in _PROXIED:
        host = urlsplit(signed).hostname or ""
        proxies = urllib.request.getproxies()
        _PROXIED[netloc] = bool(proxies.get("https") or proxies.get("http") or proxies.get("all")) and \
            not urllib.request.proxy_bypass(host)
    return _PROXIED[netloc]


def _target(signed: str) -> tuple[tuple[str, str, int], bytes]:
    """((scheme, host, port), the request's first lines up to its Range header) of a signed URL, made once."""
    parts = _TARGETS.get(signed)
    if parts is None:
        u = urlsplit(signed)
        https = u.scheme == "https"
        port = u.port or (443 if https else 80)
        host = u.hostname or ""
        shown = f"[{host}]" if ":" in host else host   # the Host header as the signature covers it
        if port != (443 if https else 80):
            shown += f":{port}"
        head = f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {shown}\r\nAccept-Encoding: identity\r\n"
        parts = ((u.scheme, host, port), head.encode("ascii"))
        _put(_TARGETS, signed, parts)
    return parts


def _put(cache: dict, key: Any, value: Any) -> None:
    """``cache[key] = value``, the oldest entry dropped past ``KEPT`` (rows of a job run in threads)."""
    with _IDLE_LOCK:
        if key not in cache and len(cache) >= KEPT:
            cache.pop(next(iter(cache)))
        cache[key] = value


class _Connection:
    """One HTTP/1.1 connection: a socket (TLS for https) and the bytes received past the last answer.
    An answer's head is parsed from one buffer and its body received into one of its length: a GET
    costs a few calls, not one a header line (a row's GETs find the caches cold)."""

    def __init__(self, endpoint: tuple[str, str, int]):
        scheme, host, port = endpoint
        sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            if not _TLS:
                _TLS.append(ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None))
            sock = _TLS[0].wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.pending = b""

    def close(self) -> None:
        self.sock.close()

    def get(self, head: bytes, start: int, end: int) -> tuple[int, dict[bytes, bytes], bytes, bool]:
        """(status, headers with lower-case names, body, whether the connection stays usable) of a GET;
        ``_Closed`` when the server had closed the connection before answering."""
        self.sock.sendall(head + b"Range: bytes=%d-%d\r\n\r\n" % (start, end - 1))
        got = self.pending
        while (cut := got.find(b"\r\n\r\n")) < 0:
            more = self.sock.recv(_RECV)
            if not more and not got:
                raise _Closed("the server closed the connection")
            if not more or len(got) > _MAX_HEAD or not b"HTTP/1.".startswith(got[:7]):
                raise OSError("malformed answer: no HTTP head")
            got += more
        lines = got[:cut].split(b"\r\n")
        self.pending = got[cut + 4:]
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or not code.isdigit() or len(lines) > _MAX_HEADERS:
            raise OSError("malformed status line or headers")
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        keep = headers.get(b"connection", b"").lower() != b"close" and version != b"HTTP/1.0"
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            body = self._chunked()
        elif b"content-length" in headers:
            body = self._exact(int(headers[b"content-length"]))
        else:
            parts = [self.pending]
            while more := self.sock.recv(_RECV):
                parts.append(more)
            body, keep, self.pending = b"".join(parts), False, b""
        return int(code), headers, body, keep

    def _exact(self, n: int) -> bytes:
        """The next ``n`` bytes; OSError when the connection ends first."""
        have = self.pending
        if len(have) >= n:
            self.pending = have[n:]
            return have[:n]
        out = bytearray(n)
        out[:len(have)] = have
        view, got = memoryview(out), len(have)
        while got < n:
            k = self.sock.recv_into(view[got:])
            if not k:
                raise OSError(f"connection cut: {got} of {n} bytes")
            got += k
        self.pending = b""
        return bytes(out)

    def _line(self) -> bytes:
        """The next line without its end (b"" at the end of the connection)."""
        while (cut := self.pending.find(b"\n")) < 0:
            more = self.sock.recv(_RECV) if len(self.pending) <= _MAX_LINE else b""
            if not more:
                line, self.pending = self.pending, b""
                return line
            self.pending += more
        line, self.pending = self.pending[:cut], self.pending[cut + 1:]
        return line.rstrip(b"\r")

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._line().split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while self._line():   # trailers, to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._exact(size))
            if self._exact(2) != b"\r\n":
                raise OSError("connection cut in a chunk")


class _Closed(ConnectionError):
    """The server closed a connection before answering on it."""


def _connection(endpoint: tuple[str, str, int]) -> tuple[_Connection, bool]:
    """(a connection to ``endpoint``, whether it was kept from an earlier request)."""
    with _IDLE_LOCK:
        idle = _IDLE.get(endpoint)
        if idle:
            return idle.pop(), True
    return _Connection(endpoint), False


def _keep(endpoint: tuple[str, str, int], conn: _Connection) -> None:
    with _IDLE_LOCK:
        idle = _IDLE.setdefault(endpoint, [])
        if len(idle) < IDLE_PER_HOST:
            idle.append(conn)
            return
    conn.close()


def _forked() -> None:
    """In a forked child: the parent's sockets are not ours to use, nor its lock's state ours to trust."""
    global _IDLE_LOCK
    _IDLE_LOCK = threading.Lock()
    _IDLE.clear()


os.register_at_fork(after_in_child=_forked)
_STALE = (ConnectionError,)   # _Closed, reset, broken pipe, aborted


def _get(signed: str, start: int, end: int) -> tuple[int, dict[bytes, bytes], bytes]:
    """(status, headers, body) of a ranged GET; a kept connection found closed is dropped, the GET sent
    again on the next one (at most the idle ones, then a new one)."""
    endpoint, head = _target(signed)
    while True:
        conn, kept = _connection(endpoint)
        try:
            status, headers, body, keep = conn.get(head, start, end)
        except (OSError, ValueError) as exc:
            conn.close()
            if kept and isinstance(exc, _STALE):
                continue    # the server closed it while it was idle; the next one may be fresh
            raise OSError(f"{type(exc).__name__}: {_reason(exc)}") from None
        if keep:
            _keep(endpoint, conn)
        else:
            conn.close()
        return status, headers, body


def get_range(signed: str, start: int, end: int) -> tuple[bytes, int]:
    """Bytes ``[start, end)`` of the object and its size (module docstring)."""
    status, headers, data = _get(signed, start, end)
    if status == 404:
        raise FileNotFoundError("404 not found")
    if status in (400, 401, 403) or 300 <= status < 400:
        raise NotDirect(f"HTTP {status}")
    told = _RANGE.match(headers.get(b"content-range", b"").decode("latin-1"))
    if status == 416:
        if told and int(told.group(3)) == 0:
            return b"", 0
        raise RangeNotSatisfiable(f"HTTP 416 for bytes {start}-{end - 1}")
    if status == 206 and told and told.group(1) is not None:
        size = int(told.group(3))
        want = min(end, size) - start
        if int(told.group(1)) != start or len(data) != want:
            raise OSError(f"short read: got {len(data)} of {want} bytes at {start}")
        return data, size
    if status == 200:   # the whole object (a server that ignores ranges)
        if start > len(data):
            raise OSError(f"range {start}-{end} beyond the object's {len(data)} bytes")
        return data[start:end], len(data)
    raise OSError(f"HTTP {status}" + (" SlowDown" if status == 503 else ""))


def _reason(exc: BaseException) -> str:
    """The error's innermost reason, without a query string (a signature)."""
    inner = getattr(exc, "reason", None) or exc
    text = " ".join(str(inner).split())
    return re.sub(r"\?\S*", "", text)[:120] or type(inner).__name__
