"""``https://`` (and ``http://``) media URLs, read through fsspec's HTTP filesystem from a real HTTP
server on 127.0.0.1 that answers ranges: probe and frame sampling give what the local file gives, a
presigned-style query string is kept and never shown, and a missing file is a row error."""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vidcap.dev import synth
from vidcap.errors import FrameError, MediaError
from vidcap.io import remote


class Files:
    """Serves a folder over HTTP/1.1 with HEAD and single ranges; ``requests`` records (method, path)."""

    def __init__(self, root: Path):
        self.requests: list[tuple[str, str]] = []
        files = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self, body: bool):
                files.requests.append((self.command, self.path))
                path = root / self.path.split("?", 1)[0].lstrip("/")
                if not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = path.read_bytes()
                m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
                if m:
                    lo = int(m.group(1))
                    hi = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
                    part = data[lo:hi + 1]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {lo}-{lo + len(part) - 1}/{len(data)}")
                else:
                    part = data
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if body:
                    self.wfile.write(part)

            def do_GET(self):
                self._serve(True)

            def do_HEAD(self):
                self._serve(False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    synth.write_video(root / "v" / "a.mp4", num_frames=96, width=320, height=180, seed=2)
    files = Files(root)
    remote.forget()
    yield root, files
    files.stop()


def test_http_urls_probe_and_sample_as_the_local_file(served):
    from vidcap.media.frames import sample_frames
    from vidcap.probe.stage import probe_video

    root, files = served
    local = str(root / "v" / "a.mp4")
    url = f"{files.base}/v/a.mp4?X-Amz-Signature=deadbeef&X-Amz-Expires=600"
    assert probe_video(url, "ends") == probe_video(local, "ends")
    got, want = sample_frames(url, 4), sample_frames(local, 4)
    assert got.indices == want.indices and (got.frames == want.frames).all()
    assert all("X-Amz-Signature=deadbeef" in path for _, path in files.requests), "the query is sent as written"
    gets = [p for m, p in files.requests if m == "GET"]
    assert gets, "read by ranged GETs"

    with pytest.raises(FrameError) as err:
        sample_frames(f"{files.base}/v/missing.mp4?X-Amz-Signature=deadbeef", 4)
    assert "missing.mp4" in str(err.value) and "deadbeef" not in str(err.value)
    with pytest.raises(MediaError):
        probe_video(f"{files.base}/v/missing.mp4", "header")
