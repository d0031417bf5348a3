"""The light S3 read path's HTTP transport (``vidcap.io.ranged_http.get_range``) against a real HTTP/1.1
server on 127.0.0.1: connections kept open between requests, a kept connection the server closed
meanwhile replaced without an error or a retry, and no connection shared with a forked child."""
from __future__ import annotations

import multiprocessing
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vidcap.io import ranged_http, s3_presign

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


class Odd:
    """An HTTP server that answers every GET with DATA[range] framed as ``framing`` says: ``chunked``
    (Transfer-Encoding), ``close`` (no length: the body ends with the connection, HTTP/1.0) or
    ``garbage`` (not HTTP)."""

    def __init__(self, framing: str):
        import socketserver

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    rng = b""
                    while line not in (b"\r\n", b""):
                        if line.lower().startswith(b"range:"):
                            rng = line
                        line = self.rfile.readline()
                    lo, hi = map(int, re.search(rb"bytes=(\d+)-(\d+)", rng).groups())
                    body = DATA[lo:hi + 1]
                    head = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\n" % (
                        lo, lo + len(body) - 1, len(DATA))
                    if framing == "garbage":
                        self.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n")
                        return
                    if framing == "close":
                        self.wfile.write(head.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n" + body)
                        return
                    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                                      for i in range(0, len(body), 1000))
                    self.wfile.write(head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-Trailer: 1\r\n\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bucket/key?X-Amz-Signature=secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_bodies_framed_as_http_allows_are_read_whole(framing):
    """S3 sends a Content-Length; other servers and proxies may send chunks or end the body with the
    connection: the bytes are the same, and the connection is kept only where it can be."""
    server = Odd(framing)
    ranged_http.forget()
    try:
        for start in (0, 5_000, 90_000):
            assert ranged_http.get_range(server.url, start, start + 7_000) == (DATA[start:start + 7_000], len(DATA))
    finally:
        server.stop()


def test_an_answer_that_is_not_http_is_a_retryable_error_without_the_signature():
    server = Odd("garbage")
    ranged_http.forget()
    try:
        with pytest.raises(OSError) as err:
            ranged_http.get_range(server.url, 0, 100)
    finally:
        server.stop()
    assert "malformed" in str(err.value) and "secret" not in str(err.value)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", None])
@pytest.mark.parametrize("token", [None, "session-token/+="])
def test_keys_after_a_buckets_first_are_signed_as_botocore_signs_them(monkeypatch, endpoint, token):
    """The light path signs a bucket's first key with the botocore client and the others itself, with
    the client's credentials, region and service from that URL: byte for byte the client's own URL (the
    clock frozen, then moved on by a second and past midnight: the query string kept for a second is
    built again), for keys that need quoting, on a path-style endpoint and on AWS, with and without a
    session token."""
    import datetime
    from types import SimpleNamespace

    import botocore.auth

    now = [datetime.datetime(2026, 12, 4, 12, 0, 0)]
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now[0])
    fs = SimpleNamespace(protocol=("s3", "s3a"), key="AKIDEXAMPLE", secret="secret", token=token,
                         client_kwargs={"region_name": "eu-west-1"}, config_kwargs={}, endpoint_url=endpoint)
    monkeypatch.setattr(s3_presign, "_SIGNERS", {})
    monkeypatch.setattr(s3_presign, "_BUCKETS", {})
    monkeypatch.setattr(ranged_http, "_PROXIED", {})
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    ranged_http.forget()
    keys = ["first.mp4", "dir/sub dir/ü+&=?.mp4", "x%20y~z.mp4", "a//b.mp4", "weird*'()!$,;:@#.mp4"]
    ours = [ranged_http.direct_url(fs, f"my-bucket/{k}", f"s3://my-bucket/{k.replace('?', '_').replace('#', '_')}")
            for k in keys]
    assert s3_presign._BUCKETS[(id(fs), "my-bucket")] is not None, "the keys after the first were signed here"
    client = s3_presign._signer(fs)
    theirs = [client.generate_presigned_url("get_object", Params={"Bucket": "my-bucket", "Key": k}, ExpiresIn=3600)
              for k in keys]
    assert ours == theirs
    assert ("X-Amz-Security-Token=" in ours[1]) == (token is not None)
    for later in (datetime.datetime(2026, 12, 4, 12, 0, 1), datetime.datetime(2026, 12, 5, 0, 0, 0)):
        now[0] = later
        ranged_http.forget()
        ours = [ranged_http.direct_url(fs, f"my-bucket/{k}", f"s3://my-bucket/{k}") for k in keys[2:4]]
        theirs = [client.generate_presigned_url("get_object", Params={"Bucket": "my-bucket", "Key": k},
                                                ExpiresIn=3600) for k in keys[2:4]]
        assert ours == theirs and later.strftime("X-Amz-Date=%Y%m%dT%H%M%SZ") in ours[0]


@pytest.mark.parametrize("name, value, says", [
    ("VIDCAP_REMOTE_ROWS_IN_FLIGHT", "eight", "expected a whole number >= 1 (default 8)"),
    ("VIDCAP_REMOTE_ROWS_IN_FLIGHT", "0", "expected a whole number >= 1 (default 8)"),
    ("VIDCAP_REMOTE_RETRIES", "-1", "expected a whole number >= 0 (default 5)"),
    ("VIDCAP_REMOTE_TIMEOUT_S", "1m", "expected a number > 0 (default 60)"),
])
def test_a_bad_remote_setting_in_the_environment_is_named(name, value, says):
    """A value the object-store settings cannot take stops the import with the variable and what it
    takes, not an int() traceback."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import vidcap.io.remote"], capture_output=True, text=True,
                          env={**os.environ, name: value})
    assert proc.returncode != 0
    assert f"ConfigError: {name}={value!r}: {says}" in proc.stderr, proc.stderr[-500:]
