"""The next-item model contract shared by every model, and the one top-k.

Every model scores all items for a batch of histories (``score``); ranking, seen-item exclusion and
top-k are derived once here (cornac's ``rank()`` from ``score()``), so no model writes its own.

Item indices come from ``sequences.Vocabulary``: 0 is padding (never recommended), 1..n_items-1 are
items, and -1 in a history is an item unknown to the model (cold start), which carries no signal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import numpy as np

from shopseq.errors import check_is_fitted

# The one top-k lives with the ranking metrics (below the models), so evaluation can use it too.
from shopseq.metrics.ranking import Recommendations, top_k
from shopseq.sequences import EvalCases, Sequences

__all__ = ["NextItemModel", "Recommendations", "ScoringModel", "check_is_fitted", "top_k"]


@runtime_checkable
class NextItemModel(Protocol):
    """What the evaluator, the runs layer and the service rely on, whichever model they hold.

    ``max_history`` is how many of a history's most recent events the model reads (``None``: all
    it is given); evaluation and serving both cut histories with
    :func:`shopseq.nextitem.evaluation.history_length`, so what is served is what was measured.
    """

    @property
    def max_history(self) -> int | None:
        """Most recent events of a history the model reads (``None``: every event given)."""
        ...

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


class ScoringModel:
    """Base class that derives ``recommend`` from ``score`` (models only implement ``score``)."""

    @property
    def max_history(self) -> int | None:
        """Most recent events of a history the model reads (``None``: every event given)."""
        return None

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
