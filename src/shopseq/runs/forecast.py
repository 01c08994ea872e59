"""Forecast and plan jobs: series from the store -> backtest -> selection -> forecast -> plan.

Each job takes one typed config and returns a result (and writes its files when given a
directory); the CLI, the demo and the benchmarks call these, and the report reads what they write.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shopseq.artifacts import atomic_write_bytes, atomic_write_json
from shopseq.errors import InputError
from shopseq.forecast.backtest import BacktestConfig
from shopseq.forecast.selection import SelectionResult, forecast_with_selection
from shopseq.forecast.series import (
    OTHER,
    TOTAL,
    Freq,
    Metric,
    Panel,
    SeriesConfig,
    SeriesSet,
    build_series,
    check_groups,
)
from shopseq.plan import (
    Plan,
    PlanConfig,
    ResponseCurve,
    category_values,
    fit_response,
    make_plan,
    read_spend_history,
    write_plan,
)
from shopseq.prepare import PREPARED_TABLE
from shopseq.runs.catalogue import (
    DEFAULT_FORECASTERS,
    FAST_FORECASTERS,
    FORECASTERS,
    NO_REFIT,
    ForecasterSettings,
    make_forecasters,
)
from shopseq.runs.engine import EngineConfig, open_engine_store
from shopseq.store import open_store

__all__ = [
    "ForecastJobConfig",
    "ForecastRun",
    "PlanJobConfig",
    "PlanRun",
    "forecast_records",
    "leaderboard_records",
    "run_forecast",
    "run_plan",
    "series_records",
]


def _known_forecasters(names: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in FORECASTERS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {sorted(FORECASTERS)}")
    if not names:
        raise ValueError("the line-up is empty; name at least one forecaster")
    return names


#: A line-up of forecaster names, checked against the catalogue.
LineUp = Annotated[tuple[str, ...], AfterValidator(_known_forecasters)]


class ForecastJobConfig(BaseModel):
    """``run_forecast``: backtest a line-up on series from the store and forecast ahead.

    Attributes:
        series: Which series (metric, frequency, total and categories).
        backtest: Folds and horizon (the horizon is also the forecast's).
        models: The line-up (names from ``runs.catalogue.FORECASTERS``).
        reconcile: Make the categories add up to the total (``None``: leave them; ignored for
            metrics that do not add up across categories, such as distinct users).
        strategy: ``ensemble`` (per series, the mean of the best ``backtest.ensemble_size``) or
            ``select`` (per series, the single best).
        threads: Threads of DuckDB, LightGBM and torch.
        event_dates: Holiday/promotion days for the models that take regressors.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    series: SeriesConfig = SeriesConfig()
    backtest: BacktestConfig = BacktestConfig(no_refit=NO_REFIT)
    models: LineUp = DEFAULT_FORECASTERS
    reconcile: Literal["mint_shrink", "bottom_up"] | None = "mint_shrink"
    strategy: Literal["ensemble", "select"] = "ensemble"
    threads: int = Field(default=1, ge=1)
    event_dates: tuple[date, ...] = ()


@dataclass(frozen=True, slots=True)
class ForecastRun:
    """What ``run_forecast`` produced.

    Attributes:
        series: The series built from the store.
        result: Backtest, selection and final forecast.
        paths: Files written.
    """

    series: SeriesSet
    result: SelectionResult
    paths: tuple[Path, ...]


def _prepared(store: Any) -> Any:
    return store.table(PREPARED_TABLE if store.has_table(PREPARED_TABLE) else "events")


def run_forecast(
    store_path: Path,
    config: ForecastJobConfig,
    out_dir: Path | None = None,
    engine: EngineConfig | None = None,
) -> ForecastRun:
    """Build series from the store, backtest, select, forecast, reconcile, write.

    Args:
        store_path: Event store.
        config: The job.
        out_dir: Where to write ``forecast_leaderboard.json``, ``forecasts.json`` and
            ``forecasts.csv`` (``None``: nowhere).
        engine: Where the series are aggregated (``None``: the DuckDB store; on Spark only
            the small series leave the cluster, the models run here).

    Returns:
        The run.
    """
    with open_engine_store(
        engine or EngineConfig(), store_path, read_only=True, threads=config.threads
    ) as store:
        series = build_series(_prepared(store), config.series)
    reconcile = config.reconcile if config.series.metric.additive else None
    settings = ForecasterSettings(config.backtest.horizon, config.threads, config.event_dates)
    result = forecast_with_selection(
        series.panel,
        make_forecasters(config.models, settings),
        config.backtest,
        strategy=config.strategy,
        reconcile_method=reconcile,
    )
    paths = write_forecast_outputs(result, series, out_dir) if out_dir is not None else ()
    return ForecastRun(series, result, paths)


def leaderboard_records(result: SelectionResult, series: SeriesSet) -> list[dict[str, Any]]:
    """The backtest leaderboard as flat JSON-ready records (NaN -> None).

    Args:
        result: The selection result.
        series: The series it was built from.

    Returns:
        One record per model.
    """
    out = []
    for row in result.backtest.leaderboard().iter_rows(named=True):
        record = {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()
        }
        record.update(metric=series.report.metric.value, freq=series.report.freq.value)
        out.append(record)
    return out


def forecast_records(result: SelectionResult) -> list[dict[str, Any]]:
    """The final forecast as flat records, with each series' chosen model.

    Args:
        result: The selection result.

    Returns:
        One record per series and period.
    """
    chosen = dict(zip(result.forecast.ids, result.chosen, strict=True))
    out = []
    for row in result.forecast.to_long().iter_rows(named=True):
        row["ds"] = row["ds"].isoformat() if isinstance(row["ds"], datetime) else str(row["ds"])
        row["model"] = chosen[row["unique_id"]]
        out.append(row)
    return out


def series_records(
    result: SelectionResult, series: SeriesSet, history_periods: int = 8 * 7
) -> dict[str, Any]:
    """Per series: recent history, the final forecast, the chosen model and how it backtested.

    What the report's fan charts and its per-series table read (``forecast_series.json``).

    Args:
        result: The selection result.
        series: The series it was built from.
        history_periods: Recent periods of history kept per series.

    Returns:
        JSON-ready data.
    """
    panel, fc, bt = series.panel, result.forecast, result.backtest
    keep = slice(max(panel.n_periods - history_periods, 0), None)
    folds = bt.common_folds()

    def like_for_like(model: str) -> np.ndarray:
        values = bt.metric("mase", model)[folds]
        ok = np.isfinite(values)
        return np.where(
            ok.any(0), np.where(ok, values, 0).sum(0) / np.maximum(ok.sum(0), 1), np.nan
        )

    derived = "ensemble" if result.strategy == "ensemble" else "selected"
    chosen_scores = like_for_like(derived) if derived in bt.forecasts else None
    naive = like_for_like("seasonal_naive") if "seasonal_naive" in bt.forecasts else None
    history_ds = [str(d) for d in panel.ds[keep].astype("datetime64[s]")]
    future_ds = [str(d) for d in fc.ds.astype("datetime64[s]")]
    closed_future = fc.closed if fc.closed is not None else np.zeros(fc.horizon, dtype=bool)
    out = []
    for i, sid in enumerate(panel.ids):
        entry: dict[str, Any] = {
            "id": sid,
            "chosen": result.chosen[i],
            "intermittent": bool(result.intermittent[i]) if result.intermittent else False,
            "backtest_mase": _num(chosen_scores[i]) if chosen_scores is not None else None,
            "naive_mase": _num(naive[i]) if naive is not None else None,
            "history": {
                "ds": history_ds,
                "y": [_num(v) for v in panel.y[i, keep]],
                "closed": [bool(v) for v in panel.closed[keep]],
                "gap": [bool(v) for v in panel.gap[i, keep]],
            },
            "forecast": {
                "ds": future_ds,
                "mean": [float(v) for v in fc.mean[i]],
                "closed": [bool(v) for v in closed_future],
                **{f"lo-{lv}": [float(v) for v in fc.lower[lv][i]] for lv in sorted(fc.lower)},
                **{f"hi-{lv}": [float(v) for v in fc.upper[lv][i]] for lv in sorted(fc.upper)},
            },
        }
        out.append(entry)
    rep = series.report
    return {
        "kind": "shopseq.forecast",
        "metric": rep.metric.value,
        "freq": rep.freq.value,
        "horizon": fc.horizon,
        "levels": sorted(fc.lower),
        "strategy": result.strategy,
        "reconciled": result.reconciled,
        "closures": rep.closures.describe(),
        "closed_periods": rep.closed_periods,
        "gap_periods": len(rep.gap_periods),
        "partial_period": None if rep.partial_period is None else rep.partial_period.isoformat(),
        "scored_folds": [int(f) + 1 for f in folds],
        "n_folds": len(bt.cutoffs),
        "skipped": dict(result.skipped),
        "series": out,
    }


def _num(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def write_forecast_outputs(
    result: SelectionResult, series: SeriesSet, out_dir: Path
) -> tuple[Path, ...]:
    """Write the leaderboard, the forecasts (JSON and CSV) and the per-series file atomically.

    Args:
        result: The selection result.
        series: The series it was built from.
        out_dir: Directory.

    Returns:
        The paths written: ``forecast_leaderboard.json``, ``forecasts.json``,
        ``forecast_series.json``, ``forecasts.csv``.
    """
    board, records = leaderboard_records(result, series), forecast_records(result)
    paths = (
        out_dir / "forecast_leaderboard.json",
        out_dir / "forecasts.json",
        out_dir / "forecast_series.json",
    )
    atomic_write_json(paths[0], board)
    atomic_write_json(paths[1], records)
    atomic_write_json(paths[2], series_records(result, series))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    csv_path = out_dir / "forecasts.csv"
    atomic_write_bytes(csv_path, buffer.getvalue().encode())
    return (*paths, csv_path)


class PlanJobConfig(BaseModel):
    """``run_plan``: forecast per-target demand and allocate a budget ahead of it.

    Attributes:
        plan: Budget, limits and allocation settings.
        horizon: Periods planned.
        freq: Period length.
        top_categories: Categories (and groups) kept by name as targets.
        groups: Named groups of categories, each planned as one target.
        closed_dates: Days the shop is known to be closed (no spend acts then).
        folds: Most backtest folds for the per-series model choice (fewer on a short history).
        models: The line-up.
        spend_history: A CSV of past spend (``date,target,spend``): switches the plan to
            response curves and uplift (daily plans only).
        threads: Threads of DuckDB, LightGBM and torch.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan: PlanConfig
    horizon: int = Field(default=14, ge=1)
    freq: Freq = Freq.DAY
    top_categories: int = Field(default=10, ge=1)
    groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    closed_dates: tuple[date, ...] = ()
    folds: int = Field(default=6, ge=1)
    models: LineUp = FAST_FORECASTERS
    spend_history: Path | None = None
    threads: int = Field(default=1, ge=1)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return check_groups(value)


@dataclass(frozen=True, slots=True)
class PlanRun:
    """What ``run_plan`` produced.

    Attributes:
        plan: The plan.
        demand_metric: What demand was measured in (views, or purchases for purchase-only logs).
        chosen: Chosen forecasting model per series.
        paths: Files written.
        curves: Fitted response curves by target (response mode).
        warnings: What the user should know (spend targets that match nothing, curves that
            could not be fitted).
    """

    plan: Plan
    demand_metric: Metric
    chosen: dict[str, str]
    paths: tuple[Path, ...]
    curves: dict[str, ResponseCurve] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def run_plan(store_path: Path, config: PlanJobConfig, out_dir: Path | None = None) -> PlanRun:
    """Forecast per-target demand, value it with history, allocate the budget, write it.

    Demand is views when the log has views, else purchases. Forecasts are chosen per series by
    backtest and reconciled bottom-up so target demand adds up. With a spend history, each
    target's orders are fitted against its spend (response curves) and the budget is allocated
    by marginal return.

    Args:
        store_path: Event store.
        config: The job.
        out_dir: Where to write ``plan.csv`` / ``plan.json`` (``None``: nowhere).

    Returns:
        The run.

    Raises:
        InputError: For a spend history on hourly plans or naming no known target.
    """
    if config.spend_history is not None and config.freq is not Freq.DAY:
        raise InputError("a spend history is daily: plan with --freq D to use it")
    with open_store(store_path, read_only=True, threads=config.threads) as store:
        table = _prepared(store)

        def series(metric: Metric, categories: tuple[str, ...] | None = None) -> SeriesConfig:
            return SeriesConfig(
                metric=metric,
                freq=config.freq,
                top_categories=config.top_categories,
                categories=categories,
                groups=config.groups,
                closed_dates=config.closed_dates,
            )

        views = build_series(table, series(Metric.VIEWS))
        has_views = float(views.panel.filled()[0].sum()) > 0
        demand_metric = Metric.VIEWS if has_views else Metric.PURCHASES
        demand = views if has_views else build_series(table, series(Metric.PURCHASES))
        # Value the same categories the demand series has (rankings differ between metrics).
        same = demand.report.categories
        demand = build_series(table, series(demand_metric, same))
        orders = build_series(table, series(Metric.PURCHASES, same))
        revenue = build_series(table, series(Metric.REVENUE, same))
    values = category_values(
        demand.panel, orders.panel, revenue.panel, config.plan.lookback_periods
    )
    forecasters = make_forecasters(
        config.models, ForecasterSettings(config.horizon, config.threads)
    )
    backtest = BacktestConfig(horizon=config.horizon, n_folds=config.folds, no_refit=NO_REFIT)
    result = forecast_with_selection(
        demand.panel, forecasters, backtest, reconcile_method="bottom_up"
    )
    curves: dict[str, ResponseCurve] | None = None
    warnings: list[str] = []
    if config.spend_history is not None:
        curves, warnings = _fit_curves(config.spend_history, orders.panel, config.plan)
    plan = make_plan(result.forecast, values, config.plan, curves=curves)
    paths = write_plan(plan, out_dir) if out_dir is not None else ()
    chosen = dict(zip(result.forecast.ids, result.chosen, strict=True))
    return PlanRun(plan, demand_metric, chosen, paths, curves or {}, tuple(warnings))


def _fit_curves(
    path: Path, orders: Panel, config: PlanConfig
) -> tuple[dict[str, ResponseCurve], list[str]]:
    """Fit one response curve per target named both in the spend history and the series."""
    history = read_spend_history(path)
    names = {sid.split("/", 1)[1]: i for i, sid in enumerate(orders.ids) if "/" in sid}
    if not names:
        names = {TOTAL: orders.ids.index(TOTAL)}
    warnings = []
    unknown = [t for t in history.targets if t not in names]
    if unknown:
        warnings.append(
            f"{path}: spend on {unknown} matches no target; the targets are "
            f"{sorted(n for n in names if n != OTHER)} (--top-categories, --group)"
        )
    known = [t for t in history.targets if t in names]
    if not known:
        raise InputError(
            f"{path}: no target of the spend history ({list(history.targets)}) is among the "
            f"plan's targets {sorted(names)}"
        )
    # One daily axis from the first spend day to the last day with orders: spend before the
    # orders start still carries over into them.
    days_panel = orders.ds.astype("datetime64[D]")
    first = min(history.days[0], days_panel[0])
    days = np.arange(first, days_panel[-1] + np.timedelta64(1, "D"))
    position = (days_panel - first).astype(np.int64)
    shut = orders.closed
    curves: dict[str, ResponseCurve] = {}
    for target in known:
        row = names[target]
        outcome = np.full(len(days), np.nan)
        observed = np.where(orders.gap[row] | shut, np.nan, orders.y[row])
        outcome[position] = observed
        outcome[days > history.days[-1]] = np.nan  # no spend record after the history ends
        try:
            curves[target] = fit_response(
                target, history.on(target, days), outcome, days, config.response
            )
        except InputError as err:
            warnings.append(f"{path}: {err}")
    return curves, warnings
