"""The forecasting contract, and what every forecaster shares.

The :class:`Forecast` result, the :class:`Forecaster` protocol, interval levels, zero-clipped
assembly that puts closed periods at exactly 0 (:func:`make_forecast`, :func:`finish_forecast`),
event flags, split-conformal half-widths, and which series a model suits (:func:`suits`).

Every model in this folder satisfies :class:`Forecaster` (``fit(panel) -> self``,
``predict(horizon, levels) -> Forecast``); the backtest and the selection rely on nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal, Protocol, Self, runtime_checkable

import numpy as np

from shopseq.errors import InputError
from shopseq.forecast.series import Freq, Panel

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "Forecast",
    "Forecaster",
    "UpdatableForecaster",
    "check_levels",
    "conformal_halfwidths",
    "event_indicator",
    "finish_forecast",
    "intermittent_series",
    "make_forecast",
    "min_periods",
    "nonnegative_series",
    "scope_of",
    "suits",
]

#: Which series a forecaster is meant for: ``any``, or only ``intermittent`` (mostly-zero) ones.
Scope = Literal["any", "intermittent"]


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
        closed: ``(horizon,)`` True on periods the shop is closed (forecast exactly 0 there), or
            ``None`` when nothing is closed.
    """

    ids: tuple[str, ...]
    ds: np.ndarray
    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    closed: np.ndarray | None = None

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
            self.closed,
        )

    def to_long(self, model: str | None = None) -> pl.DataFrame:
        """Nixtla-style long frame.

        Args:
            model: Name added as a ``model`` column when given.

        Returns:
            Columns ``unique_id, ds, mean, lo-80, hi-80, ...`` (levels ascending) and ``closed``.
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
        closed = np.zeros(h, dtype=bool) if self.closed is None else self.closed
        columns["closed"] = np.tile(closed, n)
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


def event_indicator(ds: np.ndarray, freq: Freq, dates: Sequence[date]) -> np.ndarray:
    """1.0 for periods that fall on one of ``dates`` (holidays, promotions), else 0.0.

    Known in advance, so it can be used for future periods too.

    Args:
        ds: Period starts (datetime64).
        freq: Period length (unused beyond documentation: both days and hours map to their date).
        dates: Event days.

    Returns:
        ``(len(ds),)`` float64 indicator.
    """
    del freq
    if not dates:
        return np.zeros(len(ds))
    days = np.asarray(ds).astype("datetime64[D]")
    wanted = np.array([np.datetime64(d, "D") for d in dates])
    return np.isin(days, wanted).astype(np.float64)


def make_forecast(
    panel: Panel,
    mean: np.ndarray,
    halfwidth: dict[int, np.ndarray] | None = None,
    lower: dict[int, np.ndarray] | None = None,
    upper: dict[int, np.ndarray] | None = None,
) -> Forecast:
    """Assemble a :class:`Forecast` after ``panel``: clipped at zero, closed periods at zero.

    Args:
        panel: The history forecast from.
        mean: ``(n_series, h)`` point forecasts.
        halfwidth: Level -> symmetric half-widths (or give ``lower`` and ``upper``).
        lower: Level -> lower bounds.
        upper: Level -> upper bounds.

    Returns:
        The forecast.
    """
    h = mean.shape[1]
    if halfwidth is not None:
        lower = {lv: mean - w for lv, w in halfwidth.items()}
        upper = {lv: mean + w for lv, w in halfwidth.items()}
    raw = Forecast(panel.ids, panel.future_ds(h), mean, dict(lower or {}), dict(upper or {}))
    return finish_forecast(raw, nonnegative_series(panel), panel.future_closed(h))


def nonnegative_series(panel: Panel) -> np.ndarray:
    """Series whose history never went below zero (counts, revenue without returns).

    Args:
        panel: The history.

    Returns:
        ``(n_series,)`` bool.
    """
    return np.asarray(~(np.nan_to_num(panel.y, nan=0.0) < 0).any(axis=1))


def finish_forecast(forecast: Forecast, nonneg: np.ndarray, closed: np.ndarray) -> Forecast:
    """Clip non-negative series at zero and put closed periods at exactly 0 (0-width interval).

    Every forecast ends here -- each model's, and again the final one after combining and
    reconciling (reconciliation can move a bound below zero or a closed day off zero).
    Clipping at zero never loses coverage of a non-negative truth: a true value ``>= 0`` inside
    ``[lo, hi]`` is inside ``[max(lo, 0), max(hi, 0)]`` too.

    Args:
        forecast: A forecast.
        nonneg: ``(n_series,)`` series that cannot go below zero.
        closed: ``(horizon,)`` closed periods.

    Returns:
        The finished forecast (``closed`` recorded on it).
    """
    clip = np.asarray(nonneg, dtype=bool)[:, None]
    shut = np.asarray(closed, dtype=bool)[None, :]

    def finish(values: np.ndarray) -> np.ndarray:
        values = np.where(clip, np.maximum(values, 0.0), values)
        return np.where(shut, 0.0, values)

    return Forecast(
        forecast.ids,
        forecast.ds,
        finish(forecast.mean),
        {lv: finish(v) for lv, v in forecast.lower.items()},
        {lv: finish(v) for lv, v in forecast.upper.items()},
        np.asarray(closed, dtype=bool) if np.any(closed) else None,
    )


def scope_of(model: Forecaster) -> Scope:
    """Which series ``model`` is meant for (its ``scope`` attribute; ``any`` when it has none).

    Intermittent-demand models (Croston and its kin) set ``scope = "intermittent"``: they are
    candidates only on intermittent series (:func:`intermittent_series`).

    Args:
        model: A forecaster.

    Returns:
        ``any`` or ``intermittent``.
    """
    return "intermittent" if getattr(model, "scope", "any") == "intermittent" else "any"


def suits(scope: str, intermittent: np.ndarray) -> np.ndarray:
    """Whether a model of ``scope`` is a candidate for each series.

    Args:
        scope: ``any`` or ``intermittent`` (:func:`scope_of`).
        intermittent: ``(n_series,)`` whether each series is intermittent.

    Returns:
        ``(n_series,)`` bool.
    """
    flags = np.asarray(intermittent, dtype=bool)
    return flags.copy() if scope == "intermittent" else np.ones_like(flags)


def intermittent_series(
    panel: Panel, adi_threshold: float, window: int | None = None
) -> np.ndarray:
    """Series with intermittent demand: mean interval between non-zero periods above a threshold.

    The average demand interval (ADI: open, observed periods per non-zero period) is the
    classification of Syntetos, Boylan & Croston (2005); their cut-off is 1.32, i.e. about a
    quarter or more of the periods empty.

    Args:
        panel: History.
        adi_threshold: ADI above which a series is intermittent.
        window: Most recent periods looked at (``None``: the whole history).

    Returns:
        ``(n_series,)`` bool.
    """
    y = panel.y if window is None else panel.y[:, -window:]
    open_ = ~(panel.closed if window is None else panel.closed[-window:])
    seen = np.isfinite(y) & open_[None, :]
    n_seen = seen.sum(axis=1)
    n_positive = (seen & (np.nan_to_num(y) > 0)).sum(axis=1)
    adi = np.where(n_positive > 0, n_seen / np.maximum(n_positive, 1), np.inf)
    return np.asarray((adi > adi_threshold) & (n_seen > 0))


def min_periods(model: Forecaster, panel: Panel) -> int:
    """Fewest history periods ``model`` can be fitted on (2 unless the model says more).

    Args:
        model: A forecaster, optionally with a ``min_periods(season_length)`` method.
        panel: The panel (for its season length).

    Returns:
        Periods.
    """
    method = getattr(model, "min_periods", None)
    return int(method(panel.season_length)) if callable(method) else 2


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
