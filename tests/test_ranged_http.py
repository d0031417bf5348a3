"""The light S3 read path's HTTP transport (``vidcap.io.ranged_http.get_range``) against a real HTTP/1.1
server on 127.0.0.1: connections kept open between requests, a kept connection the server closed
meanwhile replaced without an error or a retry, and no connection shared with a forked child."""
from __future__ import annotations

import multiprocessing
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vidcap.io import ranged_http

DATA = bytes(range(256)) * 400


class Blob:
    """Serves DATA with ranges over HTTP/1.1; ``close_after`` drops the connection after each answer
    without saying so (as a server does with an idle kept connection); ``connections`` counts accepts."""

    def __init__(self):
        self.connections = 0
        self.close_after = False
        blob = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                blob.connections += 1
                super().setup()

            def log_message(self, *args):
                pass

            def do_GET(self):
                lo, hi = map(int, re.match(r"bytes=(\d+)-(\d+)", self.headers["Range"]).groups())
                body = DATA[lo:hi + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {lo}-{lo + len(body) - 1}/{len(DATA)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = blob.close_after

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bucket/key?X-Amz-Signature=abc%2Fdef"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def blob():
    b = Blob()
    ranged_http.forget()
    yield b
    b.stop()


def test_ranged_gets_share_one_kept_connection(blob):
    for start in range(0, 40_000, 4_000):
        assert ranged_http.get_range(blob.url, start, start + 4_000) == (DATA[start:start + 4_000], len(DATA))
    assert blob.connections == 1


def test_a_kept_connection_closed_by_the_server_is_replaced_without_an_error(blob):
    blob.close_after = True
    for start in range(0, 20_000, 4_000):   # each kept connection is found closed at the next request
        assert ranged_http.get_range(blob.url, start, start + 4_000)[0] == DATA[start:start + 4_000]
    assert blob.connections == 5


def _child_reads(url, out):
    out.put(ranged_http.get_range(url, 1_000, 9_000)[0] == DATA[1_000:9_000])


def test_a_forked_child_opens_its_own_connection(blob):
    assert ranged_http.get_range(blob.url, 0, 100)[0] == DATA[:100]    # one connection kept here
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_reads, args=(blob.url, out))
    child.start()
    child.join(30)
    assert out.get(timeout=5) is True and child.exitcode == 0
    assert ranged_http.get_range(blob.url, 100, 5_000)[0] == DATA[100:5_000]
    assert blob.connections == 2, "the child opened its own; the parent kept using its own"


def test_an_endpoint_behind_a_proxy_is_left_to_s3fs(monkeypatch):
    """The light path does not speak to proxies: with one in the environment for the endpoint, S3
    reads go through s3fs (botocore honours the proxy); NO_PROXY hosts keep the light path."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ranged_http, "_PROXIED", {})
    assert not ranged_http._proxied("https://s3.example.com/b/k?X-Amz-Signature=1")
    monkeypatch.setattr(ranged_http, "_PROXIED", {})
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example.com")
    assert ranged_http._proxied("https://s3.example.com/b/k?X-Amz-Signature=1")
    assert not ranged_http._proxied("https://internal.example.com/b/k?X-Amz-Signature=1")
