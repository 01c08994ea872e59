"""The HTML report (Plotly, self-contained) over the analyses and other stages' results."""

from shopseq.report.artifacts import KNOWN_ARTIFACTS, ArtifactSection, find_artifacts
from shopseq.report.context import ReportConfig, ReportContext
from shopseq.report.html import SECTIONS, ReportSummary, Section, build_report, write_report

__all__ = [
    "KNOWN_ARTIFACTS",
    "SECTIONS",
    "ArtifactSection",
    "ReportConfig",
    "ReportContext",
    "ReportSummary",
    "Section",
    "build_report",
    "find_artifacts",
    "write_report",
]
