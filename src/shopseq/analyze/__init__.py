"""Stage 6: descriptive behaviour analysis over prepared events (aggregation in the store)."""

from shopseq.analyze.funnels import FunnelConfig, FunnelResult, FunnelSeries, FunnelStep, funnel
from shopseq.analyze.retention import (
    Cohort,
    RepeatPurchase,
    RetentionConfig,
    RetentionResult,
    SessionStats,
    retention,
)

__all__ = [
    "Cohort",
    "FunnelConfig",
    "FunnelResult",
    "FunnelSeries",
    "FunnelStep",
    "RepeatPurchase",
    "RetentionConfig",
    "RetentionResult",
    "SessionStats",
    "funnel",
    "retention",
]
