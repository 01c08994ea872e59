"""One LightGBM model across all series: direct multi-horizon, M5-style features.

The M5 lesson (Makridakis, Spiliotis & Assimakopoulos 2022) is that one gradient-boosted model
trained on every series at once, on lags, rolling means, calendar and price/promotion features,
wins on retail. This model does that, with three choices that matter:

* **direct, not recursive**: one model forecasts every step ``1..h`` from the same origin (the
  step is a feature), so errors are not fed back as lags over the horizon;
* **scale-free rows**: every value of a row is divided by the series' mean over the 28 periods
  before the origin, so one model serves series of 5 and of 5,000 a day;
* **boosted from a structural forecast**: a least-squares line + weekday profile over the last
  12 (and 4) seasons, extrapolated to the target period, is both a feature and the starting
  point of the boosting (``init_score``): the trees learn corrections to a sound baseline instead
  of rebuilding level, trend and season from noisy lags.

Features per row (origin ``o``, target ``o + j``): lags 1..2m, rolling means over 1/2/4/8/12
seasons, the same slot (weekday or hour) averaged over the last 1..12 seasons, the structural
forecasts, recent/older level ratios (trend), the step, the target's weekday (and hour), the
event (holiday/promotion) flag of the target day, and -- where the panel carries prices -- the
recent price relative to its longer mean (a discount running now) and the price planned for the
target (the last known price when no plan is given).

Intervals are split-conformal: the booster is trained on targets before the last ``horizon``
periods, forecasts those periods from their origin, and the absolute errors (scaled per series,
pooled across series per step) give the half-widths. The same booster then forecasts from the
full history: one training run per fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal, Self

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
        horizon: Longest horizon asked (the model is trained and calibrated for it).
        n_estimators: Boosting rounds.
        learning_rate: Shrinkage.
        num_leaves: Leaves per tree.
        min_child_samples: Fewest rows per leaf.
        max_train_periods: Most recent origins per series used for training.
        max_seasons: Longest window (in seasons) of the rolling means, same-slot means and the
            structural forecast; shorter histories use what they have (at least 4).
        origin_step: Periods between training origins (subsampling; keep it coprime with the
            season so every weekday starts some origin).
        objective: ``l1`` (the median: what MASE rewards) or ``l2`` (the mean).
        threads: LightGBM threads (explicit: the machine is shared).
        seed: Random seed.
        event_dates: Holiday/promotion days, used as a known-in-advance feature.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon: int = Field(default=14, ge=1)
    n_estimators: int = Field(default=200, ge=1)
    learning_rate: float = Field(default=0.05, gt=0)
    num_leaves: int = Field(default=31, ge=2)
    min_child_samples: int = Field(default=50, ge=1)
    max_train_periods: int = Field(default=365, ge=10)
    max_seasons: int = Field(default=52, ge=4)
    origin_step: int = Field(default=3, ge=1)
    objective: Literal["l1", "l2"] = "l1"
    threads: int = Field(default=1, ge=1)
    seed: int = Field(default=0, ge=0)
    event_dates: tuple[date, ...] = ()


def _structural_filters(window: int, horizon: int, m: int) -> np.ndarray:
    """Weights turning the last ``window`` values into a line + slot-profile forecast.

    Least squares of ``y`` on ``[1, t, slot dummies]`` over the window, evaluated ``j`` periods
    past its end, is linear in the window's values: ``w[j] @ y[-window:]``. The window is a whole
    number of seasons, so the weights are the same at every origin.

    Returns:
        ``(horizon, window)`` weights.
    """
    r = np.arange(window)
    x = np.column_stack([np.ones(window), r] + [(r % m == k).astype(float) for k in range(1, m)])
    pinv = np.linalg.pinv(x)  # (m + 1, window)
    rows = []
    for j in range(horizon):
        at = window + j
        rows.append(np.array([1.0, at] + [float(at % m == k) for k in range(1, m)]) @ pinv)
    return np.asarray(rows, dtype=np.float64)


class _Rows:
    """Feature rows at (series, origin, step) triples; only values before the origin are read."""

    def __init__(
        self,
        y: np.ndarray,
        ds_days: np.ndarray,
        hours: np.ndarray | None,
        event: np.ndarray,
        price: np.ndarray | None,
        m: int,
        horizon: int,
        seasons: int,
    ) -> None:
        self.y, self.m, self.h, self.seasons = y, m, horizon, seasons
        self.cum = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y, axis=1)], axis=1)
        self.ds_days, self.hours, self.event, self.price = ds_days, hours, event, price
        self.windows = tuple(sorted({4 * m, min(12, seasons) * m, seasons * m}))
        self.filters: dict[int, np.ndarray] = {}
        self.spans = tuple(sorted({k for k in (1, 2, 4, 8, 12, seasons) if k <= seasons}))

    @property
    def first_origin(self) -> int:
        """Earliest training origin: four seasons of history (longer windows use what exists)."""
        return 4 * self.m

    def _mean(self, s: np.ndarray, o: np.ndarray, width: np.ndarray | int) -> np.ndarray:
        """Mean of the ``width`` periods before ``o`` (per row; ``width`` >= 1)."""
        width = np.maximum(np.minimum(width, o), 1)
        return np.asarray((self.cum[s, o] - self.cum[s, o - width]) / width)

    def _structural(self, s: np.ndarray, o: np.ndarray, j: np.ndarray, w: int) -> np.ndarray:
        """The line + slot-profile forecast fitted on up to ``w`` periods (whole seasons)."""
        out = np.empty(len(s))
        length = np.minimum(w, (o // self.m) * self.m)
        for size in np.unique(length):
            rows = length == size
            if size not in self.filters:
                self.filters[int(size)] = _structural_filters(int(size), self.h, self.m)
            ss, oo = s[rows], o[rows]
            window = self.y[ss[:, None], (oo - size)[:, None] + np.arange(size)[None, :]]
            out[rows] = np.einsum("rw,rw->r", window, self.filters[int(size)][j[rows]])
        return out

    def build(
        self, s: np.ndarray, o: np.ndarray, j: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features, the row's scale and its structural forecast (in the row's scale).

        Long windows use the history there is when an origin is early (a feature never reads
        before the first period nor after the origin).

        Args:
            s: ``(rows,)`` series.
            o: ``(rows,)`` origins (number of periods before the forecast).
            j: ``(rows,)`` steps (0-based: the target is period ``o + j``).

        Returns:
            ``(rows, n_features)`` float32, ``(rows,)`` scale, ``(rows,)`` structural forecast.
        """
        m, y = self.m, self.y
        base = self._mean(s, o, 28 if m == 7 else 2 * m)
        base = np.where(base > 1e-9, base, 1.0)
        cols = [y[s, o - lag] / base for lag in range(1, 2 * m + 1)]
        cols += [self._mean(s, o, k * m) / base for k in self.spans]
        first = (j // m + 1) * m  # periods back to the most recent same-slot value
        same, count = np.zeros(len(s)), np.zeros(len(s))
        for q in range(max(self.spans)):
            at = o + j - first - q * m
            ok = at >= 0
            same += np.where(ok, y[s, np.maximum(at, 0)], 0.0)
            count += ok
            if q + 1 in self.spans:
                cols.append(same / np.maximum(count, 1) / base)
        structural = [self._structural(s, o, j, w) / base for w in self.windows]
        cols += structural
        recent, older = self._mean(s, o, m), self._mean(s, o - m, m)
        cols.append(recent / np.maximum(older, 1e-9))
        cols.append(self._mean(s, o, 4 * m) / np.maximum(self._mean(s, o - 4 * m, 4 * m), 1e-9))
        cols.append(np.log1p(base))
        cols.append(j.astype(np.float64))
        target_day = self.ds_days[o + j]
        cols.append(((target_day + 3) % 7).astype(np.float64))  # weekday, 0 = Monday
        if self.hours is not None:
            cols.append(self.hours[o + j].astype(np.float64))
        cols.append(self.event[o + j])
        if self.price is not None:
            p = self.price
            last = np.where(np.isfinite(p[s, o - 1]), p[s, o - 1], 1.0)
            span = p[s[:, None], np.maximum((o - 4 * m)[:, None] + np.arange(4 * m)[None, :], 0)]
            seen = np.isfinite(span)
            long = np.where(seen, span, 0.0).sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
            long = np.where(seen.any(axis=1) & (long > 0), long, last)
            ahead = p[s, o + j]
            ahead = np.where(np.isfinite(ahead), ahead, last)
            cols += [last / np.maximum(long, 1e-9), ahead / np.maximum(long, 1e-9)]
        x = np.column_stack(cols).astype(np.float32)
        # The long-window forecast is the starting point; negative values make no sense.
        return x, base, np.maximum(structural[-1], 0.0)


class LightGBMForecaster:
    """A global gradient-boosted forecaster (see the module docstring)."""

    def __init__(self, config: LightGBMForecasterConfig | None = None) -> None:
        self.config = config or LightGBMForecasterConfig()

    def min_periods(self, season_length: int) -> int:
        """Fewest history periods: 4 seasons of features, the horizon twice, a season of origins.

        Args:
            season_length: Periods per season.

        Returns:
            Periods.
        """
        return 4 * season_length + 2 * self.config.horizon + season_length

    def _event(self, ds: np.ndarray, freq: Freq) -> np.ndarray:
        return event_indicator(ds, freq, self.config.event_dates)

    def _rows(self, panel: Panel, total: int, seasons: int) -> _Rows:
        """Rows over the panel's periods plus ``horizon`` future ones (for targets only)."""
        h = self.config.horizon
        ds = np.concatenate([panel.ds, panel.future_ds(h)])[: total + h]
        y = np.concatenate([panel.filled(), np.zeros((panel.n_series, h))], axis=1)
        price = None
        if panel.price is not None:
            # Planned prices are not known: the last observed price holds over the horizon.
            price = np.concatenate([panel.price, np.full((panel.n_series, h), np.nan)], axis=1)
        hours = (
            ds.astype("datetime64[h]").astype(np.int64) % 24 if panel.freq is Freq.HOUR else None
        )
        return _Rows(
            y,
            ds.astype("datetime64[D]").astype(np.int64),
            hours,
            self._event(ds, panel.freq),
            price,
            panel.season_length,
            h,
            seasons,
        )

    def fit(self, panel: Panel) -> Self:
        """Train the booster and calibrate its intervals.

        Args:
            panel: History (gaps and closed periods imputed; neither is a training target).

        Returns:
            self

        Raises:
            InputError: If the history is shorter than :meth:`min_periods`.
        """
        import lightgbm as lgb

        m, h = panel.season_length, self.config.horizon
        n, total = panel.n_series, panel.n_periods
        need = self.min_periods(m)
        if total < need:
            raise InputError(
                f"LightGBMForecaster needs at least {need} periods (4 seasons of features, "
                f"2 x horizon {h} and a season of training origins); got {total}"
            )
        seasons = int(np.clip(total // m, 4, self.config.max_seasons))
        rows = self._rows(panel, total, seasons)
        stop = total - h  # targets before `stop` train; the last horizon calibrates
        first = rows.first_origin
        origins = np.arange(max(first, stop - h - self.config.max_train_periods), stop, 1)
        origins = origins[(stop - 1 - origins) % self.config.origin_step == 0]
        s, o, j = (a.reshape(-1) for a in np.meshgrid(np.arange(n), origins, np.arange(h),
                                                        indexing="ij"))  # fmt: skip
        t = o + j
        skip = panel.gap | panel.closed[None, :]
        keep = (t < stop) & ~skip[s, np.minimum(t, total - 1)]
        s, o, j = s[keep], o[keep], j[keep]
        x, base, start = self._features(rows, s, o, j)
        target = rows.y[s, o + j] / base
        params: dict[str, Any] = {
            "objective": self.config.objective,
            "learning_rate": self.config.learning_rate,
            "num_leaves": self.config.num_leaves,
            "min_child_samples": self.config.min_child_samples,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "num_threads": self.config.threads,
            "seed": self.config.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }
        data = lgb.Dataset(x, target, init_score=start)
        self.booster_ = lgb.train(params, data, num_boost_round=self.config.n_estimators)
        self.rows_ = rows
        calib = self._predict_from(stop, n, h)
        self.errors_ = np.where(skip[:, stop:], np.nan, panel.filled()[:, stop:] - calib)
        self.scale_ = mase_scale(np.where(panel.closed[None, :], np.nan, panel.y), m)
        self.panel_ = panel
        return self

    @staticmethod
    def _features(
        rows: _Rows, s: np.ndarray, o: np.ndarray, j: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Chunks bound memory: a 1,000-series panel has ~1.6 M training rows x 12-season windows.
        xs, bases, starts = [], [], []
        for lo in range(0, len(s), 100_000):
            sl = slice(lo, lo + 100_000)
            x, base, start = rows.build(s[sl], o[sl], j[sl])
            xs.append(x)
            bases.append(base)
            starts.append(start)
        if not xs:
            raise InputError("LightGBMForecaster: no training rows (every target is a gap)")
        return np.concatenate(xs), np.concatenate(bases), np.concatenate(starts)

    def _predict_from(self, origin: int, n: int, horizon: int) -> np.ndarray:
        s = np.repeat(np.arange(n), horizon)
        j = np.tile(np.arange(horizon), n)
        x, base, start = self.rows_.build(s, np.full(len(s), origin), j)
        raw = self.booster_.predict(x, num_threads=self.config.threads, raw_score=True)
        return np.asarray((raw + start) * base).reshape(n, horizon)

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        """Forecast ``horizon`` periods with conformal intervals.

        Args:
            horizon: Periods ahead (at most ``config.horizon``, the trained horizon).
            levels: Interval levels.

        Returns:
            The forecast.

        Raises:
            InputError: If ``horizon`` exceeds the trained horizon.
        """
        check_is_fitted(self, "booster_")
        if horizon > self.config.horizon:
            raise InputError(
                f"The 'horizon' parameter of predict must be <= {self.config.horizon} (the "
                f"calibrated horizon of this LightGBMForecaster). Got {horizon} instead."
            )
        panel = self.panel_
        mean = self._predict_from(panel.n_periods, panel.n_series, self.config.horizon)
        mean = mean[:, :horizon]
        widths = conformal_halfwidths(self.errors_[:, :horizon], self.scale_, check_levels(levels))
        return make_forecast(panel, mean, widths)
