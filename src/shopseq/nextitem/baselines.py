"""Strong simple next-item baselines: popularity, Markov chain, item-kNN and session-kNN.

Every baseline is fitted and scored with NumPy / SciPy sparse products (no Python loop over
events or cases) and saved as ``weights.npz`` + ``config.json`` (no pickle). All of them add a
tiny multiple of item popularity to their scores, so an item they know nothing about is still
ranked by popularity (the back-off), and ties between equally scored items are rarer.

* :class:`Popularity`: most-frequent items, over all training events or a recent window.
* :class:`MarkovChain`: first-order transition probabilities from the last known item.
* :class:`ItemKNN`: cosine similarity of items co-occurring within a window of positions
  (closer and later pairs weigh more), summed over the last few history items with recency
  weights.
* :class:`SessionKNN`: V-SKNN (Ludewig & Jannach 2018): neighbour sequences sharing items with the
  history (recent history items weigh more), the ``k`` most similar vote for their items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from shopseq.artifacts import atomic_dir, atomic_write_json, read_json
from shopseq.errors import ArtifactError, InputError, check_is_fitted
from shopseq.nextitem.base import ScoringModel
from shopseq.sequences import EvalCases, Sequences

__all__ = [
    "ItemKNN",
    "ItemKNNConfig",
    "MarkovChain",
    "MarkovChainConfig",
    "Popularity",
    "PopularityConfig",
    "SessionKNN",
    "SessionKNNConfig",
]

_WEIGHTS = "weights.npz"
_CONFIG = "config.json"
# Weight of the popularity back-off: far below any similarity, transition probability or
# factor score (ALS, BPR) of a non-empty history.
_BACKOFF = 1e-6


# ---------------------------------------------------------------------------------- helpers


def _check_train(train: Sequences, n_items: int) -> None:
    if n_items < 2:
        raise InputError(
            f"The 'n_items' parameter of fit must be >= 2 (padding + 1). Got {n_items}."
        )
    if train.n_events and int(train.items.max()) >= n_items:
        raise InputError(
            f"training sequences hold item index {int(train.items.max())} but n_items is {n_items}"
        )


def _item_counts(sequences: Sequences, n_items: int, mask: np.ndarray | None = None) -> np.ndarray:
    items = sequences.items if mask is None else sequences.items[mask]
    return np.bincount(items[items > 0], minlength=n_items)[:n_items].astype(np.float64)


def _from_end(sequences: Sequences) -> np.ndarray:
    """Per event, how many events of its sequence follow it (0 = the last event)."""
    lengths = sequences.lengths
    return np.repeat(sequences.offsets[1:], lengths) - np.arange(sequences.n_events) - 1


def _history_matrix(
    histories: Sequences, n_items: int, max_len: int, weighting: str
) -> sp.csr_matrix:
    """(n_histories, n_items) weights of each history's last ``max_len`` distinct known items.

    Only the most recent occurrence of a repeated item counts. ``weighting``: ``linear``
    (V-SKNN: (L - d) / L for the item ``d`` steps before the end of an L-item window),
    ``inverse`` (1 / (d + 1)) or ``binary``.
    """
    n = len(histories)
    rows = np.repeat(np.arange(n, dtype=np.int64), histories.lengths)
    items = histories.items.astype(np.int64)
    keep = (items > 0) & (items < n_items)
    rows, items = rows[keep], items[keep]
    # Recency counted over known items only, so unknown items do not push known ones out.
    key = rows * n_items + items
    position = np.arange(len(items))
    order = np.lexsort((-position, key))  # per (row, item): most recent occurrence first
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    chosen = np.sort(order[first])
    rows, items = rows[chosen], items[chosen]
    counts = np.bincount(rows, minlength=n)
    ends = np.cumsum(counts)
    d = np.repeat(ends, counts) - np.arange(len(rows)) - 1  # distinct items after this one
    keep = d < max_len
    rows, items, d = rows[keep], items[keep], d[keep]
    if weighting == "linear":
        window = np.minimum(np.bincount(rows, minlength=n), max_len)[rows]
        weights = (window - d) / window
    elif weighting == "inverse":
        weights = 1.0 / (d + 1.0)
    else:
        weights = np.ones(len(d))
    return sp.csr_matrix((weights, (rows, items)), shape=(n, n_items))


def _keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row of a CSR matrix (ties: smaller column)."""
    matrix = matrix.tocsr()
    matrix.sum_duplicates()
    counts = np.diff(matrix.indptr)
    if counts.max(initial=0) <= k:
        return matrix
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((matrix.indices, -matrix.data, rows))
    rank = np.arange(len(order)) - np.repeat(matrix.indptr[:-1], counts)
    keep = order[rank < k]
    return sp.csr_matrix(
        (matrix.data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape
    )


def _recent_linear(
    history: np.ndarray, n_items: int, max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row of :func:`_history_matrix` (``linear``) for one history: (items ascending, weights)."""
    known = history[(history > 0) & (history < n_items)].astype(np.int64)
    # Most recent occurrence first; d = distinct items after this one.
    items, last = np.unique(known[::-1], return_index=True)
    d = np.argsort(np.argsort(last, kind="stable"), kind="stable")
    keep = d < max_len
    items, d = items[keep], d[keep]
    window = min(len(last), max_len)
    return items, (window - d) / window


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ``[start, start + length)`` (CSR rows' slices)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts.astype(np.int64) - offsets, lengths) + np.arange(total)


def _finish(scores: np.ndarray, backoff: np.ndarray) -> np.ndarray:
    """Add the popularity back-off and set padding to -inf."""
    out = np.asarray(scores, dtype=np.float32)
    out += backoff[None, :]
    out[:, 0] = -np.inf
    return out


def _save_csr(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_data": matrix.data.astype(np.float32),
        f"{prefix}_indices": matrix.indices.astype(np.int32),
        f"{prefix}_indptr": matrix.indptr.astype(np.int64),
        f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def _load_csr(arrays: Any, prefix: str) -> sp.csr_matrix:
    shape = tuple(int(x) for x in arrays[f"{prefix}_shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=shape,
    )


class _Baseline(ScoringModel):
    """Shared fit bookkeeping, back-off and npz + config.json persistence."""

    config_class: ClassVar[type[BaseModel]]
    config: Any
    n_items_: int | None
    backoff_: np.ndarray | None

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, arrays: Any) -> None:
        raise NotImplementedError

    def _set_popularity(self, counts: np.ndarray) -> None:
        top = counts.max(initial=0.0)
        self.backoff_ = (_BACKOFF * counts / top if top > 0 else np.zeros_like(counts)).astype(
            np.float32
        )

    def save(self, directory: Path) -> None:
        """Write ``config.json`` and ``weights.npz`` into ``directory`` (atomically).

        Args:
            directory: Destination (replaced as a whole).
        """
        check_is_fitted(self, "backoff_")
        with atomic_dir(Path(directory)) as tmp:
            atomic_write_json(
                tmp / _CONFIG,
                {
                    "model": type(self).__name__,
                    "config": self.config.model_dump(mode="json"),
                    "n_items": self.n_items_,
                },
            )
            arrays = {"backoff": np.asarray(self.backoff_), **self._state()}
            with (tmp / _WEIGHTS).open("wb") as handle:
                np.savez(handle, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild a model written by :meth:`save`.

        Args:
            directory: The model directory.

        Returns:
            The fitted model.

        Raises:
            ArtifactError: If files are missing or belong to another model.
        """
        directory = Path(directory)
        try:
            meta = read_json(directory / _CONFIG)
            arrays = np.load(directory / _WEIGHTS, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ArtifactError(f"cannot load {cls.__name__} from {directory}: {err}") from err
        if meta.get("model") != cls.__name__:
            raise ArtifactError(
                f"{directory} holds a {meta.get('model')!r} model, not {cls.__name__}"
            )
        model = cls(cls.config_class(**meta["config"]))  # type: ignore[call-arg]
        model.n_items_ = int(meta["n_items"])
        with arrays:
            model.backoff_ = arrays["backoff"]
            model._set_state(arrays)
        return model


# ---------------------------------------------------------------------------------- models


class PopularityConfig(BaseModel):
    """Popularity settings.

    Attributes:
        window_days: Count only events in the last ``window_days`` before the end of training
            (``None``: all events).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_days: float | None = Field(default=None, gt=0)


class Popularity(_Baseline):
    """Recommend the most frequent items (globally or in a recent window) to everyone."""

    config_class = PopularityConfig

    def __init__(self, config: PopularityConfig | None = None) -> None:
        self.config = config or PopularityConfig()
        self.n_items_ = None
        self.backoff_ = None
        self.counts_: np.ndarray | None = None

    def fit(self, train: Sequences, n_items: int, valid: EvalCases | None = None) -> Self:
        """Count training events per item.

        Args:
            train: Training sequences.
            n_items: Vocabulary size including padding.
            valid: Unused.

        Returns:
            self.
        """
        _check_train(train, n_items)
        mask = None
        if self.config.window_days is not None and train.n_events:
            mask = train.ts >= train.ts.max() - self.config.window_days * 86_400
        counts = _item_counts(train, n_items, mask)
        self.n_items_ = n_items
        self.counts_ = counts.astype(np.float32)
        self._set_popularity(_item_counts(train, n_items))
        return self

    def score(self, histories: Sequences) -> np.ndarray:
        """Same scores (the counts) for every history.

        Args:
            histories: The histories.

        Returns:
            (n_histories, n_items) float32.
        """
        check_is_fitted(self, "counts_")
        assert self.counts_ is not None and self.backoff_ is not None
        row = self.counts_ + self.backoff_
        return _finish(np.repeat(row[None, :], len(histories), axis=0), np.zeros_like(row))

    def _state(self) -> dict[str, np.ndarray]:
        assert self.counts_ is not None
        return {"counts": self.counts_}

    def _set_state(self, arrays: Any) -> None:
        self.counts_ = arrays["counts"]


class MarkovChainConfig(BaseModel):
    """Markov-chain settings (first order; none to tune)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class MarkovChain(_Baseline):
    """First-order transitions P(next | last known item), backing off to popularity."""

    config_class = MarkovChainConfig

    def __init__(self, config: MarkovChainConfig | None = None) -> None:
        self.config = config or MarkovChainConfig()
        self.n_items_ = None
        self.backoff_ = None
        self.transitions_: sp.csr_matrix | None = None

    def fit(self, train: Sequences, n_items: int, valid: EvalCases | None = None) -> Self:
        """Count consecutive item pairs within sequences and normalise each row.

        Args:
            train: Training sequences.
            n_items: Vocabulary size including padding.
            valid: Unused.

        Returns:
            self.
        """
        _check_train(train, n_items)
        seq = np.repeat(np.arange(len(train)), train.lengths)
        items = train.items
        pair = (seq[1:] == seq[:-1]) & (items[1:] > 0) & (items[:-1] > 0)
        counts = sp.csr_matrix(
            (np.ones(int(pair.sum())), (items[:-1][pair], items[1:][pair])),
            shape=(n_items, n_items),
        )
        counts.sum_duplicates()
        totals = np.asarray(counts.sum(axis=1)).ravel()
        counts.data /= np.repeat(totals, np.diff(counts.indptr))
        self.n_items_ = n_items
        self.transitions_ = counts.astype(np.float32)
        self._set_popularity(_item_counts(train, n_items))
        return self

    def score(self, histories: Sequences) -> np.ndarray:
        """Transition probabilities from each history's last known item.

        Args:
            histories: The histories.

        Returns:
            (n_histories, n_items) float32.
        """
        check_is_fitted(self, "transitions_")
        assert self.transitions_ is not None and self.backoff_ is not None
        last = _history_matrix(histories, self.transitions_.shape[0], 1, "binary")
        return _finish((last @ self.transitions_).toarray(), self.backoff_)

    def _state(self) -> dict[str, np.ndarray]:
        assert self.transitions_ is not None
        return _save_csr("transitions", self.transitions_)

    def _set_state(self, arrays: Any) -> None:
        self.transitions_ = _load_csr(arrays, "transitions")


class ItemKNNConfig(BaseModel):
    """Item-kNN settings.

    Attributes:
        window: Two events co-occur when at most this many positions apart in a sequence.
        n_neighbors: Most similar items kept per item.
        alpha: Similarity ``c_ij / (n_i^alpha * n_j^(1-alpha))``; 0.5 is cosine.
        history_len: Last distinct history items that vote, weighted ``1 / (d + 1)``.
        distance_decay: A pair ``d`` positions apart counts ``1 / d`` (else 1), so the item
            right after another is its closest neighbour.
        backward_weight: Weight of "j came before i" relative to "j came after i" (order
            matters for a next-item prediction; 1 makes the similarity symmetric).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(default=5, ge=1)
    n_neighbors: int = Field(default=200, ge=1)
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    history_len: int = Field(default=3, ge=1)
    distance_decay: bool = True
    backward_weight: float = Field(default=0.5, ge=0.0)


class ItemKNN(_Baseline):
    """Items similar (by windowed co-occurrence) to the last few history items."""

    config_class = ItemKNNConfig

    def __init__(self, config: ItemKNNConfig | None = None) -> None:
        self.config = config or ItemKNNConfig()
        self.n_items_ = None
        self.backoff_ = None
        self.similarity_: sp.csr_matrix | None = None

    def fit(self, train: Sequences, n_items: int, valid: EvalCases | None = None) -> Self:
        """Count co-occurrences within the window and keep each item's nearest neighbours.

        Args:
            train: Training sequences.
            n_items: Vocabulary size including padding.
            valid: Unused.

        Returns:
            self.
        """
        _check_train(train, n_items)
        seq = np.repeat(np.arange(len(train)), train.lengths)
        items = train.items.astype(np.int64)
        heads, tails, weights = [], [], []
        for d in range(1, self.config.window + 1):  # loop over offsets, not events
            ok = (seq[d:] == seq[:-d]) & (items[d:] > 0) & (items[:-d] > 0)
            ok &= items[d:] != items[:-d]
            heads.append(items[:-d][ok])
            tails.append(items[d:][ok])
            weights.append(np.full(int(ok.sum()), 1.0 / d if self.config.distance_decay else 1.0))
        forward = np.concatenate(weights)
        a = np.concatenate([*heads, *tails])
        b = np.concatenate([*tails, *heads])
        w = np.concatenate([forward, self.config.backward_weight * forward])
        co = sp.csr_matrix((w, (a, b)), shape=(n_items, n_items))
        co.sum_duplicates()
        counts = _item_counts(train, n_items)
        alpha = self.config.alpha
        rows = np.repeat(np.arange(n_items), np.diff(co.indptr))
        co.data /= np.power(counts[rows], alpha) * np.power(counts[co.indices], 1.0 - alpha)
        self.n_items_ = n_items
        self.similarity_ = _keep_top_per_row(co, self.config.n_neighbors).astype(np.float32)
        self._set_popularity(counts)
        return self

    def score(self, histories: Sequences) -> np.ndarray:
        """Sum of the recent history items' similarity rows.

        Args:
            histories: The histories.

        Returns:
            (n_histories, n_items) float32.
        """
        check_is_fitted(self, "similarity_")
        assert self.similarity_ is not None and self.backoff_ is not None
        weights = _history_matrix(
            histories, self.similarity_.shape[0], self.config.history_len, "inverse"
        )
        return _finish((weights @ self.similarity_).toarray(), self.backoff_)

    def _state(self) -> dict[str, np.ndarray]:
        assert self.similarity_ is not None
        return _save_csr("similarity", self.similarity_)

    def _set_state(self, arrays: Any) -> None:
        self.similarity_ = _load_csr(arrays, "similarity")


class SessionKNNConfig(BaseModel):
    """Session-kNN (V-SKNN) settings.

    Attributes:
        k: Neighbour sequences that vote.
        history_len: Last distinct history items used, weighted linearly (most recent = 1).
        neighbor_len: Last distinct items of each training sequence kept (bounds long user
            histories; sessions are short anyway).
        idf: Weight history items by log inverse sequence frequency (rare items matter more).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(default=100, ge=1)
    history_len: int = Field(default=20, ge=1)
    neighbor_len: int = Field(default=50, ge=1)
    idf: bool = False


class SessionKNN(_Baseline):
    """V-SKNN: the ``k`` training sequences most similar to the history vote for their items.

    Similarity is the cosine between the history's recency-weighted item vector and a neighbour's
    binary item vector; an item's score is the summed similarity of the neighbours holding it.
    Scoring is two sparse products per batch of histories (history x sequences, then neighbours
    x items), so tens of thousands of cases take seconds, not hours.
    """

    config_class = SessionKNNConfig

    def __init__(self, config: SessionKNNConfig | None = None) -> None:
        self.config = config or SessionKNNConfig()
        self.n_items_ = None
        self.backoff_ = None
        self.sessions_: sp.csr_matrix | None = None
        self.item_weights_: np.ndarray | None = None
        self._cache: tuple[sp.csr_matrix, sp.csr_matrix] | None = None

    def fit(self, train: Sequences, n_items: int, valid: EvalCases | None = None) -> Self:
        """Index the training sequences as a binary sequence x item matrix.

        Args:
            train: Training sequences.
            n_items: Vocabulary size including padding.
            valid: Unused.

        Returns:
            self.
        """
        _check_train(train, n_items)
        binary = _history_matrix(train, n_items, self.config.neighbor_len, "binary")
        lengths = np.diff(binary.indptr)
        binary = binary[lengths > 0]
        # Store neighbours row-normalised (1 / sqrt(|s|)) so a product gives the cosine numerator
        # divided by the neighbour's norm.
        norms = 1.0 / np.sqrt(np.diff(binary.indptr).astype(np.float64))
        binary.data = np.repeat(norms, np.diff(binary.indptr))
        doc_freq = np.bincount(binary.indices, minlength=n_items).astype(np.float64)
        self.n_items_ = n_items
        self._cache = None
        self.sessions_ = binary.astype(np.float32)
        self.item_weights_ = (
            np.log((binary.shape[0] + 1) / (doc_freq + 1)).astype(np.float32)
            if self.config.idf
            else np.ones(n_items, dtype=np.float32)
        )
        self._set_popularity(_item_counts(train, n_items))
        return self

    def score(self, histories: Sequences) -> np.ndarray:
        """Neighbour votes for every item.

        Args:
            histories: The histories.

        Returns:
            (n_histories, n_items) float32.
        """
        check_is_fitted(self, "sessions_")
        sessions, weights = self.sessions_, self.item_weights_
        assert sessions is not None and weights is not None and self.backoff_ is not None
        if len(histories) == 1:
            return self._score_one(histories.items)
        query = _history_matrix(histories, sessions.shape[1], self.config.history_len, "linear")
        query = query.multiply(weights[None, :]).tocsr()
        q_len = np.maximum(np.diff(query.indptr), 1).astype(np.float64)
        by_item, binary = self._index()
        similarity = (query @ by_item).tocsr()  # (n, n_sessions) cosine numerator / |s|^.5
        similarity.data /= np.repeat(np.sqrt(q_len), np.diff(similarity.indptr))
        neighbours = _keep_top_per_row(similarity, self.config.k)
        return _finish((neighbours @ binary).toarray(), self.backoff_)

    def _score_one(self, history: np.ndarray) -> np.ndarray:
        """:meth:`score` of one history (what the service asks), the same numbers by hand.

        Hand-written because scipy's sparse product allocates and clears work arrays as wide as
        the product's columns on every call: for one history over 86 k items and 48 k training
        sequences that was 3 of the 3.5 ms a recommendation took (benchmarks/serve.py). Here the
        query items' posting lists are gathered and summed with ``bincount``, and the neighbour
        cut keeps exactly what :func:`_keep_top_per_row` keeps (the ``k`` largest, ties to the
        smaller sequence index).
        """
        assert self.item_weights_ is not None and self.backoff_ is not None
        by_item, binary = self._index()
        items, weights = _recent_linear(history, by_item.shape[0], self.config.history_len)
        weights = weights * self.item_weights_[items]
        starts, ends = by_item.indptr[items], by_item.indptr[items + 1]
        lengths = ends - starts
        postings = _ranges(starts, lengths)
        sessions = by_item.indices[postings]
        similarity = np.bincount(
            sessions,
            weights=np.repeat(weights, lengths) * by_item.data[postings],
            minlength=by_item.shape[1],
        )
        # The sessions reached, found on a boolean mask (1 byte per training sequence) rather
        # than by scanning the float64 sums (8 bytes each): the same candidates in the same
        # order once zero sums are dropped; this method took 40 % less CPU over 95 k sequences.
        reached = np.zeros(by_item.shape[1], dtype=bool)
        reached[sessions] = True
        candidates = np.flatnonzero(reached)
        values = similarity[candidates]
        if not values.all():  # a sum of zero weights (idf of an item in every sequence)
            candidates, values = candidates[values != 0], values[values != 0]
        values = values / np.sqrt(max(len(items), 1))
        k = self.config.k
        if len(candidates) > k:
            # The k-th largest value; everything above it is kept, ties at it by smaller index
            # (candidates are in increasing index order).
            threshold = -np.partition(-values, k - 1)[k - 1]
            above = values > threshold
            ties = np.flatnonzero(values == threshold)[: k - int(above.sum())]
            keep = above
            keep[ties] = True
            candidates, values = candidates[keep], values[keep]
        starts, ends = binary.indptr[candidates], binary.indptr[candidates + 1]
        lengths = ends - starts
        scores = np.bincount(
            binary.indices[_ranges(starts, lengths)],
            weights=np.repeat(values, lengths),
            minlength=binary.shape[1],
        )
        return _finish(scores[None, :], self.backoff_)

    def _index(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """The item x sequence matrix and the binary sequence x item matrix, built once.

        Rebuilding them per call cost O(training events) and dominated one-history latency.
        """
        if self._cache is None:
            assert self.sessions_ is not None
            binary = self.sessions_.copy()
            binary.data = np.ones_like(binary.data)
            self._cache = (self.sessions_.T.tocsr(), binary)
        return self._cache

    def _state(self) -> dict[str, np.ndarray]:
        assert self.sessions_ is not None and self.item_weights_ is not None
        return {**_save_csr("sessions", self.sessions_), "item_weights": self.item_weights_}

    def _set_state(self, arrays: Any) -> None:
        self.sessions_ = _load_csr(arrays, "sessions")
        self.item_weights_ = arrays["item_weights"]
