"""A real S3 API on 127.0.0.1 for tests and benchmarks: moto's S3 application (``S3Server``), and a proxy
in front of it that counts requests and injects faults (``FaultProxy``).

``S3Server().start()`` listens on a free port; ``env()`` is what a client (this process or a
Snakemake run) needs: ``AWS_ENDPOINT_URL``, dummy credentials and region. It serves moto's WSGI
application through cheroot, which keeps connections open between requests as S3 does (moto's own
werkzeug server closes every connection); ``keep_alive=False`` serves it with moto's own server;
``latency_s`` waits that long before each answer (a store across a network); ``most_in_flight``:
the most requests it was answering at once. ``FaultProxy(upstream)``
forwards every request unchanged; ``slowdown = N`` answers the next N requests ``503 SlowDown`` (as
S3 throttles), ``cut = N`` sends the next N object bodies half-way and drops the connection,
``refuse_presigned = N`` answers the next N requests signed in the query string (presigned URLs)
``403 AccessDenied`` (as S3 does once the credentials a URL was signed with have expired).
``gets`` counts body-carrying GET requests per object key; ``bytes`` the body bytes sent.
"""
from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SECRET = "vidcap-test-secret-3f9a"     # a recognisable dummy secret: tests assert it never leaks
SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")
DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
          b"<Message>The provided token has expired.</Message></Error>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's S3 application served in threads of this process (module docstring)."""

    def __init__(self, port: int | None = None, keep_alive: bool = True, latency_s: float = 0.0):
        self.port = port or free_port()
        self.keep_alive = keep_alive
        self.latency_s = latency_s
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        if not self.keep_alive:
            from moto.server import ThreadedMotoServer  # heavy/optional library: loaded only when this runs

            logging.getLogger("werkzeug").setLevel(logging.ERROR)   # no line per request
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self._server.start()
            return self
        from cheroot import wsgi  # optional library (tests and benchmarks only)
        from moto.server import DomainDispatcherApplication, create_backend_app  # heavy/optional library

        moto_app, wait = DomainDispatcherApplication(create_backend_app), self.latency_s

        def app(environ, start_response):
            with self._lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if wait:
                    time.sleep(wait)   # the first-byte latency of a store across a network
                return moto_app(environ, start_response)
            finally:
                with self._lock:
                    self.in_flight -= 1

        server = wsgi.Server(("127.0.0.1", self.port), app, numthreads=32)
        server.prepare()    # listening once this returns
        threading.Thread(target=server.serve, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": endpoint or self.endpoint, "AWS_ACCESS_KEY_ID": "vidcap-test-key",
                "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` (module docstring)."""

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.slowdown = 0
        self.cut = 0
        self.refuse_presigned = 0
        self.gets: Counter[str] = Counter()
        self.bytes = 0
        self.faults = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take(self, name: str) -> bool:
        with self._lock:
            if getattr(self, name) > 0:
                setattr(self, name, getattr(self, name) - 1)
                self.faults += 1
                return True
            return False

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                refused = "X-Amz-Signature=" in self.path and proxy._take("refuse_presigned")
                if refused or proxy._take("slowdown"):
                    body = DENIED if refused else SLOWDOWN
                    self.send_response(403 if refused else 503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                conn = http.client.HTTPConnection(str(proxy.upstream.hostname), proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                key = urlsplit(self.path).path
                cut = (self.command == "GET" and resp.status in (200, 206) and len(data) > 1
                       and "list-type" not in self.path and proxy._take("cut"))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                told = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", told or str(len(data)))
                self.end_headers()
                if self.command == "GET" and resp.status in (200, 206) and "list-type" not in self.path:
                    with proxy._lock:
                        proxy.gets[key] += 1
                        proxy.bytes += len(data)
                if cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

        return Handler
