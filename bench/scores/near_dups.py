"""Near-duplicate search (``vidcap.merge.near_dups``) against an exact search, and its memory at 1 M rows.

    .venv/bin/python bench/scores/near_dups.py                  # recall vs exact (20,000 rows) + 1 M rows
    .venv/bin/python bench/scores/near_dups.py --big 0          # recall only

Embeddings: a frozen generator (seeded, streamed in batches, so 1 M rows never sit in memory): 768-wide
unit vectors (CLIP ViT-L/14's width) around 2,000 topics, whose members sit at cosine ~0.5-0.8 with each
other (the spread of CLIP image embeddings of unrelated clips); 8 % of rows are near copies of an
earlier row (cosine 0.97-1.0 uniform: re-encodes, crops, subtitles), 4 % hard negatives of an earlier row
(0.95-0.98: the same scene, another shot), 2 % one static blob (black frames, title cards: many rows
within 0.99 of each other). The threshold is Open-Sora's 0.98. Truth: the exact search (every earlier
row) on the first ``--rows`` rows. What it does not cover: real CLIP embeddings, whose clusters are not
Gaussian.

Prints, in one run: recall and time of the clustered search per ``probes`` against the exact search
(precision is 1 by construction: every reported similarity is computed), and the 1 M-row run's time and
peak resident memory in a child process.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from vidcap.merge.near_dups import NearDuplicates

DIM, TOPICS, BATCH, SEED = 768, 2000, 10_000, 20261204
THRESHOLD = 0.98


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _at_cosine(base: np.ndarray, cos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors at exactly cosine ``cos`` from the unit rows of ``base``."""
    noise = rng.normal(size=base.shape)
    noise -= (noise * base).sum(axis=1, keepdims=True) * base
    noise = _unit(noise)
    return cos[:, None] * base + np.sqrt(1 - cos[:, None] ** 2) * noise


def batches(rows: int):
    """The frozen generator: (batch of float32 unit rows, kind per row) in manifest order."""
    rng = np.random.default_rng(SEED)
    common = _unit(rng.normal(size=DIM))
    topics = _unit(0.6 * common + _unit(rng.normal(size=(TOPICS, DIM))) * 0.8)
    blob = _unit(rng.normal(size=DIM))
    recent = np.zeros((0, DIM))
    for lo in range(0, rows, BATCH):
        n = min(BATCH, rows - lo)
        brng = np.random.default_rng([SEED, lo])
        x = _unit(topics[brng.integers(0, TOPICS, n)] + brng.normal(scale=0.9 / np.sqrt(DIM) * 1.0, size=(n, DIM)))
        kind = np.zeros(n, np.int8)
        pool = np.concatenate([recent, x[: n // 2]])
        r = brng.random(n)
        copy = (r < 0.08) & (np.arange(n) >= n // 2)
        hard = (r >= 0.08) & (r < 0.12) & (np.arange(n) >= n // 2)
        blobs = (r >= 0.12) & (r < 0.14)
        if copy.any():
            x[copy] = _at_cosine(pool[brng.integers(0, len(pool), copy.sum())], brng.uniform(0.97, 1.0, copy.sum()), brng)
        if hard.any():
            x[hard] = _at_cosine(pool[brng.integers(0, len(pool), hard.sum())], brng.uniform(0.95, 0.98, hard.sum()), brng)
        x[blobs] = _at_cosine(np.repeat(blob[None], blobs.sum(), 0), brng.uniform(0.99, 1.0, blobs.sum()), brng)
        kind[copy], kind[hard], kind[blobs] = 1, 2, 3
        recent = x[-2000:]
        yield x.astype(np.float32), kind


def _arrow(x: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), DIM).cast(pa.list_(pa.float32()))


def clustered(rows: int, probes: int, workdir: Path) -> tuple[list, float]:
    t0 = time.monotonic()
    near = NearDuplicates(workdir, rows, THRESHOLD, probes=probes)
    for x, _ in batches(rows):
        near.sample(_arrow(x))
    near.train()
    at = 0
    for x, _ in batches(rows):
        near.add(_arrow(x), pa.array([str(i) for i in range(at, at + len(x))]))
        at += len(x)
    near.finish()
    out = []
    for lo in range(0, rows, BATCH):
        of, _ = near.columns(lo, min(BATCH, rows - lo))
        out += of.to_pylist()
    near.close()
    return out, time.monotonic() - t0


def exact(rows: int) -> tuple[np.ndarray, float]:
    """Per row: the exact best earlier row at or above the threshold, -1 when none (float16 as stored)."""
    t0 = time.monotonic()
    x = np.concatenate([b for b, _ in batches(rows)]).astype(np.float16).astype(np.float32)
    x = _unit(x)
    best = np.full(rows, -1)
    for lo in range(0, rows, 2000):
        sims = x[lo: lo + 2000] @ x[: lo + 2000].T
        sims[np.arange(sims.shape[0])[:, None] + lo <= np.arange(sims.shape[1])[None, :]] = -np.inf
        arg = sims.argmax(axis=1)
        ok = sims[np.arange(len(arg)), arg] >= THRESHOLD
        best[lo: lo + len(arg)][ok] = arg[ok]
    return best, time.monotonic() - t0


def big(rows: int) -> None:
    """Child process: the clustered search over ``rows`` rows; prints time and peak RSS."""
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1] / "out") as tmp:
        found, took = clustered(rows, 2, Path(tmp) / "near")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{rows} {sum(f is not None for f in found)} {took:.1f} {peak:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000, help="rows compared with the exact search")
    ap.add_argument("--big", type=int, default=1_000_000, help="rows of the memory run (0: none)")
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        big(args.child)
        return
    (Path(__file__).resolve().parents[1] / "out").mkdir(exist_ok=True)
    kinds = np.concatenate([k for _, k in batches(args.rows)])
    truth, exact_s = exact(args.rows)
    print(f"| search | rows | pairs >= {THRESHOLD} | found | recall | recall: near copies / blob | s |")
    print("|---|---:|---:|---:|---:|---|---:|")
    print(f"| exact (every earlier row, numpy) | {args.rows:,} | {(truth >= 0).sum():,} | {(truth >= 0).sum():,} "
          f"| 1.000 | 1.000 / 1.000 | {exact_s:.1f} |")
    for probes in (1, 2, 3):
        with tempfile.TemporaryDirectory() as tmp:
            found, took = clustered(args.rows, probes, Path(tmp) / "near")
        got = np.array([f is not None for f in found])
        want = truth >= 0
        assert not (got & ~want).any(), "a reported pair below the threshold"
        per = [(got & want & (kinds == k)).sum() / max(1, (want & (kinds == k)).sum()) for k in (1, 3)]
        print(f"| clustered, probes {probes} (rows_per_cluster 1000) | {args.rows:,} | {want.sum():,} | {got.sum():,} "
              f"| {got.sum() / max(1, want.sum()):.3f} | {per[0]:.3f} / {per[1]:.3f} | {took:.1f} |")
    if args.big:
        proc = subprocess.run([sys.executable, __file__, "--child", str(args.big)], capture_output=True, text=True,
                              check=True)
        rows, found_n, took, peak = proc.stdout.split()
        print(f"\n{int(rows):,} rows, clustered, probes 2: {int(found_n):,} near-duplicates marked, {float(took):.0f} s, "
              f"peak RSS {float(peak):,.0f} MB")


if __name__ == "__main__":
    main()
