"""`shopseq plan`: forecast demand per category and allocate a marketing budget ahead of it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .forecast import parse_freq
from .options import StoreOption, ThreadsOption, console, default_store_path

if TYPE_CHECKING:
    from shopseq.runs.forecast import PlanRun

__all__ = ["plan", "show_plan"]


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
            escape(entry["category"]),
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
            escape(row.category),
            f"{row.budget:,.2f}",
            f"{row.orders:,.1f} [{row.orders_lo:,.1f}, {row.orders_hi:,.1f}]",
            escape(row.reason),
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
    from shopseq.plan import PlanConfig
    from shopseq.runs.forecast import PlanJobConfig, run_plan

    config = PlanJobConfig(
        plan=PlanConfig(budget=budget, lead_periods=lead),
        horizon=horizon,
        freq=parse_freq(freq),
        top_categories=top_categories,
        folds=folds,
        threads=threads or 1,
    )
    with console.status("forecasting demand and allocating"):
        run = run_plan(store or default_store_path(), config, out)
    show_plan(console, run)
