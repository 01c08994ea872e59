"""One LightGBM model across all series, on lags and calendar features (as mlforecast does).

Each series is divided by its recent level (mean of the last four seasons), so one model learns
shapes shared across series of very different sizes. The model predicts one step ahead and is
applied recursively over the horizon, feeding its own forecasts back as lags.

Intervals are split-conformal: the booster is trained on all targets except each series' last
``horizon`` periods, forecasts those periods recursively, and the absolute errors (scaled per
series, pooled across series per step) give the interval half-widths. The same booster then
forecasts from the full history -- one training run, not two, which is what keeps a 1,000-series
backtest within a minute; the price is that the last ``horizon`` periods only enter as lags.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.errors import InputError, check_is_fitted
from shopseq.forecast.base import (
    Forecast,
    check_levels,
    conformal_halfwidths,
    event_indicator,
    make_forecast,
)
from shopseq.forecast.series import Freq, Panel
from shopseq.metrics.forecasting import mase_scale

__all__ = ["LightGBMForecaster", "LightGBMForecasterConfig"]


class LightGBMForecasterConfig(BaseModel):
    """Global LightGBM forecaster.

    Attributes:
        horizon: Periods held out for the conformal calibration (the longest horizon you will ask).
        n_estimators: Boosting rounds.
        learning_rate: Shrinkage.
        num_leaves: Leaves per tree.
        min_child_samples: Fewest rows per leaf.
        max_train_periods: Most recent periods per series used as training targets.
        threads: LightGBM threads (explicit: the machine is shared).
        seed: Random seed.
        event_dates: Holiday/promotion days, used as a known-in-advance feature.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon: int = Field(default=14, ge=1)
    n_estimators: int = Field(default=150, ge=1)
    learning_rate: float = Field(default=0.08, gt=0)
    num_leaves: int = Field(default=15, ge=2)
    min_child_samples: int = Field(default=20, ge=1)
    max_train_periods: int = Field(default=365, ge=10)
    threads: int = Field(default=1, ge=1)
    seed: int = Field(default=0, ge=0)
    event_dates: tuple[date, ...] = ()


def _lags(m: int) -> np.ndarray:
    """Lags 1..m plus a few whole seasons back."""
    return np.unique(np.concatenate([np.arange(1, m + 1), [2 * m, 3 * m, 4 * m]]))


def _features(
    buffer: np.ndarray,
    series: np.ndarray,
    t: np.ndarray,
    ds: np.ndarray,
    freq: Freq,
    m: int,
    event: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows for the targets ``buffer[series, t]`` (only earlier columns are read).

    Args:
        buffer: ``(n, T')`` scaled values.
        series: ``(rows,)`` series of each target.
        t: ``(rows,)`` column of each target.
        ds: ``(T',)`` period starts of the buffer's columns.
        freq: Period length.
        m: Season length.
        event: ``(T',)`` event indicator.

    Returns:
        ``(rows, n_features)`` float32 and ``(rows,)`` the row's base: the mean of its last
        season, by which lags (and the target) are divided so trends become level shifts.
    """
    rows = series[:, None]
    lags = _lags(m)
    season = buffer[rows, t[:, None] - np.arange(1, m + 1)[None, :]]  # (rows, m)
    base = season.mean(axis=1)
    base = np.where(base > 1e-9, base, 1.0)
    lagged = buffer[rows, t[:, None] - lags[None, :]] / base[:, None]  # (rows, n_lags)
    month = buffer[rows, t[:, None] - np.arange(1, 4 * m + 1)[None, :]] / base[:, None]
    season = season / base[:, None]
    # Same slot (weekday / hour) averaged over the last four seasons: a de-noised seasonal level.
    same_slot = buffer[rows, t[:, None] - m * np.arange(1, 5)[None, :]].mean(axis=1) / base
    when = ds[t]
    days = when.astype("datetime64[D]").astype(np.int64)
    calendar = [(days + 3) % 7]  # weekday, 0 = Monday
    if freq is Freq.HOUR:
        calendar.append(when.astype("datetime64[h]").astype(np.int64) % 24)
    else:
        calendar.append((when.astype("datetime64[D]") - when.astype("datetime64[M]")).astype(int))
    features = np.column_stack(
        [
            lagged,
            same_slot,
            month.mean(axis=1),
            season.std(axis=1),
            np.log1p(base),
            *calendar,
            event[t],
        ]
    ).astype(np.float32)
    return features, base


class LightGBMForecaster:
    """A global gradient-boosted forecaster (see the module docstring for the interval method)."""

    def __init__(self, config: LightGBMForecasterConfig | None = None) -> None:
        self.config = config or LightGBMForecasterConfig()

    def min_periods(self, season_length: int) -> int:
        """Fewest history periods: four seasons of lags, the calibration horizon and two more.

        Args:
            season_length: Periods per season.

        Returns:
            Periods.
        """
        return 4 * season_length + self.config.horizon + 2

    def _event(self, ds: np.ndarray, freq: Freq) -> np.ndarray:
        return event_indicator(ds, freq, self.config.event_dates)

    def fit(self, panel: Panel) -> Self:
        """Train the booster and calibrate its intervals.

        Args:
            panel: History (gaps imputed; gap targets are not trained on).

        Returns:
            self

        Raises:
            InputError: If the history is shorter than four seasons plus the horizon.
        """
        import lightgbm as lgb

        m, h = panel.season_length, self.config.horizon
        y = panel.filled()
        n, total = y.shape
        first = 4 * m  # the longest lag
        if total - h <= first + 1:
            raise InputError(
                f"LightGBMForecaster needs more than {first + h + 1} periods (4 seasons of lags "
                f"+ horizon {h}); got {total}"
            )
        level = np.mean(np.abs(y[:, -4 * m :]), axis=1)
        level = np.where(level > 0, level, 1.0)
        scaled = y / level[:, None]
        event = self._event(panel.ds, panel.freq)
        stop = total - h  # targets in [start, stop) train; [stop, total) calibrate
        start = max(first, stop - self.config.max_train_periods)
        t_grid = np.arange(start, stop)
        t = np.tile(t_grid, n)
        series = np.repeat(np.arange(n), len(t_grid))
        keep = ~panel.gap[series, t]
        x, base = self._feature_rows(scaled, series[keep], t[keep], panel.ds, panel.freq, m, event)
        target = scaled[series[keep], t[keep]] / base
        params: dict[str, Any] = {
            "objective": "l2",
            "learning_rate": self.config.learning_rate,
            "num_leaves": self.config.num_leaves,
            "min_child_samples": self.config.min_child_samples,
            "num_threads": self.config.threads,
            "seed": self.config.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }
        self.booster_ = lgb.train(
            params, lgb.Dataset(x, target), num_boost_round=self.config.n_estimators
        )
        self.m_ = m
        calib = self._recursive(scaled[:, :stop], panel.ds, panel.freq, event, h) * level[:, None]
        errors = np.where(panel.gap[:, stop:], np.nan, y[:, stop:] - calib)
        self.errors_ = errors
        self.scale_ = mase_scale(panel.y, m)
        self.level_ = level
        self.panel_ = panel
        return self

    @staticmethod
    def _feature_rows(
        scaled: np.ndarray,
        series: np.ndarray,
        t: np.ndarray,
        ds: np.ndarray,
        freq: Freq,
        m: int,
        event: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        # Gather windows in chunks to bound memory: (rows, 4m) at once is large for 1k series.
        xs, bases = [], []
        for lo in range(0, len(t), 100_000):
            sl = slice(lo, lo + 100_000)
            x, base = _features(scaled, series[sl], t[sl], ds, freq, m, event)
            xs.append(x)
            bases.append(base)
        return np.concatenate(xs), np.concatenate(bases)

    def _recursive(
        self, scaled: np.ndarray, ds: np.ndarray, freq: Freq, event: np.ndarray, horizon: int
    ) -> np.ndarray:
        """Forecast ``horizon`` scaled steps after ``scaled`` recursively; returns (n, h)."""
        n, total = scaled.shape
        step = np.timedelta64(1, "D") if freq is Freq.DAY else np.timedelta64(1, "h")
        ext_ds = np.concatenate([ds[:total], ds[total - 1] + step * np.arange(1, horizon + 1)])
        ext_event = np.concatenate([event[:total], self._event(ext_ds[total:], freq)])
        buffer = np.concatenate([scaled, np.zeros((n, horizon))], axis=1)
        for j in range(horizon):
            t = np.full(n, total + j)
            x, base = _features(buffer, np.arange(n), t, ext_ds, freq, self.m_, ext_event)
            step_pred = self.booster_.predict(x, num_threads=self.config.threads)
            buffer[:, total + j] = step_pred * base
        return buffer[:, total:]

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        """Forecast ``horizon`` periods with conformal intervals.

        Args:
            horizon: Periods ahead (at most ``config.horizon``, the calibrated length).
            levels: Interval levels.

        Returns:
            The forecast.

        Raises:
            InputError: If ``horizon`` exceeds the calibrated horizon.
        """
        check_is_fitted(self, "booster_")
        if horizon > self.config.horizon:
            raise InputError(
                f"The 'horizon' parameter of predict must be <= {self.config.horizon} (the "
                f"calibrated horizon of this LightGBMForecaster). Got {horizon} instead."
            )
        panel = self.panel_
        scaled = panel.filled() / self.level_[:, None]
        event = self._event(panel.ds, panel.freq)
        mean = self._recursive(scaled, panel.ds, panel.freq, event, horizon) * self.level_[:, None]
        widths = conformal_halfwidths(self.errors_[:, :horizon], self.scale_, check_levels(levels))
        return make_forecast(panel, mean, widths)
