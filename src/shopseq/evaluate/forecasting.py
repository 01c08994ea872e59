"""Forecast contract and forecast accuracy metrics (MASE, sMAPE, RMSE, interval coverage).

``evaluate`` sits below ``models`` in the stage order, so the structural :class:`Forecaster`
protocol the backtest needs is defined here; model classes in ``models/forecast.py`` satisfy it
without importing anything from there.

Every metric takes ``(n_series, horizon)`` arrays and a ``mask`` of the points to score (gap
periods, whose true value is unknown, are excluded), and returns one value per series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

import numpy as np

from shopseq.errors import InputError
from shopseq.sequences.series import Panel

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "Forecast",
    "Forecaster",
    "UpdatableForecaster",
    "check_levels",
    "conformal_halfwidths",
    "coverage",
    "mase",
    "mase_scale",
    "rmse",
    "smape",
]


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    """Validate interval levels (per cent).

    Args:
        levels: Nominal coverages, e.g. ``(80, 95)``.

    Returns:
        The levels, sorted.

    Raises:
        InputError: If a level is outside (0, 100).
    """
    for level in levels:
        if not 0 < level < 100:
            raise InputError(
                f"The 'levels' parameter must hold integers in the range (0, 100). Got {level}."
            )
    return tuple(sorted(int(level) for level in levels))


@dataclass(frozen=True, slots=True)
class Forecast:
    """Point forecasts and prediction intervals for a panel.

    Attributes:
        ids: Series ids.
        ds: ``(horizon,)`` period starts (datetime64[us]).
        mean: ``(n_series, horizon)`` point forecasts.
        lower: Level (per cent) -> ``(n_series, horizon)`` lower bounds.
        upper: Level -> upper bounds.
    """

    ids: tuple[str, ...]
    ds: np.ndarray
    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]

    @property
    def horizon(self) -> int:
        """Periods forecast."""
        return int(self.mean.shape[1])

    def rows(self, index: np.ndarray | list[int]) -> Forecast:
        """The forecasts of the series at ``index``.

        Args:
            index: Row positions.

        Returns:
            The subset.
        """
        idx = np.asarray(index, dtype=np.int64)
        return Forecast(
            tuple(self.ids[i] for i in idx),
            self.ds,
            self.mean[idx],
            {k: v[idx] for k, v in self.lower.items()},
            {k: v[idx] for k, v in self.upper.items()},
        )

    def to_long(self, model: str | None = None) -> pl.DataFrame:
        """Nixtla-style long frame.

        Args:
            model: Name added as a ``model`` column when given.

        Returns:
            Columns ``unique_id, ds, mean, lo-80, hi-80, ...`` (levels ascending).
        """
        import polars as pl  # the forecast extra; only the frame outputs need it

        n, h = self.mean.shape
        columns: dict[str, object] = {
            "unique_id": np.repeat(np.asarray(self.ids, dtype=object), h).tolist(),
            "ds": np.tile(self.ds, n),
            "mean": self.mean.reshape(-1),
        }
        for level in sorted(self.lower):
            columns[f"lo-{level}"] = self.lower[level].reshape(-1)
            columns[f"hi-{level}"] = self.upper[level].reshape(-1)
        frame = pl.DataFrame(columns)
        return frame.with_columns(model=pl.lit(model)) if model is not None else frame


@runtime_checkable
class Forecaster(Protocol):
    """What the backtest, the CLI and the plan rely on, whichever forecasting model they hold."""

    def fit(self, panel: Panel) -> Self:
        """Learn from the panel's history (resetting earlier state)."""
        ...

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        """Forecast ``horizon`` periods after the fitted history with intervals at ``levels``."""
        ...


@runtime_checkable
class UpdatableForecaster(Forecaster, Protocol):
    """A forecaster that can move to a longer history keeping its fitted parameters."""

    def update(self, panel: Panel) -> Self:
        """Condition on ``panel`` (a longer history of the same series) without refitting."""
        ...


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


def conformal_halfwidths(
    errors: np.ndarray, scale: np.ndarray, levels: Sequence[int], *, min_pool: int = 30
) -> dict[int, np.ndarray]:
    """Split-conformal interval half-widths from held-out forecast errors.

    Absolute errors are divided by each series' scale and pooled across series per horizon step
    (across steps too when fewer than ``min_pool`` series), so one global model's intervals
    adapt to each series' level while using every calibration point.

    Args:
        errors: ``(n_series, h)`` held-out errors (actual - forecast); NaN skipped.
        scale: ``(n_series,)`` positive per-series scales.
        levels: Interval levels (per cent).
        min_pool: Fewest series for per-step quantiles.

    Returns:
        Level -> ``(n_series, h)`` half-widths.
    """
    z = np.abs(errors) / scale[:, None]
    n, h = z.shape
    out: dict[int, np.ndarray] = {}
    for level in check_levels(levels):
        q = level / 100.0
        if n >= min_pool:
            per_step = np.empty(h)
            for j in range(h):
                col = z[:, j][np.isfinite(z[:, j])]
                per_step[j] = _conformal_quantile(col, q)
        else:
            flat = z[np.isfinite(z)]
            per_step = np.full(h, _conformal_quantile(flat, q))
        out[level] = per_step[None, :] * scale[:, None]
    return out


def _conformal_quantile(values: np.ndarray, q: float) -> float:
    if values.size == 0:
        return 0.0
    # Finite-sample correction: the ceil((n + 1) q)-th smallest value guarantees coverage >= q.
    rank = min(int(np.ceil((values.size + 1) * q)), values.size)
    return float(np.sort(values)[rank - 1])
