"""Intermittent-demand forecasters: statsforecast's Croston family, TSB, ADIDA and IMAPA.

Series of small shops and small categories are mostly zeros (a sale every few days): smoothing
models built for continuous demand chase every spike and forecast sales on empty days. These
models forecast a flat *rate* instead:

* ``croston`` (Croston 1972, optimised smoothing) and ``croston_sba`` (the Syntetos-Boylan bias
  correction): smooth the non-zero sizes and the intervals between them separately.
* ``tsb`` (Teunter, Syntetos & Babai 2011): smooths the probability of a sale every period, so
  the forecast decays when sales stop (obsolescence), where Croston's stays put.
* ``adida`` (aggregate, forecast, disaggregate) and ``imapa`` (the same over several
  aggregation levels, averaged): remove the zeros by temporal aggregation.

Each class sets ``scope = "intermittent"``: the selection offers them only for series that are
intermittent over their recent history (``forecast.base.intermittent_series``).

Intervals: statsforecast gives these models no model-based interval, and its conformal option
keeps one score per window and step (two windows: two points per quantile). Here each series'
absolute errors over ``n_windows`` rolling origins of its own history are pooled across the
horizon (the forecast is flat, so its error does not depend on the step) and the conformal
quantile of those ``n_windows x h`` scores gives a symmetric half-width, clipped at zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.errors import check_is_fitted
from shopseq.forecast.base import Forecast, check_levels, make_forecast
from shopseq.forecast.series import Panel

__all__ = ["IntermittentConfig", "IntermittentModel"]

IntermittentKind = Literal["croston", "croston_sba", "tsb", "adida", "imapa"]


class IntermittentConfig(BaseModel):
    """One intermittent-demand model, fitted per series.

    Attributes:
        kind: ``croston``, ``croston_sba``, ``tsb``, ``adida`` or ``imapa``.
        alpha_d: TSB's smoothing of demand sizes.
        alpha_p: TSB's smoothing of the probability of demand.
        n_windows: Rolling origins in the history whose errors calibrate the interval.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: IntermittentKind
    alpha_d: float = Field(default=0.1, gt=0, le=1)
    alpha_p: float = Field(default=0.1, gt=0, le=1)
    n_windows: int = Field(default=4, ge=1)


class IntermittentModel:
    """A statsforecast intermittent-demand model on each series in turn."""

    scope = "intermittent"

    def __init__(self, config: IntermittentConfig) -> None:
        self.config = config

    def min_periods(self, season_length: int) -> int:
        """Fewest history periods: two seasons (one calibration window needs a season before it).

        Args:
            season_length: Periods per season.

        Returns:
            Periods.
        """
        return 2 * season_length

    def _new(self) -> Any:
        # Imported here: statsforecast takes ~2 s to import and only these models need it.
        from statsforecast.models import ADIDA, IMAPA, TSB, CrostonOptimized, CrostonSBA

        kind = self.config.kind
        if kind == "croston":
            return CrostonOptimized()
        if kind == "croston_sba":
            return CrostonSBA()
        if kind == "tsb":
            return TSB(alpha_d=self.config.alpha_d, alpha_p=self.config.alpha_p)
        if kind == "adida":
            return ADIDA()
        return IMAPA()

    def _rate(self, model: Any, y: np.ndarray, horizon: int) -> np.ndarray:
        if not np.any(y > 0):
            return np.zeros(horizon)  # nothing ever sold: the models divide by zero here
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = np.asarray(model.forecast(y=y, h=horizon)["mean"], dtype=np.float64)
        return np.where(np.isfinite(out), out, 0.0)

    def fit(self, panel: Panel) -> Self:
        """Store the history (each prediction refits: these models cost microseconds).

        Args:
            panel: History (gaps and closed periods imputed).

        Returns:
            self
        """
        self.y_ = np.maximum(panel.filled(), 0.0)
        self.panel_ = panel
        return self

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        """Forecast each series' rate with conformal intervals from its own past windows.

        Args:
            horizon: Periods ahead.
            levels: Interval levels.

        Returns:
            The forecast.
        """
        check_is_fitted(self, "y_")
        levels = check_levels(levels)
        y = self.y_
        n, t = y.shape
        model = self._new()
        mean = np.stack([self._rate(model, row, horizon) for row in y]) if n else np.empty((0, 0))
        mean = mean.reshape(n, horizon)
        # Rolling origins: window w forecasts [t - (w + 1) h, t - w h) from what came before.
        starts = [t - (w + 1) * horizon for w in range(self.config.n_windows)]
        starts = [s for s in starts if s >= max(2, horizon)] or [max(t // 2, 1)]
        # Closed periods and gaps are certain or unknown: they do not calibrate anything.
        skip = self.panel_.gap | self.panel_.closed[None, :]
        scores = []
        for s in starts:
            stop = min(s + horizon, t)
            past = np.stack([self._rate(model, row[:s], stop - s) for row in y])
            scores.append(np.where(skip[:, s:stop], np.nan, np.abs(y[:, s:stop] - past)))
        errors = np.concatenate(scores, axis=1)  # (n, n_scores)
        halfwidth = {
            lv: np.repeat(_quantile(errors, lv / 100)[:, None], horizon, axis=1) for lv in levels
        }
        return make_forecast(self.panel_, mean, halfwidth)


def _quantile(errors: np.ndarray, q: float) -> np.ndarray:
    """Per row, the ceil((m + 1) q)-th smallest of its m finite scores (conformal rank)."""
    m = np.isfinite(errors).sum(axis=1)  # (n,)
    rank = np.minimum(np.ceil((m + 1) * q).astype(np.int64), m)  # (n,)
    ordered = np.sort(errors, axis=1)  # NaN sorts last
    picked = ordered[np.arange(len(m)), np.maximum(rank - 1, 0)] if errors.shape[1] else m * 0.0
    return np.where(m > 0, picked, 0.0)
