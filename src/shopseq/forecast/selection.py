"""Backtest a line-up, choose per series, forecast, and reconcile the hierarchy.

Per series, the final forecast is the mean of the ``ensemble_size`` candidate models with the
lowest mean MASE over all backtest folds (or, with ``strategy="select"``, the single best one);
the honest, nested estimates of how well these choices do are the backtest's ``ensemble`` and
``selected`` rows. Candidates: every model, plus the intermittent-demand models on series that
are intermittent (mostly zeros) over their recent history. Every model is refitted on the whole
history, and its intervals are recalibrated on its backtest errors
(``forecast.backtest.interval_factors``) before they are combined. The final forecast is clipped
at zero for never-negative series and is exactly 0 on closed periods, after reconciliation too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from shopseq.forecast.backtest import (
    ENSEMBLE,
    SELECTED,
    BacktestConfig,
    BacktestResult,
    backtest,
    calibrated_combination,
    choose_per_series,
    interval_factors,
    model_cutoffs,
    rescale_intervals,
)
from shopseq.forecast.base import (
    Forecast,
    Forecaster,
    finish_forecast,
    intermittent_series,
    min_periods,
    nonnegative_series,
)
from shopseq.forecast.reconcile import ReconcileMethod, reconcile
from shopseq.forecast.series import TOTAL, Panel

__all__ = ["SelectionResult", "forecast_with_selection"]


@dataclass(frozen=True, slots=True)
class SelectionResult:
    """A backtested, per-series selected and (optionally) reconciled forecast.

    Attributes:
        backtest: The backtest of every model that could run.
        forecast: The final forecast (chosen model per series; reconciled when asked).
        base: The final forecasts of every model before selection.
        chosen: Chosen model(s) per series, ``+``-joined for an ensemble.
        skipped: Model -> why it was not run.
        reconciled: Reconciliation method applied, if any.
        seconds: Wall time of the final fits.
        strategy: ``ensemble`` or ``select``.
        intermittent: ``(n_series,)`` series classified intermittent over the full history.
    """

    backtest: BacktestResult
    forecast: Forecast
    base: dict[str, Forecast]
    chosen: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    reconciled: str | None = None
    seconds: float = 0.0
    strategy: str = "ensemble"
    intermittent: tuple[bool, ...] = ()


def forecast_with_selection(
    panel: Panel,
    models: Mapping[str, Forecaster],
    config: BacktestConfig,
    *,
    strategy: Literal["ensemble", "select"] = "ensemble",
    reconcile_method: ReconcileMethod | None = None,
) -> SelectionResult:
    """Backtest ``models``, choose one per series, forecast ``config.horizon`` periods ahead.

    Args:
        panel: The series.
        models: Name -> forecaster (models needing a longer history than the first cut-off
            leaves are skipped, and say why).
        config: Backtest settings (its horizon is the forecast horizon; its ``ensemble_size``
            sets how many models the ensemble averages).
        strategy: ``ensemble`` (default: per series, the mean of the ``ensemble_size`` models
            with the lowest backtest MASE) or ``select`` (per series, the single best model).
            On the real logs in docs/BENCHMARKS.md the ensemble beat seasonal naive on more
            series and kept its intervals near nominal; single-model selection on a few folds
            is noisy.
        reconcile_method: Make categories add up to the total (``None``: leave as is; only
            for additive metrics on a total -> category panel).

    Returns:
        The result.
    """
    first_cut = int(model_cutoffs(panel, models, config)[0])
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
    window = config.intermittent_window or 8 * panel.season_length
    sparse = intermittent_series(panel, config.intermittent_adi, window)
    if len(base_names) > 1:
        k = min(config.ensemble_size, len(base_names)) if strategy == "ensemble" else 1
        choice = choose_per_series(result, k=k, intermittent=sparse)
    else:
        choice = np.zeros((panel.n_series, 1), dtype=np.int64)
    # Intervals of the combination calibrated on every backtest fold (as the nested rows were).
    n_folds = len(result.cutoffs)
    final = calibrated_combination(result, [base[m] for m in base_names], choice, n_folds)
    base = {m: rescale_intervals(fc, interval_factors(result, m)) for m, fc in base.items()}
    # An ensemble whose candidates are fewer than k repeats the best: name each model once.
    chosen = tuple("+".join(dict.fromkeys(base_names[int(c)] for c in row)) for row in choice)
    applied: str | None = None
    if reconcile_method is not None and TOTAL in panel.ids and panel.n_series > 1:
        actual, fitted = _backtest_errors(result, chosen)
        final = reconcile(final, reconcile_method, actual=actual, fitted=fitted)
        applied = reconcile_method
    final = finish_forecast(final, nonnegative_series(panel), panel.future_closed(config.horizon))
    return SelectionResult(
        result,
        final,
        base,
        chosen,
        skipped,
        applied,
        seconds,
        strategy,
        tuple(bool(v) for v in sparse),
    )


def _backtest_errors(result: BacktestResult, chosen: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Actual and chosen forecast (mean of its models) per series over all folds.

    Returns:
        Two ``(n_series, n_folds * h)`` arrays; actual is NaN where nothing is scored (gaps and
        closed periods), so reconciliation learns from open periods only.
    """
    actual = np.concatenate(list(np.where(result.mask, result.actual, np.nan)), axis=1)
    fitted = np.empty_like(actual)
    for i, combo in enumerate(chosen):
        per_model = [
            np.concatenate([fc.mean[i] for fc in result.forecasts[name] if fc is not None])
            for name in combo.split("+")
        ]
        fitted[i] = np.mean(per_model, axis=0)
    return actual, fitted
