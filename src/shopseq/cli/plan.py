"""`shopseq plan`: forecast demand per target and allocate a marketing budget ahead of it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shopseq.errors import ConfigError, InputError

from .flags import flag_errors
from .forecast import closed_dates, parse_freq
from .options import StoreOption, ThreadsOption, console, default_store_path

if TYPE_CHECKING:
    from shopseq.runs.forecast import PlanRun

__all__ = ["parse_amounts", "parse_groups", "plan", "show_plan"]


def _range(value: float, lo: float, hi: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f} [{lo:,.{digits}f}, {hi:,.{digits}f}]"


def show_plan(out: Console, run: PlanRun, *, n_rows: int = 10) -> None:
    """Print the plan per target and its largest rows.

    Args:
        out: Where to print.
        run: The plan run.
        n_rows: Target-day rows shown.
    """
    plan = run.plan
    lv = plan.level
    response = plan.mode == "response"
    table = Table(
        title=f"Plan ({plan.mode}): budget {plan.budget:,.2f} by target (rule {plan.rule}; "
        f"{lv} % ranges)"
    )
    columns = ["target", "budget", "forecast orders", "forecast revenue"]
    columns += ["extra orders (uplift)", "extra revenue (uplift)"] if response else []
    columns += ["funded?"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("target", "funded?") else "right")
    for entry in plan.by_target():
        cells = [
            escape(entry["target"]),
            f"{entry['budget']:,.2f}",
            _range(entry["orders"], entry["orders_lo"], entry["orders_hi"]),
            _range(entry["revenue"], entry["revenue_lo"], entry["revenue_hi"], 0),
        ]
        if response and "uplift_orders" in entry:
            up = [entry[f"uplift_{k}"] for k in ("orders", "orders_lo", "orders_hi")]
            rev = [entry[f"uplift_{k}"] for k in ("revenue", "revenue_lo", "revenue_hi")]
            cells += [_range(up[0], up[1], up[2]), _range(rev[0], rev[1], rev[2], 0)]
        elif response:
            cells += ["–", "–"]
        cells.append("yes" if entry["funded"] else escape(entry["why"]))
        table.add_row(*cells)
    out.print(table)
    rows = Table(title=f"Largest allocations (demand in {run.demand_metric.value})")
    for column in ("book on", "acts on", "target", "budget", "why"):
        rows.add_column(column, justify="right" if column == "budget" else "left")
    for row in plan.rows[:n_rows]:
        rows.add_row(
            f"{row.spend_date:%Y-%m-%d %H:%M}",
            f"{row.demand_date:%Y-%m-%d %H:%M}",
            escape(row.target),
            f"{row.budget:,.2f}",
            escape(row.reason),
        )
    out.print(rows)
    for curve in run.curves.values():
        iv = curve.intervals
        out.print(
            f"response curve {escape(curve.target)}: up to {curve.beta:,.1f} extra orders/day "
            f"[{iv['beta'][0]:,.1f}, {iv['beta'][1]:,.1f}], half-saturation {curve.half:,.0f} "
            f"[{iv['half'][0]:,.0f}, {iv['half'][1]:,.0f}], carry-over {curve.decay:.2f} "
            f"[{iv['decay'][0]:.2f}, {iv['decay'][1]:.2f}], shape {curve.shape:.2f} "
            f"[{iv['shape'][0]:.2f}, {iv['shape'][1]:.2f}] ({curve.level} %)",
            highlight=False,
        )
    for warning in run.warnings:
        out.print(f"[yellow]warning[/]: {escape(warning)}", highlight=False)
    out.print(escape(plan.note), highlight=False)
    for path in run.paths:
        out.print(f"wrote {path}")


def parse_groups(values: list[str] | None) -> dict[str, tuple[str, ...]]:
    """Parse ``--group NAME=CAT1,CAT2``.

    Args:
        values: Flag values.

    Returns:
        Group name -> categories.

    Raises:
        InputError: For a value without ``=`` or categories.
    """
    out: dict[str, tuple[str, ...]] = {}
    for value in values or ():
        name, sep, members = value.partition("=")
        cats = tuple(m.strip() for m in members.split(",") if m.strip())
        if not sep or not name.strip() or not cats:
            raise InputError(f"--group: {value!r}; expected NAME=CATEGORY,CATEGORY,...")
        out[name.strip()] = cats
    return out


def parse_amounts(values: list[str] | None, flag: str) -> dict[str, float]:
    """Parse ``--min-target NAME=AMOUNT`` (and ``--max-target``).

    Args:
        values: Flag values.
        flag: The flag, for messages.

    Returns:
        Target -> amount.

    Raises:
        InputError: For a malformed value or a negative amount.
    """
    out: dict[str, float] = {}
    for value in values or ():
        name, sep, amount = value.rpartition("=")
        try:
            number = float(amount)
        except ValueError:
            number = float("nan")
        if not sep or not name.strip() or not number >= 0:
            raise InputError(f"{flag}: {value!r}; expected TARGET=AMOUNT with AMOUNT >= 0")
        out[name.strip()] = number
    return out


def plan(
    budget: Annotated[float, typer.Option(min=0.01, help="Budget to allocate.")],
    horizon: Annotated[int, typer.Option(min=1, help="Periods ahead.")] = 14,
    freq: Annotated[str, typer.Option(help="'D' (days) or 'h' (hours).")] = "D",
    lead: Annotated[
        int, typer.Option(min=0, help="Book spend this many periods before it acts.")
    ] = 1,
    top_categories: Annotated[int, typer.Option(min=1, help="Categories kept by name.")] = 10,
    group: Annotated[
        list[str] | None,
        typer.Option(help="Plan small categories as one target: NAME=CAT,CAT; repeatable."),
    ] = None,
    fund_other: Annotated[
        bool, typer.Option(help="Also fund 'other' (the pooled small categories).")
    ] = False,
    spend_history: Annotated[
        Path | None,
        typer.Option(
            help="CSV of past spend (date,target,spend): fit response curves and allocate by "
            "marginal return."
        ),
    ] = None,
    objective: Annotated[
        str, typer.Option(help="With a spend history: maximise 'revenue' or 'orders'.")
    ] = "revenue",
    min_target: Annotated[
        list[str] | None, typer.Option(help="Least spend on a target: NAME=AMOUNT; repeatable.")
    ] = None,
    max_target: Annotated[
        list[str] | None, typer.Option(help="Most spend on a target: NAME=AMOUNT; repeatable.")
    ] = None,
    min_day: Annotated[float, typer.Option(min=0, help="Least total spend per day.")] = 0.0,
    max_day: Annotated[
        float | None, typer.Option(min=0.01, help="Most total spend per day.")
    ] = None,
    closed: Annotated[
        list[str] | None, typer.Option(help="Day the shop is closed (YYYY-MM-DD); repeatable.")
    ] = None,
    closed_file: Annotated[
        Path | None, typer.Option(help="File of closed days, one YYYY-MM-DD per line.")
    ] = None,
    folds: Annotated[
        int,
        typer.Option(
            min=1, help="Most backtest folds for model choice (fewer on a short history)."
        ),
    ] = 6,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("shopseq-plan"),
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Allocate a marketing budget across targets and days ahead of forecast demand."""
    from shopseq.plan import PlanConfig
    from shopseq.runs.forecast import PlanJobConfig, run_plan

    try:
        config = PlanJobConfig(
            plan=PlanConfig(
                budget=budget,
                lead_periods=lead,
                fund_other=fund_other,
                min_per_target=parse_amounts(min_target, "--min-target"),
                max_per_target=parse_amounts(max_target, "--max-target"),
                min_per_day=min_day,
                max_per_day=max_day,
                objective=objective,
            ),
            horizon=horizon,
            freq=parse_freq(freq),
            top_categories=top_categories,
            groups=parse_groups(group),
            closed_dates=closed_dates(closed, closed_file),
            folds=folds,
            spend_history=spend_history,
            threads=threads or 1,
        )
    except ValidationError as err:
        raise ConfigError(
            flag_errors(
                err,
                {
                    "plan.objective": "--objective",
                    "plan.min_per_day": "--min-day",
                    "plan.max_per_day": "--max-day",
                    "groups": "--group",
                },
            )
        ) from err
    with console.status("forecasting demand and allocating"):
        run = run_plan(store or default_store_path(), config, out)
    show_plan(console, run)
