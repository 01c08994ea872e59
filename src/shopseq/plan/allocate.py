"""Splitting a budget over targets and days under a planner's constraints.

Two allocators, both respecting the same :class:`Limits` (which cells may be funded -- lead time
and funded targets --, minimum and maximum per target, per day):

* :func:`allocate_by_marginal_return` -- with response curves: the budget goes, in small
  increments, to the target-day where the next increment buys the most extra value, until the
  budget is spent. Where the curves are concave this is the optimum (returns equalise across
  targets). An S-shaped curve's first increment buys almost nothing, so increments never start
  funding it: :func:`maximise_uplift` then climbs (SciPy SLSQP, exact gradients) from that and
  other starts and keeps the best, which equalises marginal returns among the funded targets.
* :func:`allocate_proportional` -- without curves: shares proportional to given weights
  (expected revenue), moved as little as possible (least squares, SciPy SLSQP) to meet the
  limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shopseq.errors import InputError
from shopseq.plan.response import ResponseCurve, hill, steady_kernel

__all__ = [
    "Limits",
    "allocate_by_marginal_return",
    "allocate_proportional",
    "check_limits",
    "marginal_returns",
    "maximise_uplift",
    "most_spendable",
    "plan_adstock",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """What may be spent where.

    Attributes:
        fundable: ``(n_targets, horizon)`` cells that may receive spend.
        target_min: ``(n_targets,)`` least total per target.
        target_max: ``(n_targets,)`` most total per target (``inf``: no limit).
        day_min: ``(horizon,)`` least total per day.
        day_max: ``(horizon,)`` most total per day (``inf``: no limit).
    """

    fundable: np.ndarray
    target_min: np.ndarray
    target_max: np.ndarray
    day_min: np.ndarray
    day_max: np.ndarray

    @property
    def constrained(self) -> bool:
        """Whether anything beyond the fundable cells limits the allocation."""
        return bool(
            (self.target_min > 0).any()
            or np.isfinite(self.target_max).any()
            or (self.day_min > 0).any()
            or np.isfinite(self.day_max).any()
        )


def check_limits(limits: Limits, budget: float, names: Sequence[str]) -> None:
    """Refuse limits that cannot all hold.

    Args:
        limits: The limits.
        budget: The budget.
        names: Target names (for the messages).

    Raises:
        InputError: If the minimums exceed the budget or a maximum, or cannot be funded.
    """
    if limits.target_min.sum() > budget + 1e-9:
        raise InputError(
            f"the minimums per target add up to {limits.target_min.sum():,.2f}, more than the "
            f"budget {budget:,.2f}"
        )
    if limits.day_min.sum() > budget + 1e-9:
        raise InputError(
            f"the minimum per day over {len(limits.day_min)} days adds up to "
            f"{limits.day_min.sum():,.2f}, more than the budget {budget:,.2f}"
        )
    for i, name in enumerate(names):
        if limits.target_min[i] > limits.target_max[i]:
            raise InputError(
                f"target {name!r}: minimum {limits.target_min[i]:,.2f} is above its maximum "
                f"{limits.target_max[i]:,.2f}"
            )
        if limits.target_min[i] > 0 and not limits.fundable[i].any():
            raise InputError(
                f"target {name!r} has a minimum of {limits.target_min[i]:,.2f} but cannot be "
                "funded (no fundable day: check the lead time, or it has no response curve)"
            )
    open_days = limits.fundable.any(axis=0)
    if (limits.day_min[~open_days] > 0).any():
        raise InputError("a minimum per day falls on days no target can be funded (lead time)")


def _room(x: np.ndarray, limits: Limits, budget: float) -> np.ndarray:
    """How much more each cell can take: ``(n_targets, horizon)``."""
    left = budget - x.sum()
    by_target = limits.target_max - x.sum(axis=1)
    by_day = limits.day_max - x.sum(axis=0)
    room = np.minimum(by_target[:, None], by_day[None, :])
    room = np.minimum(room, left)
    return np.where(limits.fundable, np.maximum(room, 0.0), 0.0)


def allocate_by_marginal_return(
    curves: Sequence[ResponseCurve],
    value_per_order: np.ndarray,
    budget: float,
    limits: Limits,
    *,
    n_steps: int = 400,
) -> np.ndarray:
    """Greedy allocation by the value the next increment buys.

    Minimums are met first (each with its best days), then every increment of
    ``budget / n_steps`` goes to the cell with the highest return, within the limits.

    Args:
        curves: One fitted curve per target (in ``limits`` order).
        value_per_order: ``(n_targets,)`` value of one extra order (revenue, or 1 for orders).
        budget: Money to allocate.
        limits: Fundable cells and limits.
        n_steps: Increments (resolution of the allocation).

    Returns:
        ``(n_targets, horizon)`` spend; the sum is the budget unless the limits stop it.
    """
    n, h = limits.fundable.shape
    x = np.zeros((n, h))
    step = budget / n_steps
    params = [_params(c) for c in curves]
    # kernels[c][t, j]: steady-state adstock on period t of one unit spent on period j.
    kernels = [steady_kernel(p[1], h) for p in params]

    def gains(c: int, amount: np.ndarray) -> np.ndarray:
        beta, _, half, shape = params[c]
        a = kernels[c] @ x[c]  # (h,)
        now = hill(a, half, shape).sum()
        after = hill(a[:, None] + kernels[c] * amount[None, :], half, shape).sum(axis=0)
        return np.asarray(value_per_order[c] * beta * (after - now))  # (h,)

    def best_cell(
        room: np.ndarray, rows: Sequence[int], days: np.ndarray | None = None
    ) -> tuple[int, int, float]:
        best, where = -np.inf, (-1, -1, 0.0)
        for c in rows:
            amount = np.minimum(room[c], step)
            ok = amount > 1e-12
            if days is not None:
                ok &= days
            if not ok.any():
                continue
            rate = np.where(ok, gains(c, amount) / np.maximum(amount, 1e-12), -np.inf)
            j = int(np.argmax(rate))
            if rate[j] > best:
                best, where = float(rate[j]), (c, j, float(amount[j]))
        return where

    # Minimums per target, then per day, each with its best cells.
    for c in np.flatnonzero(limits.target_min > 0):
        while x[c].sum() < limits.target_min[c] - 1e-9:
            room = _room(x, limits, budget)
            room[c] = np.minimum(room[c], limits.target_min[c] - x[c].sum())
            i, j, amount = best_cell(room, [int(c)])
            if i < 0:
                break
            x[i, j] += amount
    for d in np.flatnonzero(limits.day_min > 0):
        while x[:, d].sum() < limits.day_min[d] - 1e-9:
            room = _room(x, limits, budget)
            room[:, d] = np.minimum(room[:, d], limits.day_min[d] - x[:, d].sum())
            day = np.zeros(h, dtype=bool)
            day[d] = True
            i, jj, amount = best_cell(room, range(n), day)
            if i < 0:
                break
            x[i, jj] += amount
    while budget - x.sum() > 1e-9 * max(budget, 1.0):
        room = _room(x, limits, budget)
        i, j, amount = best_cell(room, range(n))
        if i < 0:
            break  # every cell is at a limit: the rest stays unallocated
        x[i, j] += amount
    return x


def marginal_returns(
    curves: Sequence[ResponseCurve], value_per_order: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Value bought by the next unit of spend on each cell at allocation ``x``.

    Args:
        curves: One curve per target.
        value_per_order: ``(n_targets,)`` value per extra order.
        x: ``(n_targets, horizon)`` allocation.

    Returns:
        ``(n_targets, horizon)`` value per unit of spend (a derivative, by a 1 % step of the
        mean cell spend).
    """
    n, h = x.shape
    delta = max(float(x.mean()) * 0.01, 1e-6)
    out = np.zeros((n, h))
    for c, curve in enumerate(curves):
        base = curve.uplift(x[c]).sum()
        for j in range(h):
            bumped = x[c].copy()
            bumped[j] += delta
            out[c, j] = value_per_order[c] * (curve.uplift(bumped).sum() - base) / delta
    return out


def _limit_rows(limits: Limits, cells: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """The per-target and per-day limits as rows of ``A_ub @ v <= b_ub`` over the fundable cells.

    Args:
        limits: Fundable cells and limits.
        cells: Flat indices (target * horizon + day) of the fundable cells.

    Returns:
        The rows and their bounds (a minimum becomes ``-sum <= -min``).
    """
    n, h = limits.fundable.shape
    by_target = np.zeros((n, cells.size))
    by_day = np.zeros((h, cells.size))
    by_target[cells // h, np.arange(cells.size)] = 1.0
    by_day[cells % h, np.arange(cells.size)] = 1.0
    rows: list[np.ndarray] = []
    bounds: list[float] = []
    for share, low, high in (
        (by_target, limits.target_min, limits.target_max),
        (by_day, limits.day_min, limits.day_max),
    ):
        for k in range(share.shape[0]):
            if np.isfinite(high[k]):
                rows.append(share[k])
                bounds.append(float(high[k]))
            if low[k] > 0:
                rows.append(-share[k])
                bounds.append(-float(low[k]))
    return rows, bounds


class _Cells:
    """The fundable cells as one vector, and the limits as linear constraints on it."""

    def __init__(self, limits: Limits, budget: float) -> None:
        n, h = limits.fundable.shape
        self.shape = (n, h)
        self.cells = np.flatnonzero(limits.fundable.reshape(-1))
        rows, bounds = _limit_rows(limits, self.cells)  # A_ub @ v <= b_ub
        self.a_ub = np.vstack(rows) if rows else np.zeros((0, self.cells.size))
        self.b_ub = np.array(bounds)
        self.total = most_spendable(limits, budget)

    def full(self, v: np.ndarray) -> np.ndarray:
        out = np.zeros(self.shape[0] * self.shape[1])
        out[self.cells] = v
        return out.reshape(self.shape)

    def constraints(self) -> list[dict[str, Any]]:
        """SLSQP constraints: spend the spendable total, within every limit."""
        ones = np.ones((1, self.cells.size))
        out: list[dict[str, Any]] = [
            {
                "type": "eq",
                "fun": lambda v: np.array([self.total - v.sum()]),
                "jac": lambda v: -ones,
            }
        ]
        if len(self.b_ub):
            out.append(
                {
                    "type": "ineq",
                    "fun": lambda v: self.b_ub - self.a_ub @ v,
                    "jac": lambda v: -self.a_ub,
                }
            )
        return out


def allocate_proportional(weights: np.ndarray, budget: float, limits: Limits) -> np.ndarray:
    """Shares proportional to ``weights`` on the fundable cells, moved least to meet the limits.

    Args:
        weights: ``(n_targets, horizon)`` non-negative weights.
        budget: Money to allocate.
        limits: Fundable cells and limits.

    Returns:
        ``(n_targets, horizon)`` spend.
    """
    w = np.where(limits.fundable, np.maximum(weights, 0.0), 0.0)
    if w.sum() <= 0:
        w = limits.fundable.astype(np.float64)  # nothing valued: spread evenly
    if w.sum() <= 0:
        return np.zeros_like(w)
    wanted = np.asarray(budget * w / w.sum())
    if not limits.constrained:
        return wanted
    from scipy.optimize import minimize  # a least-squares projection onto the limits

    # Spend as much of the budget as the limits allow (a linear program), then stay as close to
    # proportional as possible at that total.
    cells = _Cells(limits, budget)
    target = wanted.reshape(-1)[cells.cells] * cells.total / budget
    result = minimize(
        lambda v: float(np.sum((v - target) ** 2)),
        np.clip(target, 0, None),
        jac=lambda v: 2 * (v - target),
        bounds=[(0.0, None)] * cells.cells.size,
        constraints=cells.constraints(),
        method="SLSQP",
        options={"maxiter": 500, "ftol": 1e-10},
    )
    return cells.full(np.maximum(result.x, 0.0))


def maximise_uplift(
    curves: Sequence[ResponseCurve],
    value_per_order: np.ndarray,
    budget: float,
    limits: Limits,
    starts: Sequence[np.ndarray],
) -> np.ndarray:
    """Polish allocations to the most value the curves promise (SciPy SLSQP, several starts).

    The objective is smooth but not concave (S-shaped curves): each start climbs to a local
    optimum and the best one is kept. A greedy allocation by increments misses S-shaped targets
    altogether (their first increment buys almost nothing), so it is one start among others.

    Args:
        curves: One curve per target.
        value_per_order: ``(n_targets,)`` value per extra order.
        budget: The budget.
        limits: Fundable cells and limits.
        starts: Allocations to start from (``(n_targets, horizon)`` each).

    Returns:
        The best allocation found (never worse than the best start).
    """
    from scipy.optimize import minimize

    cells = _Cells(limits, budget)
    n, h = limits.fundable.shape
    kernels = [steady_kernel(c.decay, h) for c in curves]

    def value(x: np.ndarray) -> float:
        return float(sum(value_per_order[c] * curves[c].uplift(x[c]).sum() for c in range(n)))

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        x = cells.full(np.maximum(v, 0.0))
        total, grad = 0.0, np.zeros((n, h))
        for c, curve in enumerate(curves):
            a = np.maximum(kernels[c] @ x[c], 1e-9)  # (h,)
            r = (a / curve.half) ** curve.shape
            total += value_per_order[c] * curve.beta * float(np.sum(r / (1 + r)))
            slope = curve.shape * r / (a * (1 + r) ** 2)  # d hill / d a
            grad[c] = value_per_order[c] * curve.beta * (kernels[c].T @ slope)
        return -total, -grad.reshape(-1)[cells.cells]

    best = max(starts, key=value)
    best_value = value(best)
    for start in starts:
        found = minimize(
            objective,
            np.maximum(start.reshape(-1)[cells.cells], 0.0),
            jac=True,
            bounds=[(0.0, None)] * cells.cells.size,
            constraints=cells.constraints(),
            method="SLSQP",
            options={"maxiter": 300, "ftol": 1e-9},
        )
        x = cells.full(np.maximum(found.x, 0.0))
        feasible = abs(x.sum() - cells.total) <= 1e-6 * max(budget, 1.0) and (
            not len(cells.b_ub) or np.all(cells.a_ub @ found.x <= cells.b_ub + 1e-6)
        )
        if feasible and value(x) > best_value:
            best, best_value = x, value(x)
    return best


def most_spendable(limits: Limits, budget: float) -> float:
    """The largest total the limits let the plan spend, up to the budget.

    Args:
        limits: Fundable cells and limits.
        budget: The budget.

    Returns:
        The total.
    """
    from scipy.optimize import linprog

    cells = np.flatnonzero(limits.fundable.reshape(-1))
    if cells.size == 0:
        return 0.0
    rows, bounds = _limit_rows(limits, cells)
    rows.append(np.ones(cells.size))
    bounds.append(budget)
    result = linprog(
        -np.ones(cells.size), A_ub=np.vstack(rows), b_ub=np.array(bounds), method="highs"
    )
    if not result.success:
        raise InputError(f"the plan's limits cannot all hold together ({result.message})")
    return float(min(-result.fun, budget))


def _params(curve: ResponseCurve) -> tuple[float, float, float, float]:
    return curve.beta, curve.decay, curve.half, curve.shape


def plan_adstock(curve: ResponseCurve, spend: np.ndarray) -> np.ndarray:
    """Steady-state adstock of a plan (``steady_kernel``).

    Args:
        curve: A curve.
        spend: ``(H,)`` spend.

    Returns:
        ``(H,)`` adstock.
    """
    return np.asarray(steady_kernel(curve.decay, len(spend)) @ spend)
