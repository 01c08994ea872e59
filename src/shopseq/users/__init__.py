"""Per-user predictions: customer-base models (BG/NBD, Pareto/NBD, Gamma-Gamma, CLV)."""

from shopseq.users.clv import (
    BGNBD,
    ClvConfig,
    CustomerModelConfig,
    GammaGamma,
    ParetoNBD,
    clv_intervals,
    customer_lifetime_value,
)
from shopseq.users.summary import CustomerSummary, customer_summary, summarize_transactions

__all__ = [
    "BGNBD",
    "ClvConfig",
    "CustomerModelConfig",
    "CustomerSummary",
    "GammaGamma",
    "ParetoNBD",
    "clv_intervals",
    "customer_lifetime_value",
    "customer_summary",
    "summarize_transactions",
]
