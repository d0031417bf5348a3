"""Object-storage benchmark: what reading clips from an S3 API costs against the same clips on disk.

``python bench/objectstore/run.py [--sets 256x144:16,1280x720:8] [--passes P] [--quick]`` generates
H.264 clips of 5–60 s per set (cached in bench/out/objectstore/), uploads them to moto's S3
application served on 127.0.0.1 in its own process (through cheroot, which keeps connections open
as S3 does; and, for comparison, moto's own server, which closes every connection), and measures,
interleaved clip by clip in one run:

* bytes fetched per row ÷ bytes the stage needs, for probe ``header`` and ``ends`` and for 4-frame
  sampling. "Needs": the bytes FFmpeg reads from the same file on disk through a counting file
  (same read size), and for sampling also the packet bytes of the GOPs it decodes;
* rows per CPU-second of this process (pinned to one core; the servers run on the other; the least
  CPU of the passes for each clip and way, the ways interleaved clip by clip) for probe
  ``ends`` + 4-frame sampling as two stage jobs do it (nothing kept from one to the other) from the
  server vs from local files, and for the alternative of a per-job cache (the whole object in one
  GET to a local file, then read locally);
* rows/s (wall) of the probe (``check: ends``) and motion stages over the first set's first 48 clips,
  from a server that waits before each answer (0, 20, 100 ms: a store across a network), 1, 8 and 32
  URL rows at a time (``VIDCAP_REMOTE_ROWS_IN_FLIGHT``), against local files;
* export MB/s: ``vidcap export webdataset`` of the local clips to a local folder.

Prints Markdown tables; the numbers live in bench/objectstore/README.md.
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


def make_clips(n: int, width: int = 256, height: int = 144, faststart: bool = False) -> list[Path]:
    """``n`` clips of 5-60 s (made once); ``faststart``: the same clips remuxed with the index (moov) at
    the front, as ``ffmpeg -movflags +faststart`` writes them for the web."""
    from vidcap.dev import synth

    out = OUT / ("clips" if (width, height) == (256, 144) else f"clips_{width}x{height}")
    clips = []
    for i in range(n):
        seconds = 5 + round(55 * i / max(n - 1, 1))
        path = out / f"clip{i:03d}_{seconds:02d}s.mp4"
        if not path.exists():
            synth.write_video(path.with_suffix(".tmp.mp4"), num_frames=seconds * 24, width=width,
                              height=height, fps=24, seed=i)
            path.with_suffix(".tmp.mp4").rename(path)
        if faststart:
            path = remux_faststart(path, out.with_name(out.name + "_faststart") / path.name)
        clips.append(path)
    return clips


def remux_faststart(src: Path, dst: Path) -> Path:
    """``src``'s packets in a new MP4 with its index at the front (no re-encoding); made once."""
    import av

    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp.mp4")
        with av.open(str(src)) as inp, av.open(str(tmp), "w", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream_from_template(inp.streams.video[0])
            for packet in inp.demux(inp.streams.video[0]):
                if packet.dts is not None:
                    packet.stream = stream
                    out.mux(packet)
        tmp.rename(dst)
    return dst


def start_server(keep_alive: bool, latency_s: float = 0.0) -> tuple[subprocess.Popen, str]:
    """moto's S3 application in its own process on the second core: through cheroot (kept-open
    connections) or moto's own werkzeug server (a connection per request); ``latency_s``: it waits
    that long before each answer."""
    from vidcap.dev.objectstore import free_port

    port = free_port()
    code = (f"import os, sys, time; os.sched_setaffinity(0, {{{1 % os.cpu_count()}}}); sys.path.insert(0, {str(ROOT)!r}); "
            f"from vidcap.dev.objectstore import S3Server; "
            f"S3Server({port}, keep_alive={keep_alive}, latency_s={latency_s}).start(); time.sleep(1e9)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def needed_bytes(path: Path, check: str | None) -> int:
    """Bytes FFmpeg reads from the file on disk for a probe (``check``) or 4-frame sampling (None)."""
    import av

    from vidcap.media import decoders
    from vidcap.probe import stage

    counting = Counting(path)
    real_open = av.open
    av.open = lambda *a, **k: real_open(counting, metadata_errors="ignore", buffer_size=8192)
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
    """One row as two stage jobs see it: a probe, then a 4-frame sampling, each in a process of its
    own (nothing kept from before, nor from the probe for the sampling)."""
    from vidcap.io import remote
    from vidcap.media.frames import sample_frames
    from vidcap.probe.stage import probe_video

    remote.forget()
    probe_video(path, "ends")
    remote.forget()
    sample_frames(path, 4)


def cached_row(url: str, cache: Path) -> None:
    """The same row through a per-job cache: each job GETs the whole object (one request, the light
    path's transport) into a local file, then reads that."""
    from vidcap.io import remote
    from vidcap.media.frames import sample_frames
    from vidcap.probe.stage import probe_video

    local = cache / Path(url).name
    for job in (lambda p: probe_video(p, "ends"), lambda p: sample_frames(p, 4)):
        remote.forget()
        local.write_bytes(remote.read_range(url, 0, remote.object_size(url)))
        job(str(local))
        local.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="256x144:16,1280x720:8",
                    help="WxH:N,... clip sets (N clips of 5-60 s each; WxH+faststart:N the same clips with the "
                         "index at the front); the first also gives the export speed")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="4 clips at 256x144, 1 pass: a smoke run")
    ap.add_argument("--latency", type=float, nargs="*", default=[0.0, 0.02, 0.1],
                    help="seconds the store waits before each answer, for the rows-in-flight table")
    args = ap.parse_args()
    if args.quick:
        args.sets, args.passes = "256x144:4", 1
    os.sched_setaffinity(0, {0})
    sets = []
    for spec in args.sets.split(","):   # WxH:N, or WxH+faststart:N
        size, n = spec.split(":")
        size, _, variant = size.partition("+")
        w, h = map(int, size.split("x"))
        t0 = time.time()
        sets.append(((w, h, variant), make_clips(int(n), w, h, variant == "faststart"), time.time() - t0))
    server, endpoint = start_server(keep_alive=True)
    try:
        os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                           "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": "us-east-1"})
        import boto3

        s3 = boto3.client("s3")
        for (w, h, variant), clips, gen_s in sets:
            bucket = bucket_of(w, h, variant)
            s3.create_bucket(Bucket=bucket)
            for c in clips:
                s3.upload_file(str(c), bucket, c.name)
            run(clips, bucket, (w, h, variant), args.passes, gen_s)
        request_cost(f"s3://{bucket_of(*sets[0][0])}/{sets[0][1][-1].name}")
        for latency in args.latency:
            rows_in_flight(sets[0][1][:48], latency)
        for total in (300, 1200):   # the peak memory of an export should not grow with its size
            ex = export_speed(sets[0][1], total)
            print(f"\nexport webdataset to a local folder, 64 MB shards: {ex['mb_per_s']:.0f} MB/s "
                  f"({ex['mb']:.0f} MB), peak RSS of the exporting process {ex['rss_mb']:.0f} MB")
    finally:
        server.terminate()
        server.wait()


def bucket_of(w: int, h: int, variant: str) -> str:
    """The bench's bucket of a clip set."""
    return f"bench-{w}x{h}" + (f"-{variant}" if variant else "")


def without(fn, url: str, blobs: dict[str, bytes], sign: bool) -> None:
    """``fn(url)`` on vidcap's S3 path with each ranged GET answered from ``blobs`` (no network), and
    with ``sign=False`` each URL's signature kept from an earlier call (no signing): what is left is
    the path's own Python, FFmpeg reading through it and the decode."""
    from urllib.parse import urlsplit

    from vidcap.io import ranged_http

    kept_get, kept_sign = ranged_http.get_range, ranged_http.direct_url

    def get_range(signed: str, start: int, end: int) -> tuple[bytes, int]:
        blob = blobs[urlsplit(signed).path]
        return blob[start:end], len(blob)

    def direct_url(fs, path: str, u: str) -> str | None:
        if u not in SIGNED:
            SIGNED[u] = kept_sign(fs, path, u)
        return SIGNED[u]

    ranged_http.get_range = get_range
    if not sign:
        ranged_http.direct_url = direct_url
    try:
        fn(url)
    finally:
        ranged_http.get_range, ranged_http.direct_url = kept_get, kept_sign


SIGNED: dict[str, str | None] = {}


def one_connection_each(fn, *args) -> None:
    """``fn(*args)`` with no connection kept between requests (a new TCP connection for every request,
    as with a server that closes each one: moto's own)."""
    from vidcap.io import ranged_http

    kept, ranged_http.IDLE_PER_HOST = ranged_http.IDLE_PER_HOST, 0
    try:
        fn(*args)
    finally:
        ranged_http.IDLE_PER_HOST = kept


def run(clips: list[Path], bucket: str, size: tuple[int, int, str], passes: int, gen_s: float) -> None:
    from vidcap.io import remote
    from vidcap.media.frames import sample_frames
    from vidcap.probe.stage import probe_video

    urls = [f"s3://{bucket}/{c.name}" for c in clips]
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
    blobs = {f"/{bucket}/{c.name}": c.read_bytes() for c in clips}
    ways = {"local": lambda c, u: row_work(str(c)), "s3": lambda c, u: row_work(u),
            "s3_close": lambda c, u: one_connection_each(row_work, u), "cache": lambda c, u: cached_row(u, cache),
            "no_net": lambda c, u: without(row_work, u, blobs, sign=True),
            "no_net_sign": lambda c, u: without(row_work, u, blobs, sign=False)}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in ways}
    requests = []
    for c, u in zip(clips, urls):   # warm-up; requests a row makes
        row_work(str(c))
        r = remote.STATS["requests"]
        row_work(u)
        requests.append(remote.STATS["requests"] - r)
    for _ in range(passes):
        for c, u in zip(clips, urls):   # interleaved: the machine's load hits every way alike
            for k, way in ways.items():
                times[k].append(timed(way, c, u))
    shutil.rmtree(cache, ignore_errors=True)

    rows = {k: len(v) / sum(w for w, _ in v) for k, v in times.items()}
    n = len(clips)   # CPU: the least of the passes for each clip (the VM's noise moved sums by 10-20%)
    cpu = {k: n / sum(min(c for _, c in v[i::n]) for i in range(n)) for k, v in times.items()}
    med = statistics.median
    print(f"\n### {size[0]}x{size[1]}{' (index at the front: +faststart)' if size[2] else ''}: {len(clips)} clips, "
          f"H.264 24 fps GOP 1 s, 5-60 s ({sum(sizes) / 1e6:.1f} MB; "
          f"generated in {gen_s:.0f} s), {passes} passes, 1 core; moto's S3 application on 127.0.0.1 in "
          "its own process (cheroot, kept-open connections)\n")
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
    print("\n| probe `ends` + 4 frames (two jobs), 1 core | rows/s (wall) | ÷ local | rows per CPU-second "
          "(least of the passes a clip) | ÷ local | CPU ms a row |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, label in (("local", "local files"), ("s3", "S3, ranged reads (vidcap)"),
                     ("s3_close", "S3, ranged reads, a new connection per request"),
                     ("cache", "S3, whole object to a local cache first"),
                     ("no_net", "where it goes: vidcap's S3 path, each GET answered from memory"),
                     ("no_net_sign", "where it goes: the same, and each URL signed once for all passes")):
        print(f"| {label} | {rows[k]:.1f} | {rows[k] / rows['local']:.2f} | {cpu[k]:.1f} | {cpu[k] / cpu['local']:.2f} "
              f"| {1e3 / cpu[k]:.2f} |")
    print(f"\nrequests a row from S3 (both jobs): median {med(requests)}, max {max(requests)}")


def request_cost(url: str, n: int = 300) -> None:
    """CPU of this process for one 32 KB ranged GET of ``url``: vidcap's way (a presigned URL over a
    kept-open connection), the same with a new connection each time, and s3fs's ``cat_file``;
    interleaved in rounds of 20."""
    from vidcap.io import ranged_http, remote

    remote.forget()
    fs, path = remote.filesystem(url)
    signed = ranged_http.direct_url(fs, path, url)
    assert signed is not None
    ways = {"kept": lambda i: ranged_http.get_range(signed, i * 7, i * 7 + 32768),
            "new": lambda i: one_connection_each(ranged_http.get_range, signed, i * 7, i * 7 + 32768),
            "s3fs": lambda i: fs.cat_file(path, start=i * 7, end=i * 7 + 32768)}
    cpu = dict.fromkeys(ways, 0.0)
    for r in range(n // 20):
        for k, way in ways.items():
            t = time.process_time()
            for i in range(20):
                way(r * 20 + i)
            cpu[k] += time.process_time() - t
    t = time.process_time()
    for _ in range(n):
        ranged_http.forget()
        ranged_http.direct_url(fs, path, url)
    sign = time.process_time() - t
    print(f"\nCPU of this process a 32 KB ranged GET ({n} each, interleaved): presigned URL over a kept-open "
          f"connection {cpu['kept'] / n * 1e3:.3f} ms, with a new connection each {cpu['new'] / n * 1e3:.3f} ms, "
          f"s3fs cat_file {cpu['s3fs'] / n * 1e3:.3f} ms; signing a URL {sign / n * 1e3:.3f} ms (once an object a job)")


IN_FLIGHT = (1, 8, 32)
LATENCY_ROWS: list[float] = []


def rows_in_flight(clips: list[Path], latency_s: float) -> None:
    """Wall rows/s of the probe (``check: ends``) and motion stages over ``clips`` on one core, from a store that
    answers each request after ``latency_s`` (as a store across a network does) with ``IN_FLIGHT`` URL
    rows at a time (``VIDCAP_REMOTE_ROWS_IN_FLIGHT``), against the same clips as local files."""
    import boto3
    import s3fs

    from vidcap.io import remote, s3_presign
    from vidcap.io.shards import MEDIA_PATH, ROW_ID
    from vidcap.motion.stage import MotionStage
    from vidcap.probe.stage import ProbeStage

    server, endpoint = start_server(keep_alive=True, latency_s=latency_s)
    kept_endpoint = os.environ["AWS_ENDPOINT_URL"]

    def use(endpoint: str) -> None:   # a filesystem and a signer made for this endpoint
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        s3fs.S3FileSystem.clear_instance_cache()
        s3_presign._SIGNERS.clear()
        s3_presign._BUCKETS.clear()

    try:
        use(endpoint)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="latency")
        for c in clips:
            s3.upload_file(str(c), "latency", c.name)
        stages = (ProbeStage({"check": "ends"}), MotionStage())
        ways = {"local": ([str(c) for c in clips], 1)}
        ways.update({f"s3, {n} at a time": ([f"s3://latency/{c.name}" for c in clips], n) for n in IN_FLIGHT})
        rate = {}
        for way, (paths, n) in ways.items():
            remote.forget()
            remote.ROWS_IN_FLIGHT = n
            t = time.perf_counter()
            for stage in stages:
                results = list(stage.process_stream([{ROW_ID: str(i), MEDIA_PATH: p} for i, p in enumerate(paths)]))
                assert not [r for _, r in results if isinstance(r, Exception)], (way, results)
            rate[way] = len(paths) / (time.perf_counter() - t)
        if not LATENCY_ROWS:
            print(f"\n| probe (`check: ends`) then motion, {len(clips)} rows, 1 core: rows/s (wall) | "
                  + " | ".join(ways) + " | best ÷ local |")
            print("|---" * (len(ways) + 2) + "|")
        LATENCY_ROWS.append(latency_s)
        print(f"| the store answering after {latency_s * 1e3:.0f} ms | " + " | ".join(f"{rate[k]:.1f}" for k in ways)
              + f" | {max(v for k, v in rate.items() if k != 'local') / rate['local']:.2f} |")
    finally:
        use(kept_endpoint)
        server.terminate()
        server.wait()


def export_speed(clips: list[Path], total_mb: float) -> dict:
    """``vidcap export webdataset`` of ``clips`` repeated to about ``total_mb`` of samples, to a local
    folder in 64 MB shards, in a process of its own: MB/s, MB written and that process's peak RSS."""
    import json

    import pandas as pd

    from vidcap.io.tables import write_table

    work = Path(tempfile.mkdtemp(prefix="vidcap-bench-export-"))
    try:
        reps = max(1, int(total_mb * 1e6 // sum(c.stat().st_size for c in clips)))
        rows = [{"path": str(c), "row_id": f"r{k}_{i}", "text": "a caption", "probe_error": ""}
                for k in range(reps) for i, c in enumerate(clips)]
        write_table(pd.DataFrame(rows), work / "t.parquet")
        # the peak RSS of this process's own memory (VmHWM: ru_maxrss would also count the bench's pages
        # that the forked child held before its exec)
        code = ("import json, re, sys; sys.path.insert(0, sys.argv[1]); "
                "from vidcap.export.webdataset import export_webdataset; "
                "st = export_webdataset(sys.argv[2], sys.argv[3], '64MB'); "
                "hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
                "print(json.dumps({'mb_per_s': st['mb_per_s'], 'mb': st['bytes_written'] / 1e6, 'rss_mb': hwm / 1024}))")
        out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(work / "t.parquet"), str(work / "wds")],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
