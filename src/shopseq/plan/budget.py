"""Forecasts -> a marketing-resource plan: how much budget goes to which target on which day.

Two modes (docs/plan.md):

* **proportional** (no spend history): the budget follows the revenue each target-day is
  forecast to carry (:func:`share_by_expected_revenue`, replaceable by any
  :data:`AllocationRule`). What it reports is **baseline demand, not uplift**: nothing here
  knows what spend buys.
* **response** (a spend history was given): each target's response curve
  (``plan.response``) says what extra spend buys; the budget goes where the next unit buys the
  most (``plan.allocate``), and the plan reports the expected uplift with its range, beside
  what the proportional rule would have bought under the same curves.

Only named targets are funded by default: ``other`` (the pooled small categories) is reported
but not funded unless ``PlanConfig.fund_other``; small categories can be grouped into a named
target upstream (``SeriesConfig.groups``). Minimum and maximum per target and per day, and the
lead time (money is booked ``lead_periods`` before the day it acts; no booking in the past),
bind in both modes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.artifacts import atomic_write_bytes, atomic_write_json
from shopseq.errors import InputError
from shopseq.forecast.base import Forecast
from shopseq.forecast.series import OTHER, TOTAL, Panel
from shopseq.plan.allocate import (
    Limits,
    allocate_by_marginal_return,
    allocate_proportional,
    check_limits,
    marginal_returns,
    plan_adstock,
)
from shopseq.plan.response import ResponseCurve, ResponseFitConfig, curve_summary

__all__ = [
    "AllocationRule",
    "CategoryValue",
    "Plan",
    "PlanConfig",
    "PlanRow",
    "TargetPlan",
    "category_values",
    "make_plan",
    "share_by_expected_revenue",
    "write_plan",
]

#: Expected revenue ``(n_targets, horizon)`` -> non-negative weights of the same shape.
AllocationRule = Callable[[np.ndarray], np.ndarray]


def share_by_expected_revenue(expected_revenue: np.ndarray) -> np.ndarray:
    """The default rule: each target-day's weight is its expected revenue (negatives -> 0).

    Args:
        expected_revenue: ``(n_targets, horizon)`` forecast demand x revenue per unit.

    Returns:
        Weights; the plan divides the budget in proportion to them.
    """
    return np.asarray(np.maximum(np.nan_to_num(expected_revenue), 0.0))


class PlanConfig(BaseModel):
    """How to plan.

    Attributes:
        budget: Money to allocate over the horizon (any currency; the revenue's).
        lead_periods: Money is booked this many periods before the day it acts; a day whose
            booking date would be before the plan's first period (the last observed one)
            cannot be funded.
        level: Interval level reported for demand, orders, revenue and uplift (must be
            forecast).
        lookback_periods: Recent periods used for each target's conversion and revenue per
            unit of demand.
        fund_other: Fund ``other`` (the pooled small categories) too; by default it is
            reported but not funded (no one can buy media for "everything else").
        min_per_target: Least total spend per target (by name) over the horizon.
        max_per_target: Most total spend per target (by name).
        min_per_day: Least total spend per fundable day.
        max_per_day: Most total spend per day (``None``: no limit).
        objective: What the response mode maximises: extra ``revenue`` or extra ``orders``.
        response: How response curves are fitted (response mode).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget: float = Field(gt=0)
    lead_periods: int = Field(default=1, ge=0)
    level: int = Field(default=80, gt=0, lt=100)
    lookback_periods: int = Field(default=56, ge=1)
    fund_other: bool = False
    min_per_target: dict[str, float] = Field(default_factory=dict)
    max_per_target: dict[str, float] = Field(default_factory=dict)
    min_per_day: float = Field(default=0.0, ge=0)
    max_per_day: float | None = Field(default=None, gt=0)
    objective: Literal["revenue", "orders"] = "revenue"
    response: ResponseFitConfig = Field(default_factory=ResponseFitConfig)


@dataclass(frozen=True, slots=True)
class CategoryValue:
    """What one unit of forecast demand (a view, or an order) has been worth in a target.

    Attributes:
        orders_per_unit: Historical orders per unit of demand (conversion rate for views).
        revenue_per_unit: Historical revenue per unit of demand.
        demand: Units of demand in the lookback window.
        revenue_per_order: Historical revenue per order (0 without orders).
    """

    orders_per_unit: float
    revenue_per_unit: float
    demand: float
    revenue_per_order: float = 0.0


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
            revenue_per_order=float(r[i] / o[i]) if o[i] > 0 else 0.0,
        )
    return out


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One target-day of the plan (flat: written as is to CSV/JSON).

    ``uplift_*`` and ``marginal_return`` are ``None`` in the proportional mode (no curve).
    """

    target: str
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
    uplift_orders: float | None
    uplift_orders_lo: float | None
    uplift_orders_hi: float | None
    uplift_revenue: float | None
    uplift_revenue_lo: float | None
    uplift_revenue_hi: float | None
    marginal_return: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """One target over the whole horizon.

    Attributes:
        target: Name.
        funded: Whether the plan may spend on it.
        why: Why it is or is not funded.
        budget: Spend over the horizon.
        orders: Forecast orders (baseline demand) with its range.
        revenue: Forecast revenue with its range.
        uplift_orders: Extra orders the spend buys (response mode; value, low, high).
        uplift_revenue: Extra revenue, likewise.
        marginal_return: Value of the next unit of spend at the plan (its best day).
        curve: The fitted response curve (response mode).
    """

    target: str
    funded: bool
    why: str
    budget: float
    orders: tuple[float, float, float]
    revenue: tuple[float, float, float]
    uplift_orders: tuple[float, float, float] | None = None
    uplift_revenue: tuple[float, float, float] | None = None
    marginal_return: float | None = None
    curve: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """An allocation of the budget.

    Attributes:
        rows: One row per funded target and demand period, largest budget first.
        budget: The budget.
        level: Interval level of the ``_lo`` / ``_hi`` columns.
        rule: Allocation rule (``marginal_return`` in response mode).
        mode: ``proportional`` or ``response``.
        note: What the numbers mean, in one paragraph.
        targets: Every target, funded or not, with its totals.
        unallocated: Budget the limits left unspent.
        comparison: Response mode: expected uplift of this plan and of the proportional rule
            under the same curves and limits (value and range), and their difference.
    """

    rows: tuple[PlanRow, ...]
    budget: float
    level: int
    rule: str
    mode: str = "proportional"
    note: str = ""
    targets: tuple[TargetPlan, ...] = ()
    unallocated: float = 0.0
    comparison: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """Rows as flat dicts (dates as ISO strings)."""
        out = []
        for row in self.rows:
            record = asdict(row)
            record["spend_date"] = row.spend_date.isoformat()
            record["demand_date"] = row.demand_date.isoformat()
            out.append(record)
        return out

    def by_target(self) -> list[dict[str, Any]]:
        """Budget, orders, revenue and uplift per target, largest budget first."""
        out = []
        for t in self.targets:
            entry: dict[str, Any] = {
                "target": t.target,
                "funded": t.funded,
                "why": t.why,
                "budget": t.budget,
                "orders": t.orders[0],
                "orders_lo": t.orders[1],
                "orders_hi": t.orders[2],
                "revenue": t.revenue[0],
                "revenue_lo": t.revenue[1],
                "revenue_hi": t.revenue[2],
            }
            if t.uplift_orders is not None and t.uplift_revenue is not None:
                entry.update(
                    uplift_orders=t.uplift_orders[0],
                    uplift_orders_lo=t.uplift_orders[1],
                    uplift_orders_hi=t.uplift_orders[2],
                    uplift_revenue=t.uplift_revenue[0],
                    uplift_revenue_lo=t.uplift_revenue[1],
                    uplift_revenue_hi=t.uplift_revenue[2],
                    marginal_return=t.marginal_return,
                )
            out.append(entry)
        return sorted(out, key=lambda e: (-float(e["budget"]), not e["funded"]))

    def to_json(self) -> dict[str, Any]:
        """The whole plan as JSON-ready data (what ``plan.json`` holds).

        Returns:
            Mode, note, budget, per-target summary, curves, comparison and the rows.
        """
        return {
            "kind": "shopseq.plan",
            "mode": self.mode,
            "note": self.note,
            "rule": self.rule,
            "budget": self.budget,
            "allocated": self.budget - self.unallocated,
            "unallocated": self.unallocated,
            "level": self.level,
            "targets": self.by_target(),
            "curves": [t.curve for t in self.targets if t.curve is not None],
            "comparison": self.comparison,
            "rows": self.records(),
        }


def _limits(
    names: list[str], funded: np.ndarray, fundable_days: np.ndarray, config: PlanConfig
) -> Limits:
    known = set(names)
    for what, given in (("min", config.min_per_target), ("max", config.max_per_target)):
        unknown = sorted(set(given) - known)
        if unknown:
            raise InputError(
                f"--{what}-target names unknown targets {unknown}; the targets are {names}"
            )
    h = len(fundable_days)
    return Limits(
        fundable=funded[:, None] & fundable_days[None, :],
        target_min=np.array([config.min_per_target.get(n, 0.0) for n in names]),
        target_max=np.array([config.max_per_target.get(n, np.inf) for n in names]),
        day_min=np.where(fundable_days, config.min_per_day, 0.0),
        day_max=np.full(h, np.inf if config.max_per_day is None else config.max_per_day),
    )


def _interval(values: np.ndarray, level: int) -> tuple[float, float]:
    lo, hi = np.quantile(values, [0.5 - level / 200, 0.5 + level / 200])
    return float(lo), float(hi)


def make_plan(
    forecast: Forecast,
    values: Mapping[str, CategoryValue],
    config: PlanConfig,
    rule: AllocationRule = share_by_expected_revenue,
    curves: Mapping[str, ResponseCurve] | None = None,
) -> Plan:
    """Allocate ``config.budget`` over the targets and periods of a demand forecast.

    Args:
        forecast: Demand forecast; ``total/<name>`` rows are the targets (``total`` only when
            there are none).
        values: Per series: orders and revenue per unit of demand (:func:`category_values`).
        config: Budget, lead, limits, interval level.
        rule: Expected revenue -> weights (proportional mode, and the comparison).
        curves: Target name -> fitted response curve: switches to the response mode.

    Returns:
        The plan.

    Raises:
        InputError: If the forecast lacks the interval level, a series lacks a value, or the
            limits cannot hold.
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
    names = [s.split("/", 1)[1] if "/" in s else s for s in ids]
    h = forecast.horizon
    demand = np.maximum(forecast.mean[rows_idx], 0.0)  # (n, h)
    lo = np.maximum(forecast.lower[config.level][rows_idx], 0.0)
    hi = np.maximum(forecast.upper[config.level][rows_idx], 0.0)
    conv = np.array([values[s].orders_per_unit for s in ids])[:, None]
    rpu = np.array([values[s].revenue_per_unit for s in ids])[:, None]
    rpo = np.array([values[s].revenue_per_order for s in ids])
    closed = np.zeros(h, dtype=bool) if forecast.closed is None else forecast.closed
    # Day j (0-based) acts on ds[j]; booked lead periods earlier, never before the last
    # observed period (the day the plan is made).
    fundable_days = (np.arange(h) + 1 >= config.lead_periods) & ~closed
    why = []
    funded = []
    for name in names:
        if name == OTHER and not config.fund_other:
            funded.append(False)
            why.append("pooled small categories: reported, not funded (--fund-other to fund)")
        elif curves is not None and name not in curves:
            funded.append(False)
            why.append("no spend history for it: no response curve, not funded")
        else:
            funded.append(True)
            why.append("funded")
    funded_mask = np.array(funded, dtype=bool)
    if not funded_mask.any():
        raise InputError(
            f"no target can be funded: {dict(zip(names, why, strict=True))}; name categories "
            "(--top-categories, --group) or pass --fund-other"
        )
    limits = _limits(names, funded_mask, fundable_days, config)
    check_limits(limits, config.budget, names)
    weights = np.asarray(rule(demand * rpu), dtype=np.float64)
    if weights.shape != demand.shape or (weights < 0).any() or not np.isfinite(weights).all():
        raise InputError("the allocation rule must return finite non-negative weights per cell")
    even = float(np.where(limits.fundable, weights, 0.0).sum()) <= 0
    proportional = allocate_proportional(weights, config.budget, limits)
    response = None
    if curves is not None:
        response = _response_allocation(
            [curves.get(n) for n in names], rpo, proportional, config, limits
        )
    budget = response.x if response is not None else proportional
    share = budget / config.budget
    step = forecast.ds[1] - forecast.ds[0] if h > 1 else np.timedelta64(1, "D")
    mean_demand = demand.mean(axis=1, keepdims=True)
    peaks = demand == demand.max(axis=1, keepdims=True)
    out = []
    for c, name in enumerate(names):
        if not funded[c]:
            continue
        for j in range(h):
            when = forecast.ds[j]
            lift = demand[c, j] / mean_demand[c, 0] - 1 if mean_demand[c, 0] > 0 else 0.0
            up = response.row(c, j) if response is not None else (None,) * 7
            if not fundable_days[j]:
                reason = (
                    "the shop is closed: no spend"
                    if closed[j]
                    else f"inside the lead time ({config.lead_periods} periods): cannot be booked"
                )
            elif response is not None:
                reason = response.reason(c, j, budget[c, j])
            elif even:
                reason = "no value forecast anywhere: budget spread evenly"
            else:
                reason = (
                    f"{'peak: ' if peaks[c, j] else ''}demand {demand[c, j]:,.1f} "
                    f"({lift:+.0%} vs its horizon mean) x {rpu[c, 0]:,.2f} revenue/unit "
                    f"({conv[c, 0]:.1%} orders/unit) -> {share[c, j]:.1%} of budget"
                )
            out.append(
                PlanRow(
                    target=name,
                    spend_date=_dt(when - step * config.lead_periods),
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
                    uplift_orders=up[0],
                    uplift_orders_lo=up[1],
                    uplift_orders_hi=up[2],
                    uplift_revenue=up[3],
                    uplift_revenue_lo=up[4],
                    uplift_revenue_hi=up[5],
                    marginal_return=up[6],
                    reason=reason,
                )
            )
    out.sort(key=lambda r: (-r.budget, r.target, r.demand_date))
    targets = []
    for c, name in enumerate(names):
        targets.append(
            TargetPlan(
                target=name,
                funded=funded[c],
                why=why[c],
                budget=float(budget[c].sum()),
                orders=(
                    float((demand[c] * conv[c, 0]).sum()),
                    float((lo[c] * conv[c, 0]).sum()),
                    float((hi[c] * conv[c, 0]).sum()),
                ),
                revenue=(
                    float((demand[c] * rpu[c, 0]).sum()),
                    float((lo[c] * rpu[c, 0]).sum()),
                    float((hi[c] * rpu[c, 0]).sum()),
                ),
                uplift_orders=response.target_uplift(c, "orders") if response else None,
                uplift_revenue=response.target_uplift(c, "revenue") if response else None,
                marginal_return=response.best_return(c) if response else None,
                curve=curve_summary(curves[name]) if curves and name in curves else None,
            )
        )
    unallocated = max(config.budget - float(budget.sum()), 0.0)
    if response is not None:
        note = response.note(config)
        rule_name, mode = "marginal_return", "response"
        comparison = response.comparison
    else:
        note = (
            "Baseline demand, not uplift: no spend history was given, so nothing says what spend "
            "buys. The budget follows the revenue each target-day is forecast to carry; the "
            "orders and revenue shown are forecast to happen anyway. Give a spend history "
            "(--spend-history) for response curves and the uplift they predict."
        )
        rule_name, mode, comparison = getattr(rule, "__name__", "custom"), "proportional", {}
    if unallocated > 1e-6 * config.budget:
        note += f" The limits left {unallocated:,.2f} of the budget unallocated."
    return Plan(
        tuple(out),
        config.budget,
        config.level,
        rule_name,
        mode,
        note,
        tuple(targets),
        unallocated,
        comparison,
    )


class _Response:
    """The response mode's allocation, its uplift draws and the words for it."""

    def __init__(
        self,
        x: np.ndarray,
        curves: list[ResponseCurve | None],
        value: np.ndarray,
        rpo: np.ndarray,
        level: int,
        draws: list[np.ndarray | None],
        returns: np.ndarray,
        comparison: dict[str, Any],
        unit: str,
    ) -> None:
        self.x, self.curves, self.value, self.rpo, self.unit = x, curves, value, rpo, unit
        self.level, self.draws = level, draws
        self.returns, self.comparison = returns, comparison

    def _per_day(self, c: int) -> np.ndarray | None:
        return self.draws[c]  # (n_draws, h) extra orders

    def row(self, c: int, j: int) -> tuple[float | None, ...]:
        curve, per_day = self.curves[c], self._per_day(c)
        if curve is None or per_day is None:
            return (None,) * 7
        point = float(curve.uplift(self.x[c])[j])
        lo, hi = _interval(per_day[:, j], self.level)
        r = float(self.rpo[c])
        return (point, lo, hi, point * r, lo * r, hi * r, float(self.returns[c, j]))

    def target_uplift(self, c: int, unit: str) -> tuple[float, float, float] | None:
        curve, per_day = self.curves[c], self._per_day(c)
        if curve is None or per_day is None:
            return None
        factor = float(self.rpo[c]) if unit == "revenue" else 1.0
        point = float(curve.uplift(self.x[c]).sum()) * factor
        lo, hi = _interval(per_day.sum(axis=1) * factor, self.level)
        return point, lo, hi

    def best_return(self, c: int) -> float | None:
        if self.curves[c] is None:
            return None
        return float(self.returns[c].max())

    def reason(self, c: int, j: int, spend: float) -> str:
        curve = self.curves[c]
        if curve is None:
            return "no response curve: not funded"
        a = plan_adstock(curve, self.x[c])[j]
        saturation = float(a**curve.shape / (a**curve.shape + curve.half**curve.shape))
        head = (
            f"marginal return {self.returns[c, j]:,.2f} {self.unit} per 1 spent at "
            f"{saturation:.0%} of saturation (carry-over {curve.decay:.2f}/period, "
            f"half-saturation {curve.half:,.0f}/period)"
        )
        if spend <= 1e-9:
            return head + " -> nothing: the next unit buys more elsewhere"
        return head + f" -> {spend:,.2f}"

    def note(self, config: PlanConfig) -> str:
        comp = self.comparison
        unit = comp["unit"]
        return (
            f"Expected extra {unit} over spending nothing, from response curves fitted on the "
            "spend history (adstock + Hill, MAP with Laplace "
            f"{self.level} % ranges; the plan valued as if it repeats, so carry-over from its "
            "last days reaches its first). Allocation by marginal return: "
            f"{comp['marginal_return'][0]:,.0f} [{comp['marginal_return'][1]:,.0f}, "
            f"{comp['marginal_return'][2]:,.0f}] extra {unit}; the proportional rule under the "
            f"same curves and limits: {comp['proportional'][0]:,.0f} "
            f"[{comp['proportional'][1]:,.0f}, {comp['proportional'][2]:,.0f}] "
            f"(difference {comp['difference'][0]:+,.0f} [{comp['difference'][1]:+,.0f}, "
            f"{comp['difference'][2]:+,.0f}])."
        )


def _response_allocation(
    curves: list[ResponseCurve | None],
    rpo: np.ndarray,
    proportional: np.ndarray,
    config: PlanConfig,
    limits: Limits,
) -> _Response:
    n, h = limits.fundable.shape
    have = [i for i, c in enumerate(curves) if c is not None]
    fitted = [c for c in curves if c is not None]
    value = rpo if config.objective == "revenue" else np.ones(n)
    sub = Limits(
        limits.fundable[have],
        limits.target_min[have],
        limits.target_max[have],
        limits.day_min,
        limits.day_max,
    )
    x = np.zeros((n, h))
    x[have] = allocate_by_marginal_return(fitted, value[have], config.budget, sub)
    returns = np.zeros((n, h))
    returns[have] = marginal_returns(fitted, value[have], x[have])
    draws: list[np.ndarray | None] = [None] * n
    totals = {"marginal_return": 0.0, "proportional": 0.0}
    draw_sums = {"marginal_return": 0.0, "proportional": 0.0}
    for k, i in enumerate(have):
        curve = fitted[k]
        thetas = curve.draws(config.response.n_draws, config.response.seed + i)
        ours = np.stack([curve.uplift(x[i], th) for th in thetas])
        theirs = np.stack([curve.uplift(proportional[i], th) for th in thetas])
        draws[i] = ours
        totals["marginal_return"] += float(curve.uplift(x[i]).sum()) * value[i]
        totals["proportional"] += float(curve.uplift(proportional[i]).sum()) * value[i]
        draw_sums["marginal_return"] = draw_sums["marginal_return"] + ours.sum(axis=1) * value[i]
        draw_sums["proportional"] = draw_sums["proportional"] + theirs.sum(axis=1) * value[i]
    level = config.level
    ours_d = np.asarray(draw_sums["marginal_return"])
    theirs_d = np.asarray(draw_sums["proportional"])
    comparison: dict[str, Any] = {
        "unit": config.objective,
        "marginal_return": (totals["marginal_return"], *_interval(ours_d, level)),
        "proportional": (totals["proportional"], *_interval(theirs_d, level)),
        "difference": (
            totals["marginal_return"] - totals["proportional"],
            *_interval(ours_d - theirs_d, level),
        ),
    }
    return _Response(x, curves, value, rpo, level, draws, returns, comparison, config.objective)


def write_plan(plan: Plan, directory: Path) -> tuple[Path, Path]:
    """Write ``plan.csv`` (flat rows) and ``plan.json`` (:meth:`Plan.to_json`) atomically.

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
    atomic_write_json(json_path, plan.to_json())
    return csv_path, json_path


def _dt(value: np.datetime64) -> datetime:
    return datetime.fromisoformat(str(np.asarray(value, dtype="datetime64[us]")))
