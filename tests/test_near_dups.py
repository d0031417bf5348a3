"""Near-duplicate rows (``stages.scores.near_duplicates``): the clustered search against an exact search
over every earlier row, and the workflow end to end with a tiny random CLIP: copies of a clip (another
path, the same path twice, in other shards) point at the first one, the embeddings stay out of the
merged table unless kept, a new threshold reruns only the merge, and the filter keeps one of each."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.helpers import run_snakemake, write_config
from vidcap.dev import synth
from vidcap.io.tables import write_table
from vidcap.merge.near_dups import NearDuplicates


def _exact(x: np.ndarray, threshold: float, missing: int) -> list[tuple[int, float] | None]:
    """Per row, the most similar earlier row at or above ``threshold`` (earliest on ties), by brute force;
    row ``missing`` has no embedding."""
    xh = x.astype(np.float16).astype(np.float32)
    xh /= np.linalg.norm(xh, axis=1, keepdims=True)
    xh[missing] = 0
    out: list[tuple[int, float] | None] = [None]
    for r in range(1, len(x)):
        sims = xh[:r] @ xh[r]
        b = int(sims.argmax())
        out.append((b, float(sims[b])) if r != missing and sims[b] >= threshold else None)
    return out


def _embeddings(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(40, dim))
    x = topics[rng.integers(0, 40, n)] + rng.normal(scale=0.6, size=(n, dim))
    src, dst = rng.integers(0, n // 2, n // 8), rng.integers(n // 2, n, n // 8)
    x[dst] = x[src] + rng.normal(scale=0.05, size=(len(dst), dim))    # near copies, cosine ~0.99
    x[n - 3] = x[n - 5] = x[7]                                           # exact copies: ties go to the earliest
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("probes", [1, 3])
def test_clustered_search_finds_what_an_exact_search_finds(tmp_path, probes):
    n, dim, threshold = 3000, 24, 0.97
    x = _embeddings(n, dim, seed=probes)
    emb = pa.array([list(v) for v in x], pa.list_(pa.float32()))
    emb = pa.concat_arrays([emb.slice(0, 10), pa.nulls(1, emb.type), emb.slice(11)])   # row 10 has none
    ids = pa.array([f"r{i}" for i in range(n)])
    near = NearDuplicates(tmp_path / "w", n, threshold, probes=probes, rows_per_cluster=100)
    for lo in range(0, n, 700):                     # shards of 700 rows, in order
        near.sample(emb.slice(lo, 700))
    near.train()
    for lo in range(0, n, 700):
        near.add(emb.slice(lo, 700), ids.slice(lo, 700))
    found = near.finish()
    of, sim = [], []
    for lo in range(0, n, 700):                     # read back part by part
        a, b = near.columns(lo, min(700, n - lo))
        of += a.to_pylist()
        sim += b.to_pylist()
    near.close()
    assert not (tmp_path / "w").exists()
    truth = _exact(x, threshold, missing=10)   # no embedding: never a duplicate, never an original
    assert of[10] is None
    want = {i: t for i, t in enumerate(truth) if t is not None}
    got = {i: (int(o[1:]), s) for i, (o, s) in enumerate(zip(of, sim)) if o is not None}
    assert found == len(got) and len(want) > n // 10
    assert set(got) <= set(want), "every reported pair is at or above the threshold"
    recall = len(got) / len(want)
    assert recall >= (0.97 if probes == 1 else 0.999), recall
    for i, (j, s) in got.items():
        assert s == pytest.approx(want[i][1], abs=1e-5)
        assert j < i and (j == want[i][0] or s == pytest.approx(want[i][1], abs=1e-6))
    assert got[n - 5][0] == 7 and got[n - 3][0] == 7, "exact copies point at the earliest copy"


def _vidcap(*args):
    return subprocess.run([sys.executable, "-m", "vidcap", *args], capture_output=True, text=True)


@pytest.mark.e2e
def test_near_duplicates_through_the_workflow(tmp_path):
    from vidcap.dev.tiny.clip import tiny_clip

    media = tmp_path / "media"
    media.mkdir()
    for i in range(3):
        tex = synth.texture(96, 128, seed=i)
        synth.write_video(media / f"v{i}.mp4", num_frames=12, width=128, height=96, fps=12, frames=lambda k, t=tex: t)
    shutil.copy(media / "v0.mp4", media / "copy_of_v0.mp4")
    paths = ["v0.mp4", "v1.mp4", "copy_of_v0.mp4", "v2.mp4", "v0.mp4"]   # a copy and the same path again
    write_table(pd.DataFrame({"path": paths}), media / "m.csv")
    folder, _ = tiny_clip()
    # a random tiny CLIP puts different textures at cosine 0.95-0.995 (tests/test_scores.py), so the
    # threshold here is above that; real CLIP ViT-L/14 uses Open-Sora's 0.98
    near = {"enabled": True, "threshold": 0.999}
    stages = {"scores": {"enabled": True, "near_duplicates": near, "clip": {"model": str(folder), "device": "cpu"}},
              "probe": {"enabled": False}, "motion": {"enabled": False}, "clean": {"enabled": False}}
    cfg = write_config(tmp_path, name="n", manifest=str(media / "m.csv"), shard_size=2, report={"enabled": False},
                       stages=stages)
    run_snakemake(tmp_path, cfg, timeout=300)
    out = pd.read_parquet(tmp_path / "results" / "n.parquet")
    assert list(out["path"]) == paths
    summary = json.loads((tmp_path / "results" / "n.summary.json").read_text())
    assert summary["near_duplicate_sim"]["count"] == 2, "the summary counts the rows marked"
    first = out.loc[0, "row_id"]
    assert list(out["near_duplicate_of"].isna()) == [True, True, False, True, False]
    assert out.loc[2, "near_duplicate_of"] == first and out.loc[4, "near_duplicate_of"] == first
    assert out.loc[2, "near_duplicate_sim"] == pytest.approx(1.0, abs=1e-3)
    assert "clip_embedding" not in out.columns, "the embeddings are the merge's input, not its output"
    parts = pd.read_parquet(tmp_path / "results" / "n" / "table")
    assert list(parts["near_duplicate_of"].fillna("")) == list(out["near_duplicate_of"].fillna(""))

    # the merge's settings do not rerun the stage: only the merge runs again
    scores_dir = tmp_path / "results" / "n" / "stages" / "scores"
    before = {p.name: p.stat().st_mtime_ns for p in scores_dir.glob("*.parquet")}
    assert before
    near.update(threshold=0.5, keep_embeddings=True)
    cfg = write_config(tmp_path, name="n", manifest=str(media / "m.csv"), shard_size=2, report={"enabled": False},
                       stages=stages)
    run_snakemake(tmp_path, cfg, timeout=300)
    assert {p.name: p.stat().st_mtime_ns for p in scores_dir.glob("*.parquet")} == before
    out = pd.read_parquet(tmp_path / "results" / "n.parquet")
    assert out["near_duplicate_of"].notna().sum() == 4, "at 0.5 every later clip is close to an earlier one"
    assert len(out.loc[0, "clip_embedding"]) == 32, "kept on request (the tiny CLIP's projection width)"

    kept = tmp_path / "kept.parquet"
    proc = _vidcap("filter", str(tmp_path / "results" / "n"), "-o", str(kept), "--where", "near_duplicate_of is null")
    assert proc.returncode == 0, proc.stderr
    assert [p.rsplit("/", 1)[-1] for p in pd.read_parquet(kept)["path"]] == ["v0.mp4"]
