"""Per-user predictions: customer-base models (BG/NBD, Pareto/NBD, Gamma-Gamma, CLV)."""

from shopseq.users.clv import BGNBD, CustomerModelConfig, GammaGamma, ParetoNBD
from shopseq.users.summary import CustomerSummary, customer_summary, summarize_transactions
from shopseq.users.value import ClvConfig, clv_intervals, customer_lifetime_value

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
