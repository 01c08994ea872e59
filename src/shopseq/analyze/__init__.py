"""Stage 6: descriptive behaviour analysis over prepared events (aggregation in the store).

Every analysis is one function ``f(events: ibis.Table, config) -> <Thing>Result`` where ``events``
is ``store.table("events_prepared")`` and the result is a frozen dataclass with ``to_dict()``.
"""

from shopseq.analyze.funnels import (
    FunnelConfig,
    FunnelResult,
    FunnelSeries,
    FunnelStep,
    funnel,
    funnel_breakdowns,
)
from shopseq.analyze.ordered import ORDER_COLUMNS, has_session_order, session_order
from shopseq.analyze.paths import Flow, PathCount, PathsConfig, PathsResult, paths
from shopseq.analyze.patterns import Pattern, PatternConfig, PatternsResult, mine_patterns
from shopseq.analyze.retention import (
    Cohort,
    RepeatPurchase,
    RetentionConfig,
    RetentionResult,
    SessionStats,
    retention,
)
from shopseq.analyze.rules import Rule, RuleConfig, RulesResult, association_rules
from shopseq.analyze.segments import (
    SegmentConfig,
    SegmentProfile,
    SegmentsResult,
    segment_features,
    segment_users,
)
from shopseq.analyze.states import (
    IntentStateModel,
    StateCandidate,
    StatePath,
    StateProfile,
    StatesConfig,
    StatesResult,
    intent_states,
    session_state_features,
)
from shopseq.analyze.transitions import (
    TransitionConfig,
    TransitionMatrix,
    TransitionsResult,
    transitions,
)

__all__ = [
    "ORDER_COLUMNS",
    "Cohort",
    "Flow",
    "FunnelConfig",
    "FunnelResult",
    "FunnelSeries",
    "FunnelStep",
    "IntentStateModel",
    "PathCount",
    "PathsConfig",
    "PathsResult",
    "Pattern",
    "PatternConfig",
    "PatternsResult",
    "RepeatPurchase",
    "RetentionConfig",
    "RetentionResult",
    "Rule",
    "RuleConfig",
    "RulesResult",
    "SegmentConfig",
    "SegmentProfile",
    "SegmentsResult",
    "SessionStats",
    "StateCandidate",
    "StatePath",
    "StateProfile",
    "StatesConfig",
    "StatesResult",
    "TransitionConfig",
    "TransitionMatrix",
    "TransitionsResult",
    "association_rules",
    "funnel",
    "funnel_breakdowns",
    "has_session_order",
    "intent_states",
    "mine_patterns",
    "paths",
    "retention",
    "segment_features",
    "segment_users",
    "session_order",
    "session_state_features",
    "transitions",
]
