"""CPU caption benchmark: how long the model waits for frames, background decoding on vs off.

``python bench/caption/cpu.py [--clips N] [--quick]`` — a tiny random-weight Qwen2.5-VL model (built
with ``vidcap.dev.tiny``, no download) captions the same H.264 clips twice in one run: decoding
inline (``decode_workers: 0``) and in background processes (``decode_workers: 1`` and 2). Reported per
setting: wall time, the time the model sat waiting for its next request (``CaptionStage.stats``), that
wait as a share of wall time, videos/s, and the speed-up over inline decoding. Output length is fixed
(min = max new tokens) so every run does the same model work. Prints a markdown table.
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

from vidcap.caption.stage import CaptionStage  # noqa: E402
from vidcap.dev import synth  # noqa: E402
from vidcap.dev.tiny import build_tiny_model  # noqa: E402

OUT = REPO / "bench" / "out" / "caption"


def make_clips(n: int, width: int = 640, height: int = 360, frames: int = 120) -> list[dict]:
    folder = OUT / f"clips_{width}x{height}_{frames}"
    rows = []
    for i in range(n):
        p = folder / f"clip{i:03d}.mp4"
        if not p.exists():
            synth.write_video(p, num_frames=frames, width=width, height=height, seed=i)
        rows.append({"row_id": f"r{i:04d}", "_media_path": str(p)})
    return rows


def run(rows, model: Path, workers: int, args) -> dict:
    stage = CaptionStage({
        "transformers": {"model": str(model)}, "prompt": "video_short", "batch_size": args.batch_size,
        "decode_workers": workers, "prefetch": 4 * args.batch_size,
        "frames": {"num_frames": args.frames, "resize_short": args.resize_short},
        "generation": {"max_new_tokens": args.tokens, "min_new_tokens": args.tokens},
    })
    stage.setup()
    t0 = time.perf_counter()
    results = list(stage.process_stream(rows))
    wall = time.perf_counter() - t0
    stage.close()
    errors = sum(isinstance(r, BaseException) for _, r in results)
    assert len(results) == len(rows) and errors == 0, f"{errors} rows failed"
    return {"workers": workers, "wall": wall, "wait": stage.stats["input_wait_s"], "rows": len(rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--clip-frames", type=int, default=120)
    ap.add_argument("--frames", type=int, default=8, help="frames sampled per clip")
    ap.add_argument("--resize-short", type=int, default=112)
    ap.add_argument("--tokens", type=int, default=24, help="min = max new tokens")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--workers", default="0,1,2", help="decode_workers settings to compare (0 first)")
    ap.add_argument("--quick", action="store_true", help="8 small clips: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.width, args.height, args.clip_frames = 8, 160, 120, 32
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)  # the model gets one core; the other is the decoders'
    model = build_tiny_model("qwen2_5_vl", OUT / "tiny-qwen2_5_vl")
    rows = make_clips(args.clips, args.width, args.height, args.clip_frames)
    run(rows[: args.batch_size], model, 0, args)  # warm-up (model load, first decode)
    results = [run(rows, model, int(w), args) for w in args.workers.split(",")]
    base = results[0]["wall"]
    print(f"{args.clips} H.264 clips {args.width}x{args.height}, {args.clip_frames} frames; {args.frames} frames "
          f"a clip at short side {args.resize_short}; tiny Qwen2.5-VL (random weights) on CPU, 1 torch thread, "
          f"batch {args.batch_size}, {args.tokens} new tokens a clip; {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}\n")
    print("| decode_workers | wall s | model waiting for frames s | wait share of wall | videos/s | speed-up vs inline |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['workers']} | {r['wall']:.2f} | {r['wait']:.2f} | {100 * r['wait'] / r['wall']:.0f}% | "
              f"{r['rows'] / r['wall']:.1f} | {base / r['wall']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
