"""FROZEN generator of clips with known motion and blur (bench/scores): dev and test splits.

Frozen before any tuning (FROZEN.json holds the hashes of this file and of each split's truth): do not
edit; a change makes a new generator and new splits. Knobs of vidcap.scores are chosen on ``dev`` only.

Two sets per split:

* ``flow``: a virtual camera translating over a textured scene (smooth noise of three scales plus
  random blocks, colour) at a constant speed in a random direction: truth ``speed`` = pixels per frame
  at the clip's resolution, log-uniform over 0.05-12, plus 10% of clips at exactly 0 (a still camera);
  sensor noise sigma 0-3 grey levels; half the clips have a rigid object crossing (its own motion is
  not the camera's: the truth stays the camera speed, the dominant motion by area).
* ``blur``: the same scenes, a slow pan (0.5-2 px a frame), each frame Gaussian-blurred with truth
  ``sigma`` uniform over 0-4 px.

640x360, 24/25/30 fps, 48-72 frames, libx264 ``veryfast`` CRF 20-28 (B-frames, its default GOP).
``make_split(name)`` returns the specs; ``write_clip(spec, path)`` renders and encodes one.
"""
from __future__ import annotations

import hashlib
import json
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SPLITS = {"dev": (11, 12, 8), "test": (31337, 40, 20)}   # name -> (seed, flow clips, blur clips)
W, H = 640, 360


def make_split(name: str) -> list[dict]:
    seed, n_flow, n_blur = SPLITS[name]
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n_flow + n_blur):
        kind = "flow" if i < n_flow else "blur"
        spec = {"id": f"{name}_{kind}_{i:03d}", "kind": kind, "scene": int(rng.integers(1 << 30)),
                "fps": int(rng.choice([24, 25, 30])), "frames": int(rng.integers(48, 73)),
                "crf": int(rng.integers(20, 29)), "noise": float(rng.uniform(0, 3)),
                "angle": float(rng.uniform(0, 2 * math.pi)), "object": bool(rng.random() < 0.5)}
        if kind == "flow":
            spec["speed"] = 0.0 if rng.random() < 0.1 else float(math.exp(rng.uniform(math.log(0.05), math.log(12))))
            spec["sigma"] = 0.0
        else:
            spec["speed"] = float(rng.uniform(0.5, 2.0))
            spec["sigma"] = float(rng.uniform(0, 4))
            spec["object"] = False
        specs.append(spec)
    return specs


def truth_hash(specs: list[dict]) -> str:
    return hashlib.sha256(json.dumps(specs, sort_keys=True).encode()).hexdigest()


def _scene(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for scale, amp in ((64, 70.0), (16, 40.0), (4, 20.0)):
        small = rng.normal(0, 1, (h // scale + 2, w // scale + 2, 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(60):
        x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        s = int(rng.integers(8, 40))
        img[y:y + s, x:x + s] += rng.uniform(-60, 60, 3).astype(np.float32)
    return np.clip(img + 128, 0, 255).astype(np.uint8)


def frames(spec: dict):
    """``i -> (H, W, 3) uint8`` of the clip."""
    margin = int(spec["speed"] * spec["frames"]) + 64
    big = _scene(spec["scene"], H + 2 * margin, W + 2 * margin)
    rng = np.random.default_rng(spec["scene"] + 1)
    dx, dy = math.cos(spec["angle"]) * spec["speed"], math.sin(spec["angle"]) * spec["speed"]
    obj = _scene(spec["scene"] + 2, 80, 80) if spec["object"] else None
    ox, oy, ovx = -80.0, float(rng.uniform(40, H - 120)), float(rng.uniform(4, 12))

    def frame(i: int) -> np.ndarray:
        m = np.array([[1, 0, -(margin + dx * i)], [0, 1, -(margin + dy * i)]], np.float32)
        out = cv2.warpAffine(big, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if obj is not None:
            x = int(ox + ovx * i)
            if -80 < x < W:
                a, b = max(0, x), min(W, x + 80)
                out[int(oy):int(oy) + 80, a:b] = obj[:, a - x:b - x]
        if spec["sigma"] > 0:
            out = cv2.GaussianBlur(out, (0, 0), spec["sigma"])
        if spec["noise"] > 0:
            noise = np.random.default_rng(spec["scene"] * 1000 + i).normal(0, spec["noise"], out.shape)
            out = np.clip(out + noise, 0, 255).astype(np.uint8)
        return out

    return frame


def write_clip(spec: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make = frames(spec)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(spec["fps"]))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": str(spec["crf"])}
        for i in range(spec["frames"]):
            for packet in stream.encode(av.VideoFrame.from_ndarray(make(i), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
