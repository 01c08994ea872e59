"""Classification, calibration and regression metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from shopseq.errors import InputError
from shopseq.metrics.classification import (
    accuracy,
    binary_metrics,
    bootstrap_metric,
    brier_score,
    expected_calibration_error,
    f1_at_threshold,
    gains_curve,
    lift_at_fraction,
    log_loss,
    macro_f1,
    mean_absolute_error,
    median_absolute_error,
    multiclass_log_loss,
    paired_bootstrap,
    pr_auc,
    reliability_curve,
    roc_auc,
    spearman,
)

Y = np.array([1, 0, 1, 0, 0])
P = np.array([0.9, 0.8, 0.4, 0.4, 0.1])


def test_roc_auc_counts_pairs_and_half_ties() -> None:
    # Positive-negative pairs: (0.9 vs 0.8, 0.4, 0.1) all won; (0.4 vs 0.8) lost, vs 0.4 tie,
    # vs 0.1 won: (3 + 0 + 0.5 + 1) / 6.
    assert roc_auc(Y, P) == pytest.approx(4.5 / 6)
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 500), np.round(rng.random(500), 1)
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert math.isnan(roc_auc(np.zeros(3), P[:3]))


def test_probability_scores_match_hand_values() -> None:
    assert pr_auc(Y, P) == pytest.approx((1 / 1 + 2 / 4) / 2)  # precision at each positive
    expected = -np.mean(np.log([0.9, 0.2, 0.4, 0.6, 0.9]))
    assert log_loss(Y, P) == pytest.approx(expected)
    assert brier_score(Y, P) == pytest.approx(np.mean([0.01, 0.64, 0.36, 0.16, 0.01]))
    with pytest.raises(InputError, match="equally long and non-empty; got 5 and 2"):
        log_loss(Y, P[:2])


def test_reliability_curve_keeps_empty_bins_and_ece_weights_by_count() -> None:
    curve = reliability_curve(Y, P, n_bins=2)
    np.testing.assert_array_equal(curve.counts, [3, 2])  # [0, .5): .4 .4 .1; [.5, 1]: .9 .8
    np.testing.assert_allclose(curve.mean_predicted, [0.3, 0.85])
    np.testing.assert_allclose(curve.observed_rate, [1 / 3, 0.5])
    assert expected_calibration_error(Y, P, n_bins=2) == pytest.approx(
        (3 * abs(0.3 - 1 / 3) + 2 * abs(0.85 - 0.5)) / 5
    )
    empty = reliability_curve(Y, P, n_bins=4)
    assert empty.counts.tolist() == [1, 2, 0, 2]
    assert math.isnan(empty.observed_rate[2])


def test_threshold_lift_and_gains() -> None:
    # p >= 0.5: cases 0 and 1 -> TP 1, FP 1, FN 1 -> F1 = 2 / 4.
    assert f1_at_threshold(Y, P, 0.5) == pytest.approx(0.5)
    # Top 40 % = 2 cases (0.9, 0.8): 1 positive of 2 over a 40 % base rate.
    assert lift_at_fraction(Y, P, 0.4) == pytest.approx(0.5 / 0.4)
    fractions, captured = gains_curve(Y, P, n_points=5)
    np.testing.assert_allclose(fractions, [0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(captured, [0.5, 0.5, 1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="'fraction' parameter must be in"):
        lift_at_fraction(Y, P, 0.0)
    metrics = binary_metrics(Y, P)
    assert metrics["positive_rate"] == pytest.approx(0.4)
    assert set(metrics) >= {"roc_auc", "pr_auc", "log_loss", "brier", "ece", "f1", "lift"}


def test_multiclass_and_regression_metrics() -> None:
    y = np.array([0, 1, 2, 2])
    predicted = np.array([0, 2, 2, 2])
    assert accuracy(y, predicted) == 0.75
    # Class F1: 0 -> 1, 1 -> 0, 2 -> 2*2/(2*2+1) = 0.8.
    assert macro_f1(y, predicted) == pytest.approx((1 + 0 + 0.8) / 3)
    probabilities = np.array([[0.5, 0.25, 0.25]] * 4)
    assert multiclass_log_loss(y, probabilities) == pytest.approx(
        -np.mean(np.log([0.5, 0.25, 0.25, 0.25]))
    )
    assert mean_absolute_error([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert median_absolute_error([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 25]) == pytest.approx(0.8)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_bootstrap_and_paired_comparison() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    good = y + rng.normal(0, 0.5, 400)
    noise = rng.normal(0, 1, 400)
    low, high = bootstrap_metric(roc_auc, y, good, n_resamples=100)
    assert low < roc_auc(y, good) < high
    better = paired_bootstrap(roc_auc, y, good, noise, n_resamples=100)
    assert better["diff"] > 0.2
    assert better["ci_low"] > 0
    assert better["p_value"] < 0.05
    same = paired_bootstrap(roc_auc, y, good, good, n_resamples=50)
    assert same["diff"] == 0.0
    assert same["p_value"] == 1.0
