"""Stage 3: tables -> leak-free, model-ready arrays (sequences, splits, vocabularies, features)."""

from shopseq.sequences.build import (
    EventArrays,
    SequenceConfig,
    Sequences,
    build_sequences,
    fetch_events,
    sliding_windows,
)
from shopseq.sequences.features import user_features
from shopseq.sequences.split import EvalCases, Split, SplitReport, leave_last_out, time_cut
from shopseq.sequences.vocab import PADDING_INDEX, UNKNOWN_INDEX, Vocabulary

__all__ = [
    "PADDING_INDEX",
    "UNKNOWN_INDEX",
    "EvalCases",
    "EventArrays",
    "SequenceConfig",
    "Sequences",
    "Split",
    "SplitReport",
    "Vocabulary",
    "build_sequences",
    "fetch_events",
    "leave_last_out",
    "sliding_windows",
    "time_cut",
    "user_features",
]
