"""bench/feed: how many videos a second one CPU core feeds to an engine, against the decode floor.

    python bench/feed/run.py                  # numbers in bench/feed/README.md
    python bench/feed/run.py --frames 4 --repeats 1 --formats jpeg

An engine that answers at once (``python -m vidcap.dev.chat_server --reply ... --no-bodies``: an
OpenAI-compatible server on 127.0.0.1, a fixed caption, no model; its own process) is driven by the real
``CaptionStage`` with the ``vllm`` runner's request path (``FeedRunner``: ``VLLMRunner`` whose client points
at that server instead of a started engine; frames as one video with metadata, as for Qwen2.5-VL), on the
frozen clip set of ``clips.py``. Each row is its own path (symbolic links), so every row is decoded.

Per frame count (4, 8, 32; uniform, short side 336, PyAV, one decoder thread) and wire format:

* **floor** = ``vidcap.media.frames.sample_frames`` alone (the decode floor), one process, CPU seconds;
* **decord** = the same frames sampled with ``decoder="decord"`` (same indices and resize);
* **feed** = the caption stage end to end with 1 feed worker: CPU seconds of this process (request
  building, JSON, HTTP; ``stats["main_cpu_s"]``) plus the workers' (decode + encode; ``os.times`` of the
  reaped children). videos per CPU second = videos/s per core. Overhead = feed CPU / floor CPU - 1.
* per video (ms): decode, resize, encode, request, response from the stage's stats file fields.

Scaling: the stage with 1 and 2 feed workers, interleaved (1, 2, 2, 1), wall videos/s. The machine is
shared with other work: per-core figures use CPU time (robust to load); wall-clock scaling is not.
The wire table encodes the same decoded frames in each format: ms a frame to encode (here) and to decode
(PIL, as vLLM does), bytes, PSNR against the decoded frame.

Cores per GPU = target videos/s x feed CPU seconds a video (15 videos/s at 4 frames, 2 at 32).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
import clips  # noqa: E402

from vidcap.caption.stage import CaptionStage  # noqa: E402
from vidcap.llm.client import ChatClient  # noqa: E402
from vidcap.llm.engine import free_port  # noqa: E402
from vidcap.media.frames import sample_frames  # noqa: E402
from vidcap.media.images import Wire, encode_frame  # noqa: E402
from vidcap.runners.engine import VLLMRunner  # noqa: E402
from vidcap.runners.openai_api import OpenAIRunner  # noqa: E402

KEY_ENV = "VIDCAP_FEED_BENCH_KEY"
CAPTION = "A fixed caption from an engine that answers at once."
FORMATS = {"jpeg": ("jpeg", 95), "jpeg90": ("jpeg", 90), "png": ("png", 95), "bmp": ("bmp", 95)}
WIRE_ROWS = [("jpeg q95 4:4:4 (vllm default)", Wire("jpeg", 95, full_chroma=True)), ("jpeg q95 4:2:0", Wire("jpeg", 95)),
             ("jpeg q90 4:4:4", Wire("jpeg", 90, full_chroma=True)), ("png", Wire("png")), ("bmp", Wire("bmp"))]
TARGETS = {4: 15.0, 32: 2.0}   # videos/s per GPU to feed


class FeedRunner(VLLMRunner):
    """The ``vllm`` runner's request path (messages, video metadata, client) against a server that is
    already running: no engine is started."""

    def __init__(self, settings: dict, url: str):
        super().__init__(settings)
        self.url = url

    def load(self) -> None:
        if self.client is None:
            self.video = True
            os.environ[KEY_ENV] = ""
            self.client = ChatClient({**self.settings, "base_url": self.url, "api_key_env": KEY_ENV})
            self.client.start()

    def run(self, requests):
        self.load()
        return OpenAIRunner.run(self, requests)


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vidcap.dev.chat_server", "--port", str(port), "--reply", CAPTION,
                             "--no-bodies"], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def rows_for(paths: list[Path], repeats: int, tag: str) -> list[dict]:
    folder = clips.OUT / "links" / tag
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(repeats * len(paths)):
        src = paths[k % len(paths)]
        link = folder / f"{k:04d}-{src.name}"
        if not link.is_symlink():
            link.symlink_to(src)
        rows.append({"row_id": f"{tag}-{k:04d}", "_media_path": str(link)})
    return rows


def decode_pass(paths, nf: int, decoder: str, repeats: int) -> dict:
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        for p in paths:
            sample_frames(str(p), nf, "uniform", resize_short=336, decoder=decoder, unique=True)
    n = repeats * len(paths)
    return {"videos": n, "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0}


def feed_pass(url: str, paths, nf: int, fmt: str, workers: int, repeats: int, tag: str) -> dict:
    kind, quality = FORMATS[fmt]
    params = {"runner": "vllm", "feed_workers": workers, "frames": {"num_frames": nf, "resize_short": 336},
              "generation": {"max_new_tokens": 32},
              "vllm": {"model": "feed-bench", "frame_format": kind, "jpeg_quality": quality, "concurrency": 64}}
    stage = CaptionStage(params)
    stage.runner = FeedRunner(stage.runner_settings(), url)
    rows = rows_for(paths, repeats, tag)
    ch0 = os.times()
    t0 = time.perf_counter()
    stage.setup()
    out = list(stage.process_stream(rows))
    wall = time.perf_counter() - t0
    stage.close()
    ch1 = os.times()
    bad = [r for _, r in out if isinstance(r, BaseException)]
    assert len(out) == len(rows) and not bad, (len(out), bad[:1])
    s = dict(stage.stats)
    workers_cpu = (ch1.children_user + ch1.children_system) - (ch0.children_user + ch0.children_system)
    n = len(rows)
    return {"videos": n, "wall_s": wall, "cpu_s": s["main_cpu_s"] + workers_cpu, "main_cpu_s": s["main_cpu_s"],
            "workers_cpu_s": workers_cpu, **{k: 1000 * s[k] / n for k in
                                             ("decode_s", "resize_s", "encode_s", "request_s", "response_s")}}


def wire_table(paths, nf: int = 8) -> list[dict]:
    """Each format on the same decoded frames: encode / decode ms a frame, KiB a frame, PSNR."""
    from PIL import Image

    frames = [f for p in paths for f in sample_frames(str(p), nf, resize_short=336, unique=True).frames]
    out = []
    for name, wire in WIRE_ROWS:
        enc_s = dec_s = 0.0
        size = 0
        err = 0.0
        for f in frames:
            c = time.process_time()
            e = encode_frame(f, wire)
            enc_s += time.process_time() - c
            raw = base64.b64decode(e.b64)
            size += len(e.b64)
            c = time.process_time()
            back = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
            dec_s += time.process_time() - c
            err += float(np.mean((back.astype(np.float64) - f) ** 2))
        mse = err / len(frames)
        out.append({"format": name, "encode_ms": 1000 * enc_s / len(frames),
                    "decode_ms": 1000 * dec_s / len(frames), "kib_b64": size / len(frames) / 1024,
                    "psnr_db": float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", default="4,8,32")
    ap.add_argument("--formats", default="jpeg,png", help=f"feed passes for these wire formats ({', '.join(FORMATS)})")
    ap.add_argument("--no-wire", dest="wire", action="store_false", help="skip the wire-format table")
    ap.add_argument("--repeats", type=int, default=1, help="passes over the clip set per point")
    ap.add_argument("--scaling-repeats", type=int, default=1, help="rows = clips x this, per scaling pass (0 = none)")
    ap.add_argument("--json", default=str(clips.OUT / "feed.json"))
    ap.add_argument("--table", nargs="+", help="print the tables of these result files (points joined) and exit")
    args = ap.parse_args()
    if args.table:
        parts = [json.loads(Path(p).read_text()) for p in args.table]
        joined = {**parts[0], "points": sorted((p for r in parts for p in r["points"]), key=lambda p: p["frames"]),
                  "scaling": [x for r in parts for x in r["scaling"]], "wire": next((r["wire"] for r in parts if r["wire"]), []),
                  "took_s": sum(r.get("took_s", 0) for r in parts), "load_end": parts[-1].get("load_end", 0)}
        print(report(joined))
        return 0
    t_start = time.perf_counter()
    paths, specs = clips.make()
    print(f"clips (feed set v{clips.SPEC_VERSION}): {clips.describe(specs, paths)}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    proc, url = start_server()
    result: dict = {"points": [], "scaling": [], "wire": [], "clips": f"feed set v{clips.SPEC_VERSION}: "
                    f"{clips.describe(specs, paths)}", "load_start": os.getloadavg()[0]}
    try:
        for nf in [int(x) for x in args.frames.split(",") if x.strip()]:
            floor = decode_pass(paths, nf, "pyav", args.repeats)
            dec = decode_pass(paths, nf, "decord", args.repeats)
            point = {"frames": nf, "floor": floor, "decord": dec, "feed": {}}
            for fmt in args.formats.split(","):
                point["feed"][fmt] = feed_pass(url, paths, nf, fmt, 1, args.repeats, f"f{nf}-{fmt}")
            result["points"].append(point)
            print(json.dumps(point), flush=True)
            save(args.json, result)
        for k, w in enumerate((1, 2, 2, 1) if args.scaling_repeats else ()):
            r = feed_pass(url, paths, 4, "jpeg", w, args.scaling_repeats, f"scale{k}")
            result["scaling"].append({"workers": w, **r})
            print(json.dumps(result["scaling"][-1]), flush=True)
            save(args.json, result)
        if args.wire:
            result["wire"] = wire_table(paths)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    result["took_s"] = time.perf_counter() - t_start
    result["load_end"] = os.getloadavg()[0]
    save(args.json, result)
    print(report(result))
    return 0


def save(path: str, result: dict) -> None:
    """The results so far (a long run that is stopped keeps its finished points)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1))


def report(r: dict) -> str:
    lines = [f"clips: {r['clips']}", f"run took {r['took_s']:.0f} s; load average at the end {r['load_end']:.1f}", "",
             "| frames | path | videos/s per core | CPU ms/video | vs floor | feed minus decode: CPU ms/video (% of floor) "
             "| decode | resize | encode | request | response (round trip, overlapping) |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in r["points"]:
        floor_cpu = p["floor"]["cpu_s"] / p["floor"]["videos"]
        for name, m in [("floor (sample_frames)", p["floor"]), ("decord", p["decord"])] + \
                [(f"feed {k}", v) for k, v in p["feed"].items()]:
            cpu = m["cpu_s"] / m["videos"]
            cols = [f"{m[k]:.1f}" for k in ("decode_s", "resize_s", "encode_s", "request_s", "response_s")] \
                if "decode_s" in m else ["-"] * 5
            extra = "-"
            if "decode_s" in m:   # everything but the decode, measured in the same run (robust to decode noise)
                rest = 1000 * cpu - m["decode_s"]
                extra = f"{rest:.0f} ({100 * rest / (1000 * floor_cpu):.1f}%)"
            lines.append(f"| {p['frames']} | {name} | {1 / cpu:.2f} | {1000 * cpu:.0f} | {cpu / floor_cpu:.3f}x | {extra} | "
                         + " | ".join(cols) + " |")
    lines += ["", "ms per video (decode = sample_frames with the 336 px shrink, in the worker; resize = the wire's "
              "max_image_side shrink; request = building the request in the stage's process; response = sent to "
              "answer parsed)", ""]
    sc = r["scaling"]
    if sc:
        by = {w: [x["videos"] / x["wall_s"] for x in sc if x["workers"] == w] for w in (1, 2)}
        cpu = {w: [x["cpu_s"] / x["videos"] for x in sc if x["workers"] == w] for w in (1, 2)}
        lines.append("scaling at 4 frames, jpeg, wall videos/s interleaved 1,2,2,1 workers: "
                     + ", ".join(f"{x['workers']}w {x['videos'] / x['wall_s']:.2f}" for x in sc)
                     + f"; 2 vs 1 worker: {np.mean(by[2]) / np.mean(by[1]):.2f}x (CPU ms/video 1w "
                     f"{1000 * np.mean(cpu[1]):.0f}, 2w {1000 * np.mean(cpu[2]):.0f})")
    if r["wire"]:
        lines += ["", "| wire format | encode ms/frame | decode ms/frame (PIL, as vLLM) | KiB/frame (base64) | "
                  "PSNR dB vs decoded |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {w['format']} | {w['encode_ms']:.2f} | {w['decode_ms']:.2f} | {w['kib_b64']:.0f} | "
                  f"{w['psnr_db']:.1f} |" for w in r["wire"]]
    lines.append("")
    for p in r["points"]:
        if p["frames"] in TARGETS and "jpeg" in p["feed"]:
            m = p["feed"]["jpeg"]
            cpu = m["cpu_s"] / m["videos"]
            rate = TARGETS[p["frames"]]
            lines.append(f"cores per GPU to feed {rate:g} videos/s at {p['frames']} frames (jpeg, this clip set): "
                         f"{rate * cpu:.1f} ({1000 * cpu:.0f} CPU ms a video)")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
