"""Stage 1: raw files -> validated events + quarantine (rows read = accepted + quarantined)."""

from shopseq.ingest.layouts import (
    BUILTIN_LAYOUTS,
    Layout,
    TsFormat,
    generic_layout,
    load_layout_file,
)
from shopseq.ingest.load import (
    FileReport,
    IngestConfig,
    IngestReport,
    check_paths,
    ingest_files,
)
from shopseq.ingest.quarantine import QuarantineReason, RejectedRow

__all__ = [
    "BUILTIN_LAYOUTS",
    "FileReport",
    "IngestConfig",
    "IngestReport",
    "Layout",
    "QuarantineReason",
    "RejectedRow",
    "TsFormat",
    "check_paths",
    "generic_layout",
    "ingest_files",
    "load_layout_file",
]
