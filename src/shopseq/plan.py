"""Forecasts -> a marketing-resource plan: how much budget goes to which category on which day.

The rule (documented with its assumptions in docs/plan.md) is one small function,
:func:`share_by_expected_revenue`; pass another :data:`AllocationRule` to :func:`make_plan` to
replace it. Everything else here is bookkeeping: expected orders and revenue with their intervals,
the spend date (``lead_periods`` before the demand it targets) and a one-line reason per row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.artifacts import atomic_write_bytes, atomic_write_json
from shopseq.errors import InputError
from shopseq.forecast.base import Forecast
from shopseq.forecast.series import TOTAL, Panel

__all__ = [
    "AllocationRule",
    "CategoryValue",
    "Plan",
    "PlanConfig",
    "PlanRow",
    "category_values",
    "make_plan",
    "share_by_expected_revenue",
    "write_plan",
]

#: Expected revenue ``(n_categories, horizon)`` -> non-negative weights of the same shape.
AllocationRule = Callable[[np.ndarray], np.ndarray]


def share_by_expected_revenue(expected_revenue: np.ndarray) -> np.ndarray:
    """The default rule: each category-day's weight is its expected revenue (negatives -> 0).

    Args:
        expected_revenue: ``(n_categories, horizon)`` forecast demand x revenue per unit.

    Returns:
        Weights; the plan divides the budget in proportion to them.
    """
    return np.asarray(np.maximum(np.nan_to_num(expected_revenue), 0.0))


class PlanConfig(BaseModel):
    """How to plan.

    Attributes:
        budget: Money to allocate over the horizon (any currency; the revenue's).
        lead_periods: Spend this many periods before the demand it targets.
        level: Interval level reported for demand, orders and revenue (must be forecast).
        lookback_periods: Recent periods used for each category's conversion and revenue per
            unit of demand.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget: float = Field(gt=0)
    lead_periods: int = Field(default=1, ge=0)
    level: int = Field(default=80, gt=0, lt=100)
    lookback_periods: int = Field(default=56, ge=1)


@dataclass(frozen=True, slots=True)
class CategoryValue:
    """What one unit of forecast demand (a view, or an order) has been worth in a category.

    Attributes:
        orders_per_unit: Historical orders per unit of demand (conversion rate for views).
        revenue_per_unit: Historical revenue per unit of demand.
        demand: Units of demand in the lookback window.
    """

    orders_per_unit: float
    revenue_per_unit: float
    demand: float


def category_values(
    demand: Panel, orders: Panel, revenue: Panel, lookback_periods: int
) -> dict[str, CategoryValue]:
    """Conversion and revenue per unit of demand per series, over the last periods.

    Args:
        demand: Demand series (views; purchases for purchase-only logs).
        orders: Purchases, same ids and grid.
        revenue: Revenue, same ids and grid.
        lookback_periods: Recent periods summed.

    Returns:
        Series id -> value (0 where a series had no demand).

    Raises:
        InputError: If the three panels hold different series.
    """
    if not demand.ids == orders.ids == revenue.ids:
        raise InputError("demand, orders and revenue series must have the same ids in order")
    window = slice(max(demand.n_periods - lookback_periods, 0), None)

    def total(panel: Panel) -> np.ndarray:
        return np.asarray(np.nansum(np.where(panel.gap[:, window], 0.0, panel.y[:, window]), 1))

    d, o, r = total(demand), total(orders), total(revenue)
    out = {}
    for i, sid in enumerate(demand.ids):
        has = d[i] > 0
        out[sid] = CategoryValue(
            orders_per_unit=float(o[i] / d[i]) if has else 0.0,
            revenue_per_unit=float(r[i] / d[i]) if has else 0.0,
            demand=float(d[i]),
        )
    return out


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One category-day of the plan (flat: written as is to CSV/JSON)."""

    category: str
    spend_date: datetime
    demand_date: datetime
    budget: float
    share: float
    demand: float
    demand_lo: float
    demand_hi: float
    orders: float
    orders_lo: float
    orders_hi: float
    revenue: float
    revenue_lo: float
    revenue_hi: float
    peak: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """An allocation of the budget.

    Attributes:
        rows: One row per category and demand period, largest budget first.
        budget: The budget (``sum(row.budget) == budget``).
        level: Interval level of the ``_lo`` / ``_hi`` columns.
        rule: Name of the allocation rule.
    """

    rows: tuple[PlanRow, ...]
    budget: float
    level: int
    rule: str

    def records(self) -> list[dict[str, Any]]:
        """Rows as flat dicts (dates as ISO strings)."""
        out = []
        for row in self.rows:
            record = asdict(row)
            record["spend_date"] = row.spend_date.isoformat()
            record["demand_date"] = row.demand_date.isoformat()
            out.append(record)
        return out

    def by_category(self) -> list[dict[str, Any]]:
        """Budget, orders and revenue summed per category, largest budget first."""
        sums: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            entry = sums.setdefault(
                row.category, {"category": row.category, "budget": 0.0, "orders": 0.0,
                               "revenue": 0.0, "peak_date": row.demand_date, "peak": -1.0}
            )  # fmt: skip
            entry["budget"] += row.budget
            entry["orders"] += row.orders
            entry["revenue"] += row.revenue
            if row.demand > entry["peak"]:
                entry["peak"], entry["peak_date"] = row.demand, row.demand_date
        return sorted(sums.values(), key=lambda e: -float(e["budget"]))


def make_plan(
    forecast: Forecast,
    values: dict[str, CategoryValue],
    config: PlanConfig,
    rule: AllocationRule = share_by_expected_revenue,
) -> Plan:
    """Allocate ``config.budget`` over the categories and periods of a demand forecast.

    Args:
        forecast: Demand forecast; ``total/<category>`` rows are planned (``total`` is used only
            when there are no categories).
        values: Per series: orders and revenue per unit of demand (:func:`category_values`).
        config: Budget, lead, interval level.
        rule: Expected revenue -> weights.

    Returns:
        The plan; its budgets sum to the budget (up to float rounding).

    Raises:
        InputError: If the forecast lacks the interval level or a series lacks a value.
    """
    if config.level not in forecast.lower:
        raise InputError(
            f"the forecast has no {config.level} % interval; it has {sorted(forecast.lower)}"
        )
    rows_idx = [i for i, s in enumerate(forecast.ids) if s.startswith(TOTAL + "/")]
    if not rows_idx:
        rows_idx = [i for i, s in enumerate(forecast.ids) if s == TOTAL] or [0]
    missing = [forecast.ids[i] for i in rows_idx if forecast.ids[i] not in values]
    if missing:
        raise InputError(f"no historical conversion/revenue for series {missing}")
    ids = [forecast.ids[i] for i in rows_idx]
    demand = np.maximum(forecast.mean[rows_idx], 0.0)  # (n_cat, h)
    lo = np.maximum(forecast.lower[config.level][rows_idx], 0.0)
    hi = np.maximum(forecast.upper[config.level][rows_idx], 0.0)
    conv = np.array([values[s].orders_per_unit for s in ids])[:, None]
    rpu = np.array([values[s].revenue_per_unit for s in ids])[:, None]
    weights = np.asarray(rule(demand * rpu), dtype=np.float64)
    if weights.shape != demand.shape or (weights < 0).any() or not np.isfinite(weights).all():
        raise InputError("the allocation rule must return finite non-negative weights per cell")
    even = weights.sum() <= 0
    if even:  # no value forecast anywhere: spread evenly rather than divide by zero
        weights = np.ones_like(demand)
    share = weights / weights.sum()
    budget = config.budget * share
    step = forecast.ds[1] - forecast.ds[0] if forecast.horizon > 1 else np.timedelta64(1, "D")
    mean_demand = demand.mean(axis=1, keepdims=True)
    peaks = demand == demand.max(axis=1, keepdims=True)
    out = []
    for c, sid in enumerate(ids):
        name = sid.split("/", 1)[1] if "/" in sid else sid
        for j in range(forecast.horizon):
            when = forecast.ds[j]
            spend = when - step * config.lead_periods
            lift = demand[c, j] / mean_demand[c, 0] - 1 if mean_demand[c, 0] > 0 else 0.0
            reason = (
                "no value forecast anywhere: budget spread evenly"
                if even
                else f"{'peak: ' if peaks[c, j] else ''}demand {demand[c, j]:,.1f} "
                f"({lift:+.0%} vs its horizon mean) x {rpu[c, 0]:,.2f} revenue/unit "
                f"({conv[c, 0]:.1%} orders/unit) -> {share[c, j]:.1%} of budget"
            )
            out.append(
                PlanRow(
                    category=name,
                    spend_date=_dt(spend),
                    demand_date=_dt(when),
                    budget=float(budget[c, j]),
                    share=float(share[c, j]),
                    demand=float(demand[c, j]),
                    demand_lo=float(lo[c, j]),
                    demand_hi=float(hi[c, j]),
                    orders=float(demand[c, j] * conv[c, 0]),
                    orders_lo=float(lo[c, j] * conv[c, 0]),
                    orders_hi=float(hi[c, j] * conv[c, 0]),
                    revenue=float(demand[c, j] * rpu[c, 0]),
                    revenue_lo=float(lo[c, j] * rpu[c, 0]),
                    revenue_hi=float(hi[c, j] * rpu[c, 0]),
                    peak=bool(peaks[c, j]),
                    reason=reason,
                )
            )
    out.sort(key=lambda r: (-r.budget, r.category, r.demand_date))
    return Plan(tuple(out), config.budget, config.level, getattr(rule, "__name__", "custom"))


def write_plan(plan: Plan, directory: Path) -> tuple[Path, Path]:
    """Write ``plan.csv`` and ``plan.json`` (flat records) atomically.

    Args:
        plan: The plan.
        directory: Output directory.

    Returns:
        The CSV and JSON paths.
    """
    records = plan.records()
    buffer = io.StringIO()
    if records:
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    csv_path, json_path = directory / "plan.csv", directory / "plan.json"
    atomic_write_bytes(csv_path, buffer.getvalue().encode())
    atomic_write_json(json_path, records)
    return csv_path, json_path


def _dt(value: np.datetime64) -> datetime:
    return datetime.fromisoformat(str(np.asarray(value, dtype="datetime64[us]")))
