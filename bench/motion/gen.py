"""FROZEN generator of labeled camera-motion clips (bench/motion): dev and test splits.

Frozen before any classifier tuning (see README.md and FROZEN.json for the date and hashes): do not
edit. A change here invalidates the test split; make a new generator and a new split instead.

Ground truth (the reference a person is assumed to use; the classifier's knobs are tuned separately,
on the dev split only):

* ``pan`` / ``tilt``: net displacement of the dominant scene layer at the frame centre over the clip,
  as a fraction of the frame's shorter side; ``+`` = pan right (scene moves left) / tilt up (scene
  moves down). An axis is moving when ``|value| >= REF_PAN`` (0.25, Open-Sora's threshold).
* ``zoom``: ``ln(total magnification)`` of the dominant layer (+ = zoom in). Moving when
  ``|zoom| >= ln(1 + REF_ZOOM)`` (a total scale change of 10%).
* ``expected``: ``static``, the sorted ``+``-joined directions, or ``unclassified`` (cuts, dissolves,
  dips to black, low texture, roll).

Scenes: up to four planes at different depths (a far plane, the dominant plane with holes, near
sprites), each moving with its own multiplier of the camera motion (parallax); the dominant plane has
multiplier 1 and the largest visible area. Movers: a rigid object crossing, a large subject the camera
follows, a crowd of small walkers, procedural water. Optics: rolling shutter, motion blur, lens
distortion. Photometry: sensor noise, flicker, dim/night gain, fades. Encoding: libx264 at random
CRF (heavy 34-40 for ``h264``), random GOP length, 24/25/30 fps, four frame shapes.

Sources: scikit-image's bundled images and procedural images, disjoint between the splits
(``SOURCES``). ``make_split(name)`` returns the specs; ``write_clip(spec, path)`` renders and encodes.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

REF_PAN = 0.25
REF_ZOOM = 0.10
ZOOM_LN = math.log(1.0 + REF_ZOOM)

SPLIT_SEEDS = {"dev": 20261, "test": 70717, "test2": 90523}

# (name, kind). Disjoint between the splits; "proc:<family>:<seed>" are procedural images.
SOURCES = {
    "dev": [("astronaut", "photo"), ("coffee", "photo"), ("camera", "photo"), ("clock", "photo"),
            ("brick", "texture"), ("grass", "texture"), ("moon", "astronomy"), ("cell", "medical"),
            ("page", "document"), ("proc:clouds:101", "procedural"), ("proc:shapes:102", "procedural"),
            ("proc:stars:103", "dark"), ("proc:blobs:104", "procedural")],
    "test": [("chelsea", "photo"), ("rocket", "photo"), ("motorcycle", "photo"), ("gravel", "texture"),
             ("coins", "texture"), ("hubble_deep_field", "astronomy"), ("retina", "medical"),
             ("immunohistochemistry", "medical"), ("text", "document"), ("proc:clouds:201", "procedural"),
             ("proc:shapes:202", "procedural"), ("proc:stars:203", "dark"), ("proc:blobs:204", "procedural")],
    # Second test split, added 2026-11-22 09:13 UTC after the first test run had been seen: the test
    # photographs with a new seed and new procedural images; frozen before any further tuning.
    "test2": [("chelsea", "photo"), ("rocket", "photo"), ("motorcycle", "photo"), ("gravel", "texture"),
              ("coins", "texture"), ("hubble_deep_field", "astronomy"), ("retina", "medical"),
              ("immunohistochemistry", "medical"), ("text", "document"), ("proc:clouds:301", "procedural"),
              ("proc:shapes:302", "procedural"), ("proc:stars:303", "dark"), ("proc:blobs:304", "procedural")],
}

SHAPES = ((512, 288), (512, 288), (480, 360), (288, 512), (384, 384))
SWEEP_MULTS = (0.25, 0.28, 0.35, 0.45, 0.56, 0.71, 0.89, 1.12, 1.41, 1.78, 2.24, 2.83, 3.56, 4.0)
SWEEP_NUISANCES = ("clean", "noise", "jitter", "h264", "flicker", "parallax")
PLAIN_NUISANCES = ("clean", "noise", "h264", "flicker", "jitter")
AXES = ("pan", "tilt", "zoom")


@dataclass
class Spec:
    name: str
    split: str
    group: str
    expected: str
    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 0.0
    roll: float = 0.0                 # degrees over the clip
    frames: int = 48
    width: int = 640
    height: int = 360
    fps: int = 24
    source: str = ""
    kind: str = ""                    # kind of the source image
    seed: int = 0
    nuisances: tuple = ()
    sweep_axis: str = ""
    sweep_mult: float = 0.0
    params: dict = field(default_factory=dict)

    @property
    def combo(self) -> bool:
        return "+" in self.expected

    def row(self) -> dict:
        d = asdict(self)
        d["nuisances"] = "+".join(self.nuisances)
        d["params"] = repr(self.params)
        return d


def expected_label(pan: float, tilt: float, zoom: float) -> str:
    parts = []
    for v, thr, plus, minus in ((pan, REF_PAN, "pan_right", "pan_left"), (tilt, REF_PAN, "tilt_up", "tilt_down"),
                                (zoom, ZOOM_LN, "zoom_in", "zoom_out")):
        if v >= thr:
            parts.append(plus)
        elif v <= -thr:
            parts.append(minus)
    return "+".join(sorted(parts)) if parts else "static"


def _ref(axis: str) -> float:
    return ZOOM_LN if axis == "zoom" else REF_PAN


# ------------------------------------------------------------------------------------------------ specs

class _Drawer:
    """All random choices of a split, in a fixed order."""

    def __init__(self, split: str):
        self.split = split
        self.rng = np.random.default_rng(SPLIT_SEEDS[split])
        self.sources = SOURCES[split]
        self.i = 0
        self.specs: list[Spec] = []

    def moving(self, axis: str, lo: float = 1.3, hi: float = 4.0) -> float:
        m = math.exp(self.rng.uniform(math.log(lo), math.log(hi)))
        return float(m * _ref(axis) * self.rng.choice([-1, 1]))

    def still(self, axis: str, hi: float = 0.6) -> float:
        if self.rng.random() < 0.4:
            return 0.0
        return float(self.rng.uniform(-hi, hi) * _ref(axis))

    def axes_for(self, kind: str) -> list[str]:
        if kind == "static":
            return []
        if kind == "single":
            return [AXES[int(self.rng.integers(0, 3))]]
        n = 2 if self.rng.random() < 0.7 else 3
        return [AXES[a] for a in sorted(self.rng.choice(3, size=n, replace=False).tolist())]

    def values(self, axes, lo=1.3, hi=4.0, still_hi=0.6, zoom_hi=None):
        out = {}
        for a in AXES:
            if a in axes:
                out[a] = self.moving(a, lo, zoom_hi if (a == "zoom" and zoom_hi) else hi)
            else:
                out[a] = self.still(a, still_hi)
        return out

    def add(self, group: str, vals: dict, *, frames=None, nuisances=(), roll=0.0, expected=None,
            sweep_axis="", sweep_mult=0.0, params=None, source=None, shape=None, fps=None):
        rng = self.rng
        src, kind = self.sources[self.i % len(self.sources)] if source is None else source
        w, h = SHAPES[int(rng.integers(0, len(SHAPES)))] if shape is None else shape
        fps = int(rng.choice([24, 25, 30])) if fps is None else fps
        frames = int(rng.choice([36, 48, 60, 72, 96, 120, 150])) if frames is None else int(frames)
        exp = expected_label(vals["pan"], vals["tilt"], vals["zoom"]) if expected is None else expected
        p = dict(params or {})
        p.setdefault("profile", str(rng.choice(["linear", "ease", "ease", "accel", "decel", "startstop"])))
        p.setdefault("crf", int(rng.integers(34, 41)) if "h264" in nuisances else int(rng.integers(18, 27)))
        p.setdefault("gop", int(rng.choice([15, 30, 60, 250])))
        p.setdefault("view", float(rng.uniform(0.3, 0.8)))
        self.specs.append(Spec(f"{self.split}_{len(self.specs):04d}_{group}", self.split, group, exp,
                               vals["pan"], vals["tilt"], vals["zoom"], roll, frames, w, h, fps, src, kind,
                               int(rng.integers(0, 2**31 - 1)), tuple(nuisances), sweep_axis, sweep_mult, p))
        self.i += 1

    def other_source(self) -> tuple[str, str]:
        return self.sources[int(self.rng.integers(0, len(self.sources)))]


def make_split(split: str) -> list[Spec]:
    """The frozen specs of ``split`` ('dev' or 'test'): same recipe, different seed and source images."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}")
    d = _Drawer(split)
    rng = d.rng

    # 1. sensitivity sweep: one axis at a time, 0.25x .. 4x the reference threshold
    for axis in AXES:
        for sign in (1, -1):
            for m in SWEEP_MULTS:
                for rep in range(2):
                    nuis = SWEEP_NUISANCES[(rep + 2 * SWEEP_MULTS.index(m) + 3 * (sign < 0)) % len(SWEEP_NUISANCES)]
                    vals = {a: 0.0 for a in AXES}
                    vals[axis] = sign * m * _ref(axis)
                    d.add("sweep", vals, frames=int(rng.choice([36, 48, 60, 72])), nuisances=(nuis,),
                          sweep_axis=axis, sweep_mult=m)
    # 2. static (zero or below-threshold motion) with plain nuisances
    for k in range(30):
        d.add("static", d.values([]), nuisances=(PLAIN_NUISANCES[k % 5],))
    # 3. one direction
    for k in range(48):
        axis = AXES[k % 3]
        vals = d.values([axis])
        d.add("single", vals, nuisances=(PLAIN_NUISANCES[k % 5],))
    # 4. combinations (2 or 3 axes)
    for k in range(60):
        n = 3 if k % 4 == 3 else 2
        axes = [AXES[a] for a in sorted(rng.choice(3, size=n, replace=False).tolist())]
        d.add("combo", d.values(axes), nuisances=(PLAIN_NUISANCES[k % 5],))
    # 5. multi-plane parallax (3 or 4 depth layers)
    for k in range(40):
        kind = ("static", "single", "single", "combo", "combo")[k % 5]
        vals = d.values(d.axes_for(kind), still_hi=0.7)
        nuis = ("parallax",) + (("jitter",) if k % 3 == 0 else ())
        d.add("parallax", vals, nuisances=nuis)
    # 6. a large subject the camera follows (pan/tilt; the background decides)
    for k in range(24):
        if k % 5 == 4:
            vals = {a: 0.0 for a in AXES}
        else:
            axes = [["pan"], ["tilt"], ["pan", "tilt"], ["pan"]][k % 4]
            vals = d.values(axes, still_hi=0.3)
            vals["zoom"] = 0.0
        d.add("followed", vals, nuisances=("followed",) + (("jitter",) if k % 2 else ()))
    # 7. independent movers: rigid object, crowd, water; camera static or moving
    for k in range(36):
        mover = ("foreground", "crowd", "water")[k % 3]
        kind = ("static", "static", "single", "combo")[k % 4]
        d.add("movers", d.values(d.axes_for(kind)), nuisances=(mover,))
    # 8. dim / night
    for k in range(30):
        kind = ("static", "single", "single", "combo", "combo")[k % 5]
        extra = (("jitter",), (), ("parallax",))[k % 3]
        d.add("dim", d.values(d.axes_for(kind)), nuisances=("dim",) + extra)
    # 9. long clips (240-600 frames), large motion
    for k in range(20):
        frames = int(rng.integers(240, 601))
        if k % 5 == 0:
            vals = d.values([], still_hi=0.6)
            nuis = (("crowd",), ("water",), ("foreground",), ("jitter",))[(k // 5) % 4]
        else:
            kind = ("single", "combo")[k % 2]
            vals = d.values(d.axes_for(kind), lo=1.5, hi=24.0, zoom_hi=12.0)
            nuis = (("clean",), ("jitter",), ("motion_blur",), ("parallax",), ("noise",))[k % 5]
        d.add("long", vals, frames=frames, nuisances=nuis, shape=(512, 288))
    # 10. optics: rolling shutter, motion blur, lens distortion (fast motion makes them matter)
    optics = ("rolling_shutter", "motion_blur", "lens")
    for k in range(24):
        kind = ("static", "single", "combo")[k % 3]
        vals = d.values(d.axes_for(kind), lo=1.5, hi=6.0)
        subset = k % 7 + 1                       # cycles over the 7 non-empty subsets
        chosen = tuple(o for j, o in enumerate(optics) if subset >> j & 1)
        d.add("optics", vals, nuisances=chosen)
    # 11. fades (to/from black) on one shot: the shot's label
    for k in range(12):
        kind = ("static", "single", "combo")[k % 3]
        vals = d.values(d.axes_for(kind), lo=2.0, hi=4.0, still_hi=0.0)
        d.add("fade", vals, frames=int(rng.choice([72, 96, 120])), nuisances=(("fade_in", "fade_out")[k % 2],))
    # 12. expected unclassified: cuts, dissolves, dips to black, low texture, roll
    for k in range(16):
        d.add("cut", d.values(d.axes_for(("static", "single", "combo")[k % 3])), expected="unclassified",
              frames=int(rng.choice([48, 72, 96, 120])),
              params={"at": float(rng.uniform(0.25, 0.75)), "second": d.other_source(),
                      "vals2": d.values(d.axes_for(("static", "single", "combo")[(k + 1) % 3]))})
    for k in range(16):
        frames = int(rng.choice([72, 96, 120, 150]))
        length = float(rng.uniform(0.3, 1.5))
        d.add("dissolve", d.values(d.axes_for(("static", "single", "combo")[k % 3])), expected="unclassified",
              frames=frames, params={"at": float(rng.uniform(0.3, 0.7)), "length_s": length,
                                     "second": d.other_source(),
                                     "vals2": d.values(d.axes_for(("static", "single", "combo")[(k + 2) % 3]))})
    for k in range(8):
        d.add("dip", d.values(d.axes_for(("static", "single")[k % 2])), expected="unclassified",
              frames=int(rng.choice([72, 96, 120])),
              params={"at": float(rng.uniform(0.3, 0.7)), "out_frames": int(rng.integers(6, 19)),
                      "black_frames": int(rng.integers(0, 7)), "second": d.other_source(),
                      "vals2": d.values(d.axes_for(("single", "static")[k % 2]))})
    for k in range(16):
        d.add("low_texture", d.values(d.axes_for(("static", "single", "combo")[k % 3])), expected="unclassified",
              nuisances=("low_texture",), params={"flat": ("flat", "ramp", "defocus")[k % 3]})
    for k in range(12):
        vals = d.values(d.axes_for(("static", "single")[k % 2]), hi=2.0)
        roll = float(rng.uniform(20, 60) * rng.choice([-1, 1]))
        d.add("rotation", vals, roll=roll, expected="unclassified", nuisances=(("clean", "jitter")[k % 2],))
    return d.specs


# ---------------------------------------------------------------------------------------------- sources

_CACHE: dict = {}


def _fractal(rng, size: int, octaves=(4, 8, 16, 32, 64, 128), falloff: float = 0.6) -> np.ndarray:
    img = np.zeros((size, size), np.float32)
    amp = 1.0
    for o in octaves:
        small = rng.normal(0, 1, (o + 1, o + 1)).astype(np.float32)
        img += amp * cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        amp *= falloff
    img -= img.mean()
    return img / (img.std() + 1e-6)


def _procedural(family: str, seed: int, size: int = 1024) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if family == "clouds":
        chans = [_fractal(rng, size) for _ in range(3)]
        img = np.stack([128 + 45 * c for c in chans], -1)
    elif family == "shapes":
        img = np.stack([128 + 30 * _fractal(rng, size, (8, 32, 128)) for _ in range(3)], -1)
        img = np.clip(img, 0, 255).astype(np.uint8)
        for _ in range(220):
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            x, y = (int(v) for v in rng.integers(0, size, 2))
            if rng.random() < 0.5:
                cv2.rectangle(img, (x, y), (x + int(rng.integers(8, 90)), y + int(rng.integers(8, 90))), color, -1)
            else:
                cv2.circle(img, (x, y), int(rng.integers(4, 45)), color, -1)
        return img
    elif family == "stars":
        neb = np.clip(_fractal(rng, size, (2, 4, 8, 16)), 0, None)
        img = np.stack([neb * s for s in (10, 6, 14)], -1)
        n = int(size * size / 900)
        ys, xs = rng.integers(0, size, n), rng.integers(0, size, n)
        bright = rng.pareto(1.5, n) * 40 + 20
        for x, y, b in zip(xs, ys, bright, strict=True):
            r = 1 if b < 120 else 2
            col = np.clip(b * rng.uniform(0.8, 1.2, 3), 0, 255)
            cv2.circle(img, (int(x), int(y)), r, tuple(float(c) for c in col), -1, lineType=cv2.LINE_AA)
        img = cv2.GaussianBlur(img, (0, 0), 0.8)
    elif family == "blobs":
        field = _fractal(rng, size, (8, 16, 32), 0.7)
        mask = (field > 0).astype(np.float32)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.5)
        a, b = rng.integers(30, 120, 3), rng.integers(140, 240, 3)
        img = a[None, None, :] * (1 - mask[..., None]) + b[None, None, :] * mask[..., None]
        img += 8 * _fractal(rng, size, (64, 128, 256))[..., None]
    else:
        raise ValueError(family)
    return np.clip(img, 0, 255).astype(np.uint8)


def source_image(name: str) -> np.ndarray:
    """RGB uint8 image for a source name of ``SOURCES``."""
    if name in _CACHE:
        return _CACHE[name]
    if name.startswith("proc:"):
        _, family, seed = name.split(":")
        img = _procedural(family, int(seed))
    else:
        from skimage import data

        if name == "motorcycle":
            img = data.stereo_motorcycle()[0]
        else:
            img = getattr(data, name)()
        img = np.asarray(img)
        if img.dtype != np.uint8:
            img = (255 * (img.astype(np.float64) / max(float(img.max()), 1e-9))).astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = np.ascontiguousarray(img[..., :3])
    _CACHE[name] = img
    return img


# -------------------------------------------------------------------------------------------- camera

def _profile(name: str, tau: np.ndarray) -> np.ndarray:
    """Fraction of the motion done at clip time tau in [0, 1] (monotone, 0 -> 0, 1 -> 1)."""
    t = np.clip(tau, 0.0, 1.0)
    if name == "linear":
        return t
    if name == "ease":
        return t * t * (3 - 2 * t)
    if name == "accel":
        return t * t
    if name == "decel":
        return 1 - (1 - t) ** 2
    if name == "startstop":   # still for the first and last 20%, smooth move in between
        s = np.clip((t - 0.2) / 0.6, 0, 1)
        return s * s * (3 - 2 * s)
    raise ValueError(name)


class Camera:
    """Inverse maps (output px -> layer canvas px) of a layer with motion multiplier ``d`` at clip time tau.

    The dominant layer (d = 1) moves by (pan, tilt) * short side at the frame centre over the clip and
    magnifies by exp(zoom); a layer with multiplier d moves d times as far and magnifies exp(d * zoom).
    Roll and hand-held jitter are common to all layers.
    """

    def __init__(self, spec: Spec, rng, jitter: bool):
        self.w, self.h = spec.width, spec.height
        self.short = min(self.w, self.h)
        self.pan, self.tilt, self.zoom = spec.pan, spec.tilt, spec.zoom
        self.roll = math.radians(spec.roll)
        self.profile = spec.params.get("profile", "linear")
        self.n = spec.frames
        self.jit = None
        if jitter:
            amp = rng.uniform(0.005, 0.02) * self.short
            k = max(2, self.n // 6)
            knots = rng.normal(0, 1, (k + 4, 3))
            self.jit_knots = knots / (knots.std(0, keepdims=True) + 1e-9)
            self.jit = (amp, np.radians(rng.uniform(0.1, 0.4)))

    def _jitter(self, tau):
        if self.jit is None:
            z = np.zeros_like(tau)
            return z, z, z
        k = len(self.jit_knots) - 4
        pos = np.clip(tau, 0, 1) * k + 1.5
        out = [np.interp(pos, np.arange(len(self.jit_knots)), self.jit_knots[:, j]) for j in range(3)]
        amp, ramp = self.jit
        return amp * out[0], amp * out[1], ramp * out[2]

    def params(self, tau, d: float = 1.0):
        """(px, py, scale, theta) arrays for clip times tau (p = canvas point at the frame centre)."""
        tau = np.asarray(tau, np.float64)
        u = _profile(self.profile, tau)
        a = d * self.zoom
        g = (1 - np.exp(-a * u)) / a if abs(a) > 1e-9 else u
        px = d * self.pan * self.short * g
        py = -d * self.tilt * self.short * g
        z = np.exp(a * u)
        th = self.roll * u
        jx, jy, jt = self._jitter(tau)
        return px + jx / z, py + jy / z, z, th + jt

    def matrix(self, tau: float, d: float, origin) -> np.ndarray:
        px, py, z, th = (float(v[0]) for v in self.params(np.array([tau]), d))
        c, s = math.cos(th) / z, math.sin(th) / z
        cx, cy = (self.w - 1) / 2.0, (self.h - 1) / 2.0
        ox, oy = origin
        return np.array([[c, -s, px + ox - c * cx + s * cy], [s, c, py + oy - s * cx - c * cy]], np.float64)

    def maps(self, tau_rows: np.ndarray, d: float, origin, size=None):
        """Per-row inverse maps (rolling shutter): row y uses time tau_rows[y]."""
        w, h = size or (self.w, self.h)
        px, py, z, th = self.params(tau_rows, d)
        cx, cy = (self.w - 1) / 2.0, (self.h - 1) / 2.0
        c, s = (np.cos(th) / z)[:, None], (np.sin(th) / z)[:, None]
        xs = np.arange(w, dtype=np.float64)[None, :] - cx - (w - self.w) / 2.0
        ys = (np.arange(h, dtype=np.float64) - cy - (h - self.h) / 2.0)[:, None]
        mx = px[:, None] + origin[0] + c * xs - s * ys
        my = py[:, None] + origin[1] + s * xs + c * ys
        return mx.astype(np.float32), my.astype(np.float32)

    def extent(self):
        """Canvas bounding box (x0, y0, x1, y1) of the dominant layer's view over the clip (no roll)."""
        tau = np.linspace(0, 1, max(self.n, 2))
        px, py, z, _ = self.params(tau, 1.0)
        hw, hh = 0.5 * self.w / z, 0.5 * self.h / z
        return float((px - hw).min()), float((py - hh).min()), float((px + hw).max()), float((py + hh).max())

    def footprint(self, d: float, margin: float = 1.3):
        """Canvas bounding box (x0, y0, x1, y1) of the view over the clip (origin 0)."""
        tau = np.linspace(0, 1, max(self.n, 2))
        px, py, z, _ = self.params(tau, d)
        r = margin * 0.5 * math.hypot(self.w, self.h) / z
        return float((px - r).min()), float((py - r).min()), float((px + r).max()), float((py + r).max())


# ------------------------------------------------------------------------------------------------ layers

def _canvas_from(img: np.ndarray, scale: float, rng) -> np.ndarray:
    """The source image resized by ``scale`` (canvas px per source px), randomly flipped/tinted."""
    out = cv2.resize(img, None, fx=scale, fy=scale,
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def _blob_mask(rng, h: int, w: int) -> np.ndarray:
    """A smooth random blob (star-shaped polygon) filling most of an h x w box, uint8 0/1."""
    mask = np.zeros((h, w), np.uint8)
    n = 24
    ang = np.linspace(0, 2 * math.pi, n, endpoint=False)
    rad = 1 + 0.25 * np.convolve(rng.normal(0, 1, n + 4), np.ones(5) / 5, "same")[2:-2]
    rad = rad / rad.max()
    pts = np.stack([w / 2 + 0.49 * w * rad * np.cos(ang), h / 2 + 0.49 * h * rad * np.sin(ang)], 1)
    shape = int(rng.integers(0, 3))
    if shape == 0:
        cv2.ellipse(mask, (w // 2, h // 2), (max(1, w // 2 - 1), max(1, h // 2 - 1)), 0, 0, 360, 1, -1)
    elif shape == 1:
        r = int(min(h, w) * 0.2)
        cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 1, -1)
        cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 1, -1)
        for x, y in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(mask, (x, y), r, 1, -1)
    else:
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    return mask


def _patch(rng, img: np.ndarray, h: int, w: int) -> np.ndarray:
    """An h x w textured patch cut from ``img`` (resized to fit when the image is small)."""
    H, W = img.shape[:2]
    f = max(h / H, w / W)
    src = img
    if f > 0.9:
        src = cv2.resize(img, None, fx=f / 0.9, fy=f / 0.9, interpolation=cv2.INTER_CUBIC)
    H, W = src.shape[:2]
    y0, x0 = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
    return np.ascontiguousarray(src[y0:y0 + h, x0:x0 + w])


class Layer:
    """A plane: RGBA canvas (alpha 255 = opaque; borders reflected unless ``reflect`` is False), motion
    multiplier d, canvas point of the first frame's centre."""

    def __init__(self, rgb, alpha, d, origin, reflect=True):
        alpha = np.full(rgb.shape[:2], 255, np.uint8) if alpha is None else alpha
        self.rgba = np.ascontiguousarray(np.dstack([rgb, alpha]))
        self.d, self.origin, self.reflect = d, origin, reflect


def _sprite_canvas(rng, cam: Camera, d: float, density: float, sizes, pool, frame_h: int):
    """RGB + alpha canvas covering the layer's footprint, sprinkled with sprites to ``density``."""
    x0, y0, x1, y1 = cam.footprint(d, margin=1.2)
    W, H = int(x1 - x0) + 2, int(y1 - y0) + 2
    scale = min(1.0, math.sqrt(4.0e6 / max(W * H, 1)))     # keep huge canvases bounded
    Wc, Hc = max(8, int(W * scale)), max(8, int(H * scale))
    rgb = np.zeros((Hc, Wc, 3), np.uint8)
    alpha = np.zeros((Hc, Wc), np.uint8)
    target = density * Wc * Hc
    covered = 0.0
    tries = 0
    while covered < target and tries < 4000:
        tries += 1
        sh = int(rng.uniform(*sizes) * frame_h * scale)
        sw = int(sh * rng.uniform(0.5, 1.6))
        if sh < 4 or sw < 4 or sh >= Hc or sw >= Wc:
            continue
        img = source_image(pool[int(rng.integers(0, len(pool)))][0])
        patch = _patch(rng, img, sh, sw)
        mask = _blob_mask(rng, sh, sw)
        y, x = int(rng.integers(0, Hc - sh)), int(rng.integers(0, Wc - sw))
        roi, aroi = rgb[y:y + sh, x:x + sw], alpha[y:y + sh, x:x + sw]
        roi[mask == 1] = patch[mask == 1]
        aroi[mask == 1] = 255
        covered += mask.sum()
    return rgb, alpha, (x0, y0), scale


def _holes_alpha(rng, shape_hw, density: float) -> np.ndarray:
    """Alpha (255 = opaque) with smooth random holes covering about ``density`` of the canvas."""
    H, W = shape_hw
    field = _fractal(rng, 256, (6, 12, 24), 0.6)
    field = cv2.resize(field, (W, H), interpolation=cv2.INTER_CUBIC)
    thr = np.quantile(field, density)
    return np.where(field > thr, 255, 0).astype(np.uint8)


# --------------------------------------------------------------------------------------------- rendering

class Scene:
    """Everything needed to render one shot (layers, movers, optics) from a spec."""

    def __init__(self, spec: Spec, rng, source=None, vals=None, low_texture=None):
        self.spec = spec
        self.rng = rng
        nuis = set(spec.nuisances)
        s = spec
        if vals is not None:
            s = Spec(**{**asdict(spec), "pan": vals["pan"], "tilt": vals["tilt"], "zoom": vals["zoom"]})
        self.cam = Camera(s, rng, jitter="jitter" in nuis)
        self.w, self.h = spec.width, spec.height
        short = min(self.w, self.h)
        pool = SOURCES[spec.split]
        src_name = source or spec.source
        img = source_image(src_name)
        # the first frame sees `view` of the source (its whole frame inside the image); the path's
        # footprint is centred in the image where it fits (beyond it, borders are mirrored)
        view = float(spec.params.get("view", 0.5))
        scale = float(np.clip(max(self.w / (view * img.shape[1]), self.h / (view * img.shape[0])), 0.5, 3.0))
        base = _canvas_from(img, scale, rng)
        if low_texture:
            base = self._low_texture(base, low_texture, short)
        bh, bw = base.shape[:2]
        fx0, fy0, fx1, fy1 = self.cam.extent()
        slack_x, slack_y = bw - (fx1 - fx0), bh - (fy1 - fy0)
        origin = (float(-fx0 + max(slack_x, 0) * rng.uniform(0.2, 0.8) + min(slack_x, 0) / 2),
                  float(-fy0 + max(slack_y, 0) * rng.uniform(0.2, 0.8) + min(slack_y, 0) / 2))
        self.layers: list[Layer] = []
        self.parallax = "parallax" in nuis
        if self.parallax:
            far_img = source_image(pool[int(rng.integers(0, len(pool)))][0])
            far = _canvas_from(far_img, float(np.clip(short / (0.6 * min(far_img.shape[:2])), 0.5, 2.5)), rng)
            d_far = float(rng.uniform(0.1, 0.5))
            hole_density, near_density = float(rng.uniform(0.12, 0.3)), float(rng.uniform(0.05, 0.12))
            n_near = 1 if rng.random() < 0.5 else 2
            d_near = [float(rng.uniform(1.4, 2.2)), float(rng.uniform(1.15, 1.4))][:n_near]
            # the dominant plane must stay the largest visible layer (>= 50% and >= 1.5x any other at
            # every sampled time): redraw holes and sprites, sparser each time, until it is
            for _ in range(8):
                self.layers = [Layer(far, None, d_far, (far.shape[1] / 2, far.shape[0] / 2)),
                               Layer(base, _holes_alpha(rng, (bh, bw), hole_density), 1.0, origin)]
                for d_n in d_near:
                    rgb, alpha, org, sc = _sprite_canvas(rng, self.cam, d_n, near_density, (0.12, 0.35), pool,
                                                         self.h)
                    self.layers.append(Layer(rgb, alpha, d_n, None, reflect=False))
                    self.layers[-1].sprite = (org, sc)
                shares = self.layer_shares()
                dom, other = shares[:, 1], np.delete(shares, 1, axis=1).max(1)
                if dom.min() >= 0.5 and (dom >= 1.5 * other).all():
                    break
                hole_density *= 0.7
                near_density *= 0.7
        else:
            self.layers.append(Layer(base, None, 1.0, origin))
        # movers
        self.followed = self.foreground = self.crowd = self.water = None
        if "followed" in nuis:
            sh = int(rng.uniform(0.5, 0.85) * self.h)
            sw = int(min(sh * rng.uniform(0.35, 0.8), 0.6 * self.w))
            other = source_image(pool[int(rng.integers(0, len(pool)))][0])
            self.followed = (_patch(rng, other, sh, sw), _blob_mask(rng, sh, sw),
                             (float(rng.uniform(0.3, 0.7) * self.w), float(rng.uniform(0.45, 0.65) * self.h)),
                             float(rng.uniform(0.01, 0.03) * short), float(rng.uniform(1.0, 3.0)),
                             float(rng.uniform(0, 2 * math.pi)))
        if "foreground" in nuis:
            ph = int(rng.uniform(0.3, 0.6) * self.h)
            pw = int(min(ph * rng.uniform(0.7, 1.4), 0.6 * self.w))
            other = source_image(pool[int(rng.integers(0, len(pool)))][0])
            start = np.array([rng.uniform(0, self.w - pw), rng.uniform(0, self.h - ph)])
            ang = rng.uniform(0, 2 * math.pi)
            end = start + rng.uniform(0.5, 1.0) * self.w * np.array([math.cos(ang), math.sin(ang)])
            end = np.clip(end, [0, 0], [self.w - pw, self.h - ph])
            if np.linalg.norm(end - start) < 0.3 * self.w:
                end = np.array([self.w - pw - start[0], start[1]])
            self.foreground = (_patch(rng, other, ph, pw), _blob_mask(rng, ph, pw), start, end)
        if "crowd" in nuis:
            people = []
            for _ in range(int(rng.integers(15, 41))):
                ph = int(rng.uniform(0.05, 0.14) * self.h)
                pw = max(3, int(ph * rng.uniform(0.35, 0.6)))
                other = source_image(pool[int(rng.integers(0, len(pool)))][0])
                people.append((_patch(rng, other, ph, pw), _blob_mask(rng, ph, pw),
                               np.array([rng.uniform(-0.6, 0.6) * self.w, rng.uniform(-0.5, 0.5) * self.h]),
                               rng.normal(0, 0.25, 2) * short, float(rng.uniform(0, 2 * math.pi))))
            self.crowd = people
        if "water" in nuis:
            waves = [(rng.uniform(0.03, 0.25), rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 3.0) * 2 * math.pi,
                      rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 1.0)) for _ in range(7)]
            level = float(rng.uniform(0.2, 0.45))       # water covers the bottom part of the mid-clip view
            tint = rng.uniform(0.3, 1.0, 3) * np.array([0.5, 0.8, 1.0])
            self.water = (waves, level, tint)
        self.optics = {o for o in ("rolling_shutter", "motion_blur", "lens") if o in nuis}
        self.readout = float(rng.uniform(0.4, 0.9))
        self.shutter = float(rng.uniform(0.3, 0.5))
        self.k1 = float(rng.choice([rng.uniform(-0.25, -0.08), rng.uniform(0.05, 0.12)]))
        self._lens_maps = None

    def layer_shares(self, times: int = 7) -> np.ndarray:
        """(times, layers) share of the frame where each layer is the top-most, at evenly spaced times."""
        out = []
        for tau in np.linspace(0, 1, times):
            top = np.zeros((self.h, self.w), np.int8)
            for li, layer in enumerate(self.layers):
                sprite = getattr(layer, "sprite", None)
                m = self.cam.matrix(tau, layer.d, (0.0, 0.0) if sprite else layer.origin)
                if sprite:
                    (ox, oy), sc = sprite
                    m = np.array([[sc, 0, -ox * sc], [0, sc, -oy * sc]]) @ np.vstack([m, [0, 0, 1]])
                a = cv2.warpAffine(np.ascontiguousarray(layer.rgba[..., 3]), m, (self.w, self.h),
                                   flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REFLECT_101 if layer.reflect else cv2.BORDER_CONSTANT)
                top[a > 127] = li
            out.append([float((top == li).mean()) for li in range(len(self.layers))])
        return np.array(out)

    @staticmethod
    def _low_texture(base, how, short):
        if how == "flat":
            color = base.reshape(-1, 3).mean(0)
            return np.broadcast_to(color, base.shape).astype(np.uint8).copy()
        if how == "ramp":
            a, b = base.reshape(-1, 3).min(0).astype(float), base.reshape(-1, 3).max(0).astype(float)
            g = np.linspace(0, 1, base.shape[1])[None, :, None]
            mid = (a + b) / 2
            return np.broadcast_to(mid + 0.3 * (b - a) * (g - 0.5), base.shape).astype(np.uint8).copy()
        h, w = base.shape[:2]                                          # featureless smooth gradient:
        small = cv2.resize(base, (max(4, w // 16), max(4, h // 16)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), 0.5 * short / 16)      # blur sigma = half the short side
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)

    # ----------------------------------------------------------------------------------------------
    def _render_layers(self, tau: float, size, row_times=None) -> np.ndarray:
        w, h = size
        out = None
        for layer in self.layers:
            sprite = getattr(layer, "sprite", None)
            border = cv2.BORDER_REFLECT_101 if layer.reflect else cv2.BORDER_CONSTANT
            origin = (0.0, 0.0) if sprite else layer.origin
            if row_times is not None:
                mx, my = self.cam.maps(row_times, layer.d, origin, size)
                if sprite:
                    (ox, oy), sc = sprite
                    mx, my = (mx - ox) * sc, (my - oy) * sc
                warped = cv2.remap(layer.rgba, mx, my, cv2.INTER_LINEAR, borderMode=border)
            else:
                m = self.cam.matrix(tau, layer.d, origin)
                if size != (self.w, self.h):
                    dx, dy = (w - self.w) / 2.0, (h - self.h) / 2.0
                    m = m @ np.array([[1, 0, -dx], [0, 1, -dy], [0, 0, 1]], np.float64)
                if sprite:
                    (ox, oy), sc = sprite
                    m = np.array([[sc, 0, -ox * sc], [0, sc, -oy * sc]]) @ np.vstack([m, [0, 0, 1]])
                warped = cv2.warpAffine(layer.rgba, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                        borderMode=border)
            if out is None:
                out = np.ascontiguousarray(warped[..., :3])
            else:
                np.copyto(out, warped[..., :3], where=warped[..., 3:] > 127)
        return out

    def _render_water(self, out, tau, size, row_times):
        waves, level, tint = self.water
        w, h = size
        times = np.full(h, tau) if row_times is None else row_times
        mx, my = self.cam.maps(times, 1.0, (0.0, 0.0), size)
        short = min(self.w, self.h)
        # the water surface: canvas y below the level line of the mid-clip view (plus a slow swell)
        mid_y = float(self.cam.params(np.array([0.5]), 1.0)[1][0])
        line = mid_y + (0.5 - level) * self.h + 0.02 * short * np.sin(mx / (0.7 * short) + 2 * math.pi * tau)
        inside = my > line
        if not inside.any():
            return out
        val = np.zeros_like(mx)
        for k, ang, omega, phase, amp in waves:
            kx, ky = math.cos(ang) / (k * short), math.sin(ang) / (k * short)
            val += amp * np.sin(2 * math.pi * (kx * mx + ky * my) - omega * tau * self.spec.frames / 24.0 + phase)
        val = 128 + 35 * val / math.sqrt(len(waves))
        water = val[..., None] * tint[None, None, :] * 1.4
        mask = inside[..., None].astype(np.float32)
        return out * (1 - mask) + water.astype(np.float32) * mask

    def _paste(self, out, patch, mask, x, y, scale=1.0):
        if scale != 1.0:
            ph, pw = max(2, int(patch.shape[0] * scale)), max(2, int(patch.shape[1] * scale))
            patch = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, (pw, ph), interpolation=cv2.INTER_NEAREST)
        ph, pw = mask.shape
        x, y = int(round(x)), int(round(y))
        H, W = out.shape[:2]
        xa, ya, xb, yb = max(x, 0), max(y, 0), min(x + pw, W), min(y + ph, H)
        if xa >= xb or ya >= yb:
            return
        m = mask[ya - y:yb - y, xa - x:xb - x].astype(bool)
        roi = out[ya:yb, xa:xb]
        roi[m] = patch[ya - y:yb - y, xa - x:xb - x][m]

    def _render_movers(self, out, tau, size):
        w, h = size
        dx, dy = (w - self.w) / 2.0, (h - self.h) / 2.0
        if self.crowd is not None:
            px, py, z, th = (float(v[0]) for v in self.cam.params(np.array([tau]), 1.0))
            c, s = math.cos(th) * z, math.sin(th) * z
            for patch, mask, q, v, _ in self.crowd:
                qx, qy = q + v * tau - np.array([px, py])
                x = self.w / 2 + c * qx + s * qy
                y = self.h / 2 - s * qx + c * qy
                sc = float(np.clip(z, 0.3, 3.0))
                self._paste(out, patch, mask, x + dx - patch.shape[1] * sc / 2, y + dy - patch.shape[0] * sc, sc)
        if self.foreground is not None:
            patch, mask, start, end = self.foreground
            x, y = start + (end - start) * tau
            self._paste(out, patch, mask, x + dx, y + dy)
        if self.followed is not None:
            patch, mask, (cx, cy), amp, freq, ph = self.followed
            bob = amp * math.sin(2 * math.pi * freq * tau + ph)
            sway = 0.5 * amp * math.sin(2 * math.pi * 0.5 * freq * tau + 2 * ph)
            sc = 1.0 + 0.02 * math.sin(2 * math.pi * 0.7 * freq * tau)
            hh, ww = patch.shape[:2]
            self._paste(out, patch, mask, cx - ww * sc / 2 + sway + dx, cy - hh * sc / 2 + bob + dy, sc)
        return out

    def _frame_at(self, tau: float, size) -> np.ndarray:
        rs = "rolling_shutter" in self.optics
        dt = 1.0 / max(self.spec.frames - 1, 1)
        rows = None
        if rs:
            rows = tau + self.readout * dt * (np.arange(size[1]) / size[1] - 0.5)
        out = self._render_layers(tau, size, rows)
        if self.water is not None:
            out = self._render_water(out, tau, size, rows)
        out = np.clip(out, 0, 255).astype(np.uint8)
        return self._render_movers(out, tau, size)

    def frame(self, i: int) -> np.ndarray:
        n = self.spec.frames
        tau = i / max(n - 1, 1)
        lens = "lens" in self.optics
        size = (self.w, self.h)
        if lens:
            size = (int(self.w * 1.3) // 2 * 2, int(self.h * 1.3) // 2 * 2)
        if "motion_blur" in self.optics:
            dt = 1.0 / max(n - 1, 1)
            subs = [self._frame_at(tau + self.shutter * dt * (k / 3 - 0.5), size).astype(np.float32)
                    for k in range(4)]
            img = np.clip(sum(subs) / len(subs), 0, 255).astype(np.uint8)
        else:
            img = self._frame_at(tau, size)
        if lens:
            img = self._distort(img, size)
        return img

    def _distort(self, img, size):
        if self._lens_maps is None:
            W, H = size
            ys, xs = np.mgrid[0:self.h, 0:self.w].astype(np.float32)
            cx, cy = (self.w - 1) / 2.0, (self.h - 1) / 2.0
            norm = 0.5 * math.hypot(self.w, self.h)
            x, y = (xs - cx) / norm, (ys - cy) / norm
            r2 = x * x + y * y
            f = 1 + self.k1 * r2
            mx = x * f * norm + (W - 1) / 2.0
            my = y * f * norm + (H - 1) / 2.0
            self._lens_maps = (mx.astype(np.float32), my.astype(np.float32))
        return cv2.remap(img, *self._lens_maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def render(spec: Spec) -> list[np.ndarray]:
    """The clip's frames (RGB uint8, height x width), every nuisance applied except encoding."""
    rng = np.random.default_rng(spec.seed)
    nuis = set(spec.nuisances)
    n = spec.frames
    low = spec.params.get("flat") if "low_texture" in nuis else None
    scene = Scene(spec, rng, low_texture=low)
    frames = [scene.frame(i) for i in range(n)]
    if spec.group in ("cut", "dissolve", "dip"):
        p = spec.params
        v2 = p["vals2"]
        sub = Spec(**{**asdict(spec), "nuisances": (), "params": {**p, "profile": "linear"}})
        second = Scene(sub, rng, source=p["second"][0], vals=v2)
        at = int(round(p["at"] * n))
        if spec.group == "cut":
            frames = frames[:at] + [second.frame(i) for i in range(at, n)]
        elif spec.group == "dissolve":
            length = max(2, int(round(p["length_s"] * spec.fps)))
            a0 = max(1, min(at - length // 2, n - length - 1))
            out = []
            for i in range(n):
                if i < a0:
                    out.append(frames[i])
                    continue
                b = second.frame(i)
                alpha = min(1.0, (i - a0 + 1) / (length + 1))
                out.append(cv2.addWeighted(frames[i], 1 - alpha, b, alpha, 0) if alpha < 1 else b)
            frames = out
        else:
            k, black = p["out_frames"], p["black_frames"]
            a0 = max(1, min(at - k - black // 2, n - 2 * k - black - 1))
            out = []
            for i in range(n):
                if i < a0:
                    out.append(frames[i])
                elif i < a0 + k:
                    out.append((frames[i] * (1 - (i - a0 + 1) / (k + 1))).astype(np.uint8))
                elif i < a0 + k + black:
                    out.append(np.zeros_like(frames[i]))
                else:
                    g = min(1.0, (i - a0 - k - black + 1) / (k + 1))
                    out.append((second.frame(i) * g).astype(np.uint8))
            frames = out
    return _photometric(frames, spec, rng)


def _photometric(frames, spec: Spec, rng) -> list[np.ndarray]:
    nuis = set(spec.nuisances)
    n = len(frames)
    out = []
    if "dim" in nuis:
        # night exposure: the first frame's mean brightness becomes 8-35 (of 255), gain at most 0.35
        target = float(rng.uniform(8, 35))
        offset = float(rng.uniform(0, 6))
        gamma = float(rng.uniform(0.9, 1.4))
        night = rng.random() < 0.5
        sigma = float(rng.uniform(0.5, 3.0))
        first = 255.0 * (frames[0].astype(np.float32) / 255.0) ** gamma
        gain = float(min(0.35, max(target - offset, 2.0) / max(float(first.mean()), 1.0)))
    fade_len = int(round(rng.uniform(0.1, 0.25) * n))
    flick = rng.uniform(0.75, 1.25, n), rng.uniform(-15, 15, n)
    sigma_noise = float(rng.uniform(3, 10))
    sigma_lt = float(rng.uniform(1, 4))
    if not nuis & {"dim", "flicker", "noise", "low_texture", "fade_in", "fade_out"}:
        return frames
    for i, f in enumerate(frames):
        x = f.astype(np.float32)
        if "dim" in nuis:
            x = 255.0 * (x / 255.0) ** gamma * gain + offset
            if night:
                x *= np.array([0.7, 0.85, 1.15], np.float32)
            x += sigma * rng.standard_normal(x.shape, dtype=np.float32)
        if "flicker" in nuis:
            x = x * flick[0][i] + flick[1][i]
        if "noise" in nuis:
            x += sigma_noise * rng.standard_normal(x.shape, dtype=np.float32)
        if "low_texture" in nuis:
            x += sigma_lt * rng.standard_normal(x.shape, dtype=np.float32)
        if "fade_in" in nuis and i < fade_len:
            x *= i / fade_len
        if "fade_out" in nuis and i >= n - fade_len:
            x *= (n - 1 - i) / fade_len
        out.append(np.clip(x, 0, 255).astype(np.uint8))
    return out


def write_clip(spec: Spec, path, frames=None) -> Path:
    """Render (unless ``frames`` is given) and encode the clip to H.264 .mp4 at ``path``."""
    frames = render(spec) if frames is None else frames
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"crf": str(spec.params.get("crf", 23)), "preset": "veryfast",
                          "g": str(spec.params.get("gop", 250))}
        stream.codec_context.thread_count = 1
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path
