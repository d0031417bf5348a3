"""Synthetic multi-shot videos with known shot boundaries, for the shot-detection tests and bench.

A video is a sequence of shots joined by transitions. Each shot is a virtual camera (a crop window,
``cv2.warpAffine``) panning and zooming over a photograph (scikit-image's bundled data; procedural
textures when scikit-image is missing: ``photo_source()`` says which), with textured objects moving
inside it, a colour gain and film grain. Transitions: ``cut`` (hard cut), ``fade`` (to black and/or
from black, with at least one fully black frame) and ``dissolve`` (cross-fade, ``DISSOLVE_LENGTHS``).
Hard negatives inside shots (``Event``): ``fast_pan`` (a whip pan of 5-12% of the frame width per
frame at its peak, with motion blur), ``flash`` (1-3 frames washed 50-90% towards white) and
``crossing`` (an object 60-100% of the frame height sweeping across in 8-20 frames).

Everything is specified in units of the frame size, so one ``VideoSpec`` renders at any resolution.

Ground truth (``Transition``), frame indices 0-based, ``end`` exclusive:

* ``cut``: ``start == cut`` = first frame of the new shot, ``end = cut + 1``.
* ``dissolve`` of L frames over ``[start, start + L)``: frame ``start + j`` shows the new shot with
  weight ``(j + 1) / (L + 1)``; ``cut`` = the first frame where that weight is >= 0.5.
* ``fade``: ``n_out`` frames of the old shot darkening (0 = it cuts to black), ``hold`` >= 1 black
  frames, ``n_in`` frames of the new shot brightening (0 = it cuts in); ``cut`` = the middle black
  frame, ``start + n_out + hold // 2``.

FROZEN (generator version 1): the test split of ``bench/shots`` and ``tests/test_shots.py`` depend on
this module drawing exactly the same specs and frames for a seed. Do not change what ``make_spec`` and
``render_frame`` produce; add a new ``GENERATOR_VERSION`` and re-freeze the splits instead.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

GENERATOR_VERSION = 1
KINDS = ("cut", "fade", "dissolve")
EVENTS = ("fast_pan", "flash", "crossing")
DISSOLVE_LENGTHS = (6, 10, 16, 24, 36)

# Bundled scikit-image photographs with texture over most of the frame (as bench/motion).
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "camera", "brick", "grass", "gravel", "cat", "coins",
               "immunohistochemistry")
_CACHE: dict = {}


@dataclass
class Transition:
    kind: str  # cut | fade | dissolve
    start: int  # first frame of the transition
    end: int  # exclusive
    cut: int  # nominal boundary: first frame counted to the new shot
    n_out: int = 0  # fade: frames darkening; dissolve: its length
    hold: int = 0  # fade: black frames
    n_in: int = 0  # fade: frames brightening


@dataclass
class Event:
    kind: str  # fast_pan | flash | crossing
    start: int
    end: int
    amount: float = 0.0  # fast_pan: peak speed (fraction of the crop width per frame, signed); flash: peak wash


@dataclass
class ObjectSpec:
    photo: int
    u0: float  # patch origin in the photo (fractions)
    v0: float
    h: float  # object height, fraction of frame height
    aspect: float  # width / height
    x0: float  # centre at the shot's first frame (fractions of width / height) and velocity per frame
    y0: float
    vx: float
    vy: float
    t0: int = 0  # absolute frame the motion is measured from


@dataclass
class ShotSpec:
    photo: int
    start: int  # first frame the shot is rendered (incl. transition overlap)
    end: int  # exclusive
    cx: float  # camera centre in the photo (fractions of its width / height)
    cy: float
    vx: float  # per frame, fractions of the crop width / height
    vy: float
    scale: float  # crop height as a fraction of the photo's height
    zoom_rate: float  # relative crop-size change per frame
    gain: tuple = (1.0, 1.0, 1.0)
    objects: list = field(default_factory=list)
    events: list = field(default_factory=list)  # Event, absolute frame numbers


@dataclass
class VideoSpec:
    name: str
    seed: int
    fps: int
    num_frames: int
    shots: list
    transitions: list
    grain: float  # noise sigma (8-bit levels)

    def truth(self) -> dict:
        """Plain-data ground truth (JSON-ready)."""
        return {"name": self.name, "seed": self.seed, "fps": self.fps, "num_frames": self.num_frames,
                "generator_version": GENERATOR_VERSION,
                "transitions": [asdict(t) for t in self.transitions],
                "events": [asdict(e) for s in self.shots for e in s.events]}


# ------------------------------------------------------------------------------------------- sources


def photo_source() -> str:
    """Which images the shots show (scikit-image photographs or procedural stand-ins)."""
    photos()
    return _CACHE["source"]


def photos() -> list[np.ndarray]:
    """Source photographs (RGB uint8), shorter side resized to 1080 px."""
    if "photos" in _CACHE:
        return _CACHE["photos"]
    # heavy: OpenCV, only when frames are processed
    import cv2

    try:
        # optional (bench extra): scikit-image's photographs
        from skimage import data

        imgs = []
        for name in PHOTO_NAMES:
            im = np.asarray(getattr(data, name)())
            if im.ndim == 2:
                im = np.repeat(im[..., None], 3, axis=2)
            imgs.append(np.ascontiguousarray(im[..., :3]).astype(np.uint8))
        source = f"scikit-image {version('scikit-image')} photographs ({len(imgs)})"
    except Exception:  # noqa: BLE001 - scikit-image missing or a photo absent: procedural stand-ins
        imgs = [_procedural(i) for i in range(len(PHOTO_NAMES))]
        source = f"procedural textures ({len(imgs)}; scikit-image not available)"
    out = []
    for im in imgs:
        f = 1080 / min(im.shape[:2])
        out.append(cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC))
    _CACHE["photos"] = out
    _CACHE["source"] = source
    return out


def _procedural(seed: int) -> np.ndarray:
    # heavy: OpenCV, only when frames are processed
    import cv2

    rng = np.random.default_rng(1000 + seed)
    img = np.zeros((512, 512, 3), np.float32)
    for scale in (4, 16, 64):
        small = rng.normal(0, 1, (512 // scale + 1, 512 // scale + 1, 3)).astype(np.float32)
        img += (40 * cv2.resize(small, (512, 512), interpolation=cv2.INTER_CUBIC) / math.sqrt(scale / 4)).astype(np.float32)
    img = np.clip(img + 128, 0, 255).astype(np.uint8)
    for _ in range(60):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = (int(v) for v in rng.integers(0, 512, 2))
        cv2.circle(img, (x, y), int(rng.integers(4, 30)), color, -1)
    return img


# --------------------------------------------------------------------------------------------- specs


def _objects(rng, n: int, t0: int) -> list[ObjectSpec]:
    out = []
    for _ in range(n):
        h = float(rng.uniform(0.1, 0.35))
        speed = float(rng.uniform(0.002, 0.01))
        ang = float(rng.uniform(0, 2 * math.pi))
        out.append(ObjectSpec(int(rng.integers(0, len(PHOTO_NAMES))), float(rng.uniform(0, 0.7)),
                              float(rng.uniform(0, 0.7)), h, float(rng.uniform(0.6, 1.6)),
                              float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.15, 0.85)),
                              speed * math.cos(ang), speed * math.sin(ang) * 16 / 9, t0))
    return out


def make_spec(seed: int, n_shots: int = 12, fps: int = 24, name: str | None = None,
              kind_weights: tuple = (0.4, 0.25, 0.35), event_rate: float = 0.4) -> VideoSpec:
    """A random video of ``n_shots`` shots drawn from ``seed`` (deterministic).

    Shots show 36-120 frames on their own; transitions are drawn with ``kind_weights`` over ``KINDS``;
    each shot gets a hard-negative event with probability ``event_rate`` (at least 12 frames away from
    its transitions); a new shot shows another photograph, or (15%) another part of the same one.
    """
    rng = np.random.default_rng(seed)
    n_photos = len(PHOTO_NAMES)
    weights = np.array(kind_weights, float) / sum(kind_weights)
    shots: list[ShotSpec] = []
    transitions: list[Transition] = []
    photo = int(rng.integers(0, n_photos))
    t = 0  # first frame the current shot shows alone
    start = 0  # first frame the current shot is rendered
    for i in range(n_shots):
        own = int(rng.integers(36, 121))
        body = t
        t = body + own
        end = t
        scale = float(rng.uniform(0.3, 0.55))
        zoom = float(rng.choice([0.0, rng.uniform(-0.004, 0.004)]))
        shot = ShotSpec(photo, start, end, float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)),
                        float(rng.uniform(-0.004, 0.004)), float(rng.uniform(-0.003, 0.003)), scale, zoom,
                        tuple(float(g) for g in rng.uniform(0.8, 1.2, 3)),
                        _objects(rng, int(rng.integers(0, 4)), start))
        if rng.random() < event_rate and own >= 48:
            kind = str(rng.choice(EVENTS))
            dur = {"fast_pan": int(rng.integers(6, 17)), "flash": int(rng.integers(1, 4)),
                   "crossing": int(rng.integers(8, 21))}[kind]
            s0 = int(rng.integers(body + 12, body + own - 12 - dur + 1))
            amount = {"fast_pan": float(rng.uniform(0.05, 0.12) * rng.choice([-1, 1])),
                      "flash": float(rng.uniform(0.5, 0.9)), "crossing": 0.0}[kind]
            shot.events.append(Event(kind, s0, s0 + dur, amount))
            if kind == "crossing":
                h = float(rng.uniform(0.6, 1.0))
                aspect = float(rng.uniform(0.4, 0.8))
                w_frac = h * aspect * 9 / 16
                direction = float(rng.choice([-1, 1]))
                x_start = 0.5 - direction * (0.5 + w_frac / 2)
                vx = direction * (1 + w_frac) / dur
                shot.objects.append(ObjectSpec(int(rng.integers(0, n_photos)), float(rng.uniform(0, 0.5)),
                                               float(rng.uniform(0, 0.3)), h, aspect, x_start,
                                               float(rng.uniform(0.4, 0.6)), vx, 0.0, s0))
        if i < n_shots - 1:
            kind = str(rng.choice(KINDS, p=weights))
            if kind == "cut":
                transitions.append(Transition("cut", t, t + 1, t))
                start = t
            elif kind == "dissolve":
                L = int(rng.choice(DISSOLVE_LENGTHS))
                transitions.append(Transition("dissolve", t, t + L, t + math.ceil((L + 1) / 2) - 1, L))
                shot.end = t + L
                start = t
                t += L
            else:
                n_out = 0 if rng.random() < 0.2 else int(rng.integers(4, 25))
                n_in = 0 if (n_out and rng.random() < 0.25) else int(rng.integers(4, 25))
                hold = int(rng.integers(1, 9))
                transitions.append(Transition("fade", t, t + n_out + hold + n_in, t + n_out + hold // 2,
                                              n_out, hold, n_in))
                shot.end = t + n_out
                start = t + n_out + hold
                t += n_out + hold + n_in
            if rng.random() >= 0.15:
                photo = int((photo + rng.integers(1, n_photos)) % n_photos)
        shots.append(shot)
    return VideoSpec(name or f"cuts_{seed}", seed, fps, t, shots, transitions, float(rng.uniform(1.5, 4.0)))


# ---------------------------------------------------------------------------------------- rendering


class Renderer:
    """Renders a ``VideoSpec``'s frames at ``width`` x ``height`` (RGB uint8, OpenCV saturating maths)."""

    def __init__(self, spec: VideoSpec, width: int, height: int):
        self.spec, self.w, self.h = spec, int(width), int(height)
        self.photos = photos()
        rng = np.random.default_rng(spec.seed + 7)
        self.noise = []  # grain as (add, subtract) uint8 pairs
        for _ in range(8):
            n = np.round(rng.normal(0, spec.grain, (self.h, self.w))).astype(np.int16)
            n3 = np.repeat(n[..., None], 3, axis=2)
            self.noise.append((np.clip(n3, 0, 255).astype(np.uint8), np.clip(-n3, 0, 255).astype(np.uint8)))
        self._patches: dict = {}
        self._pan = {}  # shot index -> (cumulative whip-pan displacement, speed) per frame, crop widths
        for k, shot in enumerate(spec.shots):
            speed = np.zeros(shot.end - shot.start + 1)
            for ev in shot.events:
                if ev.kind == "fast_pan":
                    n = ev.end - ev.start
                    prof = ev.amount * np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2
                    speed[ev.start - shot.start:ev.end - shot.start] += prof
            disp = np.zeros_like(speed)
            disp[1:] = np.cumsum(speed[:-1])
            self._pan[k] = (disp, speed)

    def _patch(self, obj: ObjectSpec) -> tuple[np.ndarray, np.ndarray]:
        # heavy: OpenCV, only when frames are processed
        import cv2

        key = id(obj)
        if key not in self._patches:
            src = self.photos[obj.photo]
            ph = max(2, int(round(obj.h * self.h)))
            pw = max(2, int(round(ph * obj.aspect)))
            y0 = int(obj.v0 * (src.shape[0] - 1))
            x0 = int(obj.u0 * (src.shape[1] - 1))
            size = min(src.shape[0] - y0, src.shape[1] - x0, max(ph, pw) * 2)
            crop = src[y0:y0 + size, x0:x0 + int(size * min(1.0, obj.aspect))]
            patch = cv2.resize(crop, (pw, ph), interpolation=cv2.INTER_AREA)
            mask = np.zeros((ph, pw), np.uint8)
            cv2.ellipse(mask, (pw // 2, ph // 2), (max(1, pw // 2 - 1), max(1, ph // 2 - 1)), 0, 0, 360, 1, -1)
            self._patches[key] = (patch, np.repeat(mask[..., None], 3, axis=2).astype(bool))
        return self._patches[key]

    def shot_frame(self, k: int, t: int) -> np.ndarray:
        """Shot ``k`` at absolute frame ``t`` (RGB uint8, before fades and grain)."""
        # heavy: OpenCV, only when frames are processed
        import cv2

        shot = self.spec.shots[k]
        src = self.photos[shot.photo]
        H, W = src.shape[:2]
        tau = t - shot.start
        disp, speed = self._pan[k]
        crop_h = shot.scale * H * math.exp(shot.zoom_rate * tau)
        crop_w = crop_h * self.w / self.h
        cx = shot.cx * W + (shot.vx * tau + disp[tau]) * crop_w
        cy = shot.cy * H + shot.vy * tau * crop_h
        s = crop_h / self.h  # photo pixels per output pixel
        m = np.array([[s, 0, cx - s * self.w / 2], [0, s, cy - s * self.h / 2]], np.float32)
        frame = cv2.warpAffine(src, m, (self.w, self.h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT101)
        blur = int(round(abs(speed[tau]) * self.w * 0.5))
        if blur >= 2:
            frame = cv2.blur(frame, (blur, 1))
        frame = cv2.transform(frame, np.diag(np.float32(shot.gain)))
        for obj in shot.objects:
            self._paste(frame, obj, t)
        for ev in shot.events:
            if ev.kind == "flash" and ev.start <= t < ev.end:
                n = ev.end - ev.start
                beta = ev.amount * (1.0 - 0.3 * abs((t - ev.start) - (n - 1) / 2) / max(n / 2, 1))
                frame = cv2.addWeighted(frame, 1.0 - beta, np.full_like(frame, 255), beta, 0.0)
        return frame

    def _paste(self, frame: np.ndarray, obj: ObjectSpec, t: int) -> None:
        patch, mask = self._patch(obj)
        ph, pw = patch.shape[:2]
        x = int(round((obj.x0 + obj.vx * (t - obj.t0)) * self.w - pw / 2))
        y = int(round((obj.y0 + obj.vy * (t - obj.t0)) * self.h - ph / 2))
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, self.w), min(y + ph, self.h)
        if x1 <= x0 or y1 <= y0:
            return
        np.copyto(frame[y0:y1, x0:x1], patch[y0 - y:y1 - y, x0 - x:x1 - x],
                  where=mask[y0 - y:y1 - y, x0 - x:x1 - x])

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` (RGB uint8)."""
        # heavy: OpenCV, only when frames are processed
        import cv2

        spec = self.spec
        out = None
        for k, tr in enumerate(spec.transitions):
            if tr.start <= t < tr.end and tr.kind != "cut":
                j = t - tr.start
                if tr.kind == "dissolve":
                    a = (j + 1) / (tr.n_out + 1)
                    out = cv2.addWeighted(self.shot_frame(k, t), 1 - a, self.shot_frame(k + 1, t), a, 0.0)
                elif j < tr.n_out:
                    out = cv2.convertScaleAbs(self.shot_frame(k, t), alpha=1 - (j + 1) / (tr.n_out + 1))
                elif j < tr.n_out + tr.hold:
                    return np.zeros((self.h, self.w, 3), np.uint8)  # black frames carry no grain
                else:
                    gain = (j - tr.n_out - tr.hold + 1) / (tr.n_in + 1)
                    out = cv2.convertScaleAbs(self.shot_frame(k + 1, t), alpha=gain)
                break
        if out is None:
            k = next(i for i, s in enumerate(spec.shots) if s.start <= t < s.end)
            out = self.shot_frame(k, t)
        plus, minus = self.noise[(t * 5 + spec.seed) % len(self.noise)]
        return cv2.subtract(cv2.add(out, plus), minus)


def write_video(spec: VideoSpec, path: str | Path, width: int = 1280, height: int = 720,
                crf: int = 23, preset: str = "veryfast") -> Path:
    """Encode the spec to H.264 (libx264, yuv420p, its default GOP and B-frames) at ``path``."""
    # heavy: PyAV, only when a file is decoded or written
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    r = Renderer(spec, width, height)
    tmp = path.with_name(path.name + ".part" + path.suffix)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset, "crf": str(crf)}
        for t in range(spec.num_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(r.frame(t), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path
