"""The next-item model contract shared by every model, and the one top-k.

Every model scores all items for a batch of histories (``score``); ranking, seen-item exclusion and
top-k are derived once here (cornac's ``rank()`` from ``score()``), so no model writes its own.

Item indices come from ``sequences.Vocabulary``: 0 is padding (never recommended), 1..n_items-1 are
items, and -1 in a history is an item unknown to the model (cold start), which carries no signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import numpy as np

from shopseq.errors import InputError, NotFittedError
from shopseq.sequences import EvalCases, Sequences

__all__ = ["NextItemModel", "Recommendations", "ScoringModel", "check_is_fitted", "top_k"]


@dataclass(frozen=True, slots=True)
class Recommendations:
    """Top-k items per history.

    Attributes:
        items: (n_histories, k) int32 item index, best first; -1 where fewer than k candidates.
        scores: (n_histories, k) float32 score of each item (-inf where items is -1).
    """

    items: np.ndarray
    scores: np.ndarray


@runtime_checkable
class NextItemModel(Protocol):
    """What the evaluator, the CLI and the service rely on, whichever model they hold."""

    def fit(self, train: Sequences, n_items: int, valid: EvalCases | None = None) -> Self:
        """Learn from training sequences; ``n_items`` is the vocabulary size (padding included)."""
        ...

    def score(self, histories: Sequences) -> np.ndarray:
        """Return (n_histories, n_items) float32 scores, higher is better; column 0 is -inf."""
        ...

    def recommend(
        self, histories: Sequences, k: int, *, exclude_seen: bool = True
    ) -> Recommendations:
        """Return the top ``k`` items per history."""
        ...

    def save(self, directory: Path) -> None:
        """Write the fitted model into ``directory`` (atomically; no pickle)."""
        ...

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild a model written by ``save``."""
        ...


def check_is_fitted(model: object, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``model`` has the learned ``attribute``.

    Args:
        model: The model.
        attribute: A learned attribute (ends in ``_``).

    Raises:
        NotFittedError: If the model was not fitted.
    """
    if getattr(model, attribute, None) is None:
        name = type(model).__name__
        raise NotFittedError(f"{name} is not fitted yet: call fit(train, n_items) before using it")


def top_k(scores: np.ndarray, k: int, seen: Sequences | None = None) -> Recommendations:
    """Pick the ``k`` best items per row, never padding and optionally never a seen item.

    Ties are broken by the smaller item index (deterministic); the evaluator ranks ties
    pessimistically on its own, from the scores.

    Args:
        scores: (n, n_items) float scores.
        k: How many items per row.
        seen: Histories whose items are excluded (row i excludes the items of sequence i).

    Returns:
        The recommendations.

    Raises:
        InputError: If ``k`` < 1 or ``seen`` does not match the rows.
    """
    if k < 1:
        raise InputError(f"The 'k' parameter of recommend must be an int in [1, inf). Got {k}.")
    masked = np.array(scores, dtype=np.float32, copy=True)
    n, n_items = masked.shape
    masked[:, 0] = -np.inf
    if seen is not None:
        if len(seen) != n:
            raise InputError(f"got {n} score rows for {len(seen)} histories")
        rows = np.repeat(np.arange(n), seen.lengths)
        known = seen.items > 0
        masked[rows[known], seen.items[known]] = -np.inf
    k_eff = min(k, n_items)
    # argpartition then sort the k winners: O(n_items) per row instead of a full sort.
    part = np.argpartition(-masked, k_eff - 1, axis=1)[:, :k_eff]
    part_scores = np.take_along_axis(masked, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    items = np.take_along_axis(part, order, axis=1).astype(np.int32)
    best = np.take_along_axis(part_scores, order, axis=1)
    items[~np.isfinite(best)] = -1
    if k_eff < k:
        items = np.pad(items, ((0, 0), (0, k - k_eff)), constant_values=-1)
        best = np.pad(best, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return Recommendations(items=items, scores=best.astype(np.float32))


class ScoringModel:
    """Base class that derives ``recommend`` from ``score`` (models only implement ``score``)."""

    def score(self, histories: Sequences) -> np.ndarray:
        """Score every item for every history (implemented by each model).

        Args:
            histories: The histories.

        Returns:
            (n_histories, n_items) float32 scores.
        """
        raise NotImplementedError

    def recommend(
        self, histories: Sequences, k: int, *, exclude_seen: bool = True
    ) -> Recommendations:
        """Top ``k`` items per history from :meth:`score`.

        Args:
            histories: The histories.
            k: Items per history.
            exclude_seen: Never recommend an item already in the history.

        Returns:
            The recommendations.
        """
        return top_k(self.score(histories), k, seen=histories if exclude_seen else None)
