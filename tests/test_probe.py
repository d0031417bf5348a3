import pytest

from tests.helpers import BAD
from vidcap.io.media_paths import resolve_media_path
from vidcap.probe.stage import ProbeStage


def probe(path):
    return ProbeStage().process([{"row_id": "r", "_media_path": path}])["r"]


def test_probe_good_media(bad_inputs):
    root, cases = bad_inputs
    expect = {
        "good_h264": (30, 160, 120, "h264", "video"),
        "one_frame": (1, 160, 120, "h264", "video"),
        "tiny_16": (8, 16, 16, "h264", "video"),
        "4k": (3, 3840, 2160, "h264", "video"),
        "vp9_webm": (20, 160, 120, "vp9", "video"),
        "mjpeg_avi": (20, 160, 120, "mjpeg", "video"),
        "image_png": (1, 160, 120, "png", "image"),
    }
    for case, (frames, w, h, codec, kind) in expect.items():
        info = probe(resolve_media_path(cases[case], str(root)))
        assert not isinstance(info, Exception), (case, info)
        assert (info["num_frames"], info["width"], info["height"], info["codec"], info["media_type"]) == \
            (frames, w, h, codec, kind), case
        assert info["aspect_ratio"] == pytest.approx(h / w)
        assert info["resolution"] == h * w
        if kind == "video":
            assert info["fps"] == pytest.approx(24.0)
            assert info["duration"] == pytest.approx(frames / 24.0, abs=0.05)


@pytest.mark.parametrize("case", sorted(BAD))
def test_probe_bad_media_gives_readable_error(bad_inputs, case):
    root, cases = bad_inputs
    err = probe(resolve_media_path(cases[case], str(root)))
    assert isinstance(err, Exception), err
    assert BAD[case] in str(err)
    assert len(str(err)) < 300 + len(str(cases[case]))
    if case != "empty_path":   # the error names the file, as motion_error does
        assert str(err).endswith(resolve_media_path(cases[case], str(root))), str(err)
