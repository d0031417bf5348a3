"""Media on object storage, against a real S3 API on 127.0.0.1 (moto's server) behind a proxy that
throttles (503 SlowDown) and cuts connections: probe and frames read ranges, faults are retried or
become row errors, and a whole workflow over s3:// URLs labels rows as it does local files."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import journal_ids, kill_when_journaled, read_result, run_snakemake, write_config
from vidcap.dev import synth
from vidcap.dev.objectstore import SECRET, FaultProxy, S3Server
from vidcap.errors import FrameError, MediaError
from vidcap.io import buckets, remote
from vidcap.io.tables import write_table


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    proxy = FaultProxy(server.endpoint).start()
    yield server, proxy
    proxy.stop()
    server.stop()


@pytest.fixture
def store(s3, monkeypatch):
    """(server, proxy, boto3 client straight to the server); this process reads through the proxy."""
    import boto3

    server, proxy = s3
    for k, v in server.env(proxy.endpoint).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")   # botocore's own retries sleep up to seconds: ours are tested
    monkeypatch.setattr(remote, "BACKOFF_S", 0.01)
    proxy.slowdown = proxy.cut = 0
    proxy.gets.clear()
    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="k", aws_secret_access_key="s")
    return server, proxy, client


def upload(client, bucket: str, files: dict[str, Path]) -> None:
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    for key, path in files.items():
        client.upload_file(str(path), bucket, key)


def test_probe_and_frames_read_ranges_and_match_local_files(tmp_path, store):
    from vidcap.media.frames import sample_frames
    from vidcap.probe.stage import probe_video

    _, proxy, client = store
    clip = synth.write_video(tmp_path / "a.mp4", num_frames=240, width=128, height=96, seed=3)
    image = synth.write_image(tmp_path / "i.png")
    upload(client, "probe", {"v/a.mp4": clip, "v/i.png": image})
    url = "s3://probe/v/a.mp4"

    remote.forget()
    before = remote.STATS["bytes"]
    assert probe_video(url, "header") == probe_video(str(clip), "header")
    header_bytes = remote.STATS["bytes"] - before
    assert header_bytes <= 64 * 1024 < clip.stat().st_size // 2, "a header probe fetches kilobytes"
    assert probe_video(url, "ends") == probe_video(str(clip), "ends")

    local = sample_frames(str(clip), 4)
    got = sample_frames(url, 4)
    assert got.indices == local.indices and (got.frames == local.frames).all()
    assert (sample_frames("s3://probe/v/i.png", 1).frames[0] == sample_frames(str(image), 1).frames[0]).all()

    # throttling and connections cut mid-body: retried, same frames
    remote.forget()   # nothing kept: read the object again
    proxy.slowdown, proxy.cut = 2, 2
    again = sample_frames(url, 4)
    assert (again.frames == local.frames).all() and proxy.slowdown == proxy.cut == 0


def test_missing_object_and_endless_throttling_are_row_errors_not_labels(tmp_path, store, monkeypatch):
    from vidcap.media.frames import sample_frames
    from vidcap.probe.stage import ProbeStage

    _, proxy, client = store
    upload(client, "errs", {"a.mp4": synth.write_video(tmp_path / "a.mp4", num_frames=8, width=64, height=48)})
    with pytest.raises(FrameError, match=r"object not found: s3://errs/nope\.mp4"):
        sample_frames("s3://errs/nope.mp4", 4)
    with pytest.raises(MediaError, match="object not found: s3://no-such-bucket/a.mp4"):
        ProbeStage({"check": "ends"}).process_row({"_media_path": "s3://no-such-bucket/a.mp4"})
    monkeypatch.setattr(remote, "RETRIES", 1)
    proxy.slowdown = 10_000
    try:
        with pytest.raises(MediaError, match=r"cannot read s3://errs/a\.mp4 after 2 tries"):
            remote.open_remote("s3://errs/a.mp4?X-Amz-Signature=abcdef123456")
    finally:
        proxy.slowdown = 0


def test_s3_reads_take_presigned_ranged_gets_and_fsspec_gives_the_same_bytes(tmp_path, store, monkeypatch):
    """s3:// objects are read by ranged GETs of a presigned URL (``vidcap.io.ranged_http``), the size
    coming with the first block; ``VIDCAP_REMOTE_CLIENT=fsspec`` reads through s3fs. Same bytes both
    ways, through the faults; no message carries the signature."""
    from vidcap.io import ranged_http

    _, proxy, client = store
    data = bytes(range(256)) * 700   # 179,200 bytes: several blocks
    (tmp_path / "blob.bin").write_bytes(data)
    (tmp_path / "empty.bin").write_bytes(b"")
    upload(client, "light", {"blob.bin": tmp_path / "blob.bin", "empty.bin": tmp_path / "empty.bin"})
    url = "s3://light/blob.bin"
    got = {}
    for client_name in ("light", "fsspec"):
        monkeypatch.setenv("VIDCAP_REMOTE_CLIENT", "fsspec" if client_name == "fsspec" else "")
        remote.forget()
        proxy.gets.clear()
        proxy.slowdown, proxy.cut = 1, 1
        with remote.open_remote(url) as fh:
            fh.seek(100_000)
            tail = fh.read(50_000)
            fh.seek(0)
            head = fh.read(1000)
        got[client_name] = (head, tail, remote.object_size("s3://light/empty.bin"))
        signed = ranged_http._SIGNED.get(url)
        assert (signed is not None) == (client_name == "light")
        assert proxy.slowdown == proxy.cut == 0, "both faults met and retried"
    assert got["light"] == got["fsspec"] == (data[:1000], data[100_000:150_000], 0)

    monkeypatch.setenv("VIDCAP_REMOTE_CLIENT", "")
    monkeypatch.setattr(remote, "RETRIES", 1)
    remote.forget()
    proxy.slowdown = 10_000
    try:
        with pytest.raises(MediaError, match=r"cannot read s3://light/blob\.bin after 2 tries: HTTP 503") as err:
            remote.open_remote(url)
    finally:
        proxy.slowdown = 0
    assert "X-Amz" not in str(err.value) and "Signature" not in str(err.value)
    with pytest.raises(MediaError, match=r"object not found: s3://light/nope\.bin"):
        remote.open_remote("s3://light/nope.bin")

    # a presigned URL refused (credentials expired after signing, another region): read through s3fs
    remote.forget()
    proxy.refuse_presigned = 1000
    try:
        with remote.open_remote(url) as fh:
            fh.seek(100_000)
            assert fh.read(50_000) == data[100_000:150_000]
    finally:
        refused, proxy.refuse_presigned = 1000 - proxy.refuse_presigned, 0
    assert refused == 1 and ranged_http._SIGNED[url][0] == "", "one refusal, then s3fs for that object"


def test_url_rows_keep_their_url_and_a_stable_id(tmp_path):
    from vidcap.io.media_paths import resolve_media_path
    from vidcap.io.shards import make_shards

    url = "s3://bucket/a b/../c.mp4"
    assert resolve_media_path(url, "/data") == url
    assert resolve_media_path("x/c.mp4", "s3://bucket/root/") == "s3://bucket/root/x/c.mp4"
    assert resolve_media_path("/data/c.mp4", "s3://bucket/root") == "/data/c.mp4", "a local file stays local"
    write_table(pd.DataFrame({"path": [url, "https://host/v.mp4?sig=1", "local.mp4"]}), tmp_path / "m.csv")
    make_shards(tmp_path / "m.csv", tmp_path / "shards", 1000)
    shard = pd.read_parquet(tmp_path / "shards" / "00000.parquet")
    assert shard["_media_path"].tolist() == [url, "https://host/v.mp4?sig=1", str(tmp_path / "local.mp4")]
    for path, rid in zip(shard["_media_path"], shard["row_id"]):
        assert rid == hashlib.blake2b(f"{path}\x000".encode(), digest_size=8).hexdigest()


def test_redaction_of_storage_credentials(monkeypatch):
    from vidcap.redact import register_storage_secrets, scrub

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY")
    register_storage_secrets()
    text = scrub("https://u:pw@h/x.mp4?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F&X-Amz-Signature=0badc0ffee&a=1 "
                 "key wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY AKIAIOSFODNN7EXAMPLE")
    for secret in ("pw@", "0badc0ffee", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI"):
        assert secret not in text
    assert remote.public_url("s3://u:pw@b/k.mp4?sig=x") == "s3://b/k.mp4"


def _clips(media: Path, n: int, frames: int = 16) -> dict[str, Path]:
    return {f"clips/c{i:02d}.mp4": synth.write_video(media / f"c{i:02d}.mp4", num_frames=frames, width=64,
                                                    height=48, seed=i) for i in range(n)}


@pytest.mark.e2e
def test_workflow_over_s3_urls_labels_rows_as_local_files(tmp_path, store):
    """probe + caption (tiny model) + motion over a manifest holding every clip twice, as a local file
    and as an s3:// URL, through a proxy that throttles and cuts: same labels, a missing object is a
    row error, and the secret key appears in no file the run writes."""
    from vidcap.dev.tiny import tiny_model

    server, proxy, client = store
    media = tmp_path / "media"
    clips = _clips(media, 3)
    upload(client, "wflow", clips)
    local = [str(p) for p in clips.values()]
    urls = [f"s3://wflow/{k}" for k in clips]
    write_table(pd.DataFrame({"path": local + urls + ["s3://wflow/clips/missing.mp4"]}), media / "m.csv")
    stages = {"caption": {"enabled": True, "prompt": "video_short", "decode_workers": 0,
                          "frames": {"num_frames": 4, "resize_short": 48}, "generation": {"max_new_tokens": 4},
                          "transformers": {"model": str(tiny_model("qwen2_5_vl"))},
                          "resources": {"mem_mb": 2000, "runtime": 30, "threads": 1, "gpu": 0}}}
    cfg = write_config(tmp_path, name="s3", manifest=str(media / "m.csv"), stages=stages)
    proxy.slowdown, proxy.cut = 2, 2
    run_snakemake(tmp_path, cfg, env=server.env(proxy.endpoint))
    out = read_result(tmp_path / "results" / "s3.csv")
    assert out["path"].tolist() == local + urls + ["s3://wflow/clips/missing.mp4"], "every row once, in order"
    same = ["num_frames", "fps", "width", "height", "duration", "codec", "cmotion", "motion_pan", "motion_tilt",
            "motion_zoom", "caption_frame_indices", "caption_error", "probe_error", "motion_error"]
    assert out.loc[:2, same].values.tolist() == out.loc[3:5, same].values.tolist()
    assert (out.loc[:5, "probe_error"] == "").all() and (out.loc[:5, "caption_error"] == "").all()
    missing = out.iloc[6]
    for col in ("probe_error", "caption_error", "motion_error"):
        assert "object not found: s3://wflow/clips/missing.mp4" in missing[col], (col, missing[col])
    assert missing["cmotion"] == "" and missing["num_frames"] == ""
    assert sum(proxy.gets.values()) > 0 and proxy.faults >= 4
    for f in [*(tmp_path / "results").rglob("*"), *(tmp_path / ".snakemake").rglob("*.log")]:
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


@pytest.mark.e2e
def test_kill_mid_run_over_s3_then_resume_fetches_no_journaled_row_again(tmp_path, store):
    server, proxy, client = store
    media = tmp_path / "media"
    clips = _clips(media, 10, frames=8)
    upload(client, "kill", clips)
    urls = [f"s3://kill/{k}" for k in clips]
    write_table(pd.DataFrame({"path": urls}), media / "m.csv")
    # no report: its gallery reads frames of sampled rows, which is not a stage fetching a row again
    cfg = write_config(tmp_path, name="k", manifest=str(media / "m.csv"), stages={"motion": {"enabled": False}},
                       report={"enabled": False})
    env = {**server.env(proxy.endpoint), "VIDCAP_FAULT_DELAY": "0.3"}
    before = kill_when_journaled(tmp_path, cfg, "probe", 3, env=env)
    done = {rid for ids in before.values() for rid in ids}
    assert 3 <= len(done) < len(urls), "killed mid-run"
    key_of = {hashlib.blake2b(f"{u}\x000".encode(), digest_size=8).hexdigest(): "/kill/" + u[len("s3://kill/"):]
              for u in urls}
    proxy.gets.clear()
    run_snakemake(tmp_path, cfg, "--unlock", env=server.env(proxy.endpoint))
    run_snakemake(tmp_path, cfg, "--rerun-incomplete", env=server.env(proxy.endpoint))
    assert not [key_of[r] for r in done if proxy.gets[key_of[r]]], "a journaled row was fetched again"
    assert all(proxy.gets[key_of[r]] for r in set(key_of) - done), "the other rows were fetched"
    after = journal_ids(tmp_path / "results" / "k", "probe")
    ids = [rid for v in after.values() for rid in v]
    assert len(ids) == len(set(ids)) == len(urls), "every row once"
    out = read_result(tmp_path / "results" / "k.csv")
    assert out["path"].tolist() == urls and (out["probe_error"] == "").all() and (out["num_frames"] == "8").all()
    stats = [json.loads(p.read_text()) for p in (tmp_path / "results" / "k" / "stats" / "probe").glob("*.json")]
    assert sum(s["reused"] for s in stats) == len(done)


def _export_table(tmp_path: Path, client) -> tuple[Path, dict[str, Path]]:
    """A merged table (as a run writes it): 3 local clips, one on S3, one failed row, one range of a clip
    on S3 (cut by the shots step's stream copy, reading the object through the shots decoder)."""
    media = tmp_path / "media"
    files = {f"c{i}": synth.write_video(media / f"c{i}.mp4", num_frames=24, width=64, height=48, seed=i)
             for i in range(4)}
    long = synth.write_video(media / "long.mp4", num_frames=96, width=64, height=48, seed=9)
    upload(client, "exp", {"src/c3.mp4": files["c3"], "src/long.mp4": long})
    rows = [{"path": str(files[f"c{i}"]), "row_id": f"r{i}", "text": f"caption {i}", "probe_error": "",
             "start": None, "end": None, "source_duration": 1.0} for i in range(3)]
    rows.append({"path": "s3://exp/src/c3.mp4", "row_id": "r3", "text": "caption 3", "probe_error": "",
                 "start": None, "end": None, "source_duration": 1.0})
    rows.append({"path": str(media / "gone.mp4"), "row_id": "r4", "text": "", "probe_error": "file not found",
                 "start": None, "end": None, "source_duration": None})
    rows.append({"path": "s3://exp/src/long.mp4", "row_id": "r5", "text": "caption 5", "probe_error": "",
                 "start": 2.0, "end": 3.0, "source_duration": 4.0})
    write_table(pd.DataFrame(rows), tmp_path / "table.parquet")
    return tmp_path / "table.parquet", {**files, "long": long}


def _read_back(folder: Path) -> dict[str, dict]:
    import webdataset as wds

    tars = sorted(str(p) for p in folder.glob("*.tar"))
    return {s["__key__"]: s for s in wds.WebDataset(tars, shardshuffle=False, empty_check=False)}


def test_webdataset_export_to_a_folder_and_to_s3_resumable(tmp_path, store):
    import av

    from vidcap.cli.main import main
    from vidcap.export.webdataset import export_webdataset

    _, _, client = store
    table, files = _export_table(tmp_path, client)
    out = tmp_path / "wds"
    assert main(["export", "webdataset", str(table), "--to", str(out), "--shard-size", "20KB"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["failed_rows"] == 1 and stats["samples_written"] == 5 and stats["shards"] >= 2
    samples = _read_back(out)
    assert sorted(samples) == ["r0", "r1", "r2", "r3", "r5"], "one sample per usable row"
    for key, name in (("r0", "c0"), ("r3", "c3")):
        assert samples[key]["mp4"] == files[name].read_bytes()
        meta = json.loads(samples[key]["json"])
        assert meta["row_id"] == key and samples[key]["txt"].decode() == meta["text"]
    cut = av.open(__import__("io").BytesIO(samples["r5"]["mp4"]))
    n = sum(1 for _ in cut.decode(video=0))
    assert 24 <= n < 96, "the row's range, cut by stream copy (from the keyframe before it)"
    index = pd.concat([pd.read_parquet(p) for p in sorted(out.glob("0*.parquet"))])
    assert sorted(index["key"]) == sorted(samples)
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names

    # resumable: a shard lost (its stats file marks it done) is written again, identical; others kept
    first = (out / "00001.tar").read_bytes()
    (out / "00001.tar").unlink()
    (out / "00001_stats.json").unlink()
    again = export_webdataset(table, str(out), "20KB")
    assert again["shards_written"] == 1 and again["shards_kept"] == stats["shards"] - 1
    assert (out / "00001.tar").read_bytes() == first
    with pytest.raises(Exception, match="other settings"):
        export_webdataset(table, str(out), "1MB")

    s3 = export_webdataset(table, "s3://exp/wds/", "20KB")
    assert s3["shards"] == stats["shards"] and s3["samples_written"] == 5
    keys = buckets.list_objects("s3://exp/wds/")
    assert {f"{i:05d}{ext}" for i in range(s3["shards"]) for ext in (".tar", ".parquet", "_stats.json")} \
        <= set(keys) and len(keys) == 3 * s3["shards"] + 2
    local = tmp_path / "from_s3"
    local.mkdir()
    for k in keys:
        if k.endswith(".tar"):
            (local / k).write_bytes(remote.read_range(f"s3://exp/wds/{k}", 0, remote.object_size(f"s3://exp/wds/{k}")))
    assert {k: s["mp4"] for k, s in _read_back(local).items()} == {k: s["mp4"] for k, s in samples.items()}
    again = export_webdataset(table, "s3://exp/wds/", "20KB")
    assert again["shards_written"] == 0


def test_vidcap_manifest_lists_a_bucket_prefix(tmp_path, store):
    from vidcap.cli.main import main

    _, _, client = store
    clip = synth.write_video(tmp_path / "a.mp4", num_frames=4, width=32, height=32)
    upload(client, "listing", {"p/a.mp4": clip, "p/sub/b.MP4": clip, "p/notes.txt": clip, "other/c.mp4": clip})
    assert main(["manifest", "s3://listing/p/", "-o", str(tmp_path / "m.parquet")]) == 0
    df = pd.read_parquet(tmp_path / "m.parquet")
    assert df["path"].tolist() == ["s3://listing/p/a.mp4", "s3://listing/p/sub/b.MP4"]
    assert df["relpath"].tolist() == ["a.mp4", "sub/b.MP4"] and df["id"].tolist() == ["a", "b"]


def test_shot_detection_over_s3_equals_local_files(tmp_path, store):
    from vidcap.shots.detect import detect_shots

    _, _, client = store
    a, b = synth.texture(96, 128, seed=1), synth.texture(96, 128, seed=2)
    clip = synth.write_video(tmp_path / "cut.mp4", num_frames=48, width=128, height=96,
                             frames=lambda i: a if i < 24 else b)
    upload(client, "shots", {"cut.mp4": clip})
    local = detect_shots(str(clip))
    assert len(local) == 2, "the hard cut is found"
    assert detect_shots("s3://shots/cut.mp4") == local


def _sample_as_local(url: str, local, proxy, key: str) -> tuple[int, int]:
    """(GETs of ``key``, bytes fetched) of 4 frames sampled from ``url`` with nothing kept; the frames
    must be ``local``'s (the same clip on disk)."""
    from vidcap.media.frames import sample_frames

    remote.forget()
    proxy.gets.clear()
    fetched = remote.STATS["bytes"]
    got = sample_frames(url, 4)
    assert got.indices == local.indices and (got.frames == local.frames).all()
    return proxy.gets[key], remote.STATS["bytes"] - fetched


def test_frame_sampling_fetches_each_gop_in_one_request(tmp_path, store, monkeypatch):
    """A decoder tells the object's file the bytes of the GOP it is about to decode (from the MP4
    index): one ranged GET a GOP, however large, and about the GOPs' bytes; the same frames as the
    local file. Without the hint, the read-ahead doubles from 32 KB: several GETs a GOP."""
    import av

    from vidcap.media import files
    from vidcap.media.frames import frame_indices, sample_frames

    _, proxy, client = store
    clip = synth.write_video(tmp_path / "big.mp4", num_frames=240, width=640, height=360, seed=5)
    upload(client, "gops", {"big.mp4": clip})
    url = "s3://gops/big.mp4"
    with av.open(str(clip)) as c:
        packets = sorted((p.pts, p.is_keyframe, p.size) for p in c.demux(c.streams.video[0]) if p.size)
    gop_of, gop, gop_bytes = [], -1, {}
    for _pts, key, size in packets:
        gop += 1 if key else 0
        gop_of.append(gop)
        gop_bytes[gop] = gop_bytes.get(gop, 0) + size
    wanted = {gop_of[i] for i in frame_indices(len(packets), 4)}
    assert min(gop_bytes[g] for g in wanted) > 4 * remote.MIN_FETCH, "GOPs far larger than a first fetch"

    local = sample_frames(str(clip), 4)
    counts = {}
    for hinted in (True, False):
        if not hinted:
            monkeypatch.setattr(files, "expect_span", lambda *a, **k: None)
            monkeypatch.setattr("vidcap.media.decoders.expect_span", lambda *a, **k: None)
        counts[hinted] = _sample_as_local(url, local, proxy, "/gops/big.mp4")
    gets, nbytes = counts[True]
    assert gets <= 2 + len(wanted), f"{gets} GETs for {len(wanted)} GOPs (+ the first block and the index)"
    assert nbytes <= 1.5 * sum(gop_bytes[g] for g in wanted) + 64 * 1024
    assert counts[False][0] >= gets + len(wanted), counts


def test_the_gops_of_a_short_clip_come_in_one_request(tmp_path, store, monkeypatch):
    """A sampler tells the object's file the GOPs of all its frames (``RemoteFile.plan``): where they lie
    close together, as in a short clip, one GET fetches them, with no more bytes than a GET each would
    fetch (plus an eighth); the same frames as the local file."""
    from vidcap.media.frames import sample_frames

    _, proxy, client = store
    clip = synth.write_video(tmp_path / "short.mp4", num_frames=144, width=256, height=144, seed=7)
    upload(client, "short", {"short.mp4": clip})
    url = "s3://short/short.mp4"
    local = sample_frames(str(clip), 4)
    counts = {}
    for planned in (True, False):
        if not planned:
            monkeypatch.setattr(remote.RemoteFile, "plan", lambda self, spans: None)
        counts[planned] = _sample_as_local(url, local, proxy, "/short/short.mp4")
    assert counts[True][0] == 3, f"the first block, the index and one span: {counts}"
    assert counts[False][0] >= 5, counts
    assert counts[True][1] <= counts[False][1] * 9 / 8 + 8192, counts


def test_the_last_gop_comes_with_an_index_at_the_end(tmp_path, store, monkeypatch):
    """A reader that will decode the end (probe ``ends``, 4 uniform frames) has an index at the end of
    the file (PyAV writes MP4's moov there) fetched with the 32 KB before it, which hold a small clip's
    last GOP: one GET fewer each, at most a few KB more (a later fetch stops where kept bytes begin); a probe
    ``header`` reads nothing behind. Results as from the local file."""
    from vidcap.media import files
    from vidcap.media.frames import sample_frames
    from vidcap.probe.stage import probe_video

    _, proxy, client = store
    clip = synth.write_video(tmp_path / "c.mp4", num_frames=288, width=256, height=144, seed=11)
    upload(client, "tail", {"c.mp4": clip})
    url, key = "s3://tail/c.mp4", "/tail/c.mp4"
    local = sample_frames(str(clip), 4)
    got: dict[tuple[str, int], tuple[int, int]] = {}
    on, off = files.TAIL_BEHIND, 0
    for behind in (on, off):
        monkeypatch.setattr(files, "TAIL_BEHIND", behind)
        for check in ("header", "ends"):
            remote.forget()
            proxy.gets.clear()
            fetched = remote.STATS["bytes"]
            assert probe_video(url, check) == probe_video(str(clip), check)
            got[(check, behind)] = proxy.gets[key], remote.STATS["bytes"] - fetched
        got[("frames", behind)] = _sample_as_local(url, local, proxy, key)
    assert got[("header", on)] == got[("header", off)] and got[("header", on)][1] <= 64 << 10, got
    assert got[("ends", on)][0] == 2 and got[("ends", off)][0] == 3, got
    assert got[("frames", on)][0] == got[("frames", off)][0] - 1, got
    for kind in ("frames", "ends"):   # at most the bytes before the last GOP in the 32 KB
        assert got[(kind, on)][1] <= got[(kind, off)][1] + remote.PLAN_GAP, got


def test_a_plain_s3_url_finds_its_filesystem_as_fsspec_does():
    """The s3fs instance of plain ``s3://`` URLs is looked up once; the answers are fsspec's own (also
    after its instances are cleared), and a URL with a query (a version) still goes through fsspec."""
    import fsspec

    remote.forget()
    for url in ("s3://b1/k.mp4", "s3://b2/dir/k 2.mp4", "s3://b1/", "s3://b1/k.mp4?versionId=3"):
        fs, path = remote.filesystem(url)
        want_fs, want_path = fsspec.core.url_to_fs(url)
        assert fs is want_fs and path == want_path, url
    before = remote.filesystem("s3://b3/k.mp4")[0]
    type(before).clear_instance_cache()   # new settings: fsspec makes a new instance, and so does this
    fs, _ = remote.filesystem("s3://b4/k.mp4")
    assert fs is fsspec.core.url_to_fs("s3://b4/k.mp4")[0] and fs is not before


@pytest.mark.e2e
def test_url_rows_of_a_job_overlap_their_waits_on_the_store(tmp_path, monkeypatch):
    """A store across a network answers each request after a wait: probe and motion jobs handle up to
    ``VIDCAP_REMOTE_ROWS_IN_FLIGHT`` URL rows at a time, so the waits overlap (one at a time with 1);
    the labels are those of the same clips read one row at a time, every row once, in order."""
    import boto3

    server = S3Server(latency_s=0.2).start()
    try:
        client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                              aws_access_key_id="k", aws_secret_access_key="s")
        clips = _clips(tmp_path / "media", 8)
        upload(client, "slow", clips)
        urls = [f"s3://slow/{k}" for k in clips]
        write_table(pd.DataFrame({"path": urls}), tmp_path / "m.csv")
        out, most = {}, {}
        for n in (1, 8):
            work = tmp_path / f"run{n}"
            work.mkdir()
            cfg = write_config(work, name="slow", manifest=str(tmp_path / "m.csv"), report={"enabled": False})
            server.most_in_flight = 0
            run_snakemake(work, cfg, "--cores", "1", env={**server.env(), "VIDCAP_REMOTE_ROWS_IN_FLIGHT": str(n)})
            most[n] = server.most_in_flight
            out[n] = read_result(work / "results" / "slow.csv")
    finally:
        server.stop()
    assert most[1] == 1 and most[8] >= 4, most
    cols = ["path", "num_frames", "fps", "width", "height", "cmotion", "motion_pan", "probe_error", "motion_error"]
    assert out[8][cols].values.tolist() == out[1][cols].values.tolist()
    assert out[8]["path"].tolist() == urls and (out[8]["probe_error"] == "").all() and (out[8]["motion_error"] == "").all()


def test_a_span_fetched_once_serves_a_later_open_of_the_object(tmp_path, store):
    """The blocks a process fetched (32 MB in all) serve the next open of the same object: motion's later
    rounds decode frames between its first ones, often in GOPs it has already fetched."""
    import os

    _, proxy, client = store
    data = os.urandom(3 << 20)
    (tmp_path / "big.bin").write_bytes(data)
    upload(client, "again", {"big.bin": tmp_path / "big.bin"})
    url = "s3://again/big.bin"
    remote.forget()
    proxy.gets.clear()
    with remote.open_remote(url) as fh:
        fh.expect(1 << 20, 2 << 20)   # a 1 MB GOP, in one GET
        fh.seek(1 << 20)
        assert fh.read(1 << 20) == data[1 << 20:2 << 20]
    gets = proxy.gets["/again/big.bin"]
    assert gets == 2, "the first block, then the span"
    with remote.open_remote(url) as fh:
        fh.seek((1 << 20) + 5000)
        assert fh.read(300_000) == data[(1 << 20) + 5000:(1 << 20) + 305_000]
    assert proxy.gets["/again/big.bin"] == gets, "no GET: the span was kept"
