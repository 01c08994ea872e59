"""Forecasts (and, given a spend history, response curves) -> a marketing plan.

* ``budget.py``: the plan itself (:func:`make_plan`, :class:`PlanConfig`, :class:`Plan`), in the
  proportional mode (baseline demand, no spend history) or the response mode (uplift).
* ``response.py``: response curves (adstock + Hill) fitted per target from a spend history.
* ``allocate.py``: the allocators (by marginal return; proportional) under a planner's limits.
* ``simulate.py``: spend histories with a planted response, for tests and benchmarks.
"""

from shopseq.plan.budget import (
    AllocationRule,
    CategoryValue,
    Plan,
    PlanConfig,
    PlanRow,
    TargetPlan,
    category_values,
    make_plan,
    share_by_expected_revenue,
    write_plan,
)
from shopseq.plan.response import (
    ResponseCurve,
    ResponseFitConfig,
    SpendHistory,
    fit_response,
    read_spend_history,
)

__all__ = [
    "AllocationRule",
    "CategoryValue",
    "Plan",
    "PlanConfig",
    "PlanRow",
    "ResponseCurve",
    "ResponseFitConfig",
    "SpendHistory",
    "TargetPlan",
    "category_values",
    "fit_response",
    "make_plan",
    "read_spend_history",
    "share_by_expected_revenue",
    "write_plan",
]
