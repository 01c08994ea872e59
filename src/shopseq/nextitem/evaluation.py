"""The next-item evaluation protocol: run a model over evaluation cases and rank every target.

:func:`rank_cases` runs a :class:`Scorer` over :class:`~shopseq.sequences.EvalCases` in batches
whose size is bounded by ``max_cells`` (cases x items), so a 100k-item catalogue never needs more
than a few hundred MB. The metrics themselves are pure functions in ``metrics/ranking.py``.
:func:`validation_ndcg` is what the neural models hand to the training loop for early stopping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.errors import InputError
from shopseq.metrics.ranking import (
    DEFAULT_KS,
    average_popularity,
    catalogue_coverage,
    ndcg_at_k,
    per_case_metric,
    sampled_target_ranks,
    summarize,
    target_ranks,
    top_k,
)
from shopseq.metrics.stats import bootstrap_ci
from shopseq.sequences import EvalCases, Sequences

__all__ = [
    "RankingConfig",
    "RankingResult",
    "Scorer",
    "history_length",
    "rank_cases",
    "sample_cases",
    "score_in_batches",
    "validation_ndcg",
]


class Scorer(Protocol):
    """What evaluation needs from a model (``NextItemModel`` satisfies it structurally)."""

    def score(self, histories: Sequences) -> np.ndarray:
        """Return (n_histories, n_items) float scores, higher is better; column 0 is padding."""
        ...


def history_length(model: object, max_history: int | None) -> int | None:
    """How many of a history's most recent events ``model`` is given, in evaluation and serving.

    The model's own ``max_history`` (SASRec's and GRU4Rec's ``max_len``), capped by the
    evaluator's ``max_history``; the run directory stores histories cut to exactly this, so what
    ``recommend`` and the service answer from is what the leaderboard measured.

    Args:
        model: A next-item model (or any scorer; one without ``max_history`` reads all it gets).
        max_history: The evaluator's cap (``RankingConfig.max_history``; ``None``: none).

    Returns:
        The length, or ``None`` for whole histories.
    """
    own = getattr(model, "max_history", None)
    if own is None or max_history is None:
        return own if max_history is None else max_history
    return min(int(own), max_history)


class RankingConfig(BaseModel):
    """How to rank evaluation cases.

    Attributes:
        ks: Cut-offs of the metrics.
        exclude_seen: Remove the history's items from the ranking (recorded in results).
        max_history: Give models at most this many most recent events per history (a model
            that reads fewer gets its own ``max_history``; see :func:`history_length`).
        batch_size: Cases per ``score`` call (upper bound; see ``max_cells``).
        max_cells: Upper bound of cases x items per batch (bounds memory on big catalogues).
        sampled_negatives: Rank among this many uniform negatives instead of the full catalogue
            (only to compare with papers that did so; ``None`` = full ranking).
        coverage_k: Cut-off of coverage and average popularity.
        n_bootstrap: Bootstrap resamples for the confidence intervals (0 = none).
        seed: Seed of negatives and bootstrap.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ks: tuple[int, ...] = DEFAULT_KS
    exclude_seen: bool = True
    max_history: int | None = Field(default=200, gt=0)
    batch_size: int = Field(default=2048, gt=0)
    max_cells: int = Field(default=1 << 25, gt=0)
    sampled_negatives: int | None = Field(default=None, gt=0)
    coverage_k: int = Field(default=10, gt=0)
    n_bootstrap: int = Field(default=1000, ge=0)
    seed: int = 0

    @property
    def protocol(self) -> str:
        """``full`` or ``sampled-N``, with ``, seen excluded`` when filtering."""
        base = "full" if self.sampled_negatives is None else f"sampled-{self.sampled_negatives}"
        return base + (", seen excluded" if self.exclude_seen else "")


@dataclass(frozen=True, slots=True)
class RankingResult:
    """Ranks and metrics of one model on one set of cases.

    Attributes:
        ranks: (n_cases,) 0-based ranks (``n_items`` = miss).
        metrics: ``HR@k``, ``MRR@k``, ``NDCG@k``.
        ci: 95 % bootstrap interval of each metric.
        coverage: Catalogue coverage at ``coverage_k`` (``None`` under sampled ranking).
        avg_popularity: Mean training count of recommended items (``None`` when sampled).
        n_cases: Cases ranked.
        n_cold_targets: Cases whose target is unknown to the model (counted as misses).
        protocol: ``full`` / ``sampled-N`` and whether seen items were excluded.
        exclude_seen: Whether seen items were excluded.
        seconds: Wall time of scoring and ranking.
    """

    ranks: np.ndarray
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    coverage: float | None
    avg_popularity: float | None
    n_cases: int
    n_cold_targets: int
    protocol: str
    exclude_seen: bool
    seconds: float


def rank_cases(
    scorer: Scorer,
    cases: EvalCases,
    n_items: int,
    config: RankingConfig,
    item_counts: np.ndarray | None = None,
) -> RankingResult:
    """Score every case's history in batches and rank its target.

    Args:
        scorer: The model.
        cases: Evaluation cases.
        n_items: Vocabulary size including padding (the model's score width).
        config: Protocol and options.
        item_counts: (n_items,) training counts, for average popularity.

    Returns:
        Ranks, metrics, bootstrap intervals, coverage and timing.

    Raises:
        InputError: If the scorer returns the wrong shape.
    """
    n = len(cases)
    rows_per_batch = max(1, min(config.batch_size, config.max_cells // max(n_items, 1)))
    history_len = history_length(scorer, config.max_history)
    rng = np.random.default_rng(config.seed)
    ranks = np.empty(n, dtype=np.int64)
    n_negatives = config.sampled_negatives
    full = n_negatives is None
    tops = np.empty((n if full else 0, config.coverage_k), dtype=np.int32)
    start = time.perf_counter()
    for lo in range(0, n, rows_per_batch):
        batch = np.arange(lo, min(lo + rows_per_batch, n))
        histories = cases.histories(history_len, batch)
        scores = scorer.score(histories)
        if scores.shape != (len(batch), n_items):
            raise InputError(
                f"{type(scorer).__name__}.score returned shape {scores.shape}; "
                f"expected {(len(batch), n_items)}"
            )
        # The full history (not only the truncated one given to the model) is what was seen.
        seen = cases.histories(None, batch) if config.exclude_seen else None
        targets = cases.targets[batch]
        if n_negatives is None:
            ranks[batch] = target_ranks(scores, targets, seen)
            tops[batch] = top_k(scores, config.coverage_k, seen).items
        else:
            all_seen = seen if seen is not None else cases.histories(None, batch)
            ranks[batch] = sampled_target_ranks(scores, targets, all_seen, n_negatives, rng)
    seconds = time.perf_counter() - start
    metrics = summarize(ranks, config.ks)
    ci: dict[str, tuple[float, float]] = {}
    if config.n_bootstrap and n:
        names = list(metrics)
        per_case = np.stack([per_case_metric(ranks, name) for name in names])
        bounds = bootstrap_ci(per_case, config.n_bootstrap, seed=config.seed)
        ci = {name: (float(lo), float(hi)) for name, (lo, hi) in zip(names, bounds, strict=True)}
    counts = item_counts if item_counts is not None else np.zeros(n_items)
    return RankingResult(
        ranks=ranks,
        metrics=metrics,
        ci=ci,
        coverage=catalogue_coverage(tops, n_items) if full else None,
        avg_popularity=average_popularity(tops, counts) if full else None,
        n_cases=n,
        n_cold_targets=int(np.count_nonzero(cases.targets <= 0)),
        protocol=config.protocol,
        exclude_seen=config.exclude_seen,
        seconds=seconds,
    )


def sample_cases(cases: EvalCases, n: int | None, seed: int) -> EvalCases:
    """A seeded random sample of ``n`` cases, kept in their order (all of them when fewer).

    Args:
        cases: The cases.
        n: How many (``None``: all).
        seed: Seed of the draw (the same seed draws the same cases).

    Returns:
        The sample.
    """
    if n is None or n >= len(cases):
        return cases
    chosen = np.random.default_rng(seed).choice(len(cases), n, replace=False)
    return cases.subset(np.sort(chosen))


def score_in_batches(
    score: Callable[[Sequences], np.ndarray], cases: EvalCases, max_len: int | None, batch: int
) -> Iterator[tuple[np.ndarray, np.ndarray, Sequences]]:
    """Yield ``(case numbers, scores, histories)`` chunk by chunk (memory stays batch x n_items).

    Args:
        score: The model's scoring function.
        cases: Evaluation cases.
        max_len: History length given to the model (most recent events).
        batch: Cases per chunk.

    Yields:
        Case numbers of the chunk, their (len, n_items) scores, and their full histories (for the
        seen-item filter; not truncated, so an item seen long ago is still excluded).
    """
    for start in range(0, len(cases), batch):
        chunk = np.arange(start, min(start + batch, len(cases)))
        yield chunk, score(cases.histories(max_len, chunk)), cases.histories(None, chunk)


def validation_ndcg(
    score: Callable[[Sequences], np.ndarray],
    cases: EvalCases,
    *,
    k: int,
    max_len: int | None,
    exclude_seen: bool,
    batch: int = 512,
) -> float:
    """Mean NDCG@k of the targets under full ranking (ties pessimistic, per ``evaluate.ranking``).

    Args:
        score: The model's scoring function.
        cases: Validation cases.
        k: Cut-off.
        max_len: History length given to the model.
        exclude_seen: Remove the history's items from the ranking.
        batch: Cases scored at once.

    Returns:
        The mean NDCG@k (0.0 without cases).
    """
    if len(cases) == 0:
        return 0.0
    ranks = [
        target_ranks(scores, cases.targets[chunk], histories if exclude_seen else None)
        for chunk, scores, histories in score_in_batches(score, cases, max_len, batch)
    ]
    return float(np.mean(ndcg_at_k(np.concatenate(ranks), k)))
