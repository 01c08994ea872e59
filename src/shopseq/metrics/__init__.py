"""Pure metric functions, below every model: ranking, forecasting, and their statistics.

Nothing here knows a model or a protocol; leaderboards, backtests, selection and early stopping
sit above the models (in each task's folder) and all use these one copies.
"""

from shopseq.metrics.forecasting import coverage, mase, mase_scale, rmse, smape
from shopseq.metrics.ranking import (
    DEFAULT_KS,
    Recommendations,
    average_popularity,
    catalogue_coverage,
    hit_rate_at_k,
    metric_per_case,
    mrr_at_k,
    ndcg_at_k,
    per_case_metric,
    recall_at_k,
    sampled_target_ranks,
    summarize,
    target_ranks,
    top_k,
)
from shopseq.metrics.stats import PairedTest, bootstrap_ci, paired_test

__all__ = [
    "DEFAULT_KS",
    "PairedTest",
    "Recommendations",
    "average_popularity",
    "bootstrap_ci",
    "catalogue_coverage",
    "coverage",
    "hit_rate_at_k",
    "mase",
    "mase_scale",
    "metric_per_case",
    "mrr_at_k",
    "ndcg_at_k",
    "paired_test",
    "per_case_metric",
    "recall_at_k",
    "rmse",
    "sampled_target_ranks",
    "smape",
    "summarize",
    "target_ranks",
    "top_k",
]
