"""The HTML report (issue 8): a real demo run through Snakemake, opened in headless Chromium.

Chromium is Debian's ``chromium`` package. Without it the browser test is skipped with the reason,
unless ``VIDCAP_REQUIRE_CHROMIUM=1`` (CI), where a missing browser fails. The screenshot is kept at
``results/<name>/report.png`` in the test's run folder, and copied to ``$VIDCAP_ARTIFACTS`` when set.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import REPO, run_snakemake
from vidcap.io.tables import read_table, write_table

SCRIPT_CAPTION = "<script>alert(1)</script>"
ATTR_CAPTION = "\"><img src=x onerror=document.body.setAttribute('data-pwned','1')>"
EVIL_NAME = "\"><img src=x onerror=document.body.setAttribute('data-pwned','2')>.mp4"
SECTIONS = ("gallery", "distributions", "throughput", "failures", "provenance")


class _Doc(HTMLParser):
    """Elements and text of a page, for checks without a browser."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Doc:
    doc = _Doc()
    doc.feed(html)
    return doc


def _assert_inert(html: str) -> _Doc:
    """Exactly one script (ours), no event-handler attribute, no external resource."""
    doc = _parse(html)
    assert [t for t, _ in doc.tags].count("script") == 1
    for tag, attrs in doc.tags:
        assert not any(a.startswith("on") for a in attrs), (tag, attrs)
        for a in ("src", "href"):
            v = attrs.get(a) or ""
            assert not v or v.startswith(("data:", "#")), (tag, a, v[:80])
    assert not re.search(r"url\(\s*['\"]?https?:|@import|https?://[^\s\"'<>]*\.(js|css|woff2?)", html)
    return doc


# --------------------------------------------------------------------------------- without a browser


def test_read_frames_returns_the_recorded_indices(tmp_path):
    from vidcap.dev import synth
    from vidcap.errors import FrameError
    from vidcap.media.frames import read_frames, sample_frames

    clip = synth.write_video(tmp_path / "c.mp4", num_frames=30, width=96, height=64)
    ref = sample_frames(clip, 4, "uniform", resize_short=32)
    got = read_frames(clip, ref.indices, resize_short=32)
    assert got.indices == ref.indices and np.array_equal(got.frames, ref.frames)
    assert read_frames(clip, [20, 3, 3]).indices == [20, 3, 3]
    with pytest.raises(FrameError, match="out of range"):
        read_frames(clip, [30])


def test_public_config_scrubs_secret_looking_values():
    from vidcap.redact import public_config

    cfg = {"stages": {"caption": {"openai": {"api_key_env": "OPENAI_API_KEY", "api_key": "abc123secret",
                                             "base_url": "https://user:pw@host/v1"}}},
           "prompts": {"p": {"user": "Authorization: Bearer sk-abcdefghijkl"}}}
    out = json.dumps(public_config(cfg))
    assert "OPENAI_API_KEY" in out  # the variable's name is fine
    for secret in ("abc123secret", "user:pw", "sk-abcdefghijkl"):
        assert secret not in out


def _fake_run(root: Path, n: int) -> Path:
    """A run folder with a merged table of ``n`` rows (no media files: thumbnails fail politely)."""
    run = root / "results" / "big"
    (run / "shards").mkdir(parents=True)
    (run / "shards" / "manifest.json").write_text(json.dumps(
        {"manifest": "m.csv", "media_base": str(root), "rows": n, "shard_size": 1000, "shards": []}))
    rng = np.random.default_rng(0)
    words = np.array(["a", "dog", "runs", "on", "the", "beach", "at", "sunset", "slowly"])
    text = [" ".join(rng.choice(words, size=int(k))) for k in rng.integers(3, 30, size=n)]
    text[0] = f"{SCRIPT_CAPTION} and {ATTR_CAPTION}"
    motion = rng.choice(["static", "pan_left", "zoom_in", "unclassified", "pan_left+tilt_up"], size=n)
    df = pd.DataFrame({
        "path": [f"clips/{i:07d}.mp4" for i in range(n)], "row_id": [f"{i:016x}" for i in range(n)],
        "duration": rng.uniform(1, 20, size=n), "width": 1280, "height": 720,
        "text": text, "finish_reason": rng.choice(["stop", "length"], size=n, p=[0.9, 0.1]),
        "caption_model": "m", "caption_prompt": "video_short", "caption_prompt_hash": "x",
        "caption_frame_indices": [[0, 10, 20, 30]] * n,
        "caption_error": [None] * (n - 3) + ["CUDA error: <b>boom</b>"] * 3,
        "caption_words": [len(t.split()) for t in text],
        "cmotion": motion, "objects": [["dog", "<b>beach</b>"] if i % 2 else ["sun"] for i in range(n)],
    })
    write_table(df, root / "results" / "big.parquet")
    return run


def test_report_escapes_model_output_and_stays_small(tmp_path):
    from vidcap.report import build_report

    n = 100_000
    run = _fake_run(tmp_path, n)
    t0 = time.monotonic()
    out = build_report(run, sample=48, worst=24, seed=1)
    took = time.monotonic() - t0
    html = out.read_text(encoding="utf-8")
    assert len(html) < 1_000_000, f"{len(html)} bytes for {n} rows"
    assert took < 60, took
    doc = _assert_inert(html)
    assert "<b>beach</b>" in "".join(doc.text) and "&lt;b&gt;beach&lt;/b&gt;" in html, "a tag is text"
    for sid in SECTIONS:
        assert f'id="{sid}"' in html
    assert html.count('class="item"') == 48 + 24


def test_report_shows_an_injected_caption_as_text(tmp_path):
    from vidcap.report import build_report

    run = _fake_run(tmp_path, 50)
    out = build_report(run, sample=50, worst=0, thumbnails=0)
    html = out.read_text(encoding="utf-8")
    doc = _assert_inert(html)
    text = "".join(doc.text)
    assert SCRIPT_CAPTION in text and ATTR_CAPTION in text, "shown verbatim, as text"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ------------------------------------------------------------------------------- demo run + Chromium


def _chromium() -> str | None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe:
        return exe
    if os.environ.get("VIDCAP_REQUIRE_CHROMIUM") == "1":
        pytest.fail("VIDCAP_REQUIRE_CHROMIUM=1 but no chromium on PATH (apt-get install -y chromium)")
    pytest.skip("chromium not installed (Debian: apt-get install -y chromium); set VIDCAP_REQUIRE_CHROMIUM=1 to fail")
    return None


def _browser(exe: str, profile: Path, *args: str, timeout: int = 90) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _console(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`vidcap demo` + one evil file name + one missing file with a script as its manifest text,
    through the real workflow with config/demo.yaml (caption on, tiny model)."""
    work = tmp_path_factory.mktemp("report")
    subprocess.run([sys.executable, "-m", "vidcap", "demo", str(work / "demo")], check=True, cwd=REPO,
                   capture_output=True)
    media = work / "demo" / "media"
    shutil.copy(media / "videos" / "part0" / "clip000.mp4", media / "videos" / EVIL_NAME)
    df = read_table(work / "demo" / "manifest.csv")
    extra = pd.DataFrame({"path": [f"media/videos/{EVIL_NAME}", "media/videos/gone.mp4"], "id": ["evil", "gone"],
                          "relpath": ["", ""], "text": ["hint", f"{SCRIPT_CAPTION} {ATTR_CAPTION}"]})
    write_table(pd.concat([df, extra], ignore_index=True), work / "demo" / "manifest.csv")

    cfg = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())

    def absolute(node):
        if isinstance(node, dict):
            return {k: absolute(v) for k, v in node.items()}
        if isinstance(node, str) and node.startswith("demo/"):
            return str(work / node)
        return node

    cfg = absolute(cfg)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    run_snakemake(work, work / "config.yaml", timeout=240)
    return work, cfg["name"]


@pytest.mark.e2e
def test_demo_report_in_chromium(demo_run):
    exe = _chromium()
    work, name = demo_run
    html_path = work / "results" / f"{name}.report.html"
    run = work / "results" / name
    assert html_path.is_file(), "the workflow's last rule wrote the report"
    assert (run / "benchmarks" / "report.tsv").is_file() and (run / "logs" / "report.log").is_file()
    html = html_path.read_text(encoding="utf-8")
    _assert_inert(html)
    assert len(html) < 2_000_000

    url = html_path.resolve().as_uri()
    dom = _browser(exe, work / "chrome-profile", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not _console(dom.stderr), _console(dom.stderr)  # no script error, no CSP violation
    page = dom.stdout
    assert 'data-report-js="ready"' in page, "the filter script ran to its end"
    for sid in SECTIONS:
        assert f'id="{sid}"' in page, sid
    items = re.findall(r'<article class="item"[^>]*>', page)
    assert items, "gallery items"
    assert re.search(r'<img src="data:image/jpeg;base64,[^"]+" alt="frame #\d+', page), "a video thumbnail"
    assert "rows shown" in page
    # the missing file's manifest text (kept when its caption failed) and the evil file name: text only
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onerror=document.body.setAttribute(" in page  # visible as text ...
    assert "data-pwned=" not in page and '<img src="x"' not in page  # ... never run
    assert "file not found" in page and "Failures" in page
    assert "video_short" in page and "tiny-qwen2_5_vl" in page, "provenance: prompt and model"

    shot = run / "report.png"
    res = _browser(exe, work / "chrome-profile", "--window-size=1400,4000", f"--screenshot={shot}", url)
    assert res.returncode == 0 and shot.is_file() and shot.stat().st_size > 20_000, res.stderr[-2000:]
    assert not _console(res.stderr), _console(res.stderr)
    if os.environ.get("VIDCAP_ARTIFACTS"):
        dest = Path(os.environ["VIDCAP_ARTIFACTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / "report.png")
        shutil.copy(html_path, dest / "report.html")


@pytest.mark.e2e
def test_cli_report_reuses_the_saved_config(demo_run, tmp_path):
    work, name = demo_run
    out = tmp_path / "again.html"
    proc = subprocess.run([sys.executable, "-m", "vidcap", "report", str(work / "results" / name), "-o", str(out),
                           "--sample", "3", "--worst", "2", "--thumbnails", "1"],
                          capture_output=True, text=True, cwd=work)
    assert proc.returncode == 0, proc.stderr
    html = out.read_text(encoding="utf-8")
    assert html.count('class="item"') == 5
    text = "".join(_parse(html).text)
    assert "validated config" in text and '"shard_size": 4' in text, "the config the rule saved"
