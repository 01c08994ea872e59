"""Stage 8: the HTML report (Plotly, self-contained) over the analyses and other stages' results."""

from shopseq.report.artifacts import KNOWN_ARTIFACTS, ArtifactSection, find_artifacts
from shopseq.report.html import ReportConfig, ReportSummary, build_report, write_report

__all__ = [
    "KNOWN_ARTIFACTS",
    "ArtifactSection",
    "ReportConfig",
    "ReportSummary",
    "build_report",
    "find_artifacts",
    "write_report",
]
