"""vidcap.media.frames: index math, every decoder on every codec (checked with synth.read_index), failures."""
from __future__ import annotations

import numpy as np
import pytest

from vidcap.dev import synth
from vidcap.errors import FrameError, StageRowError
from vidcap.media import decoders
from vidcap.media import frames as F
from vidcap.media.frames import frame_indices, sample_frames

W, H, N, FPS = 192, 144, 48, 24  # small clips: index blocks are 12 px


# ------------------------------------------------------------------------------------------ index math


@pytest.mark.parametrize(
    "n, total, expected",
    [(1, 100, [50]), (2, 100, [25, 75]), (3, 100, [10, 50, 90]), (3, 64, [6, 32, 57])],
)
def test_uniform_open_sora_fractions(n, total, expected):
    assert frame_indices(total, n, "uniform") == expected


def test_uniform_linspace_for_four_and_more():
    assert frame_indices(100, 4, "uniform") == [0, 33, 66, 99]
    assert frame_indices(11, 6, "uniform") == [0, 2, 4, 6, 8, 10]
    assert frame_indices(3, 5, "uniform") == [0, 0, 1, 2, 2]  # short clip: duplicates, never out of range


def test_segment_pllava_exact_case():
    assert frame_indices(101, 4, "segment") == [12, 37, 62, 87]
    assert frame_indices(9, 2, "segment") == [2, 6]


def test_fps_one_per_second_and_cap():
    assert frame_indices(100, 8, "fps", fps=25.0) == [0, 25, 50, 75]
    assert frame_indices(91, 8, "fps", fps=29.97) == [0, 30, 60, 90]
    # more seconds than num_frames: num_frames evenly spaced (LLaVA-NeXT-Video: linspace, dtype=int)
    assert frame_indices(300, 4, "fps", fps=30.0) == [0, 99, 199, 299]
    assert frame_indices(10, 4, "fps", fps=30.0) == [0]
    with pytest.raises(ValueError, match="fps"):
        frame_indices(100, 4, "fps")


def test_single_first_middle_last():
    assert frame_indices(10, 99, "single", single="first") == [0]
    assert frame_indices(10, 99, "single", single="middle") == [5]
    assert frame_indices(10, 99, "single", single="last") == [9]


@pytest.mark.parametrize("policy", F.POLICIES)
def test_one_frame_source_gives_zeros(policy):
    want = 1 if policy in ("single", "fps") else 4
    assert frame_indices(1, 4, policy, fps=30.0) == [0] * want


def test_bad_arguments_name_allowed_values(tmp_path):
    with pytest.raises(ValueError, match="uniform, segment, fps, single"):
        frame_indices(10, 4, "random")
    with pytest.raises(ValueError, match="first, middle, last"):
        frame_indices(10, 1, "single", single="centre")
    with pytest.raises(ValueError, match=">= 1"):
        frame_indices(0, 4)
    clip = synth.write_video(tmp_path / "c.mp4", num_frames=8, width=W, height=H)
    with pytest.raises(ValueError, match="pyav, decord, opencv"):
        sample_frames(clip, decoder="ffmpeg")
    with pytest.raises(ValueError, match="uniform, segment, fps, single"):
        sample_frames(clip, policy="dense")
    with pytest.raises(ValueError, match="first, middle, last"):
        sample_frames(clip, policy="single", single="mid")


def test_media_type():
    assert F.media_type("a/b.JPG") == "image"
    assert F.media_type("x.webp") == "image"
    assert F.media_type("x.mkv") == "video"
    assert F.DEFAULT_DECODER in F.DECODERS


# --------------------------------------------------------------------------------------------- decoding

CLIP_SPECS = {"h264": "mp4", "vp9": "webm", "mjpeg": "avi"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {c: synth.write_video(root / f"clip_{c}.{ext}", num_frames=N, width=W, height=H, fps=FPS, codec=c)
            for c, ext in CLIP_SPECS.items()}


@pytest.mark.parametrize("codec", list(CLIP_SPECS))
@pytest.mark.parametrize("decoder", F.DECODERS)
def test_every_decoder_returns_requested_indices(clips, codec, decoder):
    for policy, n in [("uniform", 4), ("uniform", 3), ("segment", 5), ("fps", 8), ("single", 1)]:
        r = sample_frames(clips[codec], n, policy, decoder=decoder)
        assert r.indices == frame_indices(N, n, policy, fps=FPS)
        assert [synth.read_index(f) for f in r.frames] == r.indices, (policy, n)
        assert r.frames.shape == (len(r.indices), H, W, 3) and r.frames.dtype == np.uint8
        assert r.total_frames == N and r.fps == pytest.approx(FPS)
        assert (r.width, r.height, r.media_type) == (W, H, "video")
        assert r.timestamps == pytest.approx([i / FPS for i in r.indices])


@pytest.mark.parametrize("codec", list(CLIP_SPECS))
@pytest.mark.parametrize("resize_short", [None, 72])
def test_decoders_agree_on_pixels(clips, codec, resize_short):
    out = {d: sample_frames(clips[codec], 4, "segment", decoder=d, resize_short=resize_short) for d in F.DECODERS}
    ref = out["pyav"].frames.astype(np.int16)
    for d, r in out.items():
        assert r.indices == out["pyav"].indices and r.frames.shape == ref.shape
        # PyAV resizes in swscale (YUV, area), the others with cv2 INTER_AREA on RGB: close, not equal
        assert np.abs(r.frames.astype(np.int16) - ref).mean() < (3.0 if resize_short is None else 6.0), d


def test_seek_strategies_agree(tmp_path, monkeypatch):
    """Long-ish clip with 1 s GOPs: sequential, always-seek and auto give the same frames."""
    clip = synth.write_video(tmp_path / "long.mp4", num_frames=240, width=W, height=H, fps=FPS)
    got = {}
    for mode in ("never", "always", "auto"):
        monkeypatch.setattr(decoders, "PYAV_SEEK", mode)
        r = sample_frames(clip, 5, "uniform", decoder="pyav")
        assert r.indices == frame_indices(240, 5) and [synth.read_index(f) for f in r.frames] == r.indices
        got[mode] = r.frames
    monkeypatch.setattr(decoders, "OPENCV_SEEK_GAP_S", 0.0)
    r = sample_frames(clip, 5, "uniform", decoder="opencv")
    assert [synth.read_index(f) for f in r.frames] == r.indices
    assert np.array_equal(got["never"], got["always"]) and np.array_equal(got["never"], got["auto"])


@pytest.mark.parametrize("decoder", F.DECODERS)
def test_resize_short_only_shrinks_and_keeps_aspect(clips, decoder):
    r = sample_frames(clips["h264"], 2, resize_short=72, decoder=decoder)
    assert r.frames.shape == (2, 72, 96, 3)
    assert (r.width, r.height) == (W, H)  # source size
    assert [synth.read_index(f) for f in r.frames] == r.indices
    big = sample_frames(clips["h264"], 2, resize_short=500, decoder=decoder)  # never upscale
    assert big.frames.shape == (2, H, W, 3)


def test_resize_portrait(tmp_path):
    clip = synth.write_video(tmp_path / "tall.mp4", num_frames=6, width=96, height=192)
    r = sample_frames(clip, 1, resize_short=48)
    assert r.frames.shape == (1, 96, 48, 3)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".bmp"])
def test_images_are_one_frame_videos(tmp_path, ext):
    img = synth.write_image(tmp_path / f"still{ext}", width=W, height=H)
    r = sample_frames(img, 3)
    assert r.media_type == "image" and r.fps is None and r.total_frames == 1
    assert r.indices == [0, 0, 0] and r.timestamps == [0.0, 0.0, 0.0]
    assert r.frames.shape == (3, H, W, 3) and synth.read_index(r.frames[0]) == 0
    r = sample_frames(img, 4, resize_short=72)
    assert r.frames.shape == (4, 72, 96, 3) and (r.width, r.height) == (W, H)


def test_grayscale_image_becomes_rgb(tmp_path):
    from PIL import Image

    path = tmp_path / "g.pgm"
    Image.fromarray(np.full((20, 30), 77, np.uint8)).save(path)
    r = sample_frames(path, 1)
    assert r.frames.shape == (1, 20, 30, 3) and int(r.frames[0, 5, 5, 0]) == 77


@pytest.mark.parametrize("decoder", F.DECODERS)
def test_one_frame_video(tmp_path, decoder):
    clip = synth.write_video(tmp_path / "one.mp4", num_frames=1, width=W, height=H)
    r = sample_frames(clip, 4, decoder=decoder)
    assert r.total_frames == 1 and r.indices == [0, 0, 0, 0]
    assert [synth.read_index(f) for f in r.frames] == [0, 0, 0, 0]


@pytest.mark.parametrize("decoder", F.DECODERS)
def test_tiny_16x16_video(tmp_path, decoder):
    clip = synth.write_video(tmp_path / "tiny.mp4", num_frames=10, width=16, height=16)
    if decoder == "decord":  # decord 0.6.0 cannot copy frames this small: a FrameError, not a crash
        with pytest.raises(FrameError, match="cannot decode frames"):
            sample_frames(clip, 4, decoder=decoder)
        return
    r = sample_frames(clip, 4, decoder=decoder)
    assert r.frames.shape == (4, 16, 16, 3) and r.indices == [0, 3, 6, 9]
    frames_ref = sample_frames(clip, 4, decoder="pyav").frames.astype(int)
    assert np.abs(r.frames.astype(int) - frames_ref).mean() < 3.0


# --------------------------------------------------------------------------------------------- failures


def _bad_inputs(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    rng = np.random.default_rng(0)
    (tmp_path / "garbage.mkv").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (tmp_path / "garbage.jpg").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    synth.write_audio_only(tmp_path / "audio.mp4")
    (tmp_path / "folder.mp4").mkdir()
    return {
        "": "empty path",
        str(tmp_path / "missing.mp4"): "file not found",
        str(tmp_path / "folder.mp4"): "directory",
        str(tmp_path / "empty.mp4"): "empty file",
        str(tmp_path / "notes.mp4"): "not a readable video",
        str(tmp_path / "garbage.mkv"): "not a readable video",
        str(tmp_path / "garbage.jpg"): "not a readable image",
        str(tmp_path / "audio.mp4"): r"no video stream \(audio only\)",
    }


@pytest.mark.parametrize("decoder", F.DECODERS)
def test_bad_inputs_raise_readable_frame_error(tmp_path, decoder):
    for path, message in _bad_inputs(tmp_path).items():
        with pytest.raises(FrameError, match=message):
            sample_frames(path, 4, decoder=decoder)


def test_truncated_mp4_without_index_raises(tmp_path, clips):
    data = clips["h264"].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # moov atom is at the end: gone
    for decoder in F.DECODERS:
        with pytest.raises(FrameError, match="not a readable video"):
            sample_frames(tmp_path / "cut.mp4", decoder=decoder)


@pytest.mark.parametrize("decoder", F.DECODERS)
def test_truncated_avi_raises_instead_of_padding(tmp_path, clips, decoder):
    """The AVI header still says 48 frames; the last frames are gone: raise, never pad or substitute."""
    data = clips["mjpeg"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FrameError, match=r"cannot decode frame \d+ of 48.*truncated"):
        sample_frames(cut, 4, decoder=decoder)
    # frames that still decode can be requested
    r = sample_frames(cut, 1, "single", single="first", decoder=decoder)
    assert [synth.read_index(f) for f in r.frames] == [0]


@pytest.mark.parametrize("decoder", F.DECODERS)
def test_truncated_webm_samples_what_demuxes(tmp_path, clips, decoder):
    """WebM has no frame count in its header: the count is what demuxes, so sampling stays in range."""
    data = clips["vp9"].read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) * 3 // 4])
    r = sample_frames(cut, 4, decoder=decoder)
    assert 0 < r.total_frames < N
    assert [synth.read_index(f) for f in r.frames] == r.indices


@pytest.mark.parametrize("decoder", F.DECODERS)
def test_time_range_samples_inside_the_clip_only(tmp_path, decoder):
    """A row's [start, end) (a clip of a longer file): frames come from inside it, indices stay the file's."""
    clip = synth.write_video(tmp_path / "long.mp4", num_frames=48, width=W, height=H, fps=24)
    r = sample_frames(str(clip), 4, "uniform", decoder=decoder, time_range=(1.0, 1.5))   # frames 24..35
    assert r.indices == [24, 28, 31, 35]
    assert [synth.read_index(f) for f in r.frames] == r.indices
    assert r.timestamps[0] == pytest.approx(1.0)
    one = sample_frames(str(clip), 4, "uniform", decoder=decoder, time_range=(1.0, 1.04), unique=True)
    assert one.indices == [24], "a one-frame range gives one frame, never repeated"
    with pytest.raises(StageRowError, match="after the video's end"):
        sample_frames(str(clip), 4, "uniform", decoder=decoder, time_range=(5.0, None))
