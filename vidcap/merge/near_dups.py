"""``near_duplicate_of`` / ``near_duplicate_sim`` over a whole run, memory bounded by a cluster group.

A row's values: the ``row_id`` of the most similar **earlier** row (manifest order) whose embedding has
cosine similarity >= ``threshold`` with the row's, and that similarity; null when no earlier row is that
close, and for rows without an embedding (failed rows). Ties go to the earliest row. Keeping the rows
whose ``near_duplicate_of`` is null leaves no pair at or above the threshold (each kept row has no
such row anywhere before it); a row close only to a row that is itself a near-duplicate is dropped too.

Method (NeMo Curator's SemDeDup: cluster, then compare exactly within clusters):

1. ``sample`` (first pass over the run, manifest order): a systematic sample of the embeddings (every
   ``stride``-th row, at most ``SAMPLE_MAX``) for spherical k-means (faiss) with
   ``ceil(rows / rows_per_cluster)`` centroids, at least ``MIN_POINTS_PER_CENTROID`` sample points each.
2. ``add`` (second pass): each row goes to its ``probes`` nearest centroids (faiss flat inner-product
   search on the centroids); the first is the row's own cluster. Entries (cluster, ordinal, row id,
   own-cluster flag, the unit embedding in float16) go to one of ``GROUPS_MAX`` Arrow files on disk.
3. ``finish``: per group file, per cluster: every row that went to the cluster is compared (float32
   matrix product) with the cluster's own rows before it; the best match at or above the threshold
   is kept per row over its clusters. Results go to range files by ordinal (``OrdinalRanges``).
4. ``columns(start, n)``: the two columns of ordinals ``start`` .. ``start + n - 1``.

Exact for a pair whose earlier row's own cluster is among the later row's ``probes`` nearest
centroids; a pair split across clusters farther apart is missed (recall measured in
``bench/scores/README.md``). Precision is exact: every reported similarity is computed, not estimated.
Memory: the sample (``SAMPLE_MAX`` x dim float32), the centroids, one group file (about ``rows x probes
/ groups`` entries) and one query block against one cluster; disk: ``rows x probes x (2 dim + 40)`` bytes.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vidcap.merge.ordinals import KeyedStreams, OrdinalRanges

SAMPLE_MAX = 200_000
MIN_POINTS_PER_CENTROID = 39     # faiss warns below this many training points per centroid
GROUPS_MAX = 256
QUERY_BLOCK = 1024
BLOCK_VALUES = 1 << 25           # similarities in memory at once (128 MB of float32)
_RESULT = pa.schema([("ord", pa.int64()), ("of", pa.string()), ("sim", pa.float64()), ("of_ord", pa.int64())])


def embedding_matrix(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the rows with an embedding, their unit vectors as float32 rows). A list column of
    floats; nulls, empty lists and zero vectors have none; lists of another length than the first are
    an error."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not len(values):
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    lengths = pc.fill_null(pc.list_value_length(values), 0).to_numpy(zero_copy_only=False)
    pos = np.flatnonzero(lengths > 0)
    if not len(pos):
        return pos, np.zeros((0, 0), np.float32)
    dim = int(lengths[pos[0]])
    if (lengths[pos] != dim).any():
        raise ValueError(f"embeddings of different lengths ({sorted(set(lengths[pos].tolist()))[:5]})")
    flat = pc.list_flatten(values.take(pa.array(pos, pa.int64())))
    mat = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(pos), dim)
    norms = np.linalg.norm(mat, axis=1)
    ok = norms > 0
    return pos[ok], mat[ok] / norms[ok, None]


class NearDuplicates:
    """Near-duplicate rows of a run by embedding, found on disk under ``workdir`` (module docstring)."""

    def __init__(self, workdir: Path, rows: int, threshold: float, probes: int = 2,
                 rows_per_cluster: int = 1000, seed: int = 0):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows = max(1, int(rows))
        self.threshold = float(threshold)
        self.seed = seed
        self.clusters = max(1, min(math.ceil(self.rows / rows_per_cluster), SAMPLE_MAX // MIN_POINTS_PER_CENTROID))
        self.probes = max(1, min(int(probes), self.clusters))
        self.stride = max(1, math.ceil(self.rows / SAMPLE_MAX))
        self.groups = min(self.clusters, GROUPS_MAX)
        self._sample: list[np.ndarray] = []
        self._seen = 0
        self.ordinal = 0
        self.dim = 0
        self.centroids: np.ndarray | None = None
        self._index: Any = None
        self._groups = KeyedStreams(self.dir, "group")
        self._results: OrdinalRanges | None = None

    # ----------------------------------------------------------------------------- pass 1: sample

    def sample(self, embeddings: pa.Array | pa.ChunkedArray) -> None:
        """The next rows of the run (manifest order), for the k-means sample."""
        pos, mat = embedding_matrix(embeddings)
        take = (pos + self._seen) % self.stride == 0
        self._seen += len(embeddings)
        if take.any():
            self._sample.append(mat[take])

    def train(self) -> None:
        """Spherical k-means on the sample (fewer centroids when the sample is small)."""
        import faiss  # heavy/optional library (the scores extra): loaded only when this runs

        sample = np.concatenate(self._sample) if self._sample else np.zeros((0, 0), np.float32)
        self._sample = []
        if not len(sample):
            return
        self.dim = sample.shape[1]
        self.clusters = max(1, min(self.clusters, len(sample) // MIN_POINTS_PER_CENTROID))
        self.probes = min(self.probes, self.clusters)
        self.groups = min(self.clusters, GROUPS_MAX)
        if self.clusters == 1:
            self.centroids = sample.mean(axis=0, keepdims=True)
        else:
            kmeans = faiss.Kmeans(self.dim, self.clusters, niter=20, spherical=True, seed=self.seed,
                                  max_points_per_centroid=max(1, SAMPLE_MAX // self.clusters))
            kmeans.train(np.ascontiguousarray(sample))
            self.centroids = kmeans.centroids
        self._index = faiss.IndexFlatIP(self.dim)
        self._index.add(np.ascontiguousarray(self.centroids, dtype=np.float32))

    # ----------------------------------------------------------------------------- pass 2: assign

    def add(self, embeddings: pa.Array | pa.ChunkedArray, row_ids: pa.Array | pa.ChunkedArray) -> None:
        """The next rows of the run (manifest order, the same rows as ``sample`` saw): their embeddings
        and row ids."""
        start = self.ordinal
        self.ordinal += len(embeddings)
        pos, mat = embedding_matrix(embeddings)
        if not len(pos) or self._index is None:
            return
        if mat.shape[1] != self.dim:
            raise ValueError(f"embeddings of {mat.shape[1]} values after {self.dim} in the sample")
        _, nearest = self._index.search(mat, self.probes)
        if isinstance(row_ids, pa.ChunkedArray):
            row_ids = row_ids.combine_chunks()
        ids = row_ids.take(pa.array(pos, pa.int64()))
        half = mat.astype(np.float16)
        blob = pa.Array.from_buffers(pa.binary(2 * self.dim), len(pos), [None, pa.py_buffer(half.tobytes())])
        for j in range(self.probes):
            cluster = nearest[:, j].astype(np.int32)
            group = cluster % self.groups
            for g in np.unique(group):
                sel = np.flatnonzero(group == g)
                take = pa.array(sel, pa.int64())
                batch = pa.record_batch([pa.array(cluster[sel]), pa.array(pos[sel] + start, pa.int64()),
                                         ids.take(take), pa.array(np.full(len(sel), j == 0)), blob.take(take)],
                                        names=["cluster", "ord", "row_id", "own", "emb"])
                self._groups.write(int(g), batch)

    # ----------------------------------------------------------------------------- compare

    def finish(self) -> int:
        """Compare within every cluster; returns how many rows are near-duplicates of an earlier row."""
        self._groups.close()
        self._results = results = OrdinalRanges(self.dir, "near", _RESULT, self.ordinal, self.groups)
        for g in range(self.groups):
            table = self._groups.take(g)
            if table is None:
                continue
            table = table.combine_chunks()
            cluster = table.column("cluster").to_numpy()
            for c in np.unique(cluster):
                self._compare(table.filter(pa.array(cluster == c)), results)
        results.close_writers()
        found = 0
        for r in range(results.ranges):
            found += len(np.unique(results.rows(r * results.size, results.size).column("ord").to_numpy()))
        return found

    def _vectors(self, table: pa.Table) -> np.ndarray:
        emb = table.column("emb").combine_chunks()
        raw, offset = emb.buffers()[1], emb.offset
        mat = np.frombuffer(raw, np.float16, count=(offset + table.num_rows) * self.dim)[offset * self.dim:]
        mat = mat.reshape(table.num_rows, self.dim).astype(np.float32)
        return mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)

    def _compare(self, table: pa.Table, results: OrdinalRanges) -> None:
        own = table.filter(table.column("own")).sort_by("ord")
        if not own.num_rows:
            return
        members, member_ords = self._vectors(own), own.column("ord").to_numpy()
        member_ids = own.column("row_id").combine_chunks()
        table = table.sort_by("ord")
        queries, query_ords = self._vectors(table), table.column("ord").to_numpy()
        block = max(16, min(QUERY_BLOCK, BLOCK_VALUES // own.num_rows))
        for lo in range(0, table.num_rows, block):
            q_ords = query_ords[lo: lo + block]
            earlier = np.searchsorted(member_ords, q_ords)        # members before each query
            if not earlier.any():
                continue
            width = int(earlier.max())
            sims = queries[lo: lo + block] @ members[:width].T
            sims[np.arange(width)[None, :] >= earlier[:, None]] = -np.inf
            best = sims.argmax(axis=1)                             # first of equal values: the earliest
            value = sims[np.arange(len(best)), best]
            hit = np.flatnonzero(value >= self.threshold)
            if len(hit):
                which = pa.array(best[hit], pa.int64())
                results.add(q_ords[hit], [member_ids.take(which), pa.array(value[hit].astype(np.float64)),
                                          pa.array(member_ords[best[hit]], pa.int64())])

    def columns(self, start: int, n: int) -> tuple[pa.Array, pa.Array]:
        """``near_duplicate_of`` and ``near_duplicate_sim`` of the merged rows ``start`` .. ``start + n - 1``."""
        if n == 0 or self._results is None:
            return pa.nulls(n, pa.string()), pa.nulls(n, pa.float64())
        found = self._results.rows(start, n)
        if found.num_rows:   # a row found in several clusters: the best similarity, then the earliest row
            found = found.sort_by([("ord", "ascending"), ("sim", "descending"), ("of_ord", "ascending")])
            ords = found.column("ord").to_numpy()
            first = np.ones(len(ords), dtype=bool)
            first[1:] = ords[1:] != ords[:-1]
            found = found.filter(pa.array(first))
        index = np.full(n, -1, dtype=np.int64)
        index[found.column("ord").to_numpy() - start] = np.arange(found.num_rows)
        take = pa.array(index, mask=index < 0)
        return (found.column("of").combine_chunks().take(take),
                found.column("sim").combine_chunks().take(take))

    def close(self) -> None:
        self._groups.close()
        shutil.rmtree(self.dir, ignore_errors=True)
