"""Backtest a line-up, pick a model per series, forecast, and reconcile the hierarchy.

The chosen model of a series is the one with the lowest mean MASE over all backtest folds (the
honest, nested estimate of how well that choice does is the backtest's ``selected`` row). Every
model is then refitted on the whole history and each series takes its chosen model's forecast.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from shopseq.evaluate.backtest import (
    ENSEMBLE,
    SELECTED,
    BacktestConfig,
    BacktestResult,
    backtest,
    choose_per_series,
    combine,
    cutoffs,
)
from shopseq.evaluate.forecasting import Forecast, Forecaster
from shopseq.models.reconcile import ReconcileMethod, reconcile
from shopseq.sequences.series import TOTAL, Panel

__all__ = ["SelectionResult", "forecast_with_selection", "min_periods"]


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


@dataclass(frozen=True, slots=True)
class SelectionResult:
    """A backtested, per-series selected and (optionally) reconciled forecast.

    Attributes:
        backtest: The backtest of every model that could run.
        forecast: The final forecast (chosen model per series; reconciled when asked).
        base: The final forecasts of every model before selection.
        chosen: Chosen model name per series.
        skipped: Model -> why it was not run.
        reconciled: Reconciliation method applied, if any.
        seconds: Wall time of the final fits.
    """

    backtest: BacktestResult
    forecast: Forecast
    base: dict[str, Forecast]
    chosen: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    reconciled: str | None = None
    seconds: float = 0.0


def forecast_with_selection(
    panel: Panel,
    models: Mapping[str, Forecaster],
    config: BacktestConfig,
    *,
    reconcile_method: ReconcileMethod | None = None,
) -> SelectionResult:
    """Backtest ``models``, choose one per series, forecast ``config.horizon`` periods ahead.

    Args:
        panel: The series.
        models: Name -> forecaster (models needing a longer history than the first cut-off
            leaves are skipped, and say why).
        config: Backtest settings (its horizon is the forecast horizon).
        reconcile_method: Make categories add up to the total (``None``: leave as is; only
            for additive metrics on a total -> category panel).

    Returns:
        The result.
    """
    first_cut = int(cutoffs(panel.n_periods, panel.season_length, config)[0])
    runnable: dict[str, Forecaster] = {}
    skipped: dict[str, str] = {}
    for name, model in models.items():
        need = min_periods(model, panel)
        if first_cut < need:
            skipped[name] = f"needs {need} periods of history, the first cut-off leaves {first_cut}"
        else:
            runnable[name] = model
    result = backtest(panel, runnable, config)
    base_names = [m for m in result.forecasts if m not in (SELECTED, ENSEMBLE)]
    started = time.perf_counter()
    base = {name: runnable[name].fit(panel).predict(config.horizon, config.levels)
            for name in base_names}  # fmt: skip
    seconds = time.perf_counter() - started
    if len(base_names) > 1:
        choice = choose_per_series(result)
        final = combine([base[m] for m in base_names], choice)
    else:
        choice = np.zeros((panel.n_series, 1), dtype=np.int64)
        final = base[base_names[0]]
    chosen = tuple(base_names[int(c)] for c in choice[:, 0])
    applied: str | None = None
    if reconcile_method is not None and TOTAL in panel.ids and panel.n_series > 1:
        actual, fitted = _backtest_errors(result, chosen)
        final = reconcile(final, reconcile_method, actual=actual, fitted=fitted)
        applied = reconcile_method
    return SelectionResult(result, final, base, chosen, skipped, applied, seconds)


def _backtest_errors(result: BacktestResult, chosen: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Actual and chosen-model forecast per series over all folds: ``(n_series, folds * h)``."""
    names = list(result.forecasts)
    actual = np.concatenate(list(result.actual), axis=1)
    fitted = np.empty_like(actual)
    h = result.actual.shape[2]
    for i, name in enumerate(chosen):
        folds = result.forecasts[names[names.index(name)]]
        fitted[i] = np.concatenate([fc.mean[i] if fc is not None else np.full(h, np.nan)
                                    for fc in folds])  # fmt: skip
    return actual, fitted
