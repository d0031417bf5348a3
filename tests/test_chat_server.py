"""The test chat server itself (``vidcap.dev.chat_server``) and what the client makes of its faults:
a request cut mid-send (a killed client) is recorded with the bytes that arrived and marked
incomplete; an HTML page with status 200 is named "not JSON" by the client, with its content-type.
"""
from __future__ import annotations

import json
import time

import pytest

from tests.test_api_runner import KEY, KEY_VAR, run_all, settings
from vidcap.dev.chat_server import ChatServer
from vidcap.llm.client import ChatError
from vidcap.runners.base import Generation, Request
from vidcap.runners.openai_api import OpenAIRunner

VERDICT = "the answer"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    with ChatServer(api_key=KEY, reply=lambda body: VERDICT) as srv:
        yield srv


def texts(record: dict) -> str:
    return "\n".join(m["content"] for m in record["body"]["messages"] if isinstance(m["content"], str))


def test_chat_server_records_a_request_cut_mid_send(server):
    """A client killed mid-send: the server records the bytes that arrived and marks the request
    incomplete (no KeyError for tests reading ``body``), answers nothing, and stays up."""
    import socket
    import urllib.request

    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "ans-a-7 " * 200}]}).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:300])
        time.sleep(0.2)
    assert server.wait_idle(10)
    rec = server.chat_records()[-1]
    assert rec["incomplete"] is True and rec["length"] == len(body) and rec["action"] == "incomplete"
    assert rec["raw"] == body[:300].decode() and "ans-a-7" in rec["raw"] and rec["body"] == {}
    assert server.complete_records() == []
    req = urllib.request.Request(server.url + "/chat/completions", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["choices"][0]["message"]["content"] == VERDICT
    assert len(server.complete_records()) == 1 and texts(server.complete_records()[0]).startswith("ans-a-7")


def test_html_page_with_status_200_is_named_not_json(server):
    """A proxy's HTML page with status 200: the error says the response was not JSON, with its
    content-type and first bytes (not "no choices in the response"); a later good try still succeeds."""
    server.script("row-html;", ["html"] * 3)
    server.script("row-once;", ["html", "ok"])
    out = dict(run_all(OpenAIRunner(settings(server, max_tries=3)),
                       [Request("html", "row-html;"), Request("once", "row-once;")]))
    err = out["html"]
    assert isinstance(err, ChatError) and "gave up after 3 tries" in str(err)
    assert "not JSON (content-type text/html; charset=utf-8)" in str(err) and "<!DOCTYPE html><html>" in str(err)
    assert "no choices" not in str(err)
    assert isinstance(out["once"], Generation) and out["once"].extra["tries"] == 2
