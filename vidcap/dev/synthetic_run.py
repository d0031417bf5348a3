"""A synthetic finished run for merge tests and benchmarks: a manifest of ``rows`` missing files,
sharded by the real sharder, and per shard the stage outputs of realistic width that a run of probe,
motion and caption would leave (a ``caption_chars``-character caption, the probe's and motion's
columns), in each shard's own row order shuffled as a stage job may write them. Every ``dup_every``-th
row repeats an earlier caption (``caption_duplicate`` has work to do); one shard's ``fps`` is all null
(the merge must still give every part one schema). Nothing is decoded; it takes seconds per million rows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vidcap.io.run_dir import RunDir
from vidcap.io.shards import ROW_ID, make_shards

STAGES = ("probe", "caption", "motion")
_WORDS = ("a", "person", "walks", "along", "the", "beach", "while", "waves", "roll", "in", "slowly", "camera",
          "pans", "left", "sunset", "light", "warm", "city", "street", "at", "night", "with", "cars")


def _captions(start: int, n: int, chars: int, dup_every: int) -> pa.Array:
    words = np.array(_WORDS)
    rng = np.random.default_rng(0)
    pool = pa.array([" ".join(words[rng.integers(0, len(words), chars // 4)]) for _ in range(1024)])
    idx = np.arange(start, start + n)
    seed = np.where(idx % dup_every == 0, idx // (dup_every * 7), idx)   # repeats of earlier captions
    text = pc.binary_join_element_wise(pa.array(seed).cast(pa.string()), pool.take(pa.array(seed % 1024)), " ")
    return pc.utf8_slice_codeunits(text, 0, chars)


def make_synthetic_run(where: str | Path, rows: int, shard_size: int, name: str = "syn",
                       caption_chars: int = 400, dup_every: int = 10) -> RunDir:
    where = Path(where)
    where.mkdir(parents=True, exist_ok=True)
    manifest = where / "manifest.parquet"
    with pq.ParquetWriter(manifest, pa.schema([("path", pa.string()), ("category", pa.string())])) as w:
        for lo in range(0, rows, 1_000_000):
            hi = min(rows, lo + 1_000_000)
            w.write_table(pa.table({"path": [f"videos/{i:09d}.mp4" for i in range(lo, hi)],
                                    "category": [("nature", "city", "people")[i % 3] for i in range(lo, hi)]}))
    run = RunDir(where / "results", name)
    make_shards(manifest, run.shards_dir, shard_size)
    start = 0
    for k, shard in enumerate(run.shard_names()):
        ids = pq.read_table(run.shard(shard), columns=[ROW_ID]).column(ROW_ID).combine_chunks()
        n = len(ids)
        rng = np.random.default_rng(k)
        ids = ids.take(pa.array(rng.permutation(n)))
        failed = pc.if_else(pa.array(np.arange(n) % 50 == 0),
                            pa.scalar("FileNotFoundError: no such file videos/x.mp4"), pa.scalar(None, pa.string()))
        fps = pa.nulls(n, pa.float64()) if k == 1 else pa.array(rng.choice([24.0, 25.0, 30.0], n))
        outputs = {
            "probe": {"num_frames": pa.array(rng.integers(48, 900, n)), "fps": fps,
                      "width": pa.array(rng.choice([640, 1280, 1920], n)), "height": pa.array(rng.choice([360, 720, 1080], n)),
                      "duration": pa.array(rng.random(n) * 30), "codec": pa.array(np.full(n, "h264")),
                      "probe_error": failed},
            "caption": {"text": _captions(start, n, caption_chars, dup_every), "caption_model": pa.array(np.full(n, "m")),
                        "caption_error": pa.nulls(n, pa.string())},
            "motion": {"cmotion": pa.array(rng.choice(["static", "pan_left", "zoom_in", "unclassified"], n)),
                       "motion_score": pa.array(rng.random(n)), "motion_error": pa.nulls(n, pa.string())},
        }
        for stage, cols in outputs.items():
            out = run.output(stage, shard)
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({ROW_ID: ids, **cols}), out)
        start += n
    return run
