"""A small real OpenAI-compatible HTTP server on 127.0.0.1 with fault injection (tests and bench).

Stdlib only (``http.server.ThreadingHTTPServer``, one thread a connection). Speaks
``POST /v1/chat/completions`` (non-streaming) and ``GET /v1/models``.

    with ChatServer(latency=0.2, api_key="sk-test-...") as srv:
        srv.script("row-7", ["429:1.5", "500", "ok"])   # per-try actions of requests whose text has "row-7"
        srv.fail_first("500", 3)                        # the next 3 requests (any) get a 500
        ... OpenAI(base_url=srv.url, ...) ...
        srv.records, srv.max_in_flight

Actions (a string, ``name[:arg]``):

* ``ok`` - answer (after ``latency`` seconds). The answer text is ``reply(body)`` (default: echo of the
  request's text, its image count and detail); usage = 4 chars a token of the text + 85 an image,
  completion = words of the answer; ``max_tokens``/``max_completion_tokens`` truncates the answer
  (finish_reason ``length``).
* ``429[:seconds]`` - 429 with ``Retry-After: seconds`` (no header without an argument).
* ``500`` / ``502`` / ``503`` / ``400`` / ``404`` / any 3-digit status - that status with an
  OpenAI-style error body.
* ``401`` - authentication error (also given to any request whose ``Authorization`` header does not
  match ``api_key`` when one is set).
* ``slow[:seconds]`` - sleep (default 30 s) before answering, i.e. past the client's timeout.
* ``malformed`` - status 200 with a body that is not JSON.
* ``html`` - status 200, ``Content-Type: text/html``, an HTML page (``HTML_PAGE``), as a proxy sends.
* ``close`` - close the connection without answering.
* ``echo`` - 400 whose message repeats the request's ``Authorization`` header (tests key scrubbing).

Scripted answers (judge tests): ``srv.answer("q-7", ["not a score", "7 and 8"])`` - requests whose
text contains ``"q-7"`` and that are answered (action ``ok``, after any ``script`` actions) get these
answer texts, one per answered request, in order, verbatim (newlines kept; cut to ``max_tokens`` words
like any answer); once they are used up, ``reply(body)`` answers again. Without ``answer`` calls
nothing changes. ``ChatServer(verbatim=True)`` sends ``reply``'s text as written too (by default its
whitespace is collapsed).

``records``: one dict per request: ``t`` (arrival, ``time.monotonic()``), ``t_end``, ``path``,
``auth`` (the Authorization header), ``body`` (parsed JSON; ``{}`` when incomplete), ``raw`` (the
body bytes received, as text), ``length`` (the Content-Length announced), ``incomplete`` (True when
fewer bytes than announced arrived - a client killed mid-send - or the body is not a JSON object;
such a request gets no answer, action ``incomplete``), ``action``, ``in_flight`` (concurrent
requests at arrival, this one included); with ``keep_bodies=False`` (long benchmark runs) ``body`` is ``{}``
and ``raw`` ``''``. ``python -m vidcap.dev.chat_server --reply TEXT --no-bodies`` is an engine that answers
at once with a fixed caption and no model (bench/feed). ``complete_records()``: the chat requests that arrived
whole; ``wait_idle(timeout)``: wait until no request is being handled.
"""
from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTML_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in.</body></html>"


def _texts(body: dict) -> str:
    out = []
    for msg in body.get("messages", []) or []:
        content = msg.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(out)


def _images(body: dict) -> list[dict]:
    out = []
    for msg in body.get("messages", []) or []:
        content = msg.get("content")
        if isinstance(content, list):
            out += [p["image_url"] for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
    return out


def default_reply(body: dict) -> str:
    imgs = _images(body)
    text = " ".join(_texts(body).split())
    detail = imgs[0].get("detail", "-") if imgs else "-"
    return f"A test caption with {len(imgs)} images (detail {detail}) for: {text[-60:]}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True


class ChatServer:
    """See the module docstring. ``url`` is the base URL to give a client (ends with ``/v1``)."""

    def __init__(self, latency: float = 0.0, api_key: str | None = None, reply=default_reply,
                 model: str = "vidcap-test-model", port: int = 0, verbatim: bool = False, keep_bodies: bool = True):
        self.latency = float(latency)
        self.keep_bodies = keep_bodies
        self.verbatim = verbatim
        self.api_key = api_key
        self.reply = reply
        self.model = model
        self.records: list[dict] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._scripts: dict[str, deque] = {}
        self._answers: dict[str, deque] = {}
        self._first: deque = deque()
        self._default = "ok"
        self._httpd = _Server(("127.0.0.1", port), self._handler())
        self._thread: threading.Thread | None = None

    # -- configuration (thread-safe, may change while running)
    def script(self, marker: str, actions: list[str]) -> None:
        """Requests whose text contains ``marker`` get ``actions`` one per try, then ``ok``."""
        with self._lock:
            self._scripts[marker] = deque(actions)

    def answer(self, marker: str, texts: list[str]) -> None:
        """Answered requests whose text contains ``marker`` get ``texts`` one each, then ``reply``."""
        with self._lock:
            self._answers[marker] = deque(texts)

    def fail_first(self, action: str, n: int) -> None:
        """The next ``n`` requests (whatever they are) get ``action``."""
        with self._lock:
            self._first.extend([action] * n)

    def set_default(self, action: str) -> None:
        """Action for requests that no script or fail_first covers (``ok`` at start)."""
        with self._lock:
            self._default = action

    def reset(self) -> None:
        with self._lock:
            self.records.clear()
            self._scripts.clear()
            self._answers.clear()
            self._first.clear()
            self._default = "ok"
            self.max_in_flight = 0

    # -- lifecycle
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="chat-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- helpers for tests
    def chat_records(self) -> list[dict]:
        return [r for r in self.records if r["path"].endswith("/chat/completions")]

    def complete_records(self) -> list[dict]:
        """Chat requests whose whole JSON body arrived (``incomplete`` False)."""
        return [r for r in self.chat_records() if not r.get("incomplete")]

    def wait_idle(self, timeout: float = 10.0, quiet: float = 0.3) -> bool:
        """Wait up to ``timeout`` s until no request has been in flight or arrived for ``quiet``
        seconds (a connection the server has not picked up yet counts once it arrives); True when
        idle."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                busy, count = self._in_flight, len(self.records)
            if busy or count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return True
            time.sleep(0.02)
        return False

    def _pick(self, body: dict) -> str:
        text = _texts(body)
        with self._lock:
            for marker, actions in self._scripts.items():
                if marker in text and actions:
                    return actions.popleft()
            for marker in self._scripts:
                if marker in text:
                    return "ok"
            if self._first:
                return self._first.popleft()
            return self._default

    def _scripted_answer(self, body: dict) -> str | None:
        """The next scripted answer for this request (see ``answer``), else None."""
        text = _texts(body)
        with self._lock:
            for marker, texts in self._answers.items():
                if marker in text and texts:
                    return texts.popleft()
        return None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload, headers: dict | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _error(self, status: int, message: str, etype: str, headers=None) -> None:
                self._send(status, {"error": {"message": message, "type": etype, "code": None}}, headers)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    if not self._auth_ok():
                        return self._error(401, "Incorrect API key provided.", "invalid_request_error")
                    return self._send(200, {"object": "list", "data": [
                        {"id": server.model, "object": "model", "created": 0, "owned_by": "vidcap"}]})
                self._error(404, f"no route {self.path}", "not_found")

            def _auth_ok(self) -> bool:
                if server.api_key is None:
                    return True
                return self.headers.get("Authorization", "") == f"Bearer {server.api_key}"

            def do_POST(self):
                t = time.monotonic()
                with server._lock:
                    server._in_flight += 1
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    raw = self.rfile.read(length) if length else b""
                except OSError:   # the client went away mid-send
                    raw = b""
                incomplete = len(raw) < length
                try:
                    body = json.loads(raw or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError("not an object")
                except ValueError:
                    body, incomplete = {}, True
                with server._lock:
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                    rec = {"t": t, "path": self.path, "auth": self.headers.get("Authorization", ""),
                           "body": body if server.keep_bodies else {},
                           "raw": raw.decode("utf-8", "replace") if server.keep_bodies else "", "length": length,
                           "incomplete": incomplete, "in_flight": server._in_flight}
                    server.records.append(rec)
                if incomplete:   # a request cut mid-send (or not JSON): recorded, not answered
                    rec["action"], rec["t_end"] = "incomplete", time.monotonic()
                    with server._lock:
                        server._in_flight -= 1
                    if len(raw) < length:
                        self.close_connection = True
                        return None
                    return self._error(400, "the request body is not a JSON object", "invalid_request_error")
                try:
                    if not self.path.rstrip("/").endswith("/chat/completions"):
                        rec["action"] = "404"
                        return self._error(404, f"no route {self.path}", "not_found")
                    action = "401" if not self._auth_ok() else server._pick(body)
                    rec["action"] = action
                    self._act(action, body)
                finally:
                    rec["t_end"] = time.monotonic()
                    with server._lock:
                        server._in_flight -= 1

            def _act(self, action: str, body: dict) -> None:
                name, _, arg = action.partition(":")
                if name == "ok":
                    if server.latency:
                        time.sleep(server.latency)
                    return self._ok(body)
                if name == "slow":
                    time.sleep(float(arg or 30))
                    return self._ok(body)
                if name == "malformed":
                    if server.latency:
                        time.sleep(server.latency)
                    return self._send(200, b'{"id": "chatcmpl-x", "choices": [{"message": ')
                if name == "html":   # a proxy's or login page's HTML with status 200
                    return self._send(200, HTML_PAGE, {"Content-Type": "text/html; charset=utf-8"})
                if name == "close":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                if name == "401":
                    return self._error(401, "Incorrect API key provided.", "invalid_request_error")
                if name == "echo":  # a 400 whose message repeats the Authorization header (scrub test)
                    return self._error(400, f"bad request with {self.headers.get('Authorization', '')}",
                                       "invalid_request_error")
                if name == "429":
                    headers = {"Retry-After": arg} if arg else None
                    return self._error(429, "Rate limit reached for requests.", "requests", headers)
                if re.fullmatch(r"\d{3}", name):
                    return self._error(int(name), f"injected error {name}", "server_error")
                return self._error(500, f"unknown test action {action!r}", "server_error")

            def _ok(self, body: dict) -> None:
                scripted = server._scripted_answer(body)
                text = server.reply(body) if scripted is None else scripted
                words = text.split()
                limit = body.get("max_completion_tokens") or body.get("max_tokens")
                finish = "stop"
                if limit is not None and len(words) > int(limit):
                    words, finish = words[: int(limit)], "length"
                whole = scripted is not None or server.verbatim
                content = text if whole and finish == "stop" else " ".join(words)
                prompt_tokens = (len(_texts(body)) + 3) // 4 + 85 * len(_images(body))
                self._send(200, {
                    "id": f"chatcmpl-{len(server.records)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model") or server.model,
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                              "total_tokens": prompt_tokens + len(words)},
                })

        return Handler


def main(argv=None) -> int:
    """``python -m vidcap.dev.chat_server --port 8011 --latency 2``: serve until Ctrl-C."""

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8011)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--reply", default=None, help="answer every request with this text (default: an echo)")
    p.add_argument("--no-bodies", action="store_true", help="keep no request bodies in memory (long runs)")
    args = p.parse_args(argv)
    reply = default_reply if args.reply is None else (lambda body, text=args.reply: text)
    srv = ChatServer(latency=args.latency, port=args.port, reply=reply, keep_bodies=not args.no_bodies).start()
    print(srv.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
