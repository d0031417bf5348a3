"""The caption benchmarks' clip set: mixed, real-shaped H.264 clips from a frozen generator (PyAV, libx264).

``SCALES``: ``full`` = 1280x720 and 1920x1080 (the GPU benchmark), ``small`` = 320x180 and 480x270 (the CPU
run: the same mix at a quarter of the size, shorter). Every clip: H.264 (libx264, preset veryfast, CRF 23,
yuv420p: CABAC and B-frames, as common encoders write), keyframe interval 250 (x264's default maximum GOP,
as in typical camera and web footage), 25 or 30 fps, a duration drawn uniformly from the scale's range, a
virtual camera panning / tilting / zooming over a random texture (``vidcap.dev.synth.camera_frames``: every
frame differs, so the decoder does real work). Measured: about 4 Mbit/s at 1080p (web footage: 4-8);
``describe`` prints the set's real bitrates. The
resolution, fps, duration and motion of clip ``i`` depend only on (split, scale, i): the generator is frozen
(``SPEC_VERSION``; ``spec_fingerprint`` is printed with every table).

Splits: ``dev`` (seeds from 1000; warm-up only) and ``test`` (seeds from 0; what the tables report).

``pass_rows(pool, n, tag)`` serves a pool of unique clips under ``n`` distinct paths (symbolic links, the
pool cycled): the caption stage decodes every path on its own (it shares a decode only between rows of
the SAME path), so each row costs a full decode. The pixels repeat every ``len(pool)`` rows, so an engine
must not be allowed to cache across requests (``run.py`` turns vLLM's prefix and multimodal caches off).
Files go to ``bench/out/caption/`` (git-ignored) and are made once.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "bench" / "out" / "caption"
SPEC_VERSION = 3
GOP = 250
SCALES = {
    # name: (sizes the clips are drawn from, duration range in s)
    "full": (((1280, 720), (1920, 1080)), (5.0, 60.0)),
    "small": (((320, 180), (480, 270)), (2.0, 12.0)),
}


@dataclass(frozen=True)
class ClipSpec:
    name: str
    width: int
    height: int
    fps: int
    seconds: float
    pan: float
    tilt: float
    zoom: float
    seed: int

    @property
    def frames(self) -> int:
        return max(2, int(round(self.seconds * self.fps)))


def clip_specs(split: str, scale: str, n: int) -> list[ClipSpec]:
    """The first ``n`` clips of a split at a scale (frozen: clip i never changes; sizes alternate)."""
    sizes, (lo, hi) = SCALES[scale]
    first = {"test": 0, "dev": 1000}[split]
    out = []
    for i in range(n):
        seed = first + i
        rng = np.random.default_rng([SPEC_VERSION, seed])
        w, h = sizes[i % len(sizes)]   # the sizes alternate: an even mix in any run of clips
        out.append(ClipSpec(name=f"{split}{i:03d}_{w}x{h}", width=w, height=h, fps=int(rng.choice([25, 30])),
                            seconds=round(float(rng.uniform(lo, hi)), 2), pan=round(float(rng.uniform(-0.6, 0.6)), 3),
                            tilt=round(float(rng.uniform(-0.3, 0.3)), 3), zoom=round(float(rng.uniform(0.8, 1.4)), 3),
                            seed=seed))
    return out


def spec_fingerprint(specs: list[ClipSpec]) -> str:
    return hashlib.sha256(json.dumps([asdict(s) for s in specs], sort_keys=True).encode()).hexdigest()[:12]


def write_clip(spec: ClipSpec, path: Path) -> Path:
    """Encode one clip with PyAV (written to a temporary name, renamed when complete)."""
    import av

    from vidcap.dev.synth import camera_frames

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.mp4")
    make = camera_frames(spec.width, spec.height, spec.frames, spec.pan, spec.tilt, spec.zoom, seed=spec.seed)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(GOP)}
        for i in range(spec.frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(make(i)), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path


def _write(args):
    spec, path = args
    return write_clip(spec, Path(path))


def make_pool(split: str, scale: str, n: int, jobs: int = 1) -> tuple[list[Path], list[ClipSpec]]:
    """The clips of a split (made once, ``jobs`` encoders in parallel); returns (paths, specs)."""
    specs = clip_specs(split, scale, n)
    folder = OUT / f"mixed-v{SPEC_VERSION}-{scale}"
    paths = [folder / f"{s.name}.mp4" for s in specs]
    todo = [(s, str(p)) for s, p in zip(specs, paths, strict=True) if not p.exists()]
    if todo:
        # longest first, so the parallel encoders finish together
        todo.sort(key=lambda t: -t[0].frames * t[0].width * t[0].height)
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(_write, todo))
        else:
            for item in todo:
                _write(item)
    return paths, specs


def pass_rows(pool: list[Path], n: int, tag: str) -> list[dict]:
    """``n`` caption-stage rows over the pool, each under its own path (a link named after ``tag``)."""
    folder = pool[0].parent / "links" / tag
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        src = pool[k % len(pool)]
        link = folder / f"{k:05d}-{src.name}"
        if not link.is_symlink():
            link.symlink_to(src)
        rows.append({"row_id": f"{tag}-{k:05d}", "_media_path": str(link)})
    return rows


def describe(specs: list[ClipSpec], paths: list[Path] | None = None) -> str:
    """One line: clips of each size (with the mean bitrate of the files, when given), durations, fps, GOP,
    fingerprint."""
    sizes: dict[str, list] = {}
    for i, s in enumerate(specs):
        entry = sizes.setdefault(f"{s.width}x{s.height}", [0, 0, 0.0])
        entry[0] += 1
        if paths is not None:
            entry[1] += paths[i].stat().st_size
            entry[2] += s.frames / s.fps
    parts = [f"{n} at {k}" + (f" ({8 * b / secs / 1e6:.1f} Mbit/s)" if secs else "")
             for k, (n, b, secs) in sorted(sizes.items(), key=lambda kv: int(kv[0].split("x")[0]))]
    secs = [s.seconds for s in specs]
    return (f"{len(specs)} unique H.264 clips ({', '.join(parts)}), {min(secs):.1f}-{max(secs):.1f} s "
            f"(mean {sum(secs) / len(secs):.1f} s), 25/30 fps, GOP {GOP}, camera motion over texture; "
            f"spec v{SPEC_VERSION} {spec_fingerprint(specs)}")
