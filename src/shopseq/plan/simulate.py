"""Generated spend histories with a planted response (the truth the fit must recover).

Orders per target and day are drawn from the model ``plan.response`` fits: a weekly baseline
with a mild trend, plus ``beta * hill(adstock(spend))``, with negative-binomial noise. Spend runs
in flights (campaigns of one to three weeks at a level drawn across the curve's range, then
pauses), as media plans do, so the history shows the curve from zero to saturation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.plan.response import SpendHistory, adstock, hill

__all__ = ["PlantedCurve", "SimulatedResponse", "SimulationConfig", "simulate_response"]


class PlantedCurve(BaseModel):
    """The true response of one target.

    Attributes:
        target: Target name.
        base: Baseline orders per day (no spend).
        beta: Most extra orders per day.
        decay: Carry-over share per day.
        half: Adstock at half saturation.
        shape: Hill steepness.
        revenue_per_order: Value of one order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str
    base: float = Field(gt=0)
    beta: float = Field(gt=0)
    decay: float = Field(ge=0, lt=1)
    half: float = Field(gt=0)
    shape: float = Field(gt=0)
    revenue_per_order: float = Field(default=50.0, gt=0)


#: Three targets whose curves differ in size, speed and shape (one S-shaped).
DEFAULT_CURVES = (
    PlantedCurve(target="shoes", base=40, beta=60, decay=0.5, half=200, shape=1.0,
                 revenue_per_order=50),
    PlantedCurve(target="bags", base=25, beta=30, decay=0.3, half=80, shape=2.0,
                 revenue_per_order=80),
    PlantedCurve(target="hats", base=15, beta=40, decay=0.6, half=400, shape=1.3,
                 revenue_per_order=30),
)  # fmt: skip


class SimulationConfig(BaseModel):
    """A generated spend history.

    Attributes:
        curves: The planted curves.
        n_days: Days of history.
        start: First day.
        dispersion: Negative-binomial dispersion of orders (larger: closer to Poisson).
        weekly_amplitude: Relative size of the weekly baseline pattern.
        seed: Random seed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    curves: tuple[PlantedCurve, ...] = DEFAULT_CURVES
    n_days: int = Field(default=365, ge=28)
    start: date = date(2024, 1, 1)
    dispersion: float = Field(default=30.0, gt=0)
    weekly_amplitude: float = Field(default=0.2, ge=0, lt=1)
    seed: int = 0


@dataclass(frozen=True, slots=True)
class SimulatedResponse:
    """What was generated.

    Attributes:
        days: ``(n_days,)`` datetime64[D].
        spend: The spend history.
        orders: ``(n_targets, n_days)`` orders.
        baseline: ``(n_targets, n_days)`` true baseline (expected orders without spend).
        curves: The planted truth, by target.
    """

    days: np.ndarray
    spend: SpendHistory
    orders: np.ndarray
    baseline: np.ndarray
    curves: dict[str, PlantedCurve]


def _flights(rng: np.random.Generator, n_days: int, half: float) -> np.ndarray:
    spend = np.zeros(n_days)
    t = int(rng.integers(0, 7))
    while t < n_days:
        length = int(rng.integers(7, 22))
        level = half * float(np.exp(rng.uniform(np.log(0.1), np.log(4.0))))
        jitter = rng.uniform(0.7, 1.3, size=min(length, n_days - t))
        spend[t : t + length] = level * jitter
        t += length + int(rng.integers(3, 15))  # a pause between flights
    return spend


def simulate_response(config: SimulationConfig) -> SimulatedResponse:
    """Generate spend and orders from the planted curves.

    Args:
        config: The truth and the noise.

    Returns:
        The history.
    """
    rng = np.random.default_rng(config.seed)
    n = config.n_days
    days = np.datetime64(config.start, "D") + np.arange(n)
    weekday = (days.astype(np.int64) + 3) % 7
    weekly = 1 + config.weekly_amplitude * np.sin(2 * np.pi * weekday / 7)
    trend = 1 + 0.1 * np.arange(n) / n
    spend_rows, orders, baselines = [], [], []
    for curve in config.curves:
        spend = _flights(rng, n, curve.half)
        base = curve.base * weekly * trend
        mu = base + curve.beta * hill(adstock(spend, curve.decay), curve.half, curve.shape)
        phi = config.dispersion
        orders.append(rng.negative_binomial(phi, phi / (phi + mu)).astype(np.float64))
        spend_rows.append(spend)
        baselines.append(base)
    targets = tuple(c.target for c in config.curves)
    order = np.argsort(targets)
    history = SpendHistory(
        tuple(targets[i] for i in order), days, np.vstack(spend_rows)[order], "generated"
    )
    return SimulatedResponse(
        days=days,
        spend=history,
        orders=np.vstack(orders)[order],
        baseline=np.vstack(baselines)[order],
        curves={c.target: c for c in config.curves},
    )
