"""`shopseq plan`: forecast demand per category and allocate a marketing budget ahead of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shopseq.evaluate.backtest import BacktestConfig
from shopseq.models.forecast_select import forecast_with_selection
from shopseq.plan import Plan, PlanConfig, category_values, make_plan, write_plan
from shopseq.prepare import PREPARED_TABLE
from shopseq.sequences.series import Freq, Metric, SeriesConfig, build_series
from shopseq.store import open_store

from .forecast import FAST_MODELS, NO_REFIT, make_models, parse_freq
from .options import StoreOption, ThreadsOption, console, default_store_path

__all__ = ["PlanRun", "plan", "run_plan", "show_plan"]


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


def run_plan(
    store_path: Path,
    plan_config: PlanConfig,
    *,
    horizon: int,
    freq: Freq = Freq.DAY,
    top_categories: int = 10,
    folds: int = 3,
    model_names: Sequence[str] = FAST_MODELS,
    out_dir: Path | None = None,
    threads: int = 1,
) -> PlanRun:
    """Forecast per-category demand, value it with history, allocate the budget, write it.

    Demand is views when the log has views, else purchases. Forecasts are chosen per series by
    backtest and reconciled bottom-up so category demand adds up.

    Args:
        store_path: Event store.
        plan_config: Budget and rule settings.
        horizon: Periods planned.
        freq: Period length.
        top_categories: Categories kept by name.
        folds: Backtest folds for model selection.
        model_names: Line-up.
        out_dir: Where to write ``plan.csv`` / ``plan.json`` (``None``: nowhere).
        threads: Threads.

    Returns:
        The run.
    """
    with open_store(store_path, read_only=True, threads=threads) as store:
        table = store.table(PREPARED_TABLE if store.has_table(PREPARED_TABLE) else "events")

        def series(metric: Metric, categories: tuple[str, ...] | None = None) -> SeriesConfig:
            return SeriesConfig(
                metric=metric, freq=freq, top_categories=top_categories, categories=categories
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
        demand.panel, orders.panel, revenue.panel, plan_config.lookback_periods
    )
    models = make_models(model_names, horizon, threads)
    config = BacktestConfig(horizon=horizon, n_folds=folds, no_refit=NO_REFIT)
    result = forecast_with_selection(demand.panel, models, config, reconcile_method="bottom_up")
    plan = make_plan(result.forecast, values, plan_config)
    paths = write_plan(plan, out_dir) if out_dir is not None else ()
    chosen = dict(zip(result.forecast.ids, result.chosen, strict=True))
    return PlanRun(plan, demand_metric, chosen, paths)


def show_plan(out: Console, run: PlanRun, *, n_rows: int = 10) -> None:
    """Print the plan per category and its largest rows.

    Args:
        out: Where to print.
        run: The plan run.
        n_rows: Category-day rows shown.
    """
    plan = run.plan
    lv = plan.level
    table = Table(title=f"Plan: budget {plan.budget:,.2f} by category (rule {plan.rule})")
    for column in ("category", "budget", "expected orders", "expected revenue", "peak demand on"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for entry in plan.by_category():
        table.add_row(
            entry["category"],
            f"{entry['budget']:,.2f}",
            f"{entry['orders']:,.1f}",
            f"{entry['revenue']:,.2f}",
            f"{entry['peak_date']:%Y-%m-%d %H:%M}",
        )
    out.print(table)
    rows = Table(title=f"Largest allocations (demand in {run.demand_metric.value}; {lv} % ranges)")
    for column in ("spend on", "category", "budget", "orders", "why"):
        rows.add_column(column, justify="right" if column in ("budget", "orders") else "left")
    for row in plan.rows[:n_rows]:
        rows.add_row(
            f"{row.spend_date:%Y-%m-%d %H:%M}",
            row.category,
            f"{row.budget:,.2f}",
            f"{row.orders:,.1f} [{row.orders_lo:,.1f}, {row.orders_hi:,.1f}]",
            row.reason,
        )
    out.print(rows)
    total = sum(r.budget for r in plan.rows)
    orders = sum(r.orders for r in plan.rows)
    revenue = sum(r.revenue for r in plan.rows)
    out.print(
        f"allocated {total:,.2f} of {plan.budget:,.2f} over {len(plan.rows)} category-periods; "
        f"expected orders {orders:,.1f}, revenue {revenue:,.2f} (baseline demand, not uplift)"
    )
    for path in run.paths:
        out.print(f"wrote {path}")


def plan(
    budget: Annotated[float, typer.Option(min=0.01, help="Budget to allocate.")],
    horizon: Annotated[int, typer.Option(min=1, help="Periods ahead.")] = 14,
    freq: Annotated[str, typer.Option(help="'D' (days) or 'h' (hours).")] = "D",
    lead: Annotated[int, typer.Option(min=0, help="Spend this many periods before demand.")] = 1,
    top_categories: Annotated[int, typer.Option(min=1, help="Categories kept by name.")] = 10,
    folds: Annotated[int, typer.Option(min=1, help="Backtest folds for model choice.")] = 3,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("shopseq-plan"),
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Allocate a marketing budget across categories and days ahead of forecast demand peaks."""
    run = run_plan(
        store or default_store_path(),
        PlanConfig(budget=budget, lead_periods=lead),
        horizon=horizon,
        freq=parse_freq(freq),
        top_categories=top_categories,
        folds=folds,
        out_dir=out,
        threads=threads or 1,
    )
    show_plan(console, run)
