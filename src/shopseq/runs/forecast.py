"""Forecast and plan jobs: series from the store -> backtest -> selection -> forecast -> plan.

Each job takes one typed config and returns a result (and writes its files when given a
directory); the CLI, the demo and the benchmarks call these, and the report reads what they write.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shopseq.artifacts import atomic_write_bytes, atomic_write_json
from shopseq.forecast.backtest import BacktestConfig
from shopseq.forecast.selection import SelectionResult, forecast_with_selection
from shopseq.forecast.series import Freq, Metric, SeriesConfig, SeriesSet, build_series
from shopseq.plan import Plan, PlanConfig, category_values, make_plan, write_plan
from shopseq.prepare import PREPARED_TABLE
from shopseq.runs.catalogue import (
    DEFAULT_FORECASTERS,
    FAST_FORECASTERS,
    FORECASTERS,
    NO_REFIT,
    ForecasterSettings,
    make_forecasters,
)
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
    store_path: Path, config: ForecastJobConfig, out_dir: Path | None = None
) -> ForecastRun:
    """Build series from the store, backtest, select, forecast, reconcile, write.

    Args:
        store_path: Event store.
        config: The job.
        out_dir: Where to write ``forecast_leaderboard.json``, ``forecasts.json`` and
            ``forecasts.csv`` (``None``: nowhere).

    Returns:
        The run.
    """
    with open_store(store_path, read_only=True, threads=config.threads) as store:
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


def write_forecast_outputs(
    result: SelectionResult, series: SeriesSet, out_dir: Path
) -> tuple[Path, ...]:
    """Write ``forecast_leaderboard.json``, ``forecasts.json`` and ``forecasts.csv`` atomically.

    Args:
        result: The selection result.
        series: The series it was built from.
        out_dir: Directory.

    Returns:
        The paths written.
    """
    board, records = leaderboard_records(result, series), forecast_records(result)
    paths = (out_dir / "forecast_leaderboard.json", out_dir / "forecasts.json")
    atomic_write_json(paths[0], board)
    atomic_write_json(paths[1], records)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    csv_path = out_dir / "forecasts.csv"
    atomic_write_bytes(csv_path, buffer.getvalue().encode())
    return (*paths, csv_path)


class PlanJobConfig(BaseModel):
    """``run_plan``: forecast per-category demand and allocate a budget ahead of it.

    Attributes:
        plan: Budget and allocation rule.
        horizon: Periods planned.
        freq: Period length.
        top_categories: Categories kept by name.
        folds: Backtest folds for the per-series model choice.
        models: The line-up.
        threads: Threads of DuckDB, LightGBM and torch.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan: PlanConfig
    horizon: int = Field(default=14, ge=1)
    freq: Freq = Freq.DAY
    top_categories: int = Field(default=10, ge=1)
    folds: int = Field(default=3, ge=1)
    models: LineUp = FAST_FORECASTERS
    threads: int = Field(default=1, ge=1)


@dataclass(frozen=True, slots=True)
class PlanRun:
    """What ``run_plan`` produced.

    Attributes:
        plan: The plan.
        demand_metric: What demand was measured in (views, or purchases for purchase-only logs).
        chosen: Chosen forecasting model per series.
        paths: Files written.
    """

    plan: Plan
    demand_metric: Metric
    chosen: dict[str, str]
    paths: tuple[Path, ...]


def run_plan(store_path: Path, config: PlanJobConfig, out_dir: Path | None = None) -> PlanRun:
    """Forecast per-category demand, value it with history, allocate the budget, write it.

    Demand is views when the log has views, else purchases. Forecasts are chosen per series by
    backtest and reconciled bottom-up so category demand adds up.

    Args:
        store_path: Event store.
        config: The job.
        out_dir: Where to write ``plan.csv`` / ``plan.json`` (``None``: nowhere).

    Returns:
        The run.
    """
    with open_store(store_path, read_only=True, threads=config.threads) as store:
        table = _prepared(store)

        def series(metric: Metric, categories: tuple[str, ...] | None = None) -> SeriesConfig:
            return SeriesConfig(
                metric=metric,
                freq=config.freq,
                top_categories=config.top_categories,
                categories=categories,
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
    plan = make_plan(result.forecast, values, config.plan)
    paths = write_plan(plan, out_dir) if out_dir is not None else ()
    chosen = dict(zip(result.forecast.ids, result.chosen, strict=True))
    return PlanRun(plan, demand_metric, chosen, paths)
