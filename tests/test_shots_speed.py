"""Shot detection's speed knobs on real encoded videos: the fast frame score (the same cuts as
PySceneDetect's own), hardware decoding and its fallback, proxy mode (vidcap.shots.proxy).

The proxy mode's run through the workflow is in tests/test_shots_workflow.py; its accuracy and speed on
the frozen bench split in bench/shots/README.md.
"""
from __future__ import annotations

import logging
import resource
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidcap.dev import cuts
from vidcap.errors import ConfigError, FrameError
from vidcap.media import allocator
from vidcap.shots import decode as shots_decode
from vidcap.shots import detect as shots
from vidcap.shots import shrink as shots_shrink
from vidcap.shots.detectors import detectors
from vidcap.shots.proxy import merge_spans, proxy_candidates

DATA = Path(__file__).resolve().parent / "data"
BIKES = DATA / "bikes.mp4"
BIKES_CUTS = [30, 76, 137, 187, 242]  # tests/test_shots.py: test_bikes_smoke


@pytest.fixture(scope="module")
def multi_shot(tmp_path_factory):
    spec = cuts.make_spec(3001, n_shots=8)  # seeds 3000-3002: the test seeds (not the bench's)
    return spec, cuts.write_video(spec, tmp_path_factory.mktemp("cuts") / "3001.mp4", 320, 180)


def _frames(path, n=120):
    info = shots_decode.open_video(path)
    try:
        return [f for (_, f), _ in zip(shots_decode.scan(info), range(n), strict=False)]
    finally:
        info.close()


@pytest.mark.parametrize("kind", ["adaptive", "content"])
def test_fast_frame_score_is_pyscenedetects_score(kind):
    from scenedetect import FrameTimecode
    from scenedetect.detectors import AdaptiveDetector, ContentDetector

    settings = shots.shot_settings({"detector": kind, "content": {"threshold": 12.0}})
    fast = detectors(settings, Fraction(25))[0]
    stock = (AdaptiveDetector(min_scene_len=10) if kind == "adaptive"
             else ContentDetector(threshold=12.0, min_scene_len=10))
    got, want = [], []
    for i, frame in enumerate(_frames(BIKES, 250)):
        tc = FrameTimecode(i, fps=Fraction(25))
        got += [c.frame_num for c in fast.process_frame(tc, frame)]
        want += [c.frame_num for c in stock.process_frame(tc, frame)]
        assert fast._frame_score == stock._frame_score, i  # exactly equal, not only close
    assert got == want and got


def test_hwaccel_falls_back_to_the_cpu_with_a_clear_message(caplog):
    from av.codec.hwaccel import hwdevices_available

    missing = next((d for d in shots_decode.HWACCELS[1:] if d not in hwdevices_available()), None)
    if missing is None:
        pytest.skip("this FFmpeg build has every device type vidcap offers")
    shots_decode._WARNED.clear()
    with caplog.at_level(logging.WARNING, logger="vidcap.shots.detect"):
        det = shots.detect_boundaries(BIKES, {"decode": {"hwaccel": missing}})
        again = shots.detect_boundaries(BIKES, {"decode": {"hwaccel": missing}})
    assert [b.cut for b in det.boundaries] == [b.cut for b in again.boundaries] == BIKES_CUTS
    assert det.decoder.startswith(f"cpu ({missing} unavailable: not in this FFmpeg build")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once per reason and process, not once per video
    assert warnings[0].startswith(f"stages.shots.decode.hwaccel = {missing}: not in this FFmpeg build")
    assert warnings[0].endswith("decoding on the CPU instead")


def test_hwaccel_cuda_decodes_or_says_why_not():
    from av.codec.hwaccel import hwdevices_available

    det = shots.detect_boundaries(BIKES, {"decode": {"hwaccel": "cuda"}})
    assert [b.cut for b in det.boundaries] == BIKES_CUTS
    if "cuda" not in hwdevices_available():
        assert "not in this FFmpeg build" in det.decoder
    elif det.decoder != "cuda":  # a machine without an NVIDIA device or driver (this CPU machine)
        assert det.decoder.startswith("cpu (cuda unavailable: the device does not open ("), det.decoder
    # a bad file is still reported as the file's fault, not the device's
    with pytest.raises(FrameError, match="file not found"):
        shots.detect_boundaries(DATA / "missing.mp4", {"decode": {"hwaccel": "cuda"}})


def test_speed_settings_are_validated():
    with pytest.raises(ConfigError, match="stages.shots.decode.hwaccel"):
        shots.shot_settings({"decode": {"hwaccel": "gpu"}})
    with pytest.raises(ConfigError, match="stages.shots.proxy.skip"):
        shots.shot_settings({"proxy": {"enabled": True, "skip": "none"}})
    with pytest.raises(ConfigError, match="stages.shots.proxy.margin_s"):
        shots.shot_settings({"proxy": {"margin_s": -1}})
    s = shots.shot_settings({"proxy": {"enabled": True}})
    assert s["proxy"]["skip"] in ("nonkey", "nonref") and s["decode"]["hwaccel"] == "none"


def test_proxy_candidates_and_spans():
    flat = np.zeros((5, 8, 3), np.float32)
    bright = flat + 40
    proxy = {"window_s": 1.0, "min_change": 10.0}
    samples = [(0, flat), (6, flat), (12, bright), (18, bright), (60, bright)]
    assert proxy_candidates(samples, Fraction(12), proxy) == [(6, 12), (0, 12), (6, 18)]
    # a slow change: no step reaches min_change, the window does
    ramp = [(i * 3, flat + 4 * i) for i in range(5)]
    assert proxy_candidates(ramp, Fraction(12), proxy) == [(0, 9), (3, 12), (0, 12)]
    assert merge_spans([(6, 12), (0, 12), (40, 41)], 2, 0, 100) == [(0, 15), (38, 44)]
    assert merge_spans([(90, 99)], 5, 0, 100) == [(85, 100)]


@pytest.mark.parametrize("skip", ["nonref", "nonkey"])
def test_proxy_mode_finds_the_transitions_of_the_full_pass(multi_shot, skip):
    spec, path = multi_shot
    full = shots.detect_boundaries(path)
    proxy = shots.detect_boundaries(path, {"proxy": {"enabled": True, "skip": skip}})
    assert (proxy.num_frames, proxy.start, proxy.end) == (full.num_frames, 0, spec.num_frames)
    assert [(b.kind, b.cut) for b in proxy.boundaries] == [(b.kind, b.cut) for b in full.boundaries]
    with av.open(str(path)) as c:
        keys = sum(1 for p in c.demux(video=0) if p.is_keyframe)
    assert proxy.frames_seen >= keys


def test_proxy_mode_inside_a_range(multi_shot):
    spec, path = multi_shot
    t = spec.transitions
    start, end = t[0].cut - 30, t[2].cut + 30
    det = shots.detect_boundaries(path, {"proxy": {"enabled": True}}, start, end)
    assert (det.start, det.end) == (start, end)
    full = shots.detect_boundaries(path, {}, start, end)
    assert [b.cut for b in det.boundaries] == [b.cut for b in full.boundaries]
    assert all(start < b.cut < end for b in det.boundaries)


def test_batched_analysis_gives_the_frame_by_frame_values(multi_shot, monkeypatch):
    """The detect loop analyses a batch of frames at once (thumbnails, hard-cut scores, the dissolve
    windows); each value is the one the frame-by-frame code gives, so the boundaries are too."""
    from vidcap.shots.detectors import thumbnails
    from vidcap.shots.dissolve import DissolveDetector

    _, path = multi_shot
    settings = shots.shot_settings({})
    for width, end in ((37, 40), (160, 620)):  # 37: frames that do not split into whole 8x5 blocks
        info = shots_decode.open_video(path)
        try:  # up to 620: a cut, fades and two dissolves (frames 474-484, 580-586)
            stack = np.stack([f for _, f in shots_decode.scan(info, width, end=end)])
        finally:
            info.close()
        assert np.array_equal(thumbnails(stack), np.stack([shots_decode.tiny(f) for f in stack]))

    one, batched = detectors(settings, Fraction(24))[0], detectors(settings, Fraction(24))[0]
    want = [one._calculate_frame_score(None, f) for f in stack]
    got = []
    for k in range(0, len(stack), 32):
        got += batched.batch_scores(stack[k:k + 32])
    assert got == want and max(want) > 0

    thumbs = thumbnails(stack)
    evaluated = []
    real = DissolveDetector._evaluate
    monkeypatch.setattr(DissolveDetector, "_evaluate", lambda self, pos: evaluated.append(pos) or real(self, pos))
    one_go: list[bool] = []  # whether each batch was pushed in one go (``_push_quiet``)
    real_quiet = DissolveDetector._push_quiet
    monkeypatch.setattr(DissolveDetector, "_push_quiet", lambda self, i, f: one_go.append(real_quiet(self, i, f)) or one_go[-1])
    for keep in (slice(None), slice(None, None, 2)):  # every frame; every other frame (decode.skip)
        idx = list(range(len(thumbs)))[keep]
        ref, fast = DissolveDetector(), DissolveDetector()
        for i in idx:  # the reference: every centre evaluated on its own (``_evaluate``)
            ref.push(i, thumbs[i])
        want = ref.finish()
        assert len(evaluated) == len(idx)
        evaluated.clear()
        one_go.clear()
        for k in range(0, len(idx), 32):
            fast.push_batch(idx[k:k + 32], thumbs[idx[k:k + 32]])
        assert fast.finish() == want
        if keep == slice(None):
            assert any(d.cut for d in ref.found)  # the video has dissolves
            assert evaluated == []  # every centre is evaluated by the batch test (``_settle``)
            assert True in one_go and False in one_go  # batches pushed in one go, and frame by frame


def _blends(rng, n: int) -> np.ndarray:
    """``n`` noisy 8x5 thumbnails of a few shots, joined by linear blends of 0 to 24 frames (hard cuts
    and dissolves) anywhere, the first and last frames included."""
    frames = np.empty((n, 5, 8, 3), np.float32)
    shot, t = rng.uniform(0, 255, (5, 8, 3)), 0
    while t < n:
        length = int(rng.integers(1, 60))
        frames[t:t + length] = shot
        t += length
        nxt, length = rng.uniform(0, 255, (5, 8, 3)), int(rng.integers(0, 25))
        for j in range(min(length, max(n - t, 0))):
            frames[t + j] = shot + (j + 1) / (length + 1) * (nxt - shot)
        shot, t = nxt, t + length
    return frames + rng.normal(0, 3, frames.shape).astype(np.float32)


def test_batch_dissolve_test_settles_the_ends_of_short_inputs():
    """The batch test also settles the centres whose windows reach past the first or the last frame (short
    clips, a range of a video), under ``_evaluate``'s rules there: the same dissolves as frame by frame,
    with transitions next to both ends, for any first index and batch size, and no centre evaluated one
    by one."""
    from vidcap.shots.dissolve import DissolveDetector

    rng = np.random.default_rng(7)
    found = 0
    evaluated: list[int] = []
    for n in [*rng.integers(1, 400, 60).tolist(), 120]:
        one_shot = _blends(rng, 1).repeat(n, 0) + rng.normal(0, 3, (n, 5, 8, 3)).astype(np.float32)
        for thumbs in (_blends(rng, n), one_shot):
            first = int(rng.choice([0, 37]))
            idx = list(range(first, first + n))
            ref = DissolveDetector()
            real = ref._evaluate
            ref._evaluate = lambda pos, real=real: evaluated.append(pos) or real(pos)  # type: ignore[method-assign]
            evaluated.clear()
            for i, f in zip(idx, thumbs, strict=True):  # the reference: every centre on its own
                ref.push(i, f)
            want = ref.finish()
            assert len(evaluated) == n
            found += len(want)
            for size in (7, 32):
                fast = DissolveDetector()
                real = fast._evaluate
                evaluated.clear()
                fast._evaluate = lambda pos, real=real: evaluated.append(pos) or real(pos)  # type: ignore[method-assign]
                for k in range(0, n, size):
                    fast.push_batch(idx[k:k + size], thumbs[k:k + size])
                assert fast.finish() == want
                assert not fast._settled  # every centre settled was stepped
                assert evaluated == []  # none evaluated one by one (on its own: up to 54 at each end)
    assert found > 20


def test_batch_detectors_give_pyscenedetects_cuts(multi_shot):
    """``process_batch`` (what the detect loop uses) reports the cuts PySceneDetect's ``process_frame``
    reports frame by frame: hard cuts (AdaptiveDetector, its ratio vectorised), fades (ThresholdDetector,
    followed where the frame mean crosses its threshold), also with frames skipped (``decode.skip``);
    the flash check fed a batch at a time keeps the same cuts."""
    from scenedetect import FrameTimecode
    from scenedetect.detectors import AdaptiveDetector, ThresholdDetector

    from vidcap.shots.detectors import FlashCheck, thumbnails

    _, path = multi_shot
    info = shots_decode.open_video(path)
    try:
        stack = np.concatenate([f for _, f in shots_decode.scan_batches(info, 160)])
    finally:
        info.close()
    thumbs = thumbnails(stack)
    fps = Fraction(24)
    for settings in ({}, {"adaptive": {"adaptive_threshold": 1.5, "min_content_val": 5.0}, "min_scene_s": 0.1}):
        s = shots.shot_settings(settings)
        a, min_len = s["adaptive"], max(1, round(s["min_scene_s"] * 24))
        for keep in (slice(None), slice(None, None, 2)):  # every frame; every other frame (decode.skip)
            idx = list(range(len(stack)))[keep]
            stock = AdaptiveDetector(adaptive_threshold=a["adaptive_threshold"], min_scene_len=min_len,
                                     window_width=a["window_width"], min_content_val=a["min_content_val"])
            fade = ThresholdDetector(threshold=s["fades"]["threshold"], min_scene_len=min_len, fade_bias=0.0)
            want_cuts, want_fades = [], []
            for i in idx:
                tc = FrameTimecode(i, fps=fps)
                want_cuts += [c.frame_num for c in stock.process_frame(tc, stack[i])]
                want_fades += [c.frame_num for c in fade.process_frame(tc, thumbs[i])]
            cut_det, fade_det, _ = detectors(s, fps)
            got_cuts, got_fades = [], []
            for k in range(0, len(idx), 32):
                part = idx[k:k + 32]
                got_cuts += cut_det.process_batch(part, stack[part])
                levels = thumbs[part].reshape(len(part), -1).mean(axis=1)
                assert levels.tolist() == [np.mean(thumbs[i]) for i in part]  # ThresholdDetector's mean
                got_fades += fade_det.process_batch(part, levels)
            assert got_cuts == want_cuts and got_fades == want_fades, settings
            if keep == slice(None):
                assert want_cuts and want_fades

    flash_one, flash_batch = FlashCheck(6, keep=200), FlashCheck(6, keep=200)
    cuts = {120: [118], 300: [297, 299], 475: [474]}  # (frame after which they are reported: cuts)
    for i in range(len(thumbs)):
        flash_one.push(i, thumbs[i])
        flash_one.add(cuts.get(i, []))
    for k in range(0, len(thumbs), 32):
        part = list(range(k, min(k + 32, len(thumbs))))
        flash_batch.push_batch(part, thumbs[part])
        flash_batch.add([c for i in part for c in cuts.get(i, [])])
    assert flash_batch.finish() == flash_one.finish()


@pytest.mark.parametrize("kind", ["adaptive", "content", "edges"])
def test_hard_cuts_scored_by_batch_and_decided_by_block_are_pyscenedetects(kind):
    """The detect loop scores each batch (``score``) and asks for the cuts once per block of batches
    (``cuts``): the cuts PySceneDetect's ``process_frame`` reports frame by frame, whatever the blocks
    (AdaptiveDetector, ContentDetector with its flash filter, and with edges: PySceneDetect's own code)."""
    from scenedetect import FrameTimecode
    from scenedetect.detectors import AdaptiveDetector, ContentDetector

    rng = np.random.default_rng(5)
    frames = np.stack(_frames(BIKES, 250))
    weights = {"edges": ContentDetector.Components(1.0, 1.0, 1.0, 1.0)}.get(kind)
    settings = shots.shot_settings({"detector": "content" if kind == "content" else "adaptive",
                                    "content": {"threshold": 12.0}, "min_scene_s": 0.2})
    stock = (ContentDetector(threshold=12.0, min_scene_len=5) if kind == "content"
             else AdaptiveDetector(min_scene_len=5, weights=weights or ContentDetector.DEFAULT_COMPONENT_WEIGHTS))
    want = [c.frame_num for i, f in enumerate(frames) for c in stock.process_frame(FrameTimecode(i, fps=Fraction(25)), f)]
    assert len(want) >= 4, want
    for trial in range(3):
        fast = detectors(settings, Fraction(25))[0]
        if weights is not None:
            fast._weights = weights
        got, k = [], 0
        while k < len(frames):
            for _ in range(int(rng.integers(1, 6))):  # a block: 1 to 5 batches of 1 to 40 frames
                n = min(int(rng.integers(1, 41)), len(frames) - k)
                if n == 0:
                    break
                fast.score(list(range(k, k + n)), frames[k:k + n])
                k += n
            got += fast.cuts()
        assert got == want, (kind, trial)
    assert fast.cuts() == []


def test_scan_blocks_hands_over_scan_batches_frames_a_block_at_a_time(multi_shot, monkeypatch):
    """``scan_blocks``: every frame of a block decoded before its batches are handed over; the batches are
    ``scan_batches``' (indices and frames), for any block size, a range, every ``decode.shrink``; a block
    holds at most ``BLOCK_BYTES`` of small frames; a block's batches read after the next block was
    decoded raise instead of handing over overwritten frames."""
    _, path = multi_shot
    for shrink in shots_shrink.SHRINKS:
        for start, end in ((0, None), (37, 301)):
            info = shots_decode.open_video(path)
            try:
                want = [(i, f.copy()) for i, f in shots_decode.scan_batches(info, 160, start, end, shrink=shrink,
                                                                             batch=16)]
            finally:
                info.close()
            for block in (16, 40, 64, 1000):
                info = shots_decode.open_video(path)
                decoded = []
                try:
                    got = []
                    for batches in shots_decode.scan_blocks(info, 160, start, end, shrink=shrink, batch=16,
                                                            block=block):
                        decoded.append(info.decoded)
                        got += [(i, f.copy()) for i, f in batches]
                finally:
                    info.close()
                assert [i for i, _ in got] == [i for i, _ in want], (shrink, block)
                assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want, strict=True)), (shrink, block)
                per = min(-(-block // 16), shots_decode.BLOCK_BYTES // (16 * 160 * 90 * 3)) * 16  # whole batches, capped
                total = sum(len(i) for i, _ in got)
                assert decoded == [min(per * (k + 1), total) for k in range(-(-total // per))], (shrink, block)
    monkeypatch.setattr(shots_decode, "BLOCK_BYTES", 3 * 16 * 160 * 90 * 3)  # 3 batches of 160x90 BGR
    info = shots_decode.open_video(path)
    try:
        decoded = [info.decoded for _ in shots_decode.scan_blocks(info, 160, batch=16, block=1000)]
    finally:
        info.close()
    assert decoded[:2] == [48, 96]  # what fits in BLOCK_BYTES: 3 batches a block
    info = shots_decode.open_video(path)
    try:
        blocks = shots_decode.scan_blocks(info, 160, batch=8, block=16)
        first = next(blocks)
        next(first)
        next(blocks)  # the next block decoded over the first one's small pictures
        with pytest.raises(RuntimeError, match="after the next block"):
            next(first)
    finally:
        info.close()


def test_frames_held_before_the_shrink_change_no_frame(multi_shot, monkeypatch):
    """``scan_blocks`` shrinks the decoded frames ``held_frames`` at a time: the same frames and indices
    whatever the number held (one, a few, more than a batch), over a whole video, a range and skipped
    frames, in every ``decode.shrink`` mode; large frames are held fewer at a time (``HOLD_BYTES``)."""
    _, path = multi_shot
    monkeypatch.setattr(shots_decode, "HOLD_FROM_BYTES", 0)  # held at this video's size too (320x180)
    for shrink in shots_shrink.SHRINKS:
        for start, end, skip in ((0, None, "none"), (37, 301, "none"), (0, None, "nonref")):
            got = {}
            for hold in (1, 3, 4, 40):
                monkeypatch.setattr(shots_decode, "HOLD", hold)
                assert shots_decode.held_frames(320, 180) == hold
                info = shots_decode.open_video(path)
                try:
                    got[hold] = [(i, f.copy()) for batches in shots_decode.scan_blocks(
                        info, 160, start, end, skip, shrink=shrink, batch=16, block=32) for i, f in batches]
                finally:
                    info.close()
            want = got[1]
            assert len(want) > 3, (shrink, start, skip)
            for hold, frames in got.items():
                assert [i for i, _ in frames] == [i for i, _ in want], (shrink, start, skip, hold)
                assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(frames, want, strict=True)), \
                    (shrink, start, skip, hold)
    monkeypatch.setattr(shots_decode, "HOLD", 4)
    monkeypatch.setattr(shots_decode, "HOLD_FROM_BYTES", 512 << 10)
    monkeypatch.setattr(shots_decode, "HOLD_BYTES", 8 << 20)
    assert shots_decode.held_frames(640, 360) == 1  # 0.35 MB a frame: shrunk at once
    assert shots_decode.held_frames(960, 540) == 4  # 0.78 MB
    assert shots_decode.held_frames(1280, 720) == 4  # 1.4 MB
    assert shots_decode.held_frames(1920, 1080) == 2  # 3.1 MB
    assert shots_decode.held_frames(3840, 2160) == 1  # 12.4 MB: never fewer than one


def test_the_block_and_batch_sizes_change_no_boundary(multi_shot, monkeypatch):
    """``detect_boundaries`` decodes ``BLOCK`` frames before analysing them ``BATCH`` at a time: any sizes
    give the same boundaries (a cut, fades, dissolves), with a range and with skipped frames too."""
    _, path = multi_shot
    for params, start, end in (({}, 0, None), ({}, 101, 555), ({"decode": {"skip": "nonref"}}, 0, None)):
        got = {}
        for batch, block in ((32, 32), (16, 64), (7, 96), (16, 256), (8, 4096)):
            monkeypatch.setattr(shots, "BATCH", batch)
            monkeypatch.setattr(shots, "BLOCK", block)
            got[batch, block] = shots.detect_boundaries(path, params, start, end)
        assert len({repr(d) for d in got.values()}) == 1, (params, start)
        assert len(got[16, 256].boundaries) >= 3


@pytest.mark.parametrize("path", [BIKES, None])
def test_shrinking_the_planes_is_close_to_swscale(multi_shot, path):
    """``decode.shrink = planes``: the decoded planes shrunk in place give frames of the same size whose
    block means are within a few levels of swscale's (the default's)."""
    from vidcap.shots.detectors import thumbnails

    path = path or multi_shot[1]
    out = {}
    for shrink in ("planes", "swscale"):
        info = shots_decode.open_video(path)
        try:
            batches = list(shots_decode.scan_batches(info, 160, shrink=shrink, batch=32))
        finally:
            info.close()
        assert all(len(i) == len(f) for i, f in batches) and len(batches[-1][0]) <= 32
        out[shrink] = np.concatenate([f for _, f in batches])
        assert [i for b, _ in batches for i in b] == list(range(len(out[shrink])))
    a, b = out["planes"], out["swscale"]
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    assert np.abs(thumbnails(a) - thumbnails(b)).mean() < 2.0
    with pytest.raises(ValueError, match="shrink"):
        next(shots_decode.scan_batches(shots_decode.open_video(path), shrink="area"))
    if path == BIKES:  # the default (swscale) finds its five cuts; planes misses the borderline one at 76
        # (AdaptiveDetector's ratio 2.96 there against 3.11 with swscale, threshold 3)
        det = shots.detect_boundaries(BIKES, {"decode": {"shrink": "planes"}})
        assert set(BIKES_CUTS) - {b.cut for b in det.boundaries} <= {76}


def test_spread_shrinks_every_other_row_pair_through_the_decoder():
    """``decode.shrink = spread``: each decoded plane is read through a view of every ``step``-th row
    (bikes.mp4: 640x272, analysis 160x68, so ``step`` 2 from row 1) and shrunk bilinearly; the frames are
    exactly those planes converted by swscale, and the five cuts are found."""
    import cv2

    info = shots_decode.open_video(BIKES)
    try:
        idx, got = next(shots_decode.scan_batches(info, 160, shrink="spread", batch=8))
    finally:
        info.close()
    assert idx == list(range(8)) and got.shape == (8, 68, 160, 3)
    convert = av.video.reformatter.VideoReformatter().reformat
    with av.open(str(BIKES)) as c:
        stream = c.streams.video[0]
        stream.codec_context.options = {"skip_loop_filter": "all"}  # as vidcap decodes (decode.fast)
        for k, frame in zip(range(8), c.decode(stream), strict=False):
            small = av.VideoFrame(160, 68, "yuv420p")
            for src, dst in zip(frame.planes, small.planes, strict=True):
                rows = shots_shrink.plane_rows(src)[:, :src.width]
                out = shots_shrink.plane_rows(dst)[:, :dst.width]
                cv2.resize(rows[1::2], (out.shape[1], out.shape[0]), dst=out, interpolation=cv2.INTER_LINEAR)
            want = convert(small, format="bgr24", threads=1).to_ndarray()
            assert np.array_equal(got[k], want), k
    det = shots.detect_boundaries(BIKES, {"decode": {"shrink": "spread"}})
    assert [b.cut for b in det.boundaries] == BIKES_CUTS


def test_detection_keeps_its_batch_memory_instead_of_faulting_it_in_every_batch():
    """Every batch allocates and frees the same megabytes (its small BGR frames, their HSV copy). With
    glibc's defaults they went back to the system after each batch and were page-faulted in (and
    zeroed) again, a few faults per frame, a cost no instruction count of the process shows
    (bench/shots/README.md, seventh round). ``scan_batches`` sets the allocator to keep freed memory
    (``vidcap.media.allocator``): a run after the first faults in next to nothing."""
    assert allocator.keep_freed_memory(), "glibc's mallopt refused the thresholds"
    for shrink in shots_shrink.SHRINKS:
        shots.detect_boundaries(BIKES, {"decode": {"shrink": shrink}})  # the memory the next run reuses
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        det = shots.detect_boundaries(BIKES, {"decode": {"shrink": shrink}})
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        assert det.frames_seen == 250
        assert faults < 0.2 * det.frames_seen, (shrink, faults)


def test_the_knobs_that_move_boundaries_rerun_the_shots_stage_and_the_others_do_not():
    """A journal fingerprint covers what changes the clips: ``decode.shrink`` (it moves some boundaries by a
    frame or two) and ``decode.skip``; the decoder's device, threads and deblocking do not."""
    from vidcap.stages import get_stage

    base = get_stage("shots", {"enabled": True}).fingerprint()
    for change in ({"shrink": "swscale"}, {"shrink": "planes"}, {"skip": "nonref"}):
        assert get_stage("shots", {"enabled": True, "decode": change}).fingerprint() != base, change
    for same in ({"shrink": "spread"}, {"hwaccel": "cuda"}, {"threads": 2}, {"fast": False}):
        assert get_stage("shots", {"enabled": True, "decode": same}).fingerprint() == base, same


def test_the_step_bench_splits_the_cost_above_the_floor_on_any_video():
    """``bench/shots/steps.py`` (where the defaults' cost above the decode floor goes, per step, in the
    pipeline and alone) runs end to end on a given video and prints every step and the three ratios."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "bench/shots/steps.py", "--video", str(BIKES), "--rounds", "1"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    for step in ("shrink", "batch to BGR", "thumbnails", "hard-cut scores", "fades", "dissolves", "flash check"):
        in_pipeline, alone = (float(x) for x in rows[step].split("|")[2:4])
        assert in_pipeline >= 0 and alone >= 0 and (step != "shrink" or min(in_pipeline, alone) > 0)
    assert "x the decode floor" in done.stdout and "x the read floor" in done.stdout


def test_the_row_bench_measures_short_clips_and_ranges_of_any_video(tmp_path):
    """``bench/shots/rows.py`` (one shots source row on short inputs against their decode floor) runs end
    to end on a given video: a clip cut from its start and a range of it, each with its floor and A/A."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "bench/shots/rows.py", "--video", str(BIKES), "--seconds", "2",
                           "--rounds", "1", "--out", str(tmp_path)], cwd=root, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    kinds = {r[0].strip(): r for r in rows[1:]}
    assert set(kinds) == {"clip, 272p", "range in a 272p video, ranges: detect"}, done.stdout
    for r in kinds.values():
        floor, stage = float(r[3]), float(r[4])
        assert r[1].strip() == "2 s" and r[2].strip() == "1" and floor > 0 and stage > 0  # no timing asserted
    assert (tmp_path / "rows" / "video_2s_bikes.mp4").is_file()
