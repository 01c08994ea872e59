"""Approximate top-k over a large catalogue: a FAISS HNSW or IVF index of the item vectors.

An exact answer multiplies a history's final state with every item vector (the item matrix is
read whole: ~2.6 ms at 100 k items x 100, ten times that at 1 M). Past a million items an
approximate index answers from a graph walk that reads a few thousand vectors instead. It is an
option (exact stays the default) and its recall@k against the exact top-k is measured in
``benchmarks/topk.py``. FAISS (``faiss-cpu``, the ``ann`` extra) and not a hand-written index:
it is well kept, ships CPU wheels with no CUDA, and its HNSW searches inner products directly.

Scores with a per-item bias (GRU4Rec's ``By``) stay exact inner products: each item vector gets
its bias as one more coordinate and each query a 1 there, so ``[h, 1] . [w, b] = h . w + b``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.errors import InputError
from shopseq.metrics.ranking import Recommendations
from shopseq.sequences import Sequences

__all__ = ["ApproximateTopK", "IndexConfig"]


class IndexConfig(BaseModel):
    """Which approximate index is built and how it is searched.

    Attributes:
        kind: ``hnsw`` (a graph: best recall per vector read, slow to build) or ``ivf``
            (inverted lists over k-means cells: builds in seconds at 1 M items).
        m: HNSW neighbours per node (more: better recall, more memory and build time).
        ef_construction: HNSW candidate list while building.
        ef_search: HNSW candidate list while searching (raised to the items asked for).
        nlist: IVF cells (k-means centroids, trained on a seeded sample of the items).
        nprobe: IVF cells scanned per query.
        threads: Threads FAISS builds and searches with.
        seed: Seed of the IVF training sample.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["hnsw", "ivf"] = "hnsw"
    m: int = Field(default=32, ge=4, le=128)
    ef_construction: int = Field(default=128, ge=8)
    ef_search: int = Field(default=128, ge=1)
    nlist: int = Field(default=1024, ge=1)
    nprobe: int = Field(default=32, ge=1)
    threads: int = Field(default=1, ge=1)
    seed: int = 0


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as err:  # pragma: no cover - depends on the optional extra
        raise ImportError("the approximate top-k needs FAISS: pip install 'shopseq[ann]'") from err
    return faiss


class ApproximateTopK:
    """An HNSW or IVF inner-product index of items 1..n_items-1 (0 is padding, never returned).

    Args:
        weight: (n_items, d) float32 output vectors, row i = item i.
        bias: (n_items,) per-item bias (``None``: none).
        config: Index parameters.
    """

    def __init__(
        self, weight: np.ndarray, bias: np.ndarray | None = None, config: IndexConfig | None = None
    ) -> None:
        faiss = _faiss()
        self.config = config or IndexConfig()
        self.n_items = int(weight.shape[0])
        vectors = np.asarray(weight[1:], dtype=np.float32)
        self.has_bias = bias is not None
        if bias is not None:
            column = np.asarray(bias, dtype=np.float32).reshape(-1)[1:, None]
            vectors = np.hstack([vectors, column])
        vectors = np.ascontiguousarray(vectors)
        faiss.omp_set_num_threads(self.config.threads)
        dim = vectors.shape[1]
        if self.config.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.config.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.config.ef_construction
        else:
            nlist = max(1, min(self.config.nlist, len(vectors) // 39))  # >= 39 points a cell
            self._quantizer = faiss.IndexFlatIP(dim)  # kept: the IVF index does not own it
            index = faiss.IndexIVFFlat(self._quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(self.config.seed)
            size = min(len(vectors), 256 * nlist)
            index.train(vectors[np.sort(rng.choice(len(vectors), size=size, replace=False))])
        index.add(vectors)  # FAISS id j = item j + 1
        self._index = index

    def search(
        self, states: np.ndarray, k: int, seen: Sequences | None = None, ef: int | None = None
    ) -> Recommendations:
        """The (approximately) ``k`` best items per state, as :func:`top_k` returns them.

        Args:
            states: (B, d) final states of the histories.
            k: Items per row.
            seen: Histories whose items are excluded (row i excludes the items of sequence i);
                the search asks for ``k`` + that many more, so exclusion never leaves a row short
                when the catalogue is large enough.
            ef: ``ef_search`` (HNSW) or ``nprobe`` (IVF) of this call (default: the config's);
                HNSW's is never below the candidates asked for.

        Returns:
            Items (-1 where fewer than ``k`` were found) and their exact scores, best first.

        Raises:
            InputError: If ``k`` < 1 or ``seen`` does not match the rows.
        """
        faiss = _faiss()
        if k < 1:
            raise InputError(f"The 'k' parameter of recommend must be an int in [1, inf). Got {k}.")
        queries = np.asarray(states, dtype=np.float32)
        if self.has_bias:
            queries = np.hstack([queries, np.ones((len(queries), 1), np.float32)])
        queries = np.ascontiguousarray(queries)
        n_rows = len(queries)
        if seen is not None and len(seen) != n_rows:
            raise InputError(f"seen holds {len(seen)} histories for {n_rows} rows")
        extra = 0 if seen is None else int(seen.lengths.max(initial=0))
        wanted = min(k + extra, self.n_items - 1)
        if self.config.kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(ef or self.config.ef_search, wanted)
        else:
            params = faiss.SearchParametersIVF()
            params.nprobe = ef or self.config.nprobe
        faiss.omp_set_num_threads(self.config.threads)
        scores, ids = self._index.search(queries, wanted, params=params)
        items_out = np.full((n_rows, k), -1, np.int32)
        best = np.full((n_rows, k), -np.inf, np.float32)
        for row in range(n_rows):
            found = ids[row] >= 0
            row_items, row_scores = ids[row][found] + 1, scores[row][found]
            if seen is not None:
                history = seen.items[seen.offsets[row] : seen.offsets[row + 1]]
                keep = ~np.isin(row_items, history)
                row_items, row_scores = row_items[keep], row_scores[keep]
            # Same order as the exact top-k: score descending, then the smaller item index.
            order = np.lexsort((row_items, -row_scores))[:k]
            items_out[row, : len(order)] = row_items[order]
            best[row, : len(order)] = row_scores[order]
        return Recommendations(items=items_out, scores=best)
