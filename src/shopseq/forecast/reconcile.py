"""Make category forecasts add up to the total (Nixtla ``hierarchicalforecast``).

Two methods, on the total -> category hierarchy of ``sequences.series``:

* ``bottom_up`` -- the total is the sum of the category forecasts.
* ``mint_shrink`` -- MinT with a shrunk error covariance (Wickramasuriya, Athanasopoulos &
  Hyndman 2019): every level's forecast moves by the least amount, weighted by how large and
  correlated its errors are, that makes them coherent. The errors are backtest errors.

Intervals are reconciled under a normal approximation (``intervals_method="normality"``), with
each base forecast's standard deviation read off its 95 % interval.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from shopseq.errors import InputError
from shopseq.forecast.base import Forecast
from shopseq.forecast.series import summing_matrix

__all__ = ["ReconcileMethod", "reconcile"]

ReconcileMethod = Literal["bottom_up", "mint_shrink"]


def reconcile(
    forecast: Forecast,
    method: ReconcileMethod = "bottom_up",
    *,
    actual: np.ndarray | None = None,
    fitted: np.ndarray | None = None,
) -> Forecast:
    """Reconcile a total -> category forecast so categories sum to the total.

    Args:
        forecast: Base forecasts of ``total`` and every ``total/<category>`` series.
        method: ``bottom_up`` or ``mint_shrink``.
        actual: ``(n_series, k)`` true values of past forecasts (backtest), for ``mint_shrink``.
        fitted: ``(n_series, k)`` the matching past forecasts.

    Returns:
        The coherent forecast (same ids and order).

    Raises:
        InputError: If the ids do not form the hierarchy, or ``mint_shrink`` lacks errors.
    """
    from hierarchicalforecast.methods import BottomUp, MinTrace

    s, bottom = summing_matrix(forecast.ids)
    # hierarchicalforecast expects the bottom series as the last rows of S: total first.
    order = np.concatenate([np.setdiff1d(np.arange(len(forecast.ids)), bottom), bottom])
    s = s[order]
    y_hat = forecast.mean[order]
    levels = sorted(forecast.upper)
    sigmah = None
    if levels:
        top = levels[-1]
        width = forecast.upper[top][order] - forecast.lower[top][order]
        # scipy.stats costs ~0.5 s to import: only when intervals are reconciled, not for --help.
        from scipy.stats import norm

        sigmah = np.maximum(width / (2 * norm.ppf(0.5 + top / 200)), 1e-9)
    intervals = {"level": levels or None, "intervals_method": "normality" if levels else None}
    if method == "bottom_up":
        out = BottomUp().fit_predict(S=s, y_hat=y_hat, sigmah=sigmah, **intervals)
    elif method == "mint_shrink":
        if actual is None or fitted is None:
            raise InputError("mint_shrink needs past errors: pass actual= and fitted= (backtest)")
        ok = np.isfinite(actual).all(axis=0) & np.isfinite(fitted).all(axis=0)
        if ok.sum() < 2:
            raise InputError("mint_shrink needs at least 2 complete past periods of errors")
        out = MinTrace(method="mint_shrink").fit_predict(
            S=s,
            y_hat=y_hat,
            y_insample=actual[order][:, ok],
            y_hat_insample=fitted[order][:, ok],
            sigmah=sigmah,
            **intervals,
        )
    else:
        raise InputError(
            f"The 'method' parameter of reconcile must be 'bottom_up' or 'mint_shrink'. "
            f"Got {method!r} instead."
        )
    back = np.argsort(order)
    mean = np.asarray(out["mean"], dtype=np.float64)[back]
    lower: dict[int, np.ndarray] = {}
    upper: dict[int, np.ndarray] = {}
    if levels:
        # Quantiles come back sorted: position of each level's (lower, upper) quantile.
        qs = sorted([(100 - lv) / 200 for lv in levels] + [1 - (100 - lv) / 200 for lv in levels])
        quantiles = np.asarray(out["quantiles"], dtype=np.float64)[back]
        for lv in levels:
            lower[lv] = quantiles[..., qs.index((100 - lv) / 200)]
            upper[lv] = quantiles[..., qs.index(1 - (100 - lv) / 200)]
    return Forecast(forecast.ids, forecast.ds, mean, lower, upper)
