"""The plan: allocations sum to the budget, follow forecast peaks and respect the planner's
limits; response curves are recovered from a planted spend history and allocate by marginal return.
"""

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
    ResponseCurve,
    ResponseFitConfig,
    category_values,
    fit_response,
    make_plan,
    read_spend_history,
    write_plan,
)
from shopseq.plan.response import hill, steady_kernel
from shopseq.plan.simulate import SimulatedResponse, SimulationConfig, simulate_response

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
    assert len(plan.rows) == 14 and {r.target for r in plan.rows} == {"a", "b"}
    top = plan.rows[0]  # largest allocation first
    assert top.target == "a" and top.demand_date.day == 4 and top.peak
    assert top.spend_date.day == 3  # one period ahead of the peak
    # Share is expected revenue: a's peak 50 x 2.0 = 100 of 110 x 2.0 + 160 x 0.5 = 300.
    assert top.budget == pytest.approx(1000 * 100 / 300)
    b_rows = [r for r in plan.rows if r.target == "b"]
    assert max(b_rows, key=lambda r: r.budget).demand_date.day == 7
    assert top.orders == pytest.approx(50 * 0.05) and top.orders_hi == pytest.approx(60 * 0.05)
    assert "peak" in top.reason and "of budget" in top.reason
    assert "Baseline demand, not uplift" in plan.note
    assert plan.mode == "proportional" and top.uplift_orders is None


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
    assert values["total"] == CategoryValue(0.1, 3.0, 50.0, 30.0)


def test_write_plan_writes_flat_rows_and_a_summary(tmp_path: Path) -> None:
    plan = make_plan(_forecast(), VALUES, PlanConfig(budget=10.0))
    csv_path, json_path = write_plan(plan, tmp_path)
    data = json.loads(json_path.read_text())
    records = data["rows"]
    assert data["mode"] == "proportional" and data["budget"] == 10.0
    assert [t["target"] for t in data["targets"]] == ["a", "b"]  # largest budget first
    assert len(records) == 14 and records[0]["spend_date"].startswith("2024-03-")
    assert all(not isinstance(v, dict | list) for v in records[0].values())
    assert csv_path.read_text().splitlines()[0].startswith("target,spend_date")


def _with_other() -> tuple[Forecast, dict[str, CategoryValue]]:
    fc = _forecast()
    other = fc.mean[1] * 3  # the largest by far: the pooled remainder
    mean = np.vstack([fc.mean, other])
    ids = (*fc.ids, "total/other")
    values = {**VALUES, "total/other": CategoryValue(0.05, 2.0, 900)}
    return Forecast(ids, DS, mean, {80: mean * 0.8}, {80: mean * 1.2}), values


def test_other_is_reported_but_not_funded_unless_asked() -> None:
    fc, values = _with_other()
    plan = make_plan(fc, values, PlanConfig(budget=1000.0))
    assert {r.target for r in plan.rows} == {"a", "b"}
    assert sum(r.budget for r in plan.rows) == pytest.approx(1000.0)
    other = next(t for t in plan.targets if t.target == "other")
    assert not other.funded and other.budget == 0.0 and "not funded" in other.why
    assert other.revenue[0] == pytest.approx(fc.mean[3].sum() * 2.0)  # still reported
    funded = make_plan(fc, values, PlanConfig(budget=1000.0, fund_other=True))
    assert max(funded.by_target(), key=lambda t: t["budget"])["target"] == "other"


def test_lead_time_leaves_days_that_cannot_be_booked_unfunded() -> None:
    plan = make_plan(_forecast(), VALUES, PlanConfig(budget=700.0, lead_periods=3))
    by_day: dict[int, float] = {}
    for row in plan.rows:
        by_day[row.demand_date.day] = by_day.get(row.demand_date.day, 0.0) + row.budget
        assert (row.demand_date - row.spend_date).days == 3
    # Days 1 and 2 would be booked before the last observed day (2024-02-29).
    assert by_day[1] == 0.0 and by_day[2] == 0.0 and by_day[3] > 0
    assert sum(by_day.values()) == pytest.approx(700.0)
    assert "lead time" in next(r for r in plan.rows if r.demand_date.day == 1).reason


def test_limits_per_target_and_per_day_bind() -> None:
    config = PlanConfig(
        budget=1000.0, max_per_target={"a": 200.0}, min_per_target={"b": 700.0}, max_per_day=160.0
    )
    plan = make_plan(_forecast(), VALUES, config)
    spent = {t["target"]: t["budget"] for t in plan.by_target()}
    assert spent["a"] == pytest.approx(200.0, abs=1e-3) and spent["b"] >= 700.0 - 1e-3
    per_day: dict[int, float] = {}
    for row in plan.rows:
        per_day[row.demand_date.day] = per_day.get(row.demand_date.day, 0.0) + row.budget
    assert max(per_day.values()) <= 160.0 + 1e-3
    assert sum(per_day.values()) == pytest.approx(1000.0, abs=1e-2)
    # Too tight to spend it all: the rest is reported as unallocated, never spent anyway.
    tight = make_plan(_forecast(), VALUES, PlanConfig(budget=1000.0, max_per_day=100.0))
    assert tight.unallocated == pytest.approx(300.0, abs=1e-2) and "unallocated" in tight.note


def test_impossible_limits_are_input_errors() -> None:
    with pytest.raises(InputError, match=r"minimums per target add up to 900.00, more than"):
        make_plan(
            _forecast(), VALUES, PlanConfig(budget=500.0, min_per_target={"a": 450.0, "b": 450.0})
        )
    with pytest.raises(InputError, match=r"unknown targets \['shoes'\]; the targets are"):
        make_plan(_forecast(), VALUES, PlanConfig(budget=500.0, max_per_target={"shoes": 1.0}))


@pytest.fixture(scope="module")
def planted() -> tuple[SimulatedResponse, dict[str, ResponseCurve]]:
    sim = simulate_response(SimulationConfig(seed=0))
    curves = {
        t: fit_response(t, sim.spend.spend[i], sim.orders[i], sim.days, ResponseFitConfig())
        for i, t in enumerate(sim.spend.targets)
    }
    return sim, curves


def test_planted_response_curves_are_recovered_within_their_intervals(planted) -> None:
    sim, curves = planted
    for target, curve in curves.items():
        truth = sim.curves[target]
        assert curve.identified and curve.level == 95
        for name in ("beta", "decay", "half", "shape"):
            lo, hi = curve.intervals[name]
            assert lo <= getattr(truth, name) <= hi, (target, name, lo, hi, getattr(truth, name))
            assert lo <= getattr(curve, name) <= hi
    # The S-shaped curve (shape 2) is told apart from the concave one (shape 1).
    assert curves["bags"].intervals["shape"][0] > 1.0 > curves["shoes"].intervals["shape"][0]


def _planted_forecast(sim: SimulatedResponse, horizon: int = 14):
    ids = ("total", *(f"total/{t}" for t in sim.spend.targets))
    base = sim.baseline[:, -horizon:]
    mean = np.vstack([base.sum(axis=0), base])
    ds = (sim.days[-1] + np.arange(1, horizon + 1)).astype("datetime64[us]")
    values = {"total": CategoryValue(1.0, 50.0, 1.0, 50.0)}
    for t in sim.spend.targets:
        r = sim.curves[t].revenue_per_order
        values[f"total/{t}"] = CategoryValue(1.0, r, 1.0, r)
    return Forecast(ids, ds, mean, {80: mean * 0.8}, {80: mean * 1.2}), values


def _true_uplift(sim: SimulatedResponse, plan) -> float:
    """Revenue the plan's spend buys under the planted (true) curves, in the steady state."""
    total = 0.0
    days = sorted({r.demand_date for r in plan.rows})
    for target, truth in sim.curves.items():
        spend = np.array(
            [sum(r.budget for r in plan.rows if r.target == target and r.demand_date == d)
             for d in days]
        )  # fmt: skip
        a = steady_kernel(truth.decay, len(spend)) @ spend
        total += truth.revenue_per_order * truth.beta * hill(a, truth.half, truth.shape).sum()
    return total


def test_marginal_return_allocation_beats_the_proportional_rule_on_true_uplift(planted) -> None:
    sim, curves = planted
    fc, values = _planted_forecast(sim)
    budget = 14 * 600.0
    response = make_plan(fc, values, PlanConfig(budget=budget), curves=curves)
    proportional = make_plan(fc, values, PlanConfig(budget=budget))
    assert response.mode == "response" and response.rule == "marginal_return"
    assert sum(r.budget for r in response.rows) == pytest.approx(budget)
    ours, theirs = _true_uplift(sim, response), _true_uplift(sim, proportional)
    assert ours > theirs * 1.01, (ours, theirs)
    # What the plan predicts for itself matches the truth within its own range.
    predicted = response.comparison["marginal_return"]
    assert predicted[1] <= ours <= predicted[2], (predicted, ours)
    assert response.comparison["difference"][0] > 0
    row = response.rows[0]
    assert row.uplift_revenue is not None and row.uplift_revenue_lo <= row.uplift_revenue
    assert row.marginal_return is not None and "marginal return" in row.reason
    # At the optimum the next unit buys about the same on every target (returns equalise).
    best = [t.marginal_return for t in response.targets]
    assert max(best) / min(best) < 1.15, best


def test_targets_without_a_curve_are_not_funded_in_response_mode(planted) -> None:
    sim, curves = planted
    fc, values = _planted_forecast(sim)
    plan = make_plan(fc, values, PlanConfig(budget=1000.0), curves={"shoes": curves["shoes"]})
    assert {r.target for r in plan.rows} == {"shoes"}
    hats = next(t for t in plan.targets if t.target == "hats")
    assert not hats.funded and "no spend history" in hats.why


def test_spend_history_errors_name_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "spend.csv"
    bad.write_text("date,target,spend\n2024-01-01,shoes,10\n2024-13-01,shoes,5\n")
    with pytest.raises(InputError, match=r"spend\.csv:3: column 'date': '2024-13-01' is not a"):
        read_spend_history(bad)
    bad.write_text("date,target,spend\n2024-01-01,shoes,-4\n")
    with pytest.raises(InputError, match=r"spend\.csv:2: column 'spend': '-4' is not a non-neg"):
        read_spend_history(bad)
    bad.write_text("day,target,cost\n")
    with pytest.raises(InputError, match=r"missing required columns \['date', 'spend'\]"):
        read_spend_history(bad)
    good = tmp_path / "ok.csv"
    good.write_text("date,target,spend\n2024-01-03,b,1\n2024-01-01,a,2\n2024-01-01,a,3\n")
    history = read_spend_history(good)
    assert history.targets == ("a", "b") and history.spend.tolist() == [[5, 0, 0], [0, 0, 1]]
