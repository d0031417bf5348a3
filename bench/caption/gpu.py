"""GPU caption benchmark: a full-size Qwen2.5-VL-7B configuration with random weights (no download).

``python bench/caption/gpu.py [--grid BS:FRAMES:SHORT,...] [--clips N] [--tiny]``

The model is built from a config object with the 7B sizes (``vidcap.dev.tiny_models`` ``size="7b"``:
28 layers, hidden 3584, vocab 152064, 32-layer vision tower; tokenizer tiny-trained, config vocab kept)
and random bf16 weights instantiated straight on the GPU. Captions run through the real pipeline
(``CaptionStage``: PyAV decoding in background workers → ``TransformersRunner`` batching → generate)
on synthetic H.264 clips (640x360, 120 frames), with the output length fixed at 128 tokens
(min = max new tokens). Per grid point: videos/s per GPU, output tokens/s, the share of wall time
the generate loop waited for input (``CaptionStage.stats``), GPU utilisation sampled every 0.1 s
(``torch.cuda.utilization``, when NVML is available) and peak GPU memory.

Anchor: Open-Sora reports LLaVA-7B at ~1 video/s per GPU (1 frame, 336 px; 8 videos/s on 8 GPUs).
Target: >= 4 videos/s per H100 at 4 frames @ 336 px, 128 tokens, idle < 10 %.

``--tiny``: the same code with the tiny random model on CPU (a smoke test of the logic; numbers mean
nothing). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from vidcap.dev.tiny_models import build_tiny_model  # noqa: E402
from vidcap.runners.hf import TransformersRunner  # noqa: E402
from vidcap.stages.caption import CaptionStage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu import make_clips  # noqa: E402  (same clips as the CPU bench)

OUT = REPO / "bench" / "out" / "caption"
ANCHOR = "Open-Sora LLaVA-7B (1 frame @ 336 px): ~1 video/s per GPU"
_MODEL_CACHE: dict = {}


class RandomWeightsRunner(TransformersRunner):
    """The real runner, with weights drawn at random from the config instead of read from disk."""

    def _load_model(self, model_id, kwargs):
        import torch
        from transformers import AutoModelForImageTextToText

        key = (model_id, str(kwargs.get("dtype")))
        if key not in _MODEL_CACHE:  # one model for the whole grid
            device = "cuda" if torch.cuda.is_available() else "cpu"
            with torch.device(device):
                _MODEL_CACHE[key] = AutoModelForImageTextToText.from_config(
                    self.config, dtype=kwargs["dtype"],
                    attn_implementation=kwargs.get("attn_implementation", "sdpa")).eval()
        return _MODEL_CACHE[key]


class UtilSampler(threading.Thread):
    """Samples ``torch.cuda.utilization()`` every 0.1 s (None when NVML is missing or no GPU)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self):
        import torch

        if not torch.cuda.is_available():
            return
        while not self.stop.is_set():
            try:
                self.samples.append(int(torch.cuda.utilization()))
            except Exception:  # noqa: BLE001 - no NVML: report n/a
                return
            time.sleep(0.1)

    def idle_share(self):
        return None if not self.samples else sum(1 for s in self.samples if s == 0) / len(self.samples)


def bench_point(model: Path, rows, bs: int, frames: int, short: int, tokens: int, workers: int) -> dict:
    import torch

    stage = CaptionStage({
        "transformers": {"model": str(model), "attn_implementation": os.environ.get("VIDCAP_ATTN", "sdpa")},
        "prompt": "video_detailed", "batch_size": bs, "decode_workers": workers, "prefetch": 4 * bs,
        "frames": {"num_frames": frames, "resize_short": short},
        "generation": {"max_new_tokens": tokens, "min_new_tokens": tokens},
    })
    stage.runner = RandomWeightsRunner(stage.runner_settings())
    stage.setup()
    list(stage.process_stream(rows[:bs]))  # warm-up batch (kernels, allocator)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    stage.provenance = stage.runner.provenance()
    sampler = UtilSampler()
    sampler.start()
    t0 = time.perf_counter()
    results = list(stage.process_stream(rows))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    stage.close()
    ok = [r for _, r in results if not isinstance(r, BaseException)]
    errors = [r for _, r in results if isinstance(r, BaseException)]
    out_tokens = sum(r["output_tokens"] for r in ok)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    return {"bs": bs, "frames": frames, "short": short, "rows": len(results), "errors": len(errors),
            "wall": wall, "vps": len(ok) / wall, "tps": out_tokens / wall,
            "wait": stage.stats["input_wait_s"] / wall, "gpu_idle": sampler.idle_share(), "peak_gb": peak,
            "prompt_tokens": (sum(r["prompt_tokens"] for r in ok) / max(1, len(ok))),
            "first_error": str(errors[0]) if errors else ""}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="8:4:336,16:4:336,32:4:336,64:4:336,16:8:336,16:16:336,16:4:448",
                    help="comma-separated BATCH:FRAMES:SHORT_SIDE points")
    ap.add_argument("--clips", type=int, default=0, help="clips per point (default 4 batches' worth)")
    ap.add_argument("--tokens", type=int, default=128, help="min = max new tokens")
    ap.add_argument("--workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) - 2)))
    ap.add_argument("--tiny", action="store_true", help="tiny random model on CPU: smoke test only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    if args.tiny:
        model = build_tiny_model("qwen2_5_vl", OUT / "tiny-qwen2_5_vl")
        if args.grid == ap.get_default("grid"):
            args.grid = "2:4:64,4:4:64"
        args.tokens = min(args.tokens, 8)
        clip_size = (160, 120, 32)
    else:
        if not torch.cuda.is_available():
            print("no GPU: run with --tiny for a CPU smoke test", file=sys.stderr)
            return 2
        model = build_tiny_model("qwen2_5_vl", OUT / "qwen2_5_vl-7b-config", size="7b")
        clip_size = (640, 360, 120)
    grid = [tuple(int(x) for x in p.split(":")) for p in args.grid.split(",")]
    n_max = max(args.clips or 4 * bs for bs, _, _ in grid)
    rows = make_clips(n_max, *clip_size)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (tiny model)"
    print(f"Qwen2.5-VL-7B configuration, random bf16 weights, {'tiny config ' if args.tiny else ''}"
          f"on {device}; {args.tokens} new tokens a clip (fixed); H.264 clips {clip_size[0]}x{clip_size[1]}, "
          f"{args.workers} decode workers; anchor: {ANCHOR}; target >= 4 videos/s at 4 frames @ 336 px, idle < 10%\n")
    print("| batch | frames | short side | prompt tokens/clip | videos/s/GPU | output tokens/s | "
          "input wait share | GPU idle (sampled) | peak GPU GiB | failed rows |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for bs, frames, short in grid:
        n = args.clips or 4 * bs
        r = bench_point(model, rows[:n], bs, frames, short, args.tokens, args.workers)
        idle = "n/a" if r["gpu_idle"] is None else f"{100 * r['gpu_idle']:.0f}%"
        print(f"| {bs} | {frames} | {short} | {r['prompt_tokens']:.0f} | {r['vps']:.2f} | {r['tps']:.0f} | "
              f"{100 * r['wait']:.0f}% | {idle} | {r['peak_gb']:.1f} | {r['errors']} |", flush=True)
        if r["errors"]:
            print(f"  first failure: {r['first_error']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
