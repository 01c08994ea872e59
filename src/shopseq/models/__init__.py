"""Stage 4: models behind one contract per task."""

from shopseq.models.base import (
    NextItemModel,
    Recommendations,
    ScoringModel,
    check_is_fitted,
    top_k,
)

__all__ = ["NextItemModel", "Recommendations", "ScoringModel", "check_is_fitted", "top_k"]
