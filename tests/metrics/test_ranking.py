"""Ranking metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shopseq.errors import InputError
from shopseq.metrics.ranking import (
    average_popularity,
    catalogue_coverage,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    sampled_target_ranks,
    summarize,
    target_ranks,
    top_k,
)
from shopseq.metrics.stats import bootstrap_ci, paired_test
from shopseq.nextitem.evaluation import RankingConfig, rank_cases
from shopseq.sequences import EvalCases, Sequences

NEG = -np.inf
#                  pad   1    2    3    4    5
SCORES = np.array(
    [
        [NEG, 0.9, 0.5, 0.5, 0.1, 0.5],  # target 3 ties with 2 and 5: pessimistic rank 3
        [NEG, 0.1, 0.2, 0.3, 0.4, 0.5],  # target 5 is best: rank 0
        [NEG, 0.5, 0.4, 0.3, 0.2, 0.1],  # target -1 (cold start): miss
        [0.9, 0.1, 0.1, 0.1, 0.1, 0.1],  # all equal; padding never counts: rank 4
    ],
    dtype=np.float32,
)
TARGETS = np.array([3, 5, -1, 1])


def test_ties_are_pessimistic_and_cold_start_is_a_miss() -> None:
    ranks = target_ranks(SCORES, TARGETS)
    np.testing.assert_array_equal(ranks, [3, 0, 6, 4])


def test_exclude_seen_removes_history_items_from_competitors() -> None:
    seen = Sequences.from_lists([[2, 1], [], [1], [2, 3, 2, -1]])
    ranks = target_ranks(SCORES, TARGETS, seen)
    # row 0: competitors >= 0.5 left are 5 only (1 and 2 seen) -> 1; row 3: 4 and 5 -> 2.
    np.testing.assert_array_equal(ranks, [1, 0, 6, 2])


def test_target_in_history_is_a_miss_when_excluding_seen() -> None:
    seen = Sequences.from_lists([[3], [], [], []])
    assert target_ranks(SCORES, TARGETS, seen)[0] == 6


def test_metrics_from_ranks_match_hand_computation() -> None:
    ranks = np.array([0, 1, 4, 10, 6])
    assert hit_rate_at_k(ranks, 1) == pytest.approx(1 / 5)
    assert hit_rate_at_k(ranks, 5) == pytest.approx(3 / 5)
    assert mrr_at_k(ranks, 5) == pytest.approx((1 + 1 / 2 + 1 / 5) / 5)
    assert ndcg_at_k(ranks, 5) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5)
    assert ndcg_at_k(ranks, 20) == pytest.approx(
        (1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(12) + 1 / math.log2(8)) / 5
    )
    metrics = summarize(ranks, (1, 10))
    assert set(metrics) == {"HR@1", "MRR@1", "NDCG@1", "HR@10", "MRR@10", "NDCG@10"}
    assert metrics["HR@10"] == pytest.approx(4 / 5)  # rank 10 is the 11th item: a miss


def test_metric_rejects_bad_k() -> None:
    with pytest.raises(InputError, match=r"'k' parameter of the metrics must be >= 1\. Got 0"):
        ndcg_at_k(np.array([0]), 0)


def test_top_k_is_deterministic_and_skips_padding() -> None:
    recs = top_k(SCORES, 3)
    np.testing.assert_array_equal(recs.items[0], [1, 2, 3])  # ties: smaller index first
    assert 0 not in recs.items[3]


def test_top_k_on_wide_rows_matches_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((20, 5000)).astype(np.float32)
    seen = Sequences.from_lists([rng.integers(1, 5000, 30).tolist() for _ in range(20)])
    recs = top_k(scores, 10, seen)
    masked = scores.copy()
    masked[:, 0] = -np.inf
    for row in range(20):
        masked[row, seen.items_of(row)] = -np.inf
    np.testing.assert_array_equal(recs.items, np.argsort(-masked, axis=1)[:, :10])


@pytest.mark.parametrize("width", [50, 5000])  # the plain path and the blocked one
def test_top_k_breaks_ties_at_the_cut_by_the_smaller_index(width: int) -> None:
    # Integer scores (counts, as popularity and Markov give) tie at the k-th place; the items
    # kept must be the smallest indices among the tied ones, as a stable full sort keeps them.
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(30, width)).astype(np.float32)
    recs = top_k(scores, 10)
    masked = scores.copy()
    masked[:, 0] = -np.inf
    want = np.argsort(-masked, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(recs.items, want)
    np.testing.assert_array_equal(recs.scores, np.take_along_axis(masked, want, axis=1))


def test_coverage_and_average_popularity() -> None:
    tops = np.array([[1, 2], [1, -1]])
    assert catalogue_coverage(tops, n_items=5) == pytest.approx(2 / 4)
    counts = np.array([0, 10, 4, 0, 0])
    assert average_popularity(tops, counts) == pytest.approx((10 + 4 + 10) / 3)


def test_sampled_ranks_never_draw_history_or_target() -> None:
    rng = np.random.default_rng(0)
    n_items = 12
    # Item 11 scores highest; it is in the history so it must never be drawn as a negative.
    scores = np.tile(np.arange(n_items, dtype=np.float32), (50, 1))
    seen = Sequences.from_lists([[11, 10] for _ in range(50)])
    ranks = sampled_target_ranks(scores, np.full(50, 9), seen, 5, rng)
    np.testing.assert_array_equal(ranks, np.zeros(50))
    ranks_low = sampled_target_ranks(scores, np.full(50, 1), seen, 5, rng)
    np.testing.assert_array_equal(ranks_low, np.full(50, 5))  # every negative beats item 1


class _FixedScorer:
    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def score(self, histories: Sequences) -> np.ndarray:
        # Row i of the batch is the history whose first event is item i's row marker.
        return self.scores[histories.owner]


def test_rank_cases_batches_and_records_protocol() -> None:
    seqs = Sequences.from_lists([[1, 3], [2, 5], [4, 1], [5, 1]])
    cases = EvalCases(seqs, np.arange(4), np.ones(4, dtype=np.int64), seqs.items[[1, 3, 5, 7]])
    scorer = _FixedScorer(SCORES)
    result = rank_cases(scorer, cases, 6, RankingConfig(batch_size=3, n_bootstrap=50))
    # targets 3, 5, 1, 1 (owner rows 0..3); seen 1, 2, 4, 5 respectively.
    expected = target_ranks(SCORES, np.array([3, 5, 1, 1]), cases.histories())
    np.testing.assert_array_equal(result.ranks, expected)
    assert result.protocol == "full, seen excluded"
    assert result.exclude_seen
    assert result.coverage is not None and 0 < result.coverage <= 1
    lo, hi = result.ci["HR@1"]
    assert lo <= result.metrics["HR@1"] <= hi


def test_rank_cases_rejects_wrong_score_width() -> None:
    seqs = Sequences.from_lists([[1, 2]])
    cases = EvalCases(seqs, np.array([0]), np.array([1]), np.array([2]))
    with pytest.raises(InputError, match=r"returned shape \(1, 6\); expected \(1, 7\)"):
        rank_cases(_FixedScorer(SCORES), cases, 7, RankingConfig(n_bootstrap=0))


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(1)
    small = rng.random(100) < 0.3
    large = rng.random(10_000) < 0.3
    lo_s, hi_s = bootstrap_ci(small.astype(float), 500, seed=0)
    lo_l, hi_l = bootstrap_ci(large.astype(float), 500, seed=0)
    assert lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 5
    # Binomial standard error at n=10,000: 95 % half-width ~ 1.96 * sqrt(.21/1e4) = 0.009.
    assert (hi_l - lo_l) / 2 == pytest.approx(0.009, abs=0.002)
    np.testing.assert_array_equal(
        bootstrap_ci(large.astype(float), 500, seed=0), np.array([lo_l, hi_l])
    )


def test_paired_test_detects_a_real_difference_and_not_a_null_one() -> None:
    rng = np.random.default_rng(2)
    base = (rng.random(2000) < 0.2).astype(float)
    better = np.maximum(base, (rng.random(2000) < 0.1).astype(float))  # strictly more hits
    result = paired_test(better, base, n_resamples=500)
    assert result.diff > 0 and result.ci_low > 0
    assert result.p_value < 0.01
    shuffled = base[rng.permutation(2000)]
    null = paired_test(base, shuffled, n_resamples=500)
    assert null.p_value > 0.05
    wil = paired_test(better, base, method="wilcoxon")
    assert wil.p_value < 0.01 and wil.method == "wilcoxon"


def test_paired_test_rejects_unequal_lengths() -> None:
    with pytest.raises(InputError, match="equally long"):
        paired_test(np.zeros(3), np.zeros(4))
