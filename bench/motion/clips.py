"""Labeled synthetic camera-motion clips for the benchmark and the tests.

A virtual camera (a rotated/scaled crop window, rendered with ``cv2.warpAffine``) moves over a real
photograph from scikit-image's bundled data (no download); when scikit-image is missing, procedural
textures stand in (``SOURCE`` says which was used). Every clip is encoded to H.264 with PyAV/libx264 and
decoded back by the classifier.

Conventions (same as ``vidcap.motion``): ``pan`` = +pan right (scene moves left), ``tilt`` = +tilt up
(scene moves down), ``zoom`` = ln(magnification) * half_diagonal / short_side (+ zoom in); all are the
totals over the clip as a fraction of the shorter side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 360, 24
THRESHOLD = 0.25
NUISANCES = ("clean", "noise", "h264", "foreground", "flicker", "jitter")
UNCLASSIFIED_KINDS = ("low_texture", "cut", "rotation")
# Bundled photographs with texture over most of the frame ("clock" and "rocket" are mostly plain wall /
# sky: zooming into them is genuinely low texture, so they would test the wrong thing).
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "camera", "brick", "grass", "gravel", "cat", "coins",
               "immunohistochemistry")

SOURCE = "unknown"
_CACHE: dict = {}


def _procedural(seed: int) -> np.ndarray:
    """Photo-like stand-in: multi-scale noise plus random coloured shapes (has real corners)."""
    rng = np.random.default_rng(1000 + seed)
    img = np.zeros((512, 512, 3), np.float32)
    for scale in (4, 16, 64):
        small = rng.normal(0, 1, (512 // scale + 1, 512 // scale + 1, 3)).astype(np.float32)
        img += 40 * cv2.resize(small, (512, 512), interpolation=cv2.INTER_CUBIC) / math.sqrt(scale / 4)
    img = np.clip(img + 128, 0, 255).astype(np.uint8)
    for _ in range(60):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = (int(v) for v in rng.integers(0, 512, 2))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(8, 60)), y + int(rng.integers(8, 60))), color, -1)
        else:
            cv2.circle(img, (x, y), int(rng.integers(4, 30)), color, -1)
    return img


def photos() -> list[np.ndarray]:
    """The source photographs (RGB uint8), upscaled so the shorter side is 1080 px."""
    global SOURCE
    if "photos" in _CACHE:
        return _CACHE["photos"]
    imgs = []
    try:
        import skimage
        from skimage import data

        for name in PHOTO_NAMES:
            im = np.asarray(getattr(data, name)())
            if im.ndim == 2:
                im = np.repeat(im[..., None], 3, axis=2)
            imgs.append(np.ascontiguousarray(im[..., :3]).astype(np.uint8))
        SOURCE = f"scikit-image {skimage.__version__} data photographs ({len(imgs)})"
    except Exception:  # noqa: BLE001 - scikit-image missing or a photo not bundled: procedural stand-ins
        imgs = [_procedural(i) for i in range(len(PHOTO_NAMES))]
        SOURCE = f"procedural textures ({len(imgs)}; scikit-image not available)"
    out = []
    for im in imgs:
        f = 1080 / min(im.shape[:2])
        out.append(cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC))
    _CACHE["photos"] = out
    return out


@dataclass
class ClipSpec:
    name: str
    label: str                      # expected cmotion
    nuisance: str                   # one of NUISANCES or UNCLASSIFIED_KINDS
    combo: bool                     # more than one direction in the expected label
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0
    rotation: float = 0.0           # degrees over the clip
    num_frames: int = 48
    photo: int = 0
    seed: int = 0
    extra: dict = field(default_factory=dict)


def expected_label(pan: float, tilt: float, zoom: float, thr: float = THRESHOLD) -> str:
    parts = []
    for v, plus, minus in ((pan, "pan_right", "pan_left"), (tilt, "tilt_up", "tilt_down"),
                           (zoom, "zoom_in", "zoom_out")):
        if v >= thr:
            parts.append(plus)
        elif v <= -thr:
            parts.append(minus)
    return "+".join(sorted(parts)) if parts else "static"


def _above(rng, hi: float = 0.8) -> float:
    """Clearly above the 0.25 threshold: 0.4 .. hi (1.6x .. 3.2x the threshold), random sign."""
    return float(rng.uniform(0.4, hi) * rng.choice([-1, 1]))


def _below(rng) -> float:
    return 0.0 if rng.random() < 0.4 else float(rng.uniform(-0.1, 0.1))


def make_specs(n: int, seed: int) -> list[ClipSpec]:
    """``n`` clip specs drawn from ``seed``: ~20% static (incl. below-threshold motion, a third of them
    with a moving foreground), ~27% one direction, ~27% combinations, ~26% expected-unclassified (low
    texture, cut, rotation); motion clips cycle through NUISANCES."""
    rng = np.random.default_rng(seed)
    n_photos = len(PHOTO_NAMES)
    specs = []
    for i in range(n):
        r = rng.random()
        frames = int(rng.choice([40, 48, 60, 72]))
        photo = int(rng.integers(0, n_photos))
        cs = int(rng.integers(0, 2**31))
        if r < 0.74:
            if r < 0.2:
                axes = []
            elif r < 0.47:
                axes = [int(rng.integers(0, 3))]
            else:
                axes = sorted(rng.choice(3, size=int(rng.choice([2, 2, 3])), replace=False).tolist())
            vals = [_above(rng, 0.7 if a == 2 else 0.8) if a in axes else _below(rng) for a in range(3)]
            # a third of the static clips get a moving foreground object (the classic false positive)
            nuisance = ("foreground" if not axes and rng.random() < 0.34
                        else NUISANCES[i % len(NUISANCES)])
            label = expected_label(*vals)
            specs.append(ClipSpec(f"{seed}_{i:04d}", label, nuisance, "+" in label, *vals,
                                  rotation=0.0, num_frames=frames, photo=photo, seed=cs))
        else:
            kind = UNCLASSIFIED_KINDS[i % len(UNCLASSIFIED_KINDS)]
            vals = [_above(rng) if rng.random() < 0.4 else _below(rng) for _ in range(3)]
            rot = 0.0
            extra = {}
            if kind == "rotation":
                rot = float(rng.uniform(20, 60) * rng.choice([-1, 1]))
                vals = [v * 0.5 for v in vals]
            elif kind == "cut":
                extra = {"cut_at": float(rng.uniform(0.3, 0.7)),
                         "photo2": int((photo + rng.integers(1, n_photos)) % n_photos),
                         "vals2": [_above(rng) if rng.random() < 0.4 else _below(rng) for _ in range(3)]}
            elif kind == "low_texture":
                extra = {"flat": bool(rng.random() < 0.4)}
            specs.append(ClipSpec(f"{seed}_{i:04d}", "unclassified", kind, False, *vals, rotation=rot,
                                  num_frames=frames, photo=photo, seed=cs, extra=extra))
    return specs


def _camera_path(pan, tilt, zoom, rot_deg, n, ease, w=WIDTH, h=HEIGHT):
    """Per-frame (cx, cy, s, theta) with s0 = 1 and centre starting at 0 (source units)."""
    short = min(w, h)
    half_diag = 0.5 * math.hypot(w, h)
    L = zoom * short / half_diag          # ln magnification over the clip
    u = np.linspace(0, 1, n)
    if ease:
        u = u * u * (3 - 2 * u)
    s = np.exp(-L * u)
    integ = (1 - np.exp(-L * u)) / L if abs(L) > 1e-9 else u   # integral of s du
    cx = pan * short * integ
    cy = -tilt * short * integ
    theta = np.radians(rot_deg) * u
    return cx, cy, s, theta


def _render(src, cx, cy, s, theta, w=WIDTH, h=HEIGHT):
    c, si = math.cos(theta) * s, math.sin(theta) * s
    # dst (x, y) -> src: centre + s R (x - w/2, y - h/2)
    m = np.float32([[c, -si, cx - c * w / 2 + si * h / 2], [si, c, cy - si * w / 2 - c * h / 2]])
    return cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT101)


def _fit_path(src_shape, cx, cy, s, theta, rng, w=WIDTH, h=HEIGHT):
    """Scale the s0=1 path into the source image; returns (cx, cy, s) in source pixels."""
    hw = 0.5 * (abs(np.cos(theta)) * w + abs(np.sin(theta)) * h) * s
    hh = 0.5 * (abs(np.sin(theta)) * w + abs(np.cos(theta)) * h) * s
    x0, x1 = (cx - hw).min(), (cx + hw).max()
    y0, y1 = (cy - hh).min(), (cy + hh).max()
    H, W = src_shape[:2]
    k = 0.97 * min(W / (x1 - x0), H / (y1 - y0))
    k = min(k, float(rng.uniform(1.0, 1.6)))   # do not always use the whole photo
    ox = rng.uniform(0, W - k * (x1 - x0)) - k * x0
    oy = rng.uniform(0, H - k * (y1 - y0)) - k * y0
    return cx * k + ox, cy * k + oy, s * k


def render_clip(spec: ClipSpec) -> list[np.ndarray]:
    """The clip's frames (RGB uint8, HEIGHT x WIDTH), nuisances applied (except H.264, see write_clip)."""
    rng = np.random.default_rng(spec.seed)
    srcs = photos()
    src = srcs[spec.photo]
    n = spec.num_frames
    ease = bool(rng.random() < 0.5)
    if spec.nuisance == "low_texture":
        if spec.extra.get("flat"):
            a, b = rng.integers(40, 216, 3), rng.integers(40, 216, 3)
            g = np.linspace(0, 1, src.shape[1])[None, :, None]
            src = np.broadcast_to(a + (b - a) * g, src.shape).astype(np.uint8).copy()
        else:
            src = cv2.GaussianBlur(src, (0, 0), 45)
    cx, cy, s, th = _camera_path(spec.pan, spec.tilt, spec.zoom, spec.rotation, n, ease)
    if spec.nuisance == "cut":
        cut = int(round(spec.extra["cut_at"] * n))
        p2 = _camera_path(*spec.extra["vals2"], 0.0, n, ease)
        cx1, cy1, s1 = _fit_path(src.shape, cx, cy, s, th, rng)
        src2 = srcs[spec.extra["photo2"]]
        cx2, cy2, s2 = _fit_path(src2.shape, *p2, rng)
        frames = [_render(src, cx1[i], cy1[i], s1[i], th[i]) if i < cut
                  else _render(src2, cx2[i], cy2[i], s2[i], p2[3][i]) for i in range(n)]
    else:
        if spec.nuisance == "jitter":
            amp = rng.uniform(0.006, 0.015) * min(WIDTH, HEIGHT)   # px of shake (output units)
            noise = rng.normal(0, 1, (n + 4, 3))
            kern = np.ones(3) / 3
            sm = np.stack([np.convolve(noise[:, j], kern, "same")[2:-2] for j in range(3)], 1)
            sm /= sm.std(0, keepdims=True) + 1e-9
            jx, jy = sm[:, 0] * amp * s, sm[:, 1] * amp * s
            cx, cy = cx + jx, cy + jy
            th = th + np.radians(0.3) * sm[:, 2]
        cx1, cy1, s1 = _fit_path(src.shape, cx, cy, s, th, rng)
        frames = [_render(src, cx1[i], cy1[i], s1[i], th[i]) for i in range(n)]

    if spec.nuisance == "noise" or spec.nuisance == "low_texture":
        sigma = rng.uniform(6, 14) if spec.nuisance == "noise" else rng.uniform(2, 6)
        frames = [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8) for f in frames]
    elif spec.nuisance == "flicker":
        for i, f in enumerate(frames):
            gain, off = rng.uniform(0.7, 1.3), rng.uniform(-20, 20)
            frames[i] = cv2.convertScaleAbs(f, alpha=gain, beta=off)
    elif spec.nuisance == "foreground":
        frames = _add_foreground(frames, srcs, spec, rng)
    return frames


def _add_foreground(frames, srcs, spec, rng):
    """A textured object (patch of another photo, ellipse mask) crossing the frame independently."""
    other = srcs[(spec.photo + 1 + int(rng.integers(0, len(srcs) - 1))) % len(srcs)]
    ph = int(rng.uniform(0.4, 0.6) * HEIGHT)
    pw = int(ph * rng.uniform(0.8, 1.4))
    y0 = int(rng.integers(0, other.shape[0] - ph))
    x0 = int(rng.integers(0, other.shape[1] - pw))
    patch = cv2.resize(other[y0:y0 + ph * 2, x0:x0 + pw * 2], (pw, ph), interpolation=cv2.INTER_AREA)
    mask = np.zeros((ph, pw), np.uint8)
    cv2.ellipse(mask, (pw // 2, ph // 2), (pw // 2 - 1, ph // 2 - 1), 0, 0, 360, 1, -1)
    start = np.array([rng.uniform(0, WIDTH - pw), rng.uniform(0, HEIGHT - ph)])
    ang = rng.uniform(0, 2 * math.pi)
    dist = rng.uniform(0.5, 1.0) * WIDTH
    end = start + dist * np.array([math.cos(ang), math.sin(ang)])
    end = np.clip(end, [0, 0], [WIDTH - pw, HEIGHT - ph])
    if np.linalg.norm(end - start) < 0.3 * WIDTH:   # bounced into a corner: cross horizontally instead
        end = np.array([WIDTH - pw - start[0], start[1]])
    n = len(frames)
    out = []
    for i, f in enumerate(frames):
        x, y = (start + (end - start) * i / max(n - 1, 1)).astype(int)
        f = f.copy()
        roi = f[y:y + ph, x:x + pw]
        roi[mask == 1] = patch[mask == 1]
        out.append(f)
    return out


def write_clip(spec: ClipSpec, path: Path, frames=None) -> Path:
    """Encode the clip to H.264 (.mp4); the 'h264' nuisance uses a heavy CRF 36-40, others CRF 23."""
    frames = render_clip(spec) if frames is None else frames
    rng = np.random.default_rng(spec.seed + 7)
    crf = int(rng.integers(36, 41)) if spec.nuisance == "h264" else 23
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        stream.codec_context.thread_count = 1
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
