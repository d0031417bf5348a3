"""The report's scores section (issue 27): each score's histogram, example frames of the rows at a few
quantiles and a ``vidcap filter`` line per score. A real Snakemake run over a few tiny synthetic clips
(one a ``start``/``end`` range of a longer file) with the scores stage on and the report at its end;
the quantile picker on its own."""
from __future__ import annotations

import base64
import html as htmllib
import re
import shlex
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from tests.helpers import run_snakemake, write_config
from vidcap.dev import synth
from vidcap.io.tables import write_table
from vidcap.scores.plan import NUMBERS
from vidcap.scores.report import SCORES, ScoresReport, quantile_rows, scores_section
from vidcap.stages import get_spec

W, H, N, FPS = 96, 72, 48, 24


# ------------------------------------------------------------------------------------------ units


def test_quantile_rows_picks_the_nearest_rows_and_ignores_nulls():
    values = pd.Series([None, 50.0, 10.0, np.nan, 30.0, 20.0, 40.0, None], dtype="float64[pyarrow]")
    got = quantile_rows(values)
    # non-null values 10..50 at positions 2, 5, 4, 6, 1: p5 = 12 -> 10, p25 = 20, p50 = 30, p75 = 40, p95 = 48 -> 50
    assert [(q, pos, v) for q, pos, v, _ in got] == [(0.05, 2, 10.0), (0.25, 5, 20.0), (0.5, 4, 30.0),
                                                     (0.75, 6, 40.0), (0.95, 1, 50.0)]
    assert [round(t, 6) for *_, t in got] == [12.0, 20.0, 30.0, 40.0, 48.0]
    # ties go to the first row in table order; text and nulls (object column) never count
    mixed = pd.Series(["x", None, 7, 3.0, float("inf"), 3.0], dtype=object)
    assert [pos for _, pos, _, _ in quantile_rows(mixed, (0.0, 0.5, 1.0))] == [3, 3, 2]
    assert quantile_rows(pd.Series([None, np.nan], dtype=object)) == []
    assert quantile_rows(pd.Series([], dtype="float64")) == []


def test_scores_part_gives_nothing_without_score_values():
    part = ScoresReport(get_spec("scores"))
    assert tuple(SCORES) == NUMBERS, "a unit and a filter direction for every numeric score column"
    assert part.plots({"rows": 3, "duration_s": {"count": 3, "histogram": [[1, 2, 3]]}}) == []
    df = pd.DataFrame({"path": ["a.mp4", "b.mp4"], "motion_flow": [None, None], "still": [None, None]})
    assert scores_section(df, {"rows": 2}, "/nowhere", {}) is None
    assert scores_section(pd.DataFrame({"path": ["a.mp4"]}), {"rows": 1}, "/nowhere", {}) is None
    # a table larger than the report's sample: the section says its quantiles are of the sample
    df = pd.DataFrame({"path": ["gone.mp4"] * 4, "row_id": list("abcd"), "brightness": [1.0, 2.0, None, 4.0]})
    data = scores_section(df, {"rows": 1000}, "/nowhere", {"thumbnails": 2})
    assert data["sampled"] and data["total"] == 1000 and data["rows"] == 4
    (col,) = data["columns"]
    assert col["column"] == "brightness" and col["count"] == 3
    assert '--where "1.1 <= brightness <= 3.8"' in col["command"]
    assert all(data["examples"][e["pos"]]["thumb_error"] for e in col["examples"]), "no file: an error, no stop"


# ------------------------------------------------------------------------------ through the workflow


def _clips(media):
    fast = synth.camera_frames(W, H, N, pan=1.0, seed=1)
    late = synth.camera_frames(W, H, N, pan=0.6, seed=4)
    clips = {   # five different speeds: five distinct motion_flow values
        "fast.mp4": fast,
        "slow.mp4": synth.camera_frames(W, H, N, pan=0.3, seed=2),
        "crawl.mp4": synth.camera_frames(W, H, N, pan=0.1, seed=3),
        "dark.mp4": lambda i: (fast(i) // 8).astype(np.uint8),
        # frames 0-23 still, 24-47 a pan: its row is the second second only
        "long.mp4": lambda i: late(24 if i < 24 else i),
    }
    for name, frames in clips.items():
        synth.write_video(media / name, num_frames=N, width=W, height=H, fps=FPS, frames=frames)
    synth.write_image(media / "photo.png", width=W, height=H)
    names = [*clips, "photo.png"]
    write_table(pd.DataFrame({"path": names, "start": ["", "", "", "", "1.0", ""], "end": ["", "", "", "", "2.0", ""]}),
                media / "m.csv")
    return media / "m.csv"


def _articles(page: str, score: str) -> list[str]:
    return re.findall(rf'<article class="item score" data-score="{score}">(.*?)</article>', page, re.S)


@pytest.mark.e2e
def test_scores_section_in_the_report_of_a_real_run(tmp_path):
    manifest = _clips(tmp_path / "media")
    cfg = write_config(tmp_path, name="s", manifest=str(manifest), report={"thumbnails": 2, "sample": 2, "worst": 0},
                       stages={"scores": {"enabled": True}, "motion": {"enabled": False},
                               "probe": {"enabled": False}, "clean": {"enabled": False}})
    run_snakemake(tmp_path, cfg, timeout=300)
    table = pd.read_parquet(tmp_path / "results" / "s.parquet")
    page = (tmp_path / "results" / "s.report.html").read_text(encoding="utf-8")

    assert '<a href="#scores">Scores</a>' in page and '<section id="scores">' in page
    # histograms (every row, from the summary) for the scores with values, a bar of `still`
    for col in ("motion_flow", "motion_mv", "laplacian_var", "brightness", "dark_share", "overexposed_share"):
        assert re.search(rf'<img src="data:image/svg\+xml;base64,[^"]+" alt="Score: {col}"', page), col
        assert f'<td class="l">{col}</td>' in page, f"{col} in the statistics table"
    assert 'alt="Score: still"' in page
    for col in ("aesthetic", "clip_match", "text_area"):   # off: all null, no plot and no examples
        assert f"Score: {col}" not in page and f'id="score-{col}"' not in page

    # motion_flow: the photo has none (null), so the five quantiles pick the five video rows in value order
    flow = table["motion_flow"].to_numpy(dtype=float)
    assert np.isnan(flow[5]) and len(set(flow[:5])) == 5
    examples = _articles(page, "motion_flow")
    picked = [re.search(r'<div class="path">[^ <]+ · (\S+)</div>', a).group(1) for a in examples]
    assert picked == list(table["path"].iloc[np.argsort(flow[:5])])
    assert [re.search(r"<b>(p\d+)</b>", a).group(1) for a in examples] == ["p5", "p25", "p50", "p75", "p95"]
    for art in examples:
        srcs = re.findall(r'<img src="data:image/jpeg;base64,([^"]+)" alt="frame (#\d+)', art)
        assert len(srcs) == 2, "two frames per example (report.thumbnails)"
        image = cv2.imdecode(np.frombuffer(base64.b64decode(srcs[0][0]), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[0] > 16, "a real decoded frame"
    # the ranged row's frames lie in its range (frames 24-47), where its scores were measured
    (long,) = [a for a in examples if "long.mp4" in a]
    assert all(24 <= int(i) < 48 for i in re.findall(r'alt="frame #(\d+)', long))
    assert "start–end range" in long
    value = table.loc[table["path"] == "fast.mp4", "motion_flow"].iloc[0]
    assert f"motion_flow = {value:,.3f}" in [htmllib.unescape(t) for t in re.findall(r"</b>: ([^<]+)</div>", page)]

    # `still`: one row per label; the photo is an `image`
    labels = {re.search(r"<b>(\w+)</b>", a).group(1) for a in _articles(page, "still")}
    assert labels == set(table["still"].dropna()) and "image" in labels

    # the filter line runs as printed and keeps the rows at or above p25
    line = htmllib.unescape(re.search(r"<code>(vidcap filter [^<]*motion_flow &gt;= [^<]*)</code>", page).group(1))
    args = shlex.split(line)
    assert args[:3] == ["vidcap", "filter", "results/s"] and args[3:5] == ["-o", "kept.parquet"]
    proc = subprocess.run([sys.executable, "-m", "vidcap", *args[1:]], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    kept = set(pd.read_parquet(tmp_path / "kept.parquet")["path"].str.rsplit("/", n=1).str[-1])
    p25 = np.quantile(flow[:5], 0.25)
    assert set(table["path"][flow >= p25]) == kept and len(kept) == 4, "p25 of five values is the second"
