"""GPU caption benchmark: full-size Qwen2.5-VL-7B and PLLaVA-13B configurations with random weights (no download).

``python bench/caption/gpu.py [--grid BS:FRAMES:SHORT,...] [--pllava-grid BS:FRAMES,...] [--only qwen|pllava]
[--clips N] [--tiny]``

The model is built from a config object with the 7B sizes (``vidcap.dev.tiny`` ``size="7b"``:
28 layers, hidden 3584, vocab 152064, 32-layer vision tower; tokenizer tiny-trained, config vocab kept)
and random bf16 weights instantiated straight on the GPU. Captions run through the real pipeline
(``CaptionStage``: PyAV decoding in background workers → ``TransformersRunner`` batching → generate)
on synthetic H.264 clips (640x360, 120 frames), with the output length fixed at 128 tokens
(min = max new tokens). Per grid point: videos/s per GPU, output tokens/s, the share of wall time
the generate loop waited for input (``CaptionStage.stats``), the GPU idle share = 1 - (time ``generate`` ran
÷ wall) (the runner's ``generate_s`` over the pass; host work inside ``generate`` counts as busy, so the true
idle share is at least this), NVML's mean GPU utilisation sampled every 0.1 s (``monitor.py``; needs
``nvidia-ml-py``) and peak GPU memory. ``run.py`` is the transformers-vs-vLLM comparison on mixed 720p/1080p
clips; this script is the batch / frames / resolution grid and the PLLaVA rows.

Anchor: Open-Sora reports LLaVA-7B at ~1 video/s per GPU (1 frame, 336 px; 8 videos/s on 8 GPUs).
Target: >= 4 videos/s per H100 at 4 frames @ 336 px, 128 tokens, idle < 10 %.

PLLaVA-13B rows (``--pllava-grid``, Open-Sora's PLLaVA captioner): the full-size config (CLIP ViT-L/14-336,
Vicuna-13B, pooling T-12-12: 576 visual tokens at 4 frames, 2304 at 16; ``vidcap.dev.tiny_pllava``
``size="13b"``, tokenizer tiny, vocab 32064 kept) with random bf16 weights made on the GPU by
``vidcap.models.pllava.random_pllava`` (about 26 GB), run through ``CaptionStage`` with the ``pllava``
runner (segment policy, short side 672, one GPU slot, OOM split); every row a short caption fixed at
``--tokens`` tokens (``short_caption_ratio`` 1, min = max), the same output length as the Qwen rows.
"load s" = the runner's load (random init of the weights on the GPU; with ``--tiny``: the tiny checkpoint
read from its released-layout files). "vs Qwen" = videos/s over the first Qwen row of the same run.

``--tiny``: the same code with the tiny random models on CPU (a smoke test of the logic; numbers mean
nothing). Prints markdown tables.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from vidcap.caption.stage import CaptionStage  # noqa: E402
from vidcap.dev.tiny import build_tiny_model  # noqa: E402
from vidcap.dev.tiny_pllava import build_tiny_pllava  # noqa: E402
from vidcap.runners.hf import TransformersRunner  # noqa: E402
from vidcap.runners.pllava import PllavaRunner  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu import make_clips  # noqa: E402  (same clips as the CPU bench)
from monitor import Monitor, nvml_status  # noqa: E402

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


class RandomWeightsPllavaRunner(PllavaRunner):
    """The real PLLaVA runner, with random weights made on the device from the config (one model kept)."""

    def _load_model(self, model_id, kwargs):
        import torch

        from vidcap.models.pllava import random_pllava

        key = (model_id, self.num_frames, str(kwargs.get("dtype")))
        if key not in _MODEL_CACHE:
            _MODEL_CACHE.clear()  # 13B: one model on the GPU at a time
            self._empty_cache()
            if kwargs.get("attn_implementation"):
                self.config._attn_implementation = kwargs["attn_implementation"]
            device = "cuda" if torch.cuda.is_available() else "cpu"
            _MODEL_CACHE[key] = random_pllava(self.config, device=device, dtype=kwargs["dtype"])
        return _MODEL_CACHE[key]


def bench_point(model: Path, rows, bs: int, frames: int, short: int, tokens: int, workers: int) -> dict:
    stage = CaptionStage({
        "transformers": {"model": str(model), "attn_implementation": os.environ.get("VIDCAP_ATTN", "sdpa")},
        "prompt": "video_detailed", "batch_size": bs, "decode_workers": workers, "prefetch": 4 * bs,
        "frames": {"num_frames": frames, "resize_short": short},
        "generation": {"max_new_tokens": tokens, "min_new_tokens": tokens},
    })
    stage.runner = RandomWeightsRunner(stage.runner_settings())
    return measure(stage, rows, bs) | {"frames": frames, "short": short}


def bench_pllava_point(folder: Path, rows, bs: int, frames: int, tokens: int, workers: int, tiny: bool) -> dict:
    """One PLLaVA row: random 13B weights on the GPU, or (``tiny``) the tiny checkpoint read from its files."""
    stage = CaptionStage({
        "runner": "pllava", "prompt": "video_detailed", "batch_size": bs, "decode_workers": workers,
        "prefetch": 4 * bs, "generation": {"min_new_tokens": tokens},
        "frames": {"num_frames": frames, "policy": "segment", "resize_short": 672},   # the runner's own
        "pllava": {"weight_dir": str(folder), "num_frames": frames, "short_caption_ratio": 1.0,
                   "max_new_tokens": {"short": tokens},
                   "attn_implementation": os.environ.get("VIDCAP_ATTN", "sdpa")},
    })
    stage.runner = (PllavaRunner if tiny else RandomWeightsPllavaRunner)(stage.runner_settings())
    r = measure(stage, rows, bs)
    return r | {"frames": frames, "pooling": r["fit"].get("pooling_shape", ""), "visual": r["fit"].get("visual_tokens")}


def measure(stage: CaptionStage, rows, bs: int) -> dict:
    """Load (timed), one warm-up batch, then every row through ``process_stream``: throughput and waits."""
    import torch

    t_load = time.perf_counter()
    stage.setup()
    load_s = time.perf_counter() - t_load
    list(stage.process_stream(rows[:bs]))  # warm-up batch (kernels, allocator)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    stage.provenance = stage.runner.provenance()
    busy0 = stage.runner.stats["generate_s"]
    monitor = Monitor(include_children=False)
    monitor.start()
    t0 = time.perf_counter()
    results = list(stage.process_stream(rows))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    util = monitor.stop()["nvml_util"]
    busy = stage.runner.stats["generate_s"] - busy0
    stage.close()
    ok = [r for _, r in results if not isinstance(r, BaseException)]
    errors = [r for _, r in results if isinstance(r, BaseException)]
    out_tokens = sum(r["output_tokens"] for r in ok)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    return {"bs": bs, "rows": len(results), "errors": len(errors), "load_s": load_s,
            "fit": dict(getattr(stage.runner, "fit_report", {}) or {}),
            "wall": wall, "vps": len(ok) / wall, "tps": out_tokens / wall,
            "wait": stage.stats["input_wait_s"] / wall, "gpu_idle": max(0.0, 1 - busy / wall), "util": util,
            "peak_gb": peak,
            "prompt_tokens": (sum(r["prompt_tokens"] for r in ok) / max(1, len(ok))),
            "first_error": str(errors[0]) if errors else ""}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="8:4:336,16:4:336,32:4:336,64:4:336,16:8:336,16:16:336,16:4:448",
                    help="comma-separated BATCH:FRAMES:SHORT_SIDE points (Qwen2.5-VL-7B)")
    ap.add_argument("--pllava-grid", default="8:4,16:4,32:4,4:16,8:16",
                    help="comma-separated BATCH:FRAMES points (PLLaVA-13B; frames 4 or 16, short side 672)")
    ap.add_argument("--only", choices=("qwen", "pllava"), default=None, help="run one model's rows only")
    ap.add_argument("--clips", type=int, default=0, help="clips per point (default 4 batches' worth)")
    ap.add_argument("--tokens", type=int, default=128, help="min = max new tokens")
    ap.add_argument("--workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) - 2)))
    ap.add_argument("--tiny", action="store_true", help="tiny random models on CPU: smoke test only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    if args.tiny:
        model = build_tiny_model("qwen2_5_vl", OUT / "tiny-qwen2_5_vl")
        pllava = build_tiny_pllava(OUT / "tiny-pllava")
        if args.grid == ap.get_default("grid"):
            args.grid = "2:4:64,4:4:64"
        if args.pllava_grid == ap.get_default("pllava_grid"):
            args.pllava_grid = "2:4,4:4,2:16"
        args.tokens = min(args.tokens, 8)
        clip_size = (160, 120, 32)
    else:
        if not torch.cuda.is_available():
            print("no GPU: run with --tiny for a CPU smoke test", file=sys.stderr)
            return 2
        model = build_tiny_model("qwen2_5_vl", OUT / "qwen2_5_vl-7b-config", size="7b")
        pllava = build_tiny_pllava(OUT / "pllava-13b-config", size="13b")
        clip_size = (640, 360, 120)
    grid = [] if args.only == "pllava" else [tuple(int(x) for x in p.split(":")) for p in args.grid.split(",")]
    pgrid = [] if args.only == "qwen" else [tuple(int(x) for x in p.split(":")) for p in args.pllava_grid.split(",")]
    n_max = max(args.clips or 4 * pt[0] for pt in grid + pgrid)
    rows = make_clips(n_max, *clip_size)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (tiny model)"
    baseline = None
    if grid:
        print(f"Qwen2.5-VL-7B configuration, random bf16 weights, {'tiny config ' if args.tiny else ''}"
              f"on {device}; {args.tokens} new tokens a clip (fixed); H.264 clips {clip_size[0]}x{clip_size[1]}, "
              f"{args.workers} decode workers; anchor: {ANCHOR}; target >= 4 videos/s at 4 frames @ 336 px, "
              f"idle < 10%; GPU utilisation: {nvml_status()}\n")
        print("| batch | frames | short side | prompt tokens/clip | videos/s/GPU | output tokens/s | "
              "input wait share | idle = 1 - generate/wall | NVML util | peak GPU GiB | failed rows |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for bs, frames, short in grid:
        n = args.clips or 4 * bs
        r = bench_point(model, rows[:n], bs, frames, short, args.tokens, args.workers)
        baseline = baseline or (r["vps"], f"{bs}:{frames}:{short}")
        print(f"| {bs} | {frames} | {short} | {r['prompt_tokens']:.0f} | {r['vps']:.2f} | {r['tps']:.0f} | "
              f"{100 * r['wait']:.0f}% | {_idle(r)} | {_util(r)} | {r['peak_gb']:.1f} | {r['errors']} |", flush=True)
        if r["errors"]:
            print(f"  first failure: {r['first_error']}", flush=True)
    _MODEL_CACHE.clear()
    if pgrid:
        vs = f"first Qwen row ({baseline[1]})" if baseline else "no Qwen row in this run"
        what = "tiny PLLaVA checkpoint read from its files" if args.tiny else "PLLaVA-13B configuration, random bf16 weights"
        print(f"\n{what} on {device}; segment frames at short side 672; {args.tokens} new tokens a clip (short captions, "
              f"fixed); same clips, {args.workers} decode workers; vs Qwen = {vs}\n")
        print("| batch | frames | pooling | visual tokens | prompt tokens/clip | videos/s/GPU | vs Qwen | "
              "output tokens/s | input wait share | idle = 1 - generate/wall | NVML util | peak GPU GiB | load s | "
              "failed rows |")
        print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for bs, frames in pgrid:
        n = args.clips or 4 * bs
        r = bench_pllava_point(pllava, rows[:n], bs, frames, args.tokens, args.workers, args.tiny)
        ratio = f"{r['vps'] / baseline[0]:.2f}x" if baseline else "n/a"
        print(f"| {bs} | {frames} | {r['pooling']} | {r['visual']} | {r['prompt_tokens']:.0f} | {r['vps']:.2f} | "
              f"{ratio} | {r['tps']:.0f} | {100 * r['wait']:.0f}% | {_idle(r)} | {_util(r)} | {r['peak_gb']:.1f} | "
              f"{r['load_s']:.1f} | {r['errors']} |", flush=True)
        if r["errors"]:
            print(f"  first failure: {r['first_error']}", flush=True)
    return 0


def _idle(r: dict) -> str:
    return f"{100 * r['gpu_idle']:.0f}%"


def _util(r: dict) -> str:
    return "n/a (no NVML)" if r["util"] is None else f"{r['util']:.0f}%"


if __name__ == "__main__":
    sys.exit(main())
