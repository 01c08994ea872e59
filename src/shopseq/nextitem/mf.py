"""Matrix factorisation for implicit feedback: ALS and BPR (from ``implicit``), next-item contract.

Both learn one latent vector per item from the sequence x item matrix of the training side
(each training sequence is one row, values weighted by ``weighting``). Scoring never looks up a
stored user vector: the history being scored is **folded in** at score time, so owners unseen in
training, live histories in the service and evaluation prefixes are all scored the same way.

* :class:`ALS`: Hu, Koren & Volinsky (2008) weighted least squares, fitted by ``implicit``'s
  conjugate-gradient ALS. The fold-in is ``implicit``'s own ``recalculate_user`` (the exact
  least-squares user solve against the fixed item factors).
* :class:`BPR`: Rendle et al. (2009) pairwise ranking, fitted by ``implicit``'s SGD.
  ``implicit`` has no fold-in for BPR, so :func:`fold_in_least_squares` (hand-written, below)
  solves the same implicit-feedback least-squares problem against BPR's item factors (bias column
  included); ``tests/models/test_mf.py`` checks it equals ``implicit``'s ALS fold-in.

Defaults were chosen on validation NDCG@10 (never test) of S3-Rec Beauty and GCE-GNN Diginetica:
more factors helped on both (64 -> 128 -> 256: Beauty ALS 0.039 -> 0.047 -> 0.053), as did a high
confidence (ALS ``alpha`` 2 / 10 / 40: 0.030 / 0.037 / 0.039) and folding in only the last five
events (0.037 vs 0.035 with 50). 128 factors keep the fit on the largest file (Diginetica, 186k
sessions) under 30 s on two threads; 256 did not.

Scores are ``user @ item_factors.T`` plus a tiny popularity back-off (an empty history, whose
folded-in vector is 0, ranks by popularity). :meth:`similar_items` ranks items by cosine of their
factors. Weights are saved as ``weights.npz`` (loaded with ``allow_pickle=False``) and
``config.json``. ``threads`` sets ``implicit``'s native threads while fitting (BLAS is held at one
thread then, as ``implicit`` asks, because its own thread pool already fills the cores) and the
BLAS threads of the scoring products.
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from shopseq.errors import InputError
from shopseq.nextitem.base import Recommendations, check_is_fitted, top_k
from shopseq.nextitem.baselines import _Baseline
from shopseq.sequences import EvalCases, Sequences

__all__ = ["ALS", "BPR", "ALSConfig", "BPRConfig", "fold_in_least_squares", "interaction_matrix"]

# Histories folded in per batch (bounds the (batch, history_len, factors) arrays).
_FOLD_BATCH = 1024

Weighting = Literal["count", "log", "binary"]


def _implicit() -> Any:
    try:
        import implicit.cpu.als
        import implicit.cpu.bpr
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("ALS and BPR need implicit: pip install 'shopseq[models]'") from exc
    return implicit.cpu


def interaction_matrix(
    sequences: Sequences,
    n_items: int,
    weighting: Weighting,
    history_len: int | None = None,
) -> sp.csr_matrix:
    """(n_sequences, n_items) float32 weights of each sequence's known items.

    Args:
        sequences: Sequences (item 0 and unknown items, -1, are ignored).
        n_items: Columns (vocabulary size including padding).
        weighting: ``count`` (events per item), ``log`` (``1 + log(count)``) or ``binary``.
        history_len: Use only each sequence's last ``history_len`` events (``None``: all).

    Returns:
        The CSR matrix, duplicates summed.
    """
    n = len(sequences)
    rows = np.repeat(np.arange(n, dtype=np.int64), sequences.lengths)
    items = sequences.items.astype(np.int64)
    keep = (items > 0) & (items < n_items)
    if history_len is not None:  # the last events, known or not (what max_history promises)
        from_end = np.repeat(sequences.offsets[1:], sequences.lengths) - np.arange(len(rows)) - 1
        keep &= from_end < history_len
    rows, items = rows[keep], items[keep]
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, items)), shape=(n, n_items)
    )
    matrix.sum_duplicates()
    if weighting == "log":
        matrix.data = (1.0 + np.log(matrix.data)).astype(np.float32)
    elif weighting == "binary":
        matrix.data = np.ones_like(matrix.data)
    return matrix


def fold_in_least_squares(
    weights: sp.csr_matrix,
    item_factors: np.ndarray,
    regularization: float,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """Solve each row's implicit-feedback least-squares user vector against fixed item factors.

    Row ``u`` with confidences ``c_ui`` (its non-zero weights; every other item has confidence 1
    and preference 0) gets ``x_u = (Y'Y + Y_u'(C_u - I)Y_u + reg I)^-1 Y_u' c_u`` (Hu et al. 2008,
    eq. 4). Hand-written because ``implicit`` offers this solve only for its ALS models; here it
    folds histories into BPR's factors. Vectorised per batch of rows: a (batch, h, f) gather and
    one batched ``np.linalg.solve``.

    Args:
        weights: (n, n_items) confidences (already multiplied by any ``alpha``).
        item_factors: (n_items, f) item factors.
        regularization: The ridge term.
        gram: ``Y'Y + reg I`` if already computed (it costs n_items x f^2: keep it between
            calls; recomputing it dominated one-history scoring).

    Returns:
        (n, f) float32 user vectors (0 for an empty row).
    """
    n, f = weights.shape[0], item_factors.shape[1]
    if gram is None:
        y = item_factors.astype(np.float64)
        gram = y.T @ y + regularization * np.eye(f)  # (f, f)
    out = np.zeros((n, f), dtype=np.float32)
    lengths = np.diff(weights.indptr)
    for start in range(0, n, _FOLD_BATCH):
        stop = min(start + _FOLD_BATCH, n)
        block = weights[start:stop]
        counts = lengths[start:stop]
        width = int(counts.max(initial=0))
        if width == 0:
            continue
        rows = np.repeat(np.arange(stop - start), counts)
        slot = np.arange(len(rows)) - np.repeat(block.indptr[:-1], counts)
        factors = np.zeros((stop - start, width, f))  # (b, h, f), zero-padded
        factors[rows, slot] = item_factors[block.indices]  # only the rows used, as float64
        confidence = np.zeros((stop - start, width))  # (b, h)
        confidence[rows, slot] = block.data
        # Padded slots have zero factors, so they add nothing to either side.
        lhs = gram + np.einsum("bhf,bh,bhg->bfg", factors, confidence - 1.0, factors)  # (b,f,f)
        rhs = np.einsum("bhf,bh->bf", factors, confidence)  # (b, f)
        out[start:stop] = np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]
    return out


class _MatrixFactorization(_Baseline):
    """Fold-in scoring and similar items (back-off and persistence are the baselines' own)."""

    def __init__(self) -> None:
        self.n_items_: int | None = None
        self.item_factors_: np.ndarray | None = None
        self.backoff_: np.ndarray | None = None
        self._controller: Any = None
        self._solver: Any = None  # fold-in state kept between calls (ALS: solver; BPR: Gram)

    def _blas(self, threads: int) -> Any:
        """A context holding BLAS at ``threads`` threads (threadpoolctl).

        The controller is built once per model: ``threadpool_limits()`` re-scans the loaded
        libraries on every call (1-2 ms, measured), which dominated one-history scoring.
        """
        if self._controller is None:
            _implicit()  # load implicit's and SciPy's BLAS before scanning
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
        return self._controller.limit(limits=threads, user_api="blas")

    # ------------------------------------------------------------------ implemented per model

    def _fit_factors(self, matrix: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _fold_in(self, weights: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _embeddings(self) -> np.ndarray:
        """Item vectors compared by :meth:`similar_items` (BPR drops its bias column)."""
        assert self.item_factors_ is not None
        return self.item_factors_

    # ------------------------------------------------------------------ contract

    def fit(self, train: Sequences, n_items: int, valid: EvalCases | None = None) -> Self:
        """Factorise the training sequence x item matrix.

        Args:
            train: Training sequences (one matrix row each).
            n_items: Vocabulary size including padding.
            valid: Unused (a fixed number of iterations; no early stopping).

        Returns:
            self.

        Raises:
            InputError: If ``n_items`` is too small for the data.
        """
        if n_items < 2:
            raise InputError(
                f"The 'n_items' parameter of fit must be >= 2 (padding + 1). Got {n_items}."
            )
        if train.n_events and int(train.items.max()) >= n_items:
            raise InputError(
                f"training sequences hold item index {int(train.items.max())} "
                f"but n_items is {n_items}"
            )
        matrix = interaction_matrix(train, n_items, self.config.weighting)
        matrix = matrix[np.diff(matrix.indptr) > 0]  # sequences with no known item teach nothing
        self._solver = None
        self.item_factors_ = np.ascontiguousarray(self._fit_factors(matrix), dtype=np.float32)
        self.n_items_ = n_items
        self._set_popularity(np.bincount(train.items[train.items > 0], minlength=n_items)[:n_items])
        return self

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": np.asarray(self.item_factors_)}

    def _set_state(self, arrays: Any) -> None:
        self.item_factors_ = arrays["item_factors"]

    @property
    def max_history(self) -> int | None:
        """Most recent events of a history folded in (``history_len``)."""
        value: int | None = self.config.history_len
        return value

    def user_factors(self, histories: Sequences) -> np.ndarray:
        """Fold each history into a user vector (no stored per-owner state is used).

        Args:
            histories: The histories (their last ``history_len`` known events count).

        Returns:
            (n_histories, n_factors) float32.
        """
        check_is_fitted(self, "item_factors_")
        assert self.n_items_ is not None
        weights = interaction_matrix(
            histories, self.n_items_, self.config.weighting, self.config.history_len
        )
        with self._blas(self.config.threads):
            return np.asarray(self._fold_in(weights), dtype=np.float32)

    def score(self, histories: Sequences) -> np.ndarray:
        """Dot products of the folded-in history vector with every item's factors.

        Args:
            histories: The histories.

        Returns:
            (n_histories, n_items) float32, column 0 is -inf.
        """
        users = self.user_factors(histories)
        assert self.item_factors_ is not None and self.backoff_ is not None
        with self._blas(self.config.threads):
            scores: np.ndarray = users @ self.item_factors_.T  # (n, n_items)
        scores += self.backoff_[None, :]
        scores[:, 0] = -np.inf
        return scores.astype(np.float32, copy=False)

    def similar_items(self, items: np.ndarray, k: int) -> Recommendations:
        """The ``k`` items whose factors are closest (cosine) to each given item's.

        Args:
            items: (n,) item indices (1..n_items-1).
            k: Neighbours per item.

        Returns:
            Recommendations per item, never the item itself nor padding; an item without
            factors (never in training) has no neighbours (-1).

        Raises:
            InputError: If an index is out of range.
        """
        check_is_fitted(self, "item_factors_")
        assert self.n_items_ is not None
        items = np.asarray(items, dtype=np.int64)
        bad = (items < 1) | (items >= self.n_items_)
        if bad.any():
            raise InputError(
                f"similar_items: item index {int(items[bad][0])} is outside "
                f"[1, {self.n_items_ - 1}]"
            )
        embeddings = self._embeddings().astype(np.float32)
        norms = np.linalg.norm(embeddings, axis=1)
        known = norms > 0
        unit = np.divide(
            embeddings, norms[:, None], out=np.zeros_like(embeddings), where=known[:, None]
        )
        with self._blas(self.config.threads):
            cosine = unit[items] @ unit.T  # (n, n_items)
        cosine[:, ~known] = -np.inf
        cosine[~known[items]] = -np.inf
        cosine[np.arange(len(items)), items] = -np.inf
        return top_k(cosine, k)


class ALSConfig(BaseModel):
    """Implicit ALS settings (``implicit.cpu.als.AlternatingLeastSquares``).

    Attributes:
        factors: Latent dimensions.
        regularization: Ridge term of both the fit and the fold-in.
        alpha: Confidence of an observed item is ``alpha * weight`` (unobserved: 1).
        iterations: ALS sweeps (users then items).
        weighting: Matrix values from event counts: ``count``, ``log`` or ``binary``.
        history_len: Last events of a history folded in at score time (``None``: all).
        threads: ``implicit`` native threads while fitting; BLAS threads while scoring.
        seed: Seed of the initial factors.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    factors: int = Field(default=128, ge=1)
    regularization: float = Field(default=0.01, ge=0.0)
    alpha: float = Field(default=40.0, gt=0.0)
    iterations: int = Field(default=15, ge=1)
    weighting: Weighting = "log"
    history_len: int | None = Field(default=5, ge=1)
    threads: int = Field(default=1, ge=1)
    seed: int = 0


class ALS(_MatrixFactorization):
    """Implicit-feedback ALS; histories folded in by an exact least-squares solve."""

    config_class = ALSConfig

    def __init__(self, config: ALSConfig | None = None) -> None:
        super().__init__()
        self.config = config or ALSConfig()

    def _estimator(self) -> Any:
        cpu = _implicit()
        c = self.config
        with self._blas(1):  # implicit warns at construction when BLAS is multi-threaded
            return cpu.als.AlternatingLeastSquares(
                factors=c.factors,
                regularization=c.regularization,
                alpha=c.alpha,
                iterations=c.iterations,
                num_threads=c.threads,
                random_state=c.seed,
            )

    def _fit_factors(self, matrix: sp.csr_matrix) -> np.ndarray:
        estimator = self._estimator()
        with self._blas(1):
            estimator.fit(matrix, show_progress=False)
        factors: np.ndarray = estimator.item_factors
        return factors

    def _fold_in(self, weights: sp.csr_matrix) -> np.ndarray:
        if self._solver is None:  # built once: it caches Y'Y of the item factors
            self._solver = self._estimator()
            self._solver.item_factors = self.item_factors_
        users: np.ndarray = self._solver.recalculate_user(np.arange(weights.shape[0]), weights)
        return users


class BPRConfig(BaseModel):
    """BPR settings (``implicit.cpu.bpr.BayesianPersonalizedRanking``).

    Attributes:
        factors: Latent dimensions (``implicit`` adds an item-bias column).
        learning_rate: SGD step.
        regularization: L2 term of the SGD updates.
        iterations: Epochs over the training pairs.
        fold_in_regularization: Ridge term of the least-squares fold-in at score time.
        fold_in_alpha: Confidence of an observed history item in the fold-in (``alpha * w``).
        weighting: Fold-in weights from event counts (BPR's fit itself treats the matrix as
            binary): ``count``, ``log`` or ``binary``.
        history_len: Last events of a history folded in at score time (``None``: all).
        threads: ``implicit`` native threads while fitting (more than one makes the SGD, and so
            the factors, depend on thread timing); BLAS threads while scoring.
        seed: Seed of the initial factors and the sampling.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    factors: int = Field(default=128, ge=1)
    learning_rate: float = Field(default=0.05, gt=0.0)
    regularization: float = Field(default=0.01, ge=0.0)
    iterations: int = Field(default=100, ge=1)
    fold_in_regularization: float = Field(default=1.0, gt=0.0)
    fold_in_alpha: float = Field(default=10.0, gt=0.0)
    weighting: Weighting = "log"
    history_len: int | None = Field(default=5, ge=1)
    threads: int = Field(default=1, ge=1)
    seed: int = 0


class BPR(_MatrixFactorization):
    """Bayesian personalised ranking; histories folded in by least squares on its factors."""

    config_class = BPRConfig

    def __init__(self, config: BPRConfig | None = None) -> None:
        super().__init__()
        self.config = config or BPRConfig()

    def _fit_factors(self, matrix: sp.csr_matrix) -> np.ndarray:
        cpu = _implicit()
        c = self.config
        with self._blas(1):
            estimator = cpu.bpr.BayesianPersonalizedRanking(
                factors=c.factors,
                learning_rate=c.learning_rate,
                regularization=c.regularization,
                iterations=c.iterations,
                num_threads=c.threads,
                random_state=c.seed,
            )
            estimator.fit(matrix, show_progress=False)
        # (n_items, factors + 1): the last column is the item bias (users hold 1 there).
        factors: np.ndarray = estimator.item_factors
        return factors

    def _fold_in(self, weights: sp.csr_matrix) -> np.ndarray:
        assert self.item_factors_ is not None
        reg = self.config.fold_in_regularization
        if self._solver is None:  # Y'Y + reg I, computed once per fitted model
            y = self.item_factors_.astype(np.float64)
            self._solver = y.T @ y + reg * np.eye(y.shape[1])
        scaled = weights.copy()
        scaled.data = scaled.data * self.config.fold_in_alpha
        return fold_in_least_squares(scaled, self.item_factors_, reg, self._solver)

    def _embeddings(self) -> np.ndarray:
        assert self.item_factors_ is not None
        return self.item_factors_[:, :-1]
