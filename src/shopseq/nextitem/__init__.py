"""Next-item prediction: the contract, the models, and the protocol that ranks them.

* ``base.py``: :class:`NextItemModel` and :class:`ScoringModel` (``recommend`` from ``score``).
* ``baselines.py`` (popularity, Markov, item-kNN, session-kNN), ``mf.py`` (ALS and BPR matrix
  factorisation from ``implicit``), ``gru4rec.py``, ``sasrec.py``: one file per model family
  (``neural.py`` holds what the two torch models share).
* ``evaluation.py`` (ranking cases, the validation callback) and ``leaderboard.py`` (models beside
  baselines with intervals and a paired test): above the models, using ``metrics/``.

The torch models are imported from their own modules (``shopseq.nextitem.sasrec``), never here, so
importing this package does not import torch.
"""

from shopseq.nextitem.base import NextItemModel, Recommendations, ScoringModel, top_k
from shopseq.nextitem.evaluation import (
    RankingConfig,
    RankingResult,
    Scorer,
    history_length,
    rank_cases,
)
from shopseq.nextitem.leaderboard import (
    Leaderboard,
    LeaderboardEntry,
    LeaderboardRow,
    build_leaderboard,
    write_leaderboard_csv,
    write_leaderboard_json,
)

__all__ = [
    "Leaderboard",
    "LeaderboardEntry",
    "LeaderboardRow",
    "NextItemModel",
    "RankingConfig",
    "RankingResult",
    "Recommendations",
    "Scorer",
    "ScoringModel",
    "build_leaderboard",
    "history_length",
    "rank_cases",
    "top_k",
    "write_leaderboard_csv",
    "write_leaderboard_json",
]
