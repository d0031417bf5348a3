"""videos/s of the ``openai`` runner against a local server with a fixed artificial latency.

    .venv/bin/python bench/api/run.py                       # 2 s a request, 64 videos, c = 1 8 32 64
    .venv/bin/python bench/api/run.py --latency 2 --videos 128 --concurrency 1 8 32 64 --serial-videos 4

Each video is a real request: 3 decoded frames of a synthetic 640x360 clip, encoded as JPEG data URLs
(``detail: low``, longest side 512), sent to ``vidcap.dev.chat_server`` which sleeps ``--latency``
seconds and answers. The serial baseline is what the original GPT-4V script does: one request at a
time, a plain blocking ``openai.OpenAI`` call per video, no concurrency. The ratio column is
videos/s over the serial baseline. Prints a markdown table (and writes it with ``--out``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

KEY_VAR = "VIDCAP_BENCH_KEY"


def make_frames(tmp: Path):
    from vidcap.dev import synth
    from vidcap.media.frames import sample_frames

    clip = synth.write_video(tmp / "bench.mp4", num_frames=30, width=640, height=360)
    return sample_frames(clip, 3, "uniform")


def serial_baseline(url: str, frames, n: int) -> float:
    """One blocking request after another, as the original script: returns videos/s."""
    import openai

    from vidcap.runners.base import Request
    from vidcap.runners.openai_api import OpenAIRunner

    helper = OpenAIRunner({"base_url": url, "api_key_env": KEY_VAR, "model": "bench"})
    client = openai.OpenAI(base_url=url, api_key=os.environ[KEY_VAR], max_retries=0)
    t0 = time.monotonic()
    for i in range(n):
        msgs, _ = helper.messages(Request(str(i), "Describe this video.", frames=frames))
        client.chat.completions.create(model="bench", messages=msgs, max_tokens=300)
    return n / (time.monotonic() - t0)


def concurrent_run(url: str, frames, n: int, concurrency: int) -> tuple[float, int]:
    from vidcap.runners.base import Request
    from vidcap.runners.openai_api import OpenAIRunner

    runner = OpenAIRunner({"base_url": url, "api_key_env": KEY_VAR, "model": "bench",
                           "concurrency": concurrency, "timeout_s": 120})
    runner.load()
    t0 = time.monotonic()
    got = sum(1 for _ in runner.run(Request(str(i), "Describe this video.", frames=frames) for i in range(n)))
    rate = got / (time.monotonic() - t0)
    peak = runner.client.stats.max_in_flight
    runner.close()
    assert got == n
    return rate, peak


def main(argv=None) -> int:
    import tempfile

    from vidcap.dev.chat_server import ChatServer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=2.0, help="seconds the server takes a request")
    ap.add_argument("--videos", type=int, default=64, help="videos per concurrent run")
    ap.add_argument("--serial-videos", type=int, default=4, help="videos in the serial baseline")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--out", default=None, help="also write the table here")
    args = ap.parse_args(argv)
    os.environ.setdefault(KEY_VAR, "sk-bench-not-a-real-key")

    with tempfile.TemporaryDirectory() as tmp, ChatServer(latency=args.latency) as srv:
        frames = make_frames(Path(tmp))
        base = serial_baseline(srv.url, frames, args.serial_videos)
        rows = [("serial (original script)", 1, args.serial_videos, base, 1)]
        for c in args.concurrency:
            n = max(args.videos, c) if c > 1 else args.serial_videos
            rate, peak = concurrent_run(srv.url, frames, n, c)
            rows.append(("vidcap openai runner", c, n, rate, peak))
            print(f"concurrency {c}: {rate:.2f} videos/s (peak in flight {peak})", file=sys.stderr)

    lines = [f"latency {args.latency:g} s a request, 3 frames a video (640x360 -> JPEG, detail low), "
             f"local server on 127.0.0.1, {os.cpu_count()} cores",
             "",
             "| client | concurrency | videos | videos/s | peak in flight | ratio vs serial |",
             "|---|---|---|---|---|---|"]
    for name, c, n, rate, peak in rows:
        lines.append(f"| {name} | {c} | {n} | {rate:.3f} | {peak} | {rate / base:.1f}x |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
