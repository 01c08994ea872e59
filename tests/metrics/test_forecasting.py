"""Forecast metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from shopseq.errors import InputError
from shopseq.forecast.base import check_levels, conformal_halfwidths
from shopseq.metrics.forecasting import coverage, mase, mase_scale, rmse, smape

ACTUAL = np.array([[10.0, 12.0, 0.0, 8.0]])
MEAN = np.array([[11.0, 9.0, 0.0, 8.0]])
ALL = np.ones_like(ACTUAL, dtype=bool)


def test_mase_scale_is_mean_absolute_seasonal_difference() -> None:
    history = np.array([[1.0, 2.0, 3.0, 5.0, 4.0, 8.0, 7.0]])
    # season 1 fallback (7 <= 2 x 7): |1|,|1|,|2|,|1|,|4|,|1| -> 10 / 6
    assert mase_scale(history, 7)[0] == pytest.approx(10 / 6)
    # season 2 (7 > 4): |2|,|3|,|1|,|3|,|3| -> 12 / 5
    assert mase_scale(history, 2)[0] == pytest.approx(12 / 5)
    assert mase_scale(np.full((1, 20), 3.0), 7)[0] == 1.0  # flat history: scale 1, not 0


def test_point_metrics_by_hand() -> None:
    assert mase(ACTUAL, MEAN, np.array([2.0]), ALL)[0] == pytest.approx((1 + 3 + 0 + 0) / 4 / 2)
    # sMAPE: 2|e|/(|a|+|f|): 2/21, 6/21, 0 (0/0 counts as perfect), 0
    assert smape(ACTUAL, MEAN, ALL)[0] == pytest.approx(100 * (2 / 21 + 6 / 21) / 4)
    assert rmse(ACTUAL, MEAN, ALL)[0] == pytest.approx(np.sqrt((1 + 9) / 4))


def test_masked_points_are_not_scored() -> None:
    mask = np.array([[True, False, True, True]])
    assert rmse(ACTUAL, MEAN, mask)[0] == pytest.approx(np.sqrt(1 / 3))
    assert np.isnan(rmse(ACTUAL, MEAN, np.zeros_like(mask))[0])


def test_coverage_counts_bounds_as_inside() -> None:
    lower, upper = MEAN - 1, MEAN + 1
    # |e| = 1, 3, 0, 0 -> 3 of 4 inside (a bound counts)
    assert coverage(ACTUAL, lower, upper, ALL)[0] == 0.75


def test_conformal_halfwidths_cover_at_least_nominal_on_exchangeable_errors() -> None:
    rng = np.random.default_rng(0)
    scale = rng.uniform(1, 100, 400)
    calib = rng.normal(size=(400, 5)) * scale[:, None]
    fresh = rng.normal(size=(400, 5)) * scale[:, None]
    widths = conformal_halfwidths(calib, scale, (80, 95))
    for level, width in widths.items():
        inside = np.mean(np.abs(fresh) <= width)
        assert level / 100 - 0.04 <= inside <= level / 100 + 0.04


def test_levels_outside_0_100_are_rejected() -> None:
    with pytest.raises(InputError, match=r"'levels' parameter .* Got 100"):
        check_levels((80, 100))
