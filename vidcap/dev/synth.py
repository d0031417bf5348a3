"""Synthetic media for the demo, the tests and the benchmarks.

Every video frame carries its own index as a row of black/white blocks along the top edge
(``INDEX_BITS`` blocks of ``block`` pixels, most significant bit first), so a decoder's output can be
checked against the frame it claims to be: ``read_index(frame)`` recovers it after lossy coding.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

INDEX_BITS = 12

# extension -> (container format, codec, pixel format)
CODECS = {
    "h264": ("mp4", "libx264", "yuv420p"),
    "vp9": ("webm", "libvpx-vp9", "yuv420p"),
    "mjpeg": ("avi", "mjpeg", "yuvj420p"),
    "mpeg4": ("mp4", "mpeg4", "yuv420p"),
}


def index_block(width: int) -> int:
    """Side of one index block for a frame of this width (0 when the frame is too small)."""
    block = width // (INDEX_BITS + 4)
    return block if block >= 8 else 0


def pattern_frame(i: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Frame ``i`` (H, W, 3) uint8 RGB: a texture drifting one pixel a frame plus the index blocks."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = seed * 0.7
    r = 127 + 100 * np.sin((xx + i) / 9.0 + phase)
    g = 127 + 100 * np.sin((yy + i) / 13.0 + phase)
    b = 127 + 100 * np.sin((xx + yy) / 17.0)
    frame = np.stack([r, g, b], axis=-1).astype(np.uint8)
    block = index_block(width)
    if block and height >= 3 * block:
        for bit in range(INDEX_BITS):
            on = (i >> (INDEX_BITS - 1 - bit)) & 1
            x0 = (bit + 2) * block
            frame[block : 2 * block, x0 : x0 + block] = 255 if on else 0
    return frame


def read_index(frame: np.ndarray) -> int | None:
    """The index a ``pattern_frame`` carries, or None when the frame is too small to carry one.

    Works on resized frames as long as the aspect ratio is kept (blocks are read at their centres).
    """
    height, width = frame.shape[:2]
    block = width / (INDEX_BITS + 4)
    if block < 2 or height < 3 * block:
        return None
    value = 0
    y = int(1.5 * block)
    for bit in range(INDEX_BITS):
        x = int((bit + 2.5) * block)
        value = (value << 1) | int(frame[y, x].mean() > 127)
    return value


def write_video(
    path: str | Path,
    num_frames: int = 32,
    width: int = 160,
    height: int = 120,
    fps: int = 24,
    codec: str = "h264",
    seed: int = 0,
    frames=None,
    audio: bool = False,
) -> Path:
    """Write a clip and return its path.

    ``frames``: optional callable ``i -> (H, W, 3) uint8`` replacing the default pattern.
    ``codec``: a key of ``CODECS``; the container comes from the path's extension.
    ``audio``: also write a short silent AAC track (video containers that support it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _, codec_name, pix_fmt = CODECS[codec]
    make = frames or (lambda i: pattern_frame(i, width, height, seed))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec_name, rate=fps)
        assert isinstance(stream, av.VideoStream), codec_name  # CODECS holds video codecs only
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "h264":
            stream.options = {"preset": "ultrafast", "g": str(max(fps, 1))}
        astream = container.add_stream("aac", rate=16000) if audio else None
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(make(i)), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None:
            _write_silence(container, astream, seconds=num_frames / fps)
    return path


def write_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """An .mp4 (or other container) holding one AAC track and no video stream."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        _write_silence(container, stream, seconds)
    return path


def _write_silence(container, stream, seconds: float) -> None:
    samples = 1024
    total = int(seconds * 16000)
    for start in range(0, max(total, samples), samples):
        data = np.zeros((1, samples), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout="mono")
        frame.sample_rate = 16000
        frame.pts = start
        frame.time_base = Fraction(1, 16000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_image(path: str | Path, width: int = 160, height: int = 120, seed: int = 0) -> Path:
    """A still image (format from the extension) showing ``pattern_frame(0)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pattern_frame(0, width, height, seed)).save(path)
    return path


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A (H, W, 3) uint8 texture with corners everywhere: random grey blocks of several sizes."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width), np.float32)
    for cell in (4, 11, 29):
        blocks = rng.random((height // cell + 1, width // cell + 1)).astype(np.float32)
        out += np.kron(blocks, np.ones((cell, cell), np.float32))[:height, :width]
    grey = (out / 3 * 255).astype(np.uint8)
    return np.stack([grey, np.roll(grey, 7, axis=1), np.roll(grey, 13, axis=0)], axis=-1)


def camera_frames(width: int, height: int, num_frames: int, pan: float = 0.0, tilt: float = 0.0,
                  zoom: float = 1.0, seed: int = 0):
    """``i -> frame`` of a virtual camera over a texture: over the clip it pans by ``pan`` and tilts by
    ``tilt`` (fractions of the shorter side; + = pan right / tilt up, i.e. the scene moves left / down)
    and magnifies by ``zoom`` (> 1 = zoom in)."""
    # heavy: OpenCV, only when frames are processed
    import cv2

    short = min(width, height)
    big = texture(3 * height, 3 * width, seed)
    cx0, cy0 = 1.5 * width, 1.5 * height

    def frame(i: int) -> np.ndarray:
        t = i / max(num_frames - 1, 1)
        cx = cx0 + pan * short * t
        cy = cy0 - tilt * short * t
        scale = zoom ** t
        m = np.array([[scale, 0, width / 2 - scale * cx], [0, scale, height / 2 - scale * cy]], np.float32)
        return cv2.warpAffine(big, m, (width, height), flags=cv2.INTER_LINEAR)

    return frame


# demo clips: (codec, camera motion (pan, tilt, zoom))
DEMO_MOTIONS = [("h264", (0.5, 0.0, 1.0)), ("vp9", (0.0, 0.4, 1.0)), ("mjpeg", (0.0, 0.0, 1.5)),
                ("h264", (0.0, 0.0, 1.0)), ("vp9", (-0.5, -0.4, 1.0)), ("mjpeg", (0.0, 0.0, 0.7))]


def write_demo_set(root: str | Path, n_videos: int = 6, n_images: int = 2) -> list[Path]:
    """A small folder for the demo: H.264, VP9 and MJPEG clips in sub-folders, with a virtual camera
    panning, tilting, zooming or standing still (``DEMO_MOTIONS``), and still images."""
    root = Path(root)
    made = []
    for k in range(n_videos):
        codec, (pan, tilt, zoom) = DEMO_MOTIONS[k % len(DEMO_MOTIONS)]
        ext = CODECS[codec][0]
        n = 24 + 8 * k
        made.append(write_video(root / f"videos/part{k % 2}/clip{k:03d}.{ext}", num_frames=n, width=192,
                                height=144, codec=codec, seed=k,
                                frames=camera_frames(192, 144, n, pan, tilt, zoom, seed=k)))
    for k in range(n_images):
        made.append(write_image(root / f"images/still{k:03d}.png", seed=k))
    return made
