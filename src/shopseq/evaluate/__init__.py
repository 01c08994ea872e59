"""Stage 5: honest evaluation (full ranking, intervals, paired tests) and leaderboards.

This stage depends on no model: it ranks through the structural :class:`Scorer` protocol.
"""

from shopseq.evaluate.leaderboard import (
    Leaderboard,
    LeaderboardEntry,
    LeaderboardRow,
    build_leaderboard,
    write_leaderboard_csv,
    write_leaderboard_json,
)
from shopseq.evaluate.ranking import (
    DEFAULT_KS,
    RankingConfig,
    RankingResult,
    Recommendations,
    Scorer,
    average_popularity,
    catalogue_coverage,
    hit_rate_at_k,
    metric_per_case,
    mrr_at_k,
    ndcg_at_k,
    per_case_metric,
    rank_cases,
    recall_at_k,
    sampled_target_ranks,
    summarize,
    target_ranks,
    top_k,
)
from shopseq.evaluate.stats import PairedTest, bootstrap_ci, paired_test

__all__ = [
    "DEFAULT_KS",
    "Leaderboard",
    "LeaderboardEntry",
    "LeaderboardRow",
    "PairedTest",
    "RankingConfig",
    "RankingResult",
    "Recommendations",
    "Scorer",
    "average_popularity",
    "bootstrap_ci",
    "build_leaderboard",
    "catalogue_coverage",
    "hit_rate_at_k",
    "metric_per_case",
    "mrr_at_k",
    "ndcg_at_k",
    "paired_test",
    "per_case_metric",
    "rank_cases",
    "recall_at_k",
    "sampled_target_ranks",
    "summarize",
    "target_ranks",
    "top_k",
    "write_leaderboard_csv",
    "write_leaderboard_json",
]
