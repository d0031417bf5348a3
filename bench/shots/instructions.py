"""Instructions per frame above the decode floor, counted by valgrind (callgrind): no machine noise.

    apt-get install valgrind                        # the bench's one system tool
    .venv/bin/python bench/shots/instructions.py    # a test720 video (generated when missing), frames 48 and 720
    .venv/bin/python bench/shots/instructions.py --video clip.mp4 --frames 48,480 --jobs 2

CPU time on a shared machine moves by several percent from run to run (``run.py --speed``), more than
most single changes to the detector are worth. Instructions retired do not move: each method runs
under callgrind twice, on the first ``a`` and the first ``b`` frames of the same video, and
``(count(b) - count(a)) / (b - a)`` is what one more frame costs, without the fixed costs of a run
(imports, opening the file, building the detectors; a few tens of frames between ``a`` and ``b`` leave
some of them in). Printed per method: instructions per frame, the
ratio to the decode floor (decoding alone with vidcap's decoder settings) and, of the instructions
above the floor, how many each library executes (OpenCV, swscale, the Python interpreter, numpy, ...).

Instructions are not time: code that waits on memory, or the Python interpreter, runs fewer
instructions per cycle than the decoder, so a method's share of CPU time above the floor is larger
than its share of instructions (bench/shots/README.md compares the two). Use this to see where the
work goes and whether a change removed some; the speed table stays the measure.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

def methods() -> dict[str, tuple[str, str | None]]:
    """{label: (kind, shrink)}, the floor first: decoding alone, decoding and shrinking (``spread`` and
    ``swscale``), and vidcap with its defaults and each other ``decode.shrink``; the labels of
    ``run.py``'s speed table."""
    import run

    return {run.FLOOR: ("floor", None), **{run.SCANS[s]: ("scan", s) for s in ("spread", "swscale")},
            "vidcap (defaults)": ("detect", None), **{run.SHRINK.format(s): ("detect", s) for s in run.OTHER_SHRINKS}}


def child(kind: str, shrink: str | None, frames: int, video: str) -> None:
    """The measured run: ``frames`` frames of ``video`` by one method (under callgrind)."""
    import cv2

    cv2.setNumThreads(1)
    import run
    import scenedetect  # noqa: F401  (imported by every method alike: its import is not a per-frame cost)

    if kind == "floor":
        run.run_floor(video, end=frames)
    elif kind == "scan":
        run.run_scan(video, shrink=shrink, end=frames)
    else:
        run.shots.detect_boundaries(video, {"decode": {"shrink": shrink}} if shrink else {}, 0, frames)


def _library(obj: str) -> str:
    name = obj.rsplit("/", 1)[-1]
    name = re.sub(r"-[0-9a-f]{8}(?=\.so)", "", name)  # auditwheel's hash in vendored libraries
    name = re.sub(r"\.(cpython-\d+-[^.]+|abi3)\.so$", ".so", name)
    return re.sub(r"\.so[.\d]*$", "", name)  # libswscale.so.9.5.102 -> libswscale


def count(kind: str, shrink: str | None, frames: int, video: str, out: Path) -> tuple[int, collections.Counter]:
    """(instructions, instructions per library) of one run under callgrind."""
    stem = out / f"{kind}.{shrink}.{frames}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={stem}.%p", sys.executable, __file__,
           "--child", kind, shrink or "-", str(frames), video]
    # one hash seed for every run (the same dict layouts, so that the fixed costs cancel) and no idle
    # worker threads (OpenBLAS's spin for a time-dependent number of instructions)
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    # a process forked by a library (a shell command) writes its own file, with the counts it inherited:
    # the measured process is the one with the most instructions
    files = sorted(out.glob(f"{stem.name}.*"))
    totals = {f: _total(f) for f in files}
    main = max(totals, key=totals.__getitem__)
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", str(main)],
                          capture_output=True, text=True, check=True).stdout
    per: collections.Counter = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?.*?\[(.*)\]\s*$", line)
        if m:
            per[_library(m.group(2))] += int(m.group(1).replace(",", ""))
    return totals[main], per


def _total(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", help="a video (default: the first test720 video, generated when missing)")
    ap.add_argument("--frames", default="48,720", help="the two frame counts a,b (b > a)")
    ap.add_argument("--jobs", type=int, default=2, help="callgrind runs at once")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/shots")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, shrink, frames, video = args.child
        child(kind, None if shrink == "-" else shrink, int(frames), video)
        return 0
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        print("valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)", file=sys.stderr)
        return 2
    a, b = (int(x) for x in args.frames.split(","))
    if not 0 < a < b:
        print(f"--frames must be two counts a,b with 0 < a < b, got {args.frames!r}", file=sys.stderr)
        return 2
    if args.video:
        video = str(Path(args.video).resolve())
    else:
        import data

        video = str(data.videos("test720", args.out, args.jobs)[2][0])
    import run

    todo = methods()
    runs = [(label, kind, shrink, n) for label, (kind, shrink) in todo.items() for n in (a, b)]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(lambda r: count(r[1], r[2], r[3], video, Path(tmp)), runs))
    result = {(label, n): found for (label, _kind, _shrink, n), found in zip(runs, done, strict=True)}
    per_frame = {label: (result[(label, b)][0] - result[(label, a)][0]) / (b - a) for label in todo}
    libs = {label: collections.Counter({k: (result[(label, b)][1][k] - result[(label, a)][1][k]) / (b - a)
                                        for k in set(result[(label, b)][1]) | set(result[(label, a)][1])})
            for label in todo}
    floor = per_frame[run.FLOOR]
    print(f"Instructions per frame (callgrind), frames {a}..{b} of {Path(video).name}: "
          f"(count({b} frames) - count({a} frames)) / {b - a}. Above the floor: the libraries that execute "
          "the instructions a method adds to decoding alone (those adding 2% of them or more).\n")
    print("| method | instructions per frame | x floor | above the floor, by library |")
    print("|---|---|---|---|")
    for label in todo:
        extra = {k: libs[label][k] - libs[run.FLOOR][k] for k in set(libs[label]) | set(libs[run.FLOOR])}
        above = per_frame[label] - floor
        parts = ", ".join(f"{k} {v / 1e3:.0f}k" for k, v in sorted(extra.items(), key=lambda kv: -kv[1])
                          if above > 0 and v >= 0.02 * above)
        print(f"| {label} | {per_frame[label] / 1e6:.3f} M | {per_frame[label] / floor:.3f}x | "
              f"{parts or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
