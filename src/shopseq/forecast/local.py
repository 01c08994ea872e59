"""Local forecasters (one fit per series): baselines and statsforecast's automatic models.

Every class satisfies ``forecast.base.Forecaster`` (``fit(panel) -> self``,
``predict(horizon, levels) -> Forecast``); ``StatsModel`` also satisfies ``UpdatableForecaster``
(keep the fitted parameters, condition on a longer history), which the backtest uses for models
it is told not to refit. The global models live in ``gbm.py`` (LightGBM) and ``mlp.py`` (a
PyTorch MLP).

Intervals: the baselines use the normal approximation with in-sample residuals (Hyndman &
Athanasopoulos, FPP3 section 5.5); the statsforecast models use their own model-based intervals.
Forecasts of a never-negative history are clipped at zero (counts and revenue cannot go below).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import norm

from shopseq.errors import InputError, check_is_fitted
from shopseq.forecast.base import Forecast, check_levels, event_indicator, make_forecast
from shopseq.forecast.series import Freq, Panel

__all__ = [
    "MovingAverage",
    "MovingAverageConfig",
    "SeasonalNaive",
    "StatsModel",
    "StatsModelConfig",
]


def _normal_halfwidths(sigma: np.ndarray, levels: Sequence[int]) -> dict[int, np.ndarray]:
    return {lv: norm.ppf(0.5 + lv / 200.0) * sigma for lv in check_levels(levels)}


class SeasonalNaive:
    """Repeat the last season: ``y[T + j] = y[T + j - m * (1 + (j - 1) // m)]``.

    Vectorised over all series (statsforecast's ``SeasonalNaive`` loops per series; this is the
    same forecast and FPP3's interval ``sigma * sqrt(k + 1)``, with ``k`` whole seasons ahead).
    """

    def __init__(self, season_length: int | None = None) -> None:
        self.season_length = season_length

    def fit(self, panel: Panel) -> Self:
        """Store the last season and the residual spread.

        Args:
            panel: History.

        Returns:
            self
        """
        m = self.season_length or panel.season_length
        y = panel.filled()
        if y.shape[1] <= m:
            m = 1
        resid = y[:, m:] - y[:, :-m]
        self.m_ = m
        self.last_ = y[:, -m:]
        self.sigma_ = np.sqrt(np.mean(resid**2, axis=1)) if resid.shape[1] else np.zeros(len(y))
        self.panel_ = panel
        return self

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        """Forecast ``horizon`` periods.

        Args:
            horizon: Periods ahead.
            levels: Interval levels.

        Returns:
            The forecast.
        """
        check_is_fitted(self, "last_")
        j = np.arange(horizon)
        mean = self.last_[:, j % self.m_]
        k = j // self.m_
        sigma = self.sigma_[:, None] * np.sqrt(k + 1)[None, :]
        return make_forecast(self.panel_, mean, _normal_halfwidths(sigma, levels))


class MovingAverageConfig(BaseModel):
    """Moving-average baseline.

    Attributes:
        window: Periods averaged (``None``: four seasons).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int | None = Field(default=None, ge=1)


class MovingAverage:
    """Flat forecast at the mean of the last ``window`` periods (statsforecast's WindowAverage).

    Hand-written because it is one vectorised line over all series; its interval uses the
    one-step residuals of the same rolling mean in the history (FPP3's mean method).
    """

    def __init__(self, config: MovingAverageConfig | None = None) -> None:
        self.config = config or MovingAverageConfig()

    def fit(self, panel: Panel) -> Self:
        """Store the window mean and residual spread.

        Args:
            panel: History.

        Returns:
            self
        """
        y = panel.filled()
        w = min(self.config.window or 4 * panel.season_length, y.shape[1])
        csum = np.cumsum(np.pad(y, ((0, 0), (1, 0))), axis=1)
        rolling = (csum[:, w:] - csum[:, :-w]) / w  # mean of y[t-w:t] for t = w..T
        resid = y[:, w:] - rolling[:, :-1]
        self.level_ = rolling[:, -1]
        self.sigma_ = (
            np.sqrt(np.mean(resid**2, axis=1)) if resid.shape[1] else np.std(y, axis=1)
        ) * np.sqrt(1.0 + 1.0 / w)
        self.panel_ = panel
        return self

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        """Forecast ``horizon`` periods.

        Args:
            horizon: Periods ahead.
            levels: Interval levels.

        Returns:
            The forecast.
        """
        check_is_fitted(self, "level_")
        mean = np.repeat(self.level_[:, None], horizon, axis=1)
        sigma = np.repeat(self.sigma_[:, None], horizon, axis=1)
        return make_forecast(self.panel_, mean, _normal_halfwidths(sigma, levels))


StatsKind = Literal["auto_arima", "auto_ets", "auto_theta", "auto_ces"]


class StatsModelConfig(BaseModel):
    """One statsforecast automatic model, fitted per series.

    Attributes:
        kind: ``auto_arima``, ``auto_ets``, ``auto_theta`` or ``auto_ces``.
        season_length: Seasonal period (``None``: the panel's, 7 daily / 24 hourly).
        approximation: AutoARIMA's approximate likelihood search (about 2x faster here).
        event_dates: Days of holidays/promotions, used as an exogenous regressor by AutoARIMA
            (the other kinds take no regressors and ignore it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: StatsKind
    season_length: int | None = Field(default=None, ge=1)
    approximation: bool = True
    event_dates: tuple[date, ...] = ()


# statsforecast raises these (and only these, in our runs) on degenerate series.
_FIT_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError, IndexError)


class StatsModel:
    """A statsforecast model (AutoARIMA, AutoETS, AutoTheta, AutoCES) on each series in turn.

    Runs in this process, one series after another (the equivalent of ``n_jobs=1``: the machine
    is shared). A series the model cannot fit falls back to the seasonal naive forecast and is
    counted in ``n_failed_``.
    """

    def __init__(self, config: StatsModelConfig) -> None:
        self.config = config

    def _new(self, m: int) -> object:
        # Imported here: statsforecast takes ~2 s to import and only these models need it.
        from statsforecast.models import AutoARIMA, AutoCES, AutoETS, AutoTheta

        kind = self.config.kind
        if kind == "auto_arima":
            return AutoARIMA(season_length=m, approximation=self.config.approximation)
        if kind == "auto_ets":
            return AutoETS(season_length=m)
        if kind == "auto_theta":
            return AutoTheta(season_length=m)
        return AutoCES(season_length=m)

    def _exog(self, ds: np.ndarray, freq: Freq) -> np.ndarray | None:
        if self.config.kind != "auto_arima" or not self.config.event_dates:
            return None
        x = event_indicator(ds, freq, self.config.event_dates)
        return x[:, None]

    def fit(self, panel: Panel) -> Self:
        """Fit one model per series.

        Args:
            panel: History (gaps imputed).

        Returns:
            self
        """
        m = self.config.season_length or panel.season_length
        y = panel.filled()
        x = self._exog(panel.ds, panel.freq)
        if x is not None and np.ptp(x[:, 0]) == 0:
            x = None  # a constant regressor (no event in the history) cannot be estimated
        self.use_exog_ = x is not None
        self.fallback_ = SeasonalNaive(m).fit(panel)
        models: list[Any] = []
        for row in y:
            model: Any = self._new(m)
            try:
                with warnings.catch_warnings():
                    # statsforecast warns on every non-converged optimiser restart; the chosen
                    # model is still returned and scored by the backtest, so silence the noise.
                    warnings.simplefilter("ignore", UserWarning)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    model.fit(row, X=x)
            except _FIT_ERRORS:
                model = None
            models.append(model)
        self.models_ = models
        self.history_: Panel | None = None
        self.panel_ = panel
        self.n_failed_ = sum(model is None for model in models)
        return self

    def update(self, panel: Panel) -> Self:
        """Condition the fitted models on a longer history of the same series, keeping parameters.

        Args:
            panel: The longer history.

        Returns:
            self

        Raises:
            InputError: If the panel holds other series.
        """
        check_is_fitted(self, "models_")
        if panel.ids != self.panel_.ids:
            raise InputError("update needs the same series the model was fitted on")
        self.history_ = panel
        self.fallback_ = SeasonalNaive(self.fallback_.m_).fit(panel)
        self.n_failed_ = sum(model is None for model in self.models_)
        return self

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        """Forecast each series with its own model.

        Args:
            horizon: Periods ahead.
            levels: Interval levels.

        Returns:
            The forecast.
        """
        check_is_fitted(self, "models_")
        levels = check_levels(levels)
        panel = self.history_ or self.panel_
        fallback = self.fallback_.predict(horizon, levels)
        mean = fallback.mean.copy()
        lower = {lv: v.copy() for lv, v in fallback.lower.items()}
        upper = {lv: v.copy() for lv, v in fallback.upper.items()}
        x_future = None
        x_hist = None
        if self.use_exog_:
            x_hist = self._exog(panel.ds, panel.freq)
            x_future = self._exog(panel.future_ds(horizon), panel.freq)
        y = panel.filled() if self.history_ is not None else None
        lv_list = list(levels)
        for i, model in enumerate(self.models_):
            if model is None:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    if y is None:
                        out = model.predict(horizon, X=x_future, level=lv_list)
                    else:
                        out = model.forward(
                            y[i], horizon, X=x_hist, X_future=x_future, level=lv_list
                        )
            except _FIT_ERRORS:
                self.n_failed_ += 1
                continue
            if not np.all(np.isfinite(out["mean"])):
                self.n_failed_ += 1
                continue
            mean[i] = out["mean"]
            for lv in levels:
                lower[lv][i] = out[f"lo-{lv}"]
                upper[lv][i] = out[f"hi-{lv}"]
        return make_forecast(panel, mean, lower=lower, upper=upper)
