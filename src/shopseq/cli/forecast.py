"""`shopseq forecast`: backtest a line-up of forecasters, print the leaderboard, write forecasts."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shopseq.errors import ConfigError, InputError
from shopseq.forecast.series import Freq, Metric
from shopseq.runs.catalogue import DEFAULT_FORECASTERS, NO_REFIT

from .cluster import (
    EngineOption,
    SparkAppOption,
    SparkConfOption,
    SparkMasterOption,
    SparkOutputOption,
    engine_config,
)
from .flags import flag_errors
from .options import StoreOption, ThreadsOption, console, default_store_path

if TYPE_CHECKING:
    from shopseq.runs.forecast import ForecastRun

__all__ = ["closed_dates", "forecast", "parse_freq", "show_leaderboard"]


def show_leaderboard(out: Console, run: ForecastRun) -> None:
    """Print the series summary and the backtest leaderboard.

    Args:
        out: Where to print.
        run: The run.
    """
    rep = run.series.report
    closures = rep.closures.describe()
    out.print(
        f"{rep.n_series} series of {rep.metric.value} per {rep.freq.value}, {rep.n_periods} "
        f"periods {rep.first_period:%Y-%m-%d %H:%M} .. {rep.last_period:%Y-%m-%d %H:%M}; "
        f"gaps flagged {len(rep.gap_periods)}, quiet zero periods {rep.empty_true_zero}"
        + (f"; {closures} ({rep.closed_periods} closed periods)" if closures else "")
    )
    if rep.partial_period is not None:
        out.print(
            f"left out {rep.partial_period:%Y-%m-%d %H:%M}: the log stops early in that period "
            "(a partial period would read as a collapse in demand)"
        )
    if rep.closed_with_events:
        out.print(
            f"[yellow]warning[/]: {rep.closed_with_events} periods given as closed had events "
            "(check --closed / --closed-file); they are forecast as closed anyway"
        )
    bt = run.result.backtest
    folds = ", ".join(str(f + 1) for f in bt.common_folds())
    table = Table(
        title=f"Backtest: {len(bt.cutoffs)} folds x horizon {bt.actual.shape[2]}; every row "
        f"scored on folds {folds} (selected/ensemble: chosen on earlier folds only)"
    )
    board = bt.leaderboard().drop("mase_median", "folds", "cpu_seconds")
    # Short headers and an unbroken model column: at 80 columns the names stay readable.
    width = max((len(str(m)) for m in board["model"]), default=5)
    for column in board.columns:
        if column == "model":
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(_HEADERS.get(column, column), justify="right")
    for row in board.iter_rows():
        table.add_row(*(_cell(v, c) for v, c in zip(row, board.columns, strict=True)))
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
    sparse = sum(run.result.intermittent)
    if sparse:
        out.print(
            f"{sparse} intermittent series (mostly zeros): intermittent-demand models "
            "(Croston, TSB, ADIDA, IMAPA) were candidates there"
        )
    if run.result.reconciled:
        out.print(f"categories reconciled to the total ({run.result.reconciled})")
    for path in run.paths:
        out.print(f"wrote {path}")


_HEADERS = {
    "coverage-80": "cov 80",
    "coverage-95": "cov 95",
    "beats_baseline": "beats naive",
    "seconds": "s",
    "failures": "fail",
}


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


def closed_dates(values: list[str] | None, file: Path | None) -> tuple[date, ...]:
    """Closure dates from ``--closed`` and ``--closed-file``.

    Args:
        values: ``YYYY-MM-DD`` strings.
        file: A closures file (one date per line).

    Returns:
        The dates, sorted and unique.
    """
    from shopseq.forecast.calendar import parse_dates, read_closed_dates

    dates = parse_dates(values or (), "--closed")
    if file is not None:
        dates = tuple(sorted({*dates, *read_closed_dates(file)}))
    return dates


#: Decimals per column (sMAPE is in per cent, RMSE in the metric's units, times in seconds).
_DIGITS = {"smape": 1, "rmse": 1, "seconds": 1}


def _cell(value: object, column: str = "") -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{_DIGITS.get(column, 3)}f}"
    return escape(str(value))  # series names (categories) may look like Rich markup


def forecast(
    metric: Annotated[Metric, typer.Option(help="What to forecast.")] = Metric.PURCHASES,
    by: Annotated[str, typer.Option(help="'category' (total + categories) or 'total'.")] = (
        "category"
    ),
    freq: Annotated[str, typer.Option(help="'D' (days) or 'h' (hours).")] = "D",
    horizon: Annotated[int, typer.Option(min=1, help="Periods ahead.")] = 14,
    folds: Annotated[
        int, typer.Option(min=1, help="Most backtest cut-offs (fewer on a short history, >= 3).")
    ] = 6,
    models: Annotated[
        str, typer.Option(help="Comma-separated line-up (add 'mlp' for the neural model).")
    ] = ",".join(DEFAULT_FORECASTERS),
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
    closed: Annotated[
        list[str] | None,
        typer.Option(help="Day the shop is closed (YYYY-MM-DD): forecast 0; repeatable."),
    ] = None,
    closed_file: Annotated[
        Path | None, typer.Option(help="File of closed days, one YYYY-MM-DD per line.")
    ] = None,
    learn_closures: Annotated[
        bool,
        typer.Option(help="Treat a weekday (hour) empty at every occurrence as closed."),
    ] = True,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("shopseq-forecast"),
    store: StoreOption = None,
    threads: ThreadsOption = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = "local[*]",
    spark_app_name: SparkAppOption = "shopseq",
    spark_conf: SparkConfOption = None,
    spark_output: SparkOutputOption = None,
) -> None:
    """Backtest forecasters on series from the store, print a leaderboard, write forecasts.

    With ``--engine spark`` the series are aggregated on Spark; the models run here.
    """
    engine_cfg = engine_config(engine, spark_master, spark_app_name, spark_conf, spark_output)
    from shopseq.forecast.backtest import BacktestConfig
    from shopseq.forecast.series import SeriesConfig
    from shopseq.runs.forecast import ForecastJobConfig, run_forecast

    if by not in ("category", "total"):
        raise InputError(f"The 'by' parameter must be 'category' or 'total'. Got {by!r} instead.")
    try:
        events = tuple(date.fromisoformat(d) for d in event_date or ())
    except ValueError as err:
        raise InputError(f"--event-date: {err}; expected YYYY-MM-DD") from err
    try:
        config = ForecastJobConfig(
            series=SeriesConfig(
                metric=metric,
                freq=parse_freq(freq),
                by=by,
                top_categories=top_categories,
                closed_dates=closed_dates(closed, closed_file),
                learn_closures=learn_closures,
            ),
            backtest=BacktestConfig(horizon=horizon, n_folds=folds, no_refit=NO_REFIT),
            models=tuple(m.strip() for m in models.split(",") if m.strip()),
            reconcile=None if reconcile == "none" else reconcile,
            strategy=strategy,
            threads=threads or 1,
            event_dates=events,
        )
    except ValidationError as err:
        raise ConfigError(flag_errors(err, {"series.metric": "--metric"})) from err
    with console.status("backtesting and forecasting"):
        run = run_forecast(store or default_store_path(), config, out, engine_cfg)
    show_leaderboard(console, run)
