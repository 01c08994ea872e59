"""Stage 3: tables -> leak-free, model-ready arrays (sequences, splits, vocabularies, features)."""

from shopseq.sequences.build import (
    EventArrays,
    SequenceConfig,
    Sequences,
    build_sequences,
    fetch_events,
    sliding_windows,
)
from shopseq.sequences.features import (
    CUTOFF,
    FeatureConfig,
    session_prefix_features,
    user_features,
)
from shopseq.sequences.labels import (
    LABEL_COLUMNS,
    SESSION_LABEL_COLUMNS,
    TASK_LABELS,
    LabelConfig,
    SessionIntentConfig,
    SnapshotConfig,
    SnapshotPlan,
    event_time_range,
    label_users,
    plan_snapshots,
    session_intent_examples,
    session_labels,
    user_examples,
    user_snapshots,
)
from shopseq.sequences.split import EvalCases, Split, SplitReport, leave_last_out, time_cut
from shopseq.sequences.vocab import PADDING_INDEX, UNKNOWN_INDEX, Vocabulary

__all__ = [
    "CUTOFF",
    "LABEL_COLUMNS",
    "PADDING_INDEX",
    "SESSION_LABEL_COLUMNS",
    "TASK_LABELS",
    "UNKNOWN_INDEX",
    "EvalCases",
    "EventArrays",
    "FeatureConfig",
    "LabelConfig",
    "SequenceConfig",
    "Sequences",
    "SessionIntentConfig",
    "SnapshotConfig",
    "SnapshotPlan",
    "Split",
    "SplitReport",
    "Vocabulary",
    "build_sequences",
    "event_time_range",
    "fetch_events",
    "label_users",
    "leave_last_out",
    "plan_snapshots",
    "session_intent_examples",
    "session_labels",
    "session_prefix_features",
    "sliding_windows",
    "time_cut",
    "user_examples",
    "user_features",
    "user_snapshots",
]
