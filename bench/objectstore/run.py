"""Object-storage benchmark: what reading clips from an S3 API costs against the same clips on disk.

``python bench/objectstore/run.py [--clips N] [--quick]`` generates N H.264 clips of 5–60 s (cached in
bench/out/objectstore/clips), uploads them to moto's S3 server started on 127.0.0.1 in its own
process, and measures, interleaved clip by clip in one run:

* bytes fetched per row ÷ bytes the stage needs, for probe ``header`` and ``ends`` and for 4-frame
  sampling. "Needs": the bytes FFmpeg reads from the same file on disk through a counting file
  (same read size), and for sampling also the packet bytes of the GOPs it decodes;
* rows/s per core (this process pinned to one core; the server runs elsewhere) for probe ``ends`` +
  4-frame sampling from the server vs from local files, and for the alternative of a per-job cache
  (download the whole object, then read it locally);
* export MB/s: ``vidcap export webdataset`` of the local clips to a local folder.

Prints a Markdown table; the numbers live in bench/objectstore/README.md.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "objectstore"


class Counting(io.RawIOBase):
    """A local file that counts the bytes read from it (what FFmpeg asks for)."""

    def __init__(self, path):
        super().__init__()
        self.fh, self.read_bytes = open(path, "rb"), 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def read(self, n=-1):
        data = self.fh.read(n)
        self.read_bytes += len(data)
        return data

    def seek(self, off, whence=0):
        return self.fh.seek(off, whence)

    def tell(self):
        return self.fh.tell()

    def close(self):
        self.fh.close()
        super().close()


def make_clips(n: int) -> list[Path]:
    from vidcap.dev import synth

    out = OUT / "clips"
    clips = []
    for i in range(n):
        seconds = 5 + round(55 * i / max(n - 1, 1))
        path = out / f"clip{i:03d}_{seconds:02d}s.mp4"
        if not path.exists():
            synth.write_video(path.with_suffix(".tmp.mp4"), num_frames=seconds * 24, width=256, height=144,
                              fps=24, seed=i)
            path.with_suffix(".tmp.mp4").rename(path)
        clips.append(path)
    return clips


def start_server() -> tuple[subprocess.Popen, str]:
    from vidcap.dev.objectstore import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def needed_bytes(path: Path, check: str | None) -> int:
    """Bytes FFmpeg reads from the file on disk for a probe (``check``) or 4-frame sampling (None)."""
    import av

    from vidcap.media import decoders, files
    from vidcap.probe import stage

    counting = Counting(path)
    real_open = av.open
    av.open = lambda *a, **k: real_open(counting, metadata_errors="ignore", buffer_size=files.AV_BUFFER)
    try:
        if check is None:
            c = decoders.open_av(str(path))
            s, total, fps, w, h = decoders.probe(c, str(path))
            from vidcap.media.frames import frame_indices
            decoders.decode_pyav(c, s, sorted(set(frame_indices(total, 4))), total, fps, 1)
            c.close()
        else:
            stage.probe_video(str(path), check)
    finally:
        av.open = real_open
    return counting.read_bytes


def gop_bytes(path: Path) -> int:
    """Packet bytes of the GOPs that 4-frame uniform sampling decodes (each from its keyframe)."""
    import av

    from vidcap.media.frames import frame_indices

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        packets = [(p.pts, p.is_keyframe, p.size) for p in c.demux(s) if p.size]
    packets.sort()
    gop, gops, sizes = -1, [], {}
    for _pts, key, size in packets:
        gop += 1 if key else 0
        gops.append(gop)
        sizes[gop] = sizes.get(gop, 0) + size
    want = {gops[i] for i in frame_indices(len(packets), 4)}
    return sum(sizes[g] for g in want)


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``fn(*args)``."""
    t, c = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - t, time.process_time() - c


def row_work(path: str) -> None:
    """One row as two stage jobs see it: a probe, then a 4-frame sampling (nothing kept from before)."""
    from vidcap.io import remote
    from vidcap.media.frames import sample_frames
    from vidcap.probe.stage import probe_video

    remote.forget()
    probe_video(path, "ends")
    sample_frames(path, 4)


def cached_row(url: str, cache: Path) -> None:
    from vidcap.io import remote

    fs, key = remote.filesystem(url)
    local = cache / Path(key).name
    fs.get_file(key, str(local))
    row_work(str(local))
    local.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="4 clips, 1 pass: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.passes = 4, 1
    os.sched_setaffinity(0, {0})
    t0 = time.time()
    clips = make_clips(args.clips)
    gen_s = time.time() - t0
    server, endpoint = start_server()
    try:
        os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                           "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": "us-east-1"})
        import boto3

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="bench")
        for c in clips:
            s3.upload_file(str(c), "bench", c.name)
        run(clips, args.passes, gen_s)
    finally:
        server.terminate()
        server.wait()


def run(clips: list[Path], passes: int, gen_s: float) -> None:
    from vidcap.io import remote
    from vidcap.media.frames import sample_frames
    from vidcap.probe.stage import probe_video

    urls = [f"s3://bench/{c.name}" for c in clips]
    sizes = [c.stat().st_size for c in clips]
    ratio: dict[str, list[float]] = {"header": [], "ends": [], "frames": [], "frames_gop": []}
    fetched: dict[str, list[int]] = {"header": [], "ends": [], "frames": []}
    for c, u in zip(clips, urls):
        for check in ("header", "ends"):
            remote.forget()
            b = remote.STATS["bytes"]
            probe_video(u, check)
            fetched[check].append(remote.STATS["bytes"] - b)
            ratio[check].append(fetched[check][-1] / needed_bytes(c, check))
        remote.forget()
        b = remote.STATS["bytes"]
        sample_frames(u, 4)
        fetched["frames"].append(remote.STATS["bytes"] - b)
        ratio["frames"].append(fetched["frames"][-1] / needed_bytes(c, None))
        ratio["frames_gop"].append(fetched["frames"][-1] / gop_bytes(c))

    cache = Path(tempfile.mkdtemp(prefix="vidcap-bench-cache-"))
    times: dict[str, list[tuple[float, float]]] = {"local": [], "s3": [], "cache": []}
    requests = []
    for c, u in zip(clips, urls):   # warm-up; requests a row makes
        row_work(str(c))
        r = remote.STATS["requests"]
        row_work(u)
        requests.append(remote.STATS["requests"] - r)
    for _ in range(passes):
        for c, u in zip(clips, urls):   # interleaved: the machine's load hits all three alike
            times["local"].append(timed(row_work, str(c)))
            times["s3"].append(timed(row_work, u))
            times["cache"].append(timed(cached_row, u, cache))
    shutil.rmtree(cache, ignore_errors=True)
    export_mb_s, export_mb = export_speed(clips)

    rows = {k: len(v) / sum(w for w, _ in v) for k, v in times.items()}
    cpu = {k: len(v) / sum(c for _, c in v) for k, v in times.items()}
    med = statistics.median
    print(f"{len(clips)} clips, 256x144 H.264 24 fps GOP 1 s, 5-60 s ({sum(sizes) / 1e6:.1f} MB; generated in "
          f"{gen_s:.0f} s), {passes} passes, 1 core; moto S3 server on 127.0.0.1 in its own process\n")
    print("| measure | median | max | target |")
    print("|---|---:|---:|---|")
    print(f"| probe `header`: KB fetched a clip | {med(fetched['header']) / 1e3:.1f} | "
          f"{max(fetched['header']) / 1e3:.1f} | ≤ 64 KB |")
    print(f"| probe `header`: fetched ÷ FFmpeg read | {med(ratio['header']):.2f} | {max(ratio['header']):.2f} | |")
    print(f"| probe `ends`: KB fetched a clip | {med(fetched['ends']) / 1e3:.1f} | {max(fetched['ends']) / 1e3:.1f} | |")
    print(f"| probe `ends`: fetched ÷ FFmpeg read | {med(ratio['ends']):.2f} | {max(ratio['ends']):.2f} | |")
    print(f"| 4 frames: fetched ÷ FFmpeg read | {med(ratio['frames']):.2f} | {max(ratio['frames']):.2f} | |")
    print(f"| 4 frames: fetched ÷ bytes of the GOPs decoded | {med(ratio['frames_gop']):.2f} | "
          f"{max(ratio['frames_gop']):.2f} | ≤ 1.5 |")
    print(f"| 4 frames: fetched ÷ clip size | {med(f / s for f, s in zip(fetched['frames'], sizes)):.2f} | "
          f"{max(f / s for f, s in zip(fetched['frames'], sizes)):.2f} | |")
    print("\n| probe `ends` + 4 frames, 1 core | rows/s (wall) | ÷ local | rows per CPU-second | ÷ local |")
    print("|---|---:|---:|---:|---:|")
    for k, label in (("local", "local files"), ("s3", "S3, ranged reads (vidcap)"),
                     ("cache", "S3, whole object to a local cache first")):
        print(f"| {label} | {rows[k]:.1f} | {rows[k] / rows['local']:.2f} | {cpu[k]:.1f} | {cpu[k] / cpu['local']:.2f} |")
    print(f"\nrequests a row from S3 (metadata + ranges): median {med(requests)}, max {max(requests)}")
    print(f"\nexport webdataset to a local folder: {export_mb_s:.0f} MB/s ({export_mb:.0f} MB)")


def export_speed(clips: list[Path]) -> tuple[float, float]:
    import pandas as pd

    from vidcap.export.webdataset import export_webdataset
    from vidcap.io.tables import write_table

    work = Path(tempfile.mkdtemp(prefix="vidcap-bench-export-"))
    try:
        reps = max(1, int(300e6 // sum(c.stat().st_size for c in clips)))   # about 300 MB of samples
        rows = [{"path": str(c), "row_id": f"r{k}_{i}", "text": "a caption", "probe_error": ""}
                for k in range(reps) for i, c in enumerate(clips)]
        write_table(pd.DataFrame(rows), work / "t.parquet")
        stats = export_webdataset(work / "t.parquet", str(work / "wds"), "64MB")
        return stats["mb_per_s"], stats["bytes_written"] / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
