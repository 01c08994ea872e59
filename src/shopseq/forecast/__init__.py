"""Forecasting, in one place: series, the contract, the models, backtest, selection, reconciliation.

Read in the order the data flows:

* ``series.py``: events -> a :class:`Panel` of period series (total and categories), gaps flagged.
* ``base.py``: the :class:`Forecast` result and the :class:`Forecaster` protocol every model meets.
* ``local.py`` (seasonal naive, moving average, statsforecast's ETS/CES/Theta/ARIMA), ``gbm.py``
  (one LightGBM across series), ``mlp.py`` (one PyTorch MLP across series, on the shared loop).
* ``backtest.py``: rolling-origin backtests with nested selection and ensembles.
* ``selection.py``: backtest -> choose per series -> final forecast -> ``reconcile.py``.

The metrics they are scored with are pure functions in ``metrics/forecasting.py``. LightGBM and
torch models are imported from their own modules, never here.
"""

from shopseq.forecast.backtest import (
    ENSEMBLE,
    SELECTED,
    BacktestConfig,
    BacktestResult,
    backtest,
    choose_per_series,
    combine,
    cutoffs,
    interval_factors,
    rescale_intervals,
)
from shopseq.forecast.base import (
    Forecast,
    Forecaster,
    UpdatableForecaster,
    check_levels,
    conformal_halfwidths,
    event_indicator,
    make_forecast,
    min_periods,
)
from shopseq.forecast.selection import SelectionResult, forecast_with_selection
from shopseq.forecast.series import (
    TOTAL,
    Freq,
    Metric,
    Panel,
    SeriesConfig,
    SeriesReport,
    SeriesSet,
    build_series,
)

__all__ = [
    "ENSEMBLE",
    "SELECTED",
    "TOTAL",
    "BacktestConfig",
    "BacktestResult",
    "Forecast",
    "Forecaster",
    "Freq",
    "Metric",
    "Panel",
    "SelectionResult",
    "SeriesConfig",
    "SeriesReport",
    "SeriesSet",
    "UpdatableForecaster",
    "backtest",
    "build_series",
    "check_levels",
    "choose_per_series",
    "combine",
    "conformal_halfwidths",
    "cutoffs",
    "event_indicator",
    "forecast_with_selection",
    "interval_factors",
    "make_forecast",
    "min_periods",
    "rescale_intervals",
]
