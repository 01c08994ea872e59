"""What the neural next-item models (GRU4Rec, SASRec) share on top of the one training loop.

Their configs extend :class:`NeuralNextItemConfig` (the loop's hyper-parameters plus how
validation ranks), and :func:`early_stopping` turns validation cases into the callback the loop
calls after every epoch: full-ranking NDCG@k, ties pessimistic, as the test leaderboard ranks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import Field

from shopseq.nextitem.evaluation import validation_ndcg
from shopseq.sequences import EvalCases, Sequences
from shopseq.training import TrainingConfig

__all__ = ["NeuralNextItemConfig", "early_stopping"]


class NeuralNextItemConfig(TrainingConfig):
    """Training-loop hyper-parameters plus how the neural next-item models validate.

    Attributes:
        valid_k: Cut-off of the validation NDCG.
        valid_sample: Validate on a seeded sample of this many cases (``None``: all of them).
        valid_exclude_seen: Rank validation targets with the history's items removed.
    """

    valid_k: int = Field(default=10, ge=1)
    valid_sample: int | None = Field(default=None, ge=1)
    valid_exclude_seen: bool = True


def early_stopping(
    score: Callable[[Sequences], np.ndarray],
    valid: EvalCases | None,
    config: NeuralNextItemConfig,
    *,
    history_len: int | None,
) -> Callable[[], float] | None:
    """The training loop's validation callback: NDCG@k of ``score`` on ``valid``.

    Args:
        score: The model's scoring function (called in eval mode by the loop).
        valid: Validation cases (``None`` or empty: no early stopping).
        config: The model's config (``valid_k``, ``valid_sample``, ``valid_exclude_seen``, seed).
        history_len: History length the model scores from (validation histories are cut to it).

    Returns:
        The callback, or ``None`` without validation cases.
    """
    if valid is None or len(valid) == 0:
        return None
    cases = valid
    if config.valid_sample is not None and config.valid_sample < len(valid):
        # A fixed seeded sample: every epoch is compared on the same cases.
        rng = np.random.default_rng(config.seed)
        cases = valid.subset(
            np.sort(rng.choice(len(valid), size=config.valid_sample, replace=False))
        )

    def validate() -> float:
        return validation_ndcg(
            score,
            cases,
            k=config.valid_k,
            max_len=history_len,
            exclude_seen=config.valid_exclude_seen,
        )

    return validate
