"""Forecast accuracy metrics: MASE, sMAPE, RMSE and interval coverage (pure functions).

Every metric takes ``(n_series, horizon)`` arrays and a ``mask`` of the points to score (gap
periods, whose true value is unknown, are excluded), and returns one value per series. The
forecast contract, the backtest and the selection that use them live in ``forecast/``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["coverage", "mase", "mase_scale", "rmse", "smape"]


def mase_scale(history: np.ndarray, season_length: int) -> np.ndarray:
    """In-sample mean absolute seasonal difference per series (the MASE denominator).

    Falls back to the lag-1 difference when the history is shorter than two seasons, and to 1 for
    a constant history (so a perfect forecast of a flat series scores 0, not NaN).

    Args:
        history: ``(n_series, t)`` training values (NaN allowed; skipped).
        season_length: Seasonal period.

    Returns:
        ``(n_series,)`` positive scales.
    """
    m = season_length if history.shape[1] > 2 * season_length else 1
    diffs = np.abs(history[:, m:] - history[:, :-m])
    scale = _masked_mean(np.nan_to_num(diffs), np.isfinite(diffs))
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    n = mask.sum(axis=1)
    total = np.where(mask, values, 0.0).sum(axis=1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def mase(actual: np.ndarray, mean: np.ndarray, scale: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean absolute scaled error per series.

    Args:
        actual: ``(n, h)`` true values.
        mean: ``(n, h)`` point forecasts.
        scale: ``(n,)`` from :func:`mase_scale` on each series' training history.
        mask: ``(n, h)`` points to score.

    Returns:
        ``(n,)`` MASE (NaN for a series with no scored point).
    """
    return _masked_mean(np.abs(actual - mean) / scale[:, None], mask)


def smape(actual: np.ndarray, mean: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Symmetric MAPE in per cent (0..200), with 0/0 counted as a perfect 0.

    Args:
        actual: ``(n, h)`` true values.
        mean: ``(n, h)`` point forecasts.
        mask: ``(n, h)`` points to score.

    Returns:
        ``(n,)`` sMAPE.
    """
    denom = np.abs(actual) + np.abs(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denom > 0, 2.0 * np.abs(actual - mean) / denom, 0.0)
    return 100.0 * _masked_mean(ratio, mask)


def rmse(actual: np.ndarray, mean: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Root mean squared error per series.

    Args:
        actual: ``(n, h)`` true values.
        mean: ``(n, h)`` point forecasts.
        mask: ``(n, h)`` points to score.

    Returns:
        ``(n,)`` RMSE.
    """
    return np.asarray(np.sqrt(_masked_mean((actual - mean) ** 2, mask)))


def coverage(
    actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Share of true values inside the interval, per series.

    Args:
        actual: ``(n, h)`` true values.
        lower: ``(n, h)`` lower bounds.
        upper: ``(n, h)`` upper bounds.
        mask: ``(n, h)`` points to score.

    Returns:
        ``(n,)`` coverage in [0, 1].
    """
    inside = ((actual >= lower) & (actual <= upper)).astype(np.float64)
    return _masked_mean(inside, mask)
