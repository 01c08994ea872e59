"""Customer lifetime value from a transaction model (BG/NBD, Pareto/NBD) and Gamma-Gamma spend."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.errors import check_is_fitted
from shopseq.users.clv import BGNBD, GammaGamma, ParetoNBD, TransactionModel
from shopseq.users.summary import CustomerSummary

__all__ = ["ClvConfig", "clv_intervals", "customer_lifetime_value"]


class ClvConfig(BaseModel):
    """Customer lifetime value: horizon, period and discount.

    Attributes:
        horizon_periods: Periods summed.
        period_days: Days per period (30: months).
        discount_rate: Discount per period (0.01 a month is about 12.7 % a year).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon_periods: int = Field(default=12, ge=1)
    period_days: float = Field(default=30.0, gt=0)
    discount_rate: float = Field(default=0.01, ge=0.0)


def _params(model: TransactionModel | GammaGamma) -> np.ndarray:
    check_is_fitted(model, "params_")
    assert model.params_ is not None  # for mypy: checked above
    return model.params_


def _clv(
    transactions: type[TransactionModel],
    t_params: np.ndarray,
    s_params: np.ndarray,
    summary: CustomerSummary,
    config: ClvConfig,
) -> np.ndarray:
    step = config.period_days / summary.unit_days
    x, t_x, age = summary.frequency, summary.recency, summary.age
    cumulative = np.stack(
        [
            transactions.expected(t_params, step * i, x, t_x, age)
            for i in range(1, config.horizon_periods + 1)
        ]
    )  # (periods, n)
    per_period = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1.0 + config.discount_rate) ** -np.arange(1, config.horizon_periods + 1)
    out: np.ndarray = (discount @ per_period) * GammaGamma.mean_spend(s_params, x, summary.monetary)
    return out


def customer_lifetime_value(
    transactions: BGNBD | ParetoNBD,
    spend: GammaGamma,
    summary: CustomerSummary,
    config: ClvConfig | None = None,
) -> np.ndarray:
    """Discounted expected spend of each customer over the horizon.

    ``CLV = sum_i spend * (E[X(i d)] - E[X((i - 1) d)]) / (1 + rate)^i`` for periods ``i`` of
    ``d`` units: the expected transactions of each period (from the transaction model, given the
    customer's history) times the expected spend per transaction (Gamma-Gamma), discounted.

    Args:
        transactions: A fitted BG/NBD or Pareto/NBD.
        spend: A fitted Gamma-Gamma.
        summary: Customers.
        config: Horizon, period and discount.

    Returns:
        (n,) CLV in the data's currency.
    """
    config = config or ClvConfig()
    return _clv(type(transactions), _params(transactions), _params(spend), summary, config)


def clv_intervals(
    transactions: BGNBD | ParetoNBD,
    spend: GammaGamma,
    summary: CustomerSummary,
    config: ClvConfig | None = None,
    *,
    n_resamples: int = 200,
    level: float = 0.9,
    seed: int = 0,
    chunk: int = 100_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap interval of each customer's CLV (parameter uncertainty).

    Customers are resampled with replacement and both models refitted (warm-started) on each
    resample; each customer's CLV under every draw gives percentile bounds.

    Args:
        transactions: A fitted BG/NBD or Pareto/NBD.
        spend: A fitted Gamma-Gamma.
        summary: The customers both were fitted on (and whose CLV is bounded).
        config: Horizon, period and discount.
        n_resamples: Bootstrap resamples.
        level: Coverage of the interval.
        seed: Seed.
        chunk: Customers evaluated at once (bounds memory at ``n_resamples x chunk`` floats).

    Returns:
        ``(low, high)``, each (n,).
    """
    config = config or ClvConfig()
    t_draws = transactions.bootstrap(summary, n_resamples, seed=seed)
    s_draws = spend.bootstrap(summary, n_resamples, seed=seed)
    alpha = (1.0 - level) / 2.0
    low, high = np.empty(len(summary)), np.empty(len(summary))
    for start in range(0, len(summary), chunk):  # chunks of customers, each vectorised
        part = summary.take(np.arange(start, min(start + chunk, len(summary))))
        values = np.stack(
            [
                _clv(type(transactions), t, s, part, config)
                for t, s in zip(t_draws, s_draws, strict=True)
            ]
        )
        low[start : start + len(part)] = np.quantile(values, alpha, axis=0)
        high[start : start + len(part)] = np.quantile(values, 1.0 - alpha, axis=0)
    return low, high
