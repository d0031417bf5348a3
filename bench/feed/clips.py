"""bench/feed's frozen clip set: H.264 720p and 1080p, GOP 250, 10-60 s.

Specs (size, fps, duration, motion, seed) come from the caption benchmarks' frozen draw
(``bench/caption/clips.py``) mapped onto this set's sizes and 10-60 s; the encoder is the same (libx264
veryfast, CRF 23, yuv420p, GOP 250: CABAC and B-frames). The pixels are cheaper to make than the caption
set's (which warps a texture per frame, minutes per 1080p clip on a loaded 2-core machine): each frame is
an integer-offset window panning over a smooth random texture, with a little per-frame grain, so every
frame differs and the decoder does real work. Clip ``i`` depends only on ``i`` (``SPEC_VERSION``; the
fingerprint is printed with every table). Files go to ``bench/out/feed/`` (git-ignored), made once.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("caption_clips", HERE.parent / "caption" / "clips.py")
assert _spec is not None and _spec.loader is not None
caption_clips = importlib.util.module_from_spec(_spec)
sys.modules["caption_clips"] = caption_clips   # the frozen encoder lives with the caption benchmarks
_spec.loader.exec_module(caption_clips)

REPO = HERE.parents[1]
OUT = REPO / "bench" / "out" / "feed"
SPEC_VERSION = 1
GOP = 250
SIZES = ((1280, 720), (1920, 1080))
SECONDS = (10.0, 60.0)
PER_SIZE = 2          # clips of each size: 4 clips, about 3600 frames (a loaded 2-core machine makes them in minutes)


def describe(specs: list, paths: list | None = None) -> str:
    """The caption set's one-line description, with this set's version."""
    return caption_clips.describe(specs, paths).replace(f"spec v{caption_clips.SPEC_VERSION} ",
                                                        f"feed spec v{SPEC_VERSION} ")

spec_fingerprint = caption_clips.spec_fingerprint


def clip_specs(per_size: int) -> list:
    """``per_size`` clips of each size (alternating); durations drawn in ``SECONDS`` (frozen per index)."""
    base = caption_clips.clip_specs("test", "full", 2 * per_size)
    lo, hi = SECONDS
    out = []
    for i, s in enumerate(base):
        w, h = SIZES[i % 2]
        # the caption set draws 5-60 s; this set maps the same draw onto 10-60 s
        seconds = round(lo + (s.seconds - 5.0) * (hi - lo) / 55.0, 2)
        out.append(replace(s, name=f"feed{i:03d}_{w}x{h}", width=w, height=h, seconds=seconds))
    return out


def write_clip(spec, path: Path) -> Path:
    """Encode one clip with PyAV (a temporary name, renamed when complete)."""
    import av
    import cv2

    rng = np.random.default_rng([SPEC_VERSION, spec.seed])
    w, h = spec.width, spec.height
    span_x, span_y = int(abs(spec.pan) * w) + 8, int(abs(spec.tilt) * h) + 8
    small = rng.integers(0, 256, ((h + span_y) // 8 + 1, (w + span_x) // 8 + 1, 3), dtype=np.uint8)
    texture = cv2.resize(small, ((w + span_x) // 8 * 8 + 8, (h + span_y) // 8 * 8 + 8), interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(0, 6, (16, h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.mp4")
    n = spec.frames
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(GOP)}
        for i in range(n):
            x = int(round((span_x - 8) * (i / max(1, n - 1)))) if spec.pan >= 0 else int(round((span_x - 8) * (1 - i / max(1, n - 1))))
            y = int(round((span_y - 8) * (i / max(1, n - 1)))) if spec.tilt >= 0 else int(round((span_y - 8) * (1 - i / max(1, n - 1))))
            frame = texture[y:y + h, x:x + w] + grain[i % 16]
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path


def _write(args):
    spec, path = args
    return write_clip(spec, Path(path))


def make(per_size: int | None = None, jobs: int = 2) -> tuple[list[Path], list]:
    specs = clip_specs(per_size or PER_SIZE)
    folder = OUT / f"clips-v{SPEC_VERSION}"
    paths = [folder / f"{s.name}.mp4" for s in specs]
    todo = sorted(((s, str(p)) for s, p in zip(specs, paths, strict=True) if not p.exists()),
                  key=lambda t: -t[0].frames * t[0].width * t[0].height)
    if todo:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(_write, todo))
    return paths, specs


if __name__ == "__main__":
    paths, specs = make(int(sys.argv[1]) if len(sys.argv) > 1 else PER_SIZE)
    print(describe(specs, paths))
