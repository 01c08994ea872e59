"""Reconciled category forecasts add up to the total."""

from __future__ import annotations

import numpy as np
import pytest

from shopseq.errors import InputError
from shopseq.forecast.base import Forecast
from shopseq.forecast.reconcile import reconcile

IDS = ("total/a", "total", "total/b", "total/c")  # total deliberately not first


def _forecast() -> Forecast:
    mean = np.array([[3.0, 4.0], [12.0, 11.0], [5.0, 5.0], [2.0, 1.0]])
    width = np.array([[1.0], [3.0], [1.5], [0.5]]) * np.ones((1, 2))
    ds = np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[us]")
    return Forecast(
        IDS,
        ds,
        mean,
        {80: mean - width, 95: mean - 2 * width},
        {80: mean + width, 95: mean + 2 * width},
    )


def _sums(fc: Forecast) -> None:
    np.testing.assert_allclose(fc.mean[1], fc.mean[[0, 2, 3]].sum(axis=0))


def test_bottom_up_total_is_the_sum_of_categories() -> None:
    fc = reconcile(_forecast(), "bottom_up")
    assert fc.ids == IDS
    _sums(fc)
    np.testing.assert_allclose(fc.mean[0], [3.0, 4.0])  # bottom series unchanged
    for lv in (80, 95):
        assert np.all(fc.lower[lv] <= fc.mean) and np.all(fc.mean <= fc.upper[lv])
    assert np.all(fc.upper[95] - fc.lower[95] > fc.upper[80] - fc.lower[80])


def test_mint_shrink_sums_and_moves_every_level() -> None:
    rng = np.random.default_rng(0)
    bottom = rng.normal(5, 1, (3, 30))
    actual = np.vstack([bottom[0], bottom.sum(0), bottom[1], bottom[2]])
    fitted = actual + rng.normal(0, 1, actual.shape)
    fc = reconcile(_forecast(), "mint_shrink", actual=actual, fitted=fitted)
    _sums(fc)
    assert fc.mean[1, 0] != 12.0 and fc.mean[1, 0] != 10.0  # between base total and bottom sum


def test_mint_shrink_needs_past_errors() -> None:
    with pytest.raises(InputError, match="mint_shrink needs past errors"):
        reconcile(_forecast(), "mint_shrink")


def test_a_flat_panel_is_not_a_hierarchy() -> None:
    fc = _forecast()
    flat = Forecast(("x", "y", "z", "w"), fc.ds, fc.mean, fc.lower, fc.upper)
    with pytest.raises(InputError, match="a hierarchy needs 'total'"):
        reconcile(flat)
