"""Full-ranking next-item metrics, and the one top-k (pure functions of scores and ranks).

Stable API (the torch training loop's validation and the leaderboards use it):

* ``target_ranks(scores, targets, seen=None) -> ranks``: the 0-based rank of each target among
  the catalogue, **ties pessimistic** (every other item with a score >= the target's is ranked
  above it). Padding (column 0) never counts; with ``seen`` the items of row ``i``'s history never
  count either, and a target that is itself in the history is a miss (``recommend`` with
  ``exclude_seen`` could never return it). A cold-start target (-1, unknown to the model) or a
  target whose score is NaN is a miss with rank ``n_items``.
* ``hit_rate_at_k(ranks, k)`` (= ``recall_at_k`` with one target), ``mrr_at_k(ranks, k)``,
  ``ndcg_at_k(ranks, k)``: means over cases of ``rank < k``, ``1 / (rank + 1)`` and
  ``1 / log2(rank + 2)`` (0 beyond ``k``). ``*_per_case`` return the per-case values.

Running a model over evaluation cases (``rank_cases``) is the next-item task's protocol and lives
beside its models, in ``nextitem/evaluation.py``. Sampled-negative ranking (1 positive + N uniform
negatives, as the SASRec paper did) is :func:`sampled_target_ranks`, never the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from shopseq.errors import InputError
from shopseq.sequences import Sequences

__all__ = [
    "DEFAULT_KS",
    "Recommendations",
    "average_popularity",
    "catalogue_coverage",
    "hit_rate_at_k",
    "metric_per_case",
    "mrr_at_k",
    "ndcg_at_k",
    "per_case_metric",
    "recall_at_k",
    "sampled_target_ranks",
    "summarize",
    "target_ranks",
    "top_k",
]

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20)
MetricName = Literal["hr", "recall", "mrr", "ndcg"]


@dataclass(frozen=True, slots=True)
class Recommendations:
    """Top-k items per history.

    Attributes:
        items: (n_histories, k) int32 item index, best first; -1 where fewer than k candidates.
        scores: (n_histories, k) float32 score of each item (-inf where items is -1).
    """

    items: np.ndarray
    scores: np.ndarray


def _seen_pairs(seen: Sequences, n_rows: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (row, item) pairs of known items in the histories."""
    if len(seen) != n_rows:
        raise InputError(f"got {n_rows} score rows for {len(seen)} histories")
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), seen.lengths)
    keep = (seen.items > 0) & (seen.items < n_items)
    keys = np.unique(rows[keep] * n_items + seen.items[keep])
    return keys // n_items, keys % n_items


def top_k(scores: np.ndarray, k: int, seen: Sequences | None = None) -> Recommendations:
    """Pick the ``k`` best items per row, never padding and optionally never a seen item.

    Ties are broken deterministically (by the smaller item index among the candidates);
    evaluation ranks ties pessimistically on its own, from the scores.

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
    n, n_items = scores.shape
    k_eff = min(k, n_items)
    # NumPy's argpartition costs ~30 ns per element; on wide rows we first keep the k blocks of
    # _BLOCK items with the largest maxima (together they hold the top k) and partition those.
    blocked = n_items > 8 * k_eff * _BLOCK
    width = -(-n_items // _BLOCK) * _BLOCK if blocked else n_items
    masked = np.full((n, width), -np.inf, dtype=np.float32)
    masked[:, :n_items] = scores
    masked[:, 0] = -np.inf
    if seen is not None:
        rows, items = _seen_pairs(seen, n, n_items)
        masked[rows, items] = -np.inf
    if blocked:
        # Block j holds items j, j + n_blocks, j + 2 n_blocks, ...: the max over axis 1 then runs
        # along contiguous memory (3x faster than maxima of contiguous blocks).
        n_blocks = width // _BLOCK
        block_max = masked.reshape(n, _BLOCK, n_blocks).max(axis=1)
        blocks = np.argpartition(-block_max, k_eff - 1, axis=1)[:, :k_eff]
        candidates = (blocks[:, :, None] + n_blocks * np.arange(_BLOCK)).reshape(n, -1)
    else:
        candidates = np.broadcast_to(np.arange(n_items), (n, n_items))
    cand_scores = np.take_along_axis(masked, candidates, axis=1)
    part = np.argpartition(-cand_scores, k_eff - 1, axis=1)[:, :k_eff]
    part_items = np.take_along_axis(candidates, part, axis=1)
    part_scores = np.take_along_axis(cand_scores, part, axis=1)
    _smallest_indices_at_the_cut(masked, part_items, part_scores)
    order = np.lexsort((part_items, -part_scores), axis=1)
    items_out = np.take_along_axis(part_items, order, axis=1).astype(np.int32)
    best = np.take_along_axis(part_scores, order, axis=1)
    items_out[~np.isfinite(best)] = -1
    if k_eff < k:
        items_out = np.pad(items_out, ((0, 0), (0, k - k_eff)), constant_values=-1)
        best = np.pad(best, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return Recommendations(items=items_out, scores=best.astype(np.float32))


_BLOCK = 64


def _smallest_indices_at_the_cut(
    masked: np.ndarray, part_items: np.ndarray, part_scores: np.ndarray
) -> None:
    """Where items tie at the k-th score, keep the smallest indices among them (in place).

    The partitions above find the k best scores exactly but, among items tied with the k-th
    one, keep an arbitrary subset (and the block step may even skip a block holding a tied
    smaller index). Rows with more tied items than were kept are redone from the full row:
    every item above the k-th score, then the tied ones by index. Finding those rows costs one
    comparison pass over every row (about as much as the block maxima); only rows with ties at
    the cut, frequent for counts and other integer scores and rare for continuous ones, are redone.
    """
    kth = part_scores.min(axis=1)  # (n,) the k-th best score of each row
    tied_kept = (part_scores == kth[:, None]).sum(axis=1)
    tied_all = (masked == kth[:, None]).sum(axis=1)
    # Rows with fewer than k real candidates (k-th score -inf) end in -1 items anyway.
    redo = np.flatnonzero(np.isfinite(kth) & (tied_all > tied_kept))
    k = part_items.shape[1]
    for row in redo:
        line = masked[row]
        above = np.flatnonzero(line > kth[row])
        tied = np.flatnonzero(line == kth[row])[: k - above.size]
        chosen = np.concatenate([above, tied])
        part_items[row] = chosen
        part_scores[row] = line[chosen]


def target_ranks(
    scores: np.ndarray, targets: np.ndarray, seen: Sequences | None = None
) -> np.ndarray:
    """Return the 0-based rank of each target among all items, ties pessimistic.

    Args:
        scores: (n, n_items) scores; column 0 is padding and never counts.
        targets: (n,) target item index; -1 (cold start) is a miss.
        seen: Histories whose items are excluded from the ranking (row i: sequence i). A target
            found in its own history is a miss.

    Returns:
        (n,) int64 ranks; ``n_items`` marks a miss.

    Raises:
        InputError: If the shapes do not match.
    """
    n, n_items = scores.shape
    targets = np.asarray(targets, dtype=np.int64)
    if targets.shape != (n,):
        raise InputError(f"got {len(targets)} targets for {n} score rows")
    valid = (targets > 0) & (targets < n_items)
    safe = np.where(valid, targets, 0)
    row_index = np.arange(n)
    target_score = scores[row_index, safe]
    above = scores >= target_score[:, None]  # (n, n_items) bool
    count = above.sum(axis=1, dtype=np.int64) - above[:, 0] - above[row_index, safe]
    valid &= ~np.isnan(target_score)
    if seen is not None:
        rows, items = _seen_pairs(seen, n, n_items)
        is_target = items == safe[rows]
        valid[rows[is_target]] = False
        other = ~is_target
        np.subtract.at(count, rows[other], above[rows[other], items[other]].astype(np.int64))
    ranks: np.ndarray = np.where(valid, count, n_items).astype(np.int64)
    return ranks


def sampled_target_ranks(
    scores: np.ndarray,
    targets: np.ndarray,
    seen: Sequences,
    n_negatives: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Rank each target among ``n_negatives`` uniformly sampled items (SASRec's protocol).

    Negatives are drawn uniformly from the items that are neither padding, the target nor in the
    history (as in the SASRec paper's evaluation); ties are pessimistic.

    Args:
        scores: (n, n_items) scores.
        targets: (n,) targets; -1 is a miss.
        seen: The histories (their items are never drawn).
        n_negatives: Negatives per case.
        rng: Seeded generator.

    Returns:
        (n,) int64 ranks in ``[0, n_negatives]``; ``n_items`` marks a miss.
    """
    n, n_items = scores.shape
    targets = np.asarray(targets, dtype=np.int64)
    valid = (targets > 0) & (targets < n_items)
    safe = np.where(valid, targets, 0)
    rows, items = _seen_pairs(seen, n, n_items)
    forbidden = np.unique(np.concatenate([rows * n_items + items, np.arange(n) * n_items + safe]))
    negatives = rng.integers(1, n_items, size=(n, n_negatives))
    # Redraw collisions until none is left (vectorised rejection sampling).
    while True:
        keys = np.arange(n)[:, None] * n_items + negatives
        bad = np.isin(keys, forbidden)
        if not bad.any():
            break
        negatives[bad] = rng.integers(1, n_items, size=int(bad.sum()))
    target_score = scores[np.arange(n), safe]
    neg_scores = np.take_along_axis(scores, negatives, axis=1)
    count = (neg_scores >= target_score[:, None]).sum(axis=1, dtype=np.int64)
    valid &= ~np.isnan(target_score)
    ranks: np.ndarray = np.where(valid, count, n_items).astype(np.int64)
    return ranks


def metric_per_case(ranks: np.ndarray, metric: MetricName, k: int) -> np.ndarray:
    """Per-case value of a metric at ``k`` (the mean of it is the metric).

    Args:
        ranks: 0-based ranks from :func:`target_ranks`.
        metric: ``hr`` / ``recall`` (hit), ``mrr`` (1/(rank+1)) or ``ndcg`` (1/log2(rank+2)).
        k: Cut-off.

    Returns:
        (n,) float64 values.

    Raises:
        InputError: For an unknown metric or ``k`` < 1.
    """
    if k < 1:
        raise InputError(f"The 'k' parameter of the metrics must be >= 1. Got {k}.")
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks < k
    if metric in ("hr", "recall"):
        return hit.astype(np.float64)
    if metric == "mrr":
        return np.where(hit, 1.0 / (ranks + 1.0), 0.0)
    if metric == "ndcg":
        return np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    raise InputError(f"unknown metric {metric!r}; expected one of hr, recall, mrr, ndcg")


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def hit_rate_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of cases whose target is in the top ``k``.

    Args:
        ranks: 0-based ranks.
        k: Cut-off.

    Returns:
        HR@k.
    """
    return _mean(metric_per_case(ranks, "hr", k))


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Recall@k with one target per case (equal to :func:`hit_rate_at_k`).

    Args:
        ranks: 0-based ranks.
        k: Cut-off.

    Returns:
        Recall@k.
    """
    return hit_rate_at_k(ranks, k)


def mrr_at_k(ranks: np.ndarray, k: int) -> float:
    """Mean reciprocal rank, 0 beyond ``k``.

    Args:
        ranks: 0-based ranks.
        k: Cut-off.

    Returns:
        MRR@k.
    """
    return _mean(metric_per_case(ranks, "mrr", k))


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item: mean of ``1 / log2(rank + 2)`` for ``rank < k``.

    Args:
        ranks: 0-based ranks.
        k: Cut-off.

    Returns:
        NDCG@k.
    """
    return _mean(metric_per_case(ranks, "ndcg", k))


def summarize(ranks: np.ndarray, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    """HR, MRR and NDCG at every ``k``, keyed ``HR@10`` etc.

    Args:
        ranks: 0-based ranks.
        ks: Cut-offs.

    Returns:
        The metrics.
    """
    out: dict[str, float] = {}
    for k in ks:
        out[f"HR@{k}"] = hit_rate_at_k(ranks, k)
        out[f"MRR@{k}"] = mrr_at_k(ranks, k)
        out[f"NDCG@{k}"] = ndcg_at_k(ranks, k)
    return out


def catalogue_coverage(top_items: np.ndarray, n_items: int) -> float:
    """Share of the catalogue (items 1..n_items-1) recommended to at least one case.

    Args:
        top_items: (n, k) recommended items (-1 = none).
        n_items: Vocabulary size including padding.

    Returns:
        Coverage in [0, 1].
    """
    shown = np.unique(top_items[top_items > 0])
    return float(len(shown) / max(n_items - 1, 1))


def average_popularity(top_items: np.ndarray, item_counts: np.ndarray) -> float:
    """Mean training frequency of the recommended items (popularity bias; lower = more niche).

    Args:
        top_items: (n, k) recommended items (-1 = none).
        item_counts: (n_items,) training events per item.

    Returns:
        The mean count over all recommended slots.
    """
    shown = top_items[top_items > 0]
    return float(item_counts[shown].mean()) if len(shown) else 0.0


def per_case_metric(ranks: np.ndarray, name: str) -> np.ndarray:
    """Per-case values of a metric named like ``NDCG@10`` (``HR``, ``MRR`` or ``NDCG``).

    Args:
        ranks: 0-based ranks.
        name: Metric name and cut-off.

    Returns:
        (n,) float64 values.

    Raises:
        InputError: For a name not of that form.
    """
    metric, _, k = name.partition("@")
    if metric not in _METRIC_KEYS or not k.isdigit():
        raise InputError(f"metric names look like HR@10, MRR@20 or NDCG@10; got {name!r}")
    return metric_per_case(ranks, _METRIC_KEYS[metric], int(k))


_METRIC_KEYS: dict[str, MetricName] = {"HR": "hr", "MRR": "mrr", "NDCG": "ndcg"}
