"""The plan: allocations sum to the budget and follow forecast peaks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shopseq.errors import InputError
from shopseq.forecast.base import Forecast
from shopseq.forecast.series import Freq, Panel
from shopseq.plan import (
    CategoryValue,
    PlanConfig,
    category_values,
    make_plan,
    write_plan,
)

DS = (np.datetime64("2024-03-01") + np.arange(7)).astype("datetime64[us]")


def _forecast() -> Forecast:
    a = np.array([10, 10, 10, 50, 10, 10, 10.0])  # peak on day 3
    b = np.array([20, 20, 20, 20, 20, 20, 40.0])  # peak on day 6
    mean = np.vstack([a + b, a, b])
    return Forecast(
        ("total", "total/a", "total/b"),
        DS,
        mean,
        {80: mean * 0.8},
        {80: mean * 1.2},
    )


VALUES = {
    "total": CategoryValue(0.02, 1.0, 1000),
    "total/a": CategoryValue(0.05, 2.0, 500),
    "total/b": CategoryValue(0.01, 0.5, 500),
}


def test_allocations_sum_to_the_budget_and_follow_peaks() -> None:
    plan = make_plan(_forecast(), VALUES, PlanConfig(budget=1000.0, lead_periods=1))
    assert sum(r.budget for r in plan.rows) == pytest.approx(1000.0)
    assert len(plan.rows) == 14 and {r.category for r in plan.rows} == {"a", "b"}
    top = plan.rows[0]  # largest allocation first
    assert top.category == "a" and top.demand_date.day == 4 and top.peak
    assert top.spend_date.day == 3  # one period ahead of the peak
    # Share is expected revenue: a's peak 50 x 2.0 = 100 of 110 x 2.0 + 160 x 0.5 = 300.
    assert top.budget == pytest.approx(1000 * 100 / 300)
    b_rows = [r for r in plan.rows if r.category == "b"]
    assert max(b_rows, key=lambda r: r.budget).demand_date.day == 7
    assert top.orders == pytest.approx(50 * 0.05) and top.orders_hi == pytest.approx(60 * 0.05)
    assert "peak" in top.reason and "of budget" in top.reason


def test_the_rule_is_replaceable() -> None:
    def even(expected: np.ndarray) -> np.ndarray:
        return np.ones_like(expected)

    plan = make_plan(_forecast(), VALUES, PlanConfig(budget=140.0), rule=even)
    assert {round(r.budget, 9) for r in plan.rows} == {10.0}
    assert plan.rule == "even"


def test_bad_rule_output_and_missing_values_are_input_errors() -> None:
    with pytest.raises(InputError, match="non-negative weights"):
        make_plan(_forecast(), VALUES, PlanConfig(budget=1.0), rule=lambda e: -e)
    with pytest.raises(InputError, match=r"no historical conversion/revenue for series"):
        make_plan(_forecast(), {"total": VALUES["total"]}, PlanConfig(budget=1.0))
    with pytest.raises(InputError, match="no 95 % interval"):
        make_plan(_forecast(), VALUES, PlanConfig(budget=1.0, level=95))


def test_category_values_from_history() -> None:
    y = np.array([[10.0, 20.0, 30.0]])
    gap = np.zeros_like(y, dtype=bool)
    ds = DS[:3]
    views = Panel(("total",), ds, y, gap, Freq.DAY)
    orders = Panel(("total",), ds, y / 10, gap, Freq.DAY)
    revenue = Panel(("total",), ds, y * 3, gap, Freq.DAY)
    values = category_values(views, orders, revenue, lookback_periods=2)
    assert values["total"] == CategoryValue(0.1, 3.0, 50.0)


def test_write_plan_writes_flat_records(tmp_path: Path) -> None:
    plan = make_plan(_forecast(), VALUES, PlanConfig(budget=10.0))
    csv_path, json_path = write_plan(plan, tmp_path)
    records = json.loads(json_path.read_text())
    assert len(records) == 14 and records[0]["spend_date"].startswith("2024-03-")
    assert all(not isinstance(v, dict | list) for v in records[0].values())
    assert csv_path.read_text().splitlines()[0].startswith("category,spend_date")
