"""shopseq: e-commerce behaviour logs to analyses, predictions and plans.

The public API of the foundation stages; models, analyses and forecasts live in their subpackages
(`shopseq.nextitem`, `shopseq.forecast`, `shopseq.analyze`, ...); the jobs that string them
together are in `shopseq.runs`.
"""

from shopseq.errors import (
    ArtifactError,
    BadRowError,
    ConfigError,
    InputError,
    NotFittedError,
    SchemaMismatchError,
    ShopseqError,
    StoreError,
    UnknownIdError,
)
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, IngestReport, Layout, ingest_files
from shopseq.prepare import PrepareConfig, PrepareReport, prepare_events
from shopseq.schema import Action
from shopseq.sequences import (
    EvalCases,
    SequenceConfig,
    Sequences,
    Split,
    Vocabulary,
    fetch_events,
    leave_last_out,
    time_cut,
)
from shopseq.store import Store, open_store

__version__ = "0.1.0"

__all__ = [
    "BUILTIN_LAYOUTS",
    "Action",
    "ArtifactError",
    "BadRowError",
    "ConfigError",
    "EvalCases",
    "IngestConfig",
    "IngestReport",
    "InputError",
    "Layout",
    "NotFittedError",
    "PrepareConfig",
    "PrepareReport",
    "SchemaMismatchError",
    "SequenceConfig",
    "Sequences",
    "ShopseqError",
    "Split",
    "Store",
    "StoreError",
    "UnknownIdError",
    "Vocabulary",
    "__version__",
    "fetch_events",
    "ingest_files",
    "leave_last_out",
    "open_store",
    "prepare_events",
    "time_cut",
]
