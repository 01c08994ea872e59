"""Stage 5: metrics beside baselines, backtests and leaderboards."""

from shopseq.evaluate.backtest import (
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
from shopseq.evaluate.forecasting import (
    Forecast,
    Forecaster,
    UpdatableForecaster,
    conformal_halfwidths,
    coverage,
    mase,
    mase_scale,
    rmse,
    smape,
)

__all__ = [
    "ENSEMBLE",
    "SELECTED",
    "BacktestConfig",
    "BacktestResult",
    "Forecast",
    "Forecaster",
    "UpdatableForecaster",
    "backtest",
    "choose_per_series",
    "combine",
    "conformal_halfwidths",
    "coverage",
    "cutoffs",
    "interval_factors",
    "mase",
    "mase_scale",
    "rescale_intervals",
    "rmse",
    "smape",
]
