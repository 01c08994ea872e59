"""`shopseq forecast`: backtest a line-up of forecasters, print the leaderboard, write forecasts."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shopseq.artifacts import atomic_write_bytes, atomic_write_json
from shopseq.errors import InputError
from shopseq.evaluate.backtest import BacktestConfig
from shopseq.evaluate.forecasting import Forecaster
from shopseq.models.forecast import MovingAverage, SeasonalNaive, StatsModel, StatsModelConfig
from shopseq.models.forecast_select import SelectionResult, forecast_with_selection
from shopseq.prepare import PREPARED_TABLE
from shopseq.sequences.series import Freq, Metric, SeriesConfig, SeriesSet, build_series
from shopseq.store import open_store

from .options import StoreOption, ThreadsOption, console, default_store_path

__all__ = [
    "DEFAULT_MODELS",
    "FAST_MODELS",
    "ForecastRun",
    "forecast",
    "make_models",
    "parse_freq",
    "run_forecast",
    "show_leaderboard",
]

#: The default line-up (AutoARIMA is fitted once and then only updated: it is the slowest).
DEFAULT_MODELS = (
    "seasonal_naive",
    "moving_average",
    "auto_ets",
    "auto_ces",
    "auto_theta",
    "auto_arima",
    "lightgbm",
)
#: A line-up that runs in about a second on a handful of series (the demo's).
FAST_MODELS = ("seasonal_naive", "moving_average", "auto_theta", "auto_ces", "lightgbm")
NO_REFIT = frozenset({"auto_arima"})


def make_models(
    names: Sequence[str], horizon: int, threads: int, event_dates: tuple[date, ...] = ()
) -> dict[str, Forecaster]:
    """Build forecasters by name (a plain dict of constructors at the edge; no registry).

    Args:
        names: Model names.
        horizon: Longest horizon asked (global models calibrate for it).
        threads: Threads for LightGBM and torch.
        event_dates: Holiday/promotion days for models that take regressors.

    Returns:
        Name -> unfitted forecaster.

    Raises:
        InputError: For an unknown name.
    """

    def stats(kind: str) -> Callable[[], Forecaster]:
        return lambda: StatsModel(StatsModelConfig(kind=kind, event_dates=event_dates))

    def lightgbm() -> Forecaster:
        from shopseq.models.forecast_global import LightGBMForecaster, LightGBMForecasterConfig

        cfg = LightGBMForecasterConfig(horizon=horizon, threads=threads, event_dates=event_dates)
        return LightGBMForecaster(cfg)

    def mlp() -> Forecaster:
        from shopseq.models.forecast_neural import MLPForecaster, MLPForecasterConfig

        cfg = MLPForecasterConfig(horizon=horizon, threads=threads, event_dates=event_dates)
        return MLPForecaster(cfg)

    factories: dict[str, Callable[[], Forecaster]] = {
        "seasonal_naive": SeasonalNaive,
        "moving_average": MovingAverage,
        "auto_ets": stats("auto_ets"),
        "auto_ces": stats("auto_ces"),
        "auto_theta": stats("auto_theta"),
        "auto_arima": stats("auto_arima"),
        "lightgbm": lightgbm,
        "mlp": mlp,
    }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise InputError(f"unknown model(s) {unknown}; choose from {sorted(factories)}")
    return {name: factories[name]() for name in names}


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


def leaderboard_records(result: SelectionResult, series: SeriesSet) -> list[dict[str, Any]]:
    """The leaderboard as flat JSON-ready records (NaN -> None)."""
    out = []
    for row in result.backtest.leaderboard().iter_rows(named=True):
        record = {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()
        }
        record.update(metric=series.report.metric.value, freq=series.report.freq.value)
        out.append(record)
    return out


def forecast_records(result: SelectionResult) -> list[dict[str, Any]]:
    """The final forecast as flat records, with each series' chosen model."""
    chosen = dict(zip(result.forecast.ids, result.chosen, strict=True))
    frame = result.forecast.to_long()
    out = []
    for row in frame.iter_rows(named=True):
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


def run_forecast(
    store_path: Path,
    series_config: SeriesConfig,
    backtest_config: BacktestConfig,
    model_names: Sequence[str],
    *,
    reconcile: str | None,
    out_dir: Path | None,
    strategy: str = "ensemble",
    threads: int = 1,
    event_dates: tuple[date, ...] = (),
) -> ForecastRun:
    """Build series from the store, backtest, select, forecast, reconcile, write.

    Args:
        store_path: Event store.
        series_config: Which series.
        backtest_config: Folds and horizon.
        model_names: Line-up.
        reconcile: ``bottom_up``, ``mint_shrink`` or ``None``.
        out_dir: Where to write outputs (``None``: nowhere).
        strategy: ``ensemble`` (mean of the best 3 per series) or ``select`` (best 1).
        threads: Threads for DuckDB, LightGBM and torch.
        event_dates: Holiday/promotion days.

    Returns:
        The run.
    """
    with open_store(store_path, read_only=True, threads=threads) as store:
        name = PREPARED_TABLE if store.has_table(PREPARED_TABLE) else "events"
        series = build_series(store.table(name), series_config)
    if reconcile is not None and not series_config.metric.additive:
        reconcile = None  # distinct users and rates do not add up across categories
    models = make_models(model_names, backtest_config.horizon, threads, event_dates)
    result = forecast_with_selection(
        series.panel,
        models,
        backtest_config,
        reconcile_method=reconcile,  # type: ignore[arg-type]
    )
    paths = write_forecast_outputs(result, series, out_dir) if out_dir is not None else ()
    return ForecastRun(series, result, paths)


def show_leaderboard(out: Console, run: ForecastRun) -> None:
    """Print the series summary and the backtest leaderboard.

    Args:
        out: Where to print.
        run: The run.
    """
    rep = run.series.report
    out.print(
        f"{rep.n_series} series of {rep.metric.value} per {rep.freq.value}, {rep.n_periods} "
        f"periods {rep.first_period:%Y-%m-%d %H:%M} .. {rep.last_period:%Y-%m-%d %H:%M}; "
        f"gaps flagged {len(rep.gap_periods)}, quiet zero periods {rep.empty_true_zero}"
    )
    bt = run.result.backtest
    table = Table(
        title=f"Backtest: {len(bt.cutoffs)} folds x horizon {bt.actual.shape[2]} "
        f"(selected/ensemble: chosen on earlier folds only)"
    )
    board = bt.leaderboard().drop("mase_median", "folds", "cpu_seconds")
    for column in board.columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in board.iter_rows():
        table.add_row(*(_cell(v) for v in row))
    out.print(table)
    for name, why in run.result.skipped.items():
        out.print(f"[yellow]skipped {name}[/]: {why}")
    counts: dict[str, int] = {}
    for name in run.result.chosen:
        counts[name] = counts.get(name, 0) + 1
    out.print(
        f"final forecast: {run.result.strategy} per series; chosen: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    if run.result.reconciled:
        out.print(f"categories reconciled to the total ({run.result.reconciled})")
    for path in run.paths:
        out.print(f"wrote {path}")


def parse_freq(value: str) -> Freq:
    """Parse ``--freq``.

    Args:
        value: ``D`` or ``h`` (``H``, ``d`` accepted).

    Returns:
        The frequency.

    Raises:
        InputError: For anything else.
    """
    found = {"d": Freq.DAY, "h": Freq.HOUR}.get(value.strip().lower())
    if found is None:
        raise InputError(f"The 'freq' parameter must be 'D' or 'h'. Got {value!r} instead.")
    return found


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def forecast(
    metric: Annotated[Metric, typer.Option(help="What to forecast.")] = Metric.PURCHASES,
    by: Annotated[str, typer.Option(help="'category' (total + categories) or 'total'.")] = (
        "category"
    ),
    freq: Annotated[str, typer.Option(help="'D' (days) or 'h' (hours).")] = "D",
    horizon: Annotated[int, typer.Option(min=1, help="Periods ahead.")] = 14,
    folds: Annotated[int, typer.Option(min=1, help="Backtest cut-offs.")] = 3,
    models: Annotated[
        str, typer.Option(help="Comma-separated line-up (add 'mlp' for the neural model).")
    ] = ",".join(DEFAULT_MODELS),
    top_categories: Annotated[int, typer.Option(min=1, help="Categories kept by name.")] = 10,
    reconcile: Annotated[
        str, typer.Option(help="'mint_shrink', 'bottom_up' or 'none'.")
    ] = "mint_shrink",
    strategy: Annotated[
        str, typer.Option(help="'ensemble' (mean of the 3 best per series) or 'select' (best).")
    ] = "ensemble",
    event_date: Annotated[
        list[str] | None, typer.Option(help="Holiday/promotion day (YYYY-MM-DD); repeatable.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("shopseq-forecast"),
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Backtest forecasters on series from the store, print a leaderboard, write forecasts."""
    if by not in ("category", "total"):
        raise InputError(f"The 'by' parameter must be 'category' or 'total'. Got {by!r} instead.")
    if reconcile not in ("mint_shrink", "bottom_up", "none"):
        raise InputError(
            f"The 'reconcile' parameter must be 'mint_shrink', 'bottom_up' or 'none'. "
            f"Got {reconcile!r} instead."
        )
    try:
        events = tuple(date.fromisoformat(d) for d in event_date or ())
    except ValueError as err:
        raise InputError(f"--event-date: {err}; expected YYYY-MM-DD") from err
    series_config = SeriesConfig(
        metric=metric, freq=parse_freq(freq), by=by,
        top_categories=top_categories,
    )  # fmt: skip
    run = run_forecast(
        store or default_store_path(),
        series_config,
        BacktestConfig(horizon=horizon, n_folds=folds, no_refit=NO_REFIT),
        [m.strip() for m in models.split(",") if m.strip()],
        reconcile=None if reconcile == "none" else reconcile,
        out_dir=out,
        strategy=strategy,
        threads=threads or 1,
        event_dates=events,
    )
    show_leaderboard(console, run)
