"""`shopseq report`: write the HTML report of the store (and other stages' artifacts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shopseq.report import ReportConfig, ReportSummary, write_report
from shopseq.store import open_store

from .options import StoreOption, ThreadsOption, console, default_store_path

__all__ = ["report", "run_report"]


def run_report(
    store_path: Path, out: Path, config: ReportConfig, threads: int | None = None
) -> ReportSummary:
    """Write the report with a status line and print where it is.

    Args:
        store_path: The DuckDB file.
        out: HTML destination.
        config: Report settings.
        threads: DuckDB threads.

    Returns:
        What was written.
    """
    with (
        open_store(store_path, read_only=True, threads=threads) as store,
        console.status("running the analyses and writing the report"),
    ):
        summary = write_report(store, out, config)
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items())
    console.print(
        f"report: {escape(str(summary.path))}  ({summary.n_bytes / 1e6:.1f} MB, "
        f"{summary.n_figures} charts, "
        f"{len(summary.artifacts)} artifacts; {timing})",
        highlight=False,
        soft_wrap=True,
    )
    return summary


def report(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="HTML file to write (default: report.html by the store)."),
    ] = None,
    artifacts: Annotated[
        list[Path] | None,
        typer.Option(
            "--artifacts",
            help="Directory with other stages' JSON (leaderboard.json, forecast.json, plan.json, "
            "*.report.json); repeatable. Default: the store's directory.",
        ),
    ] = None,
    title: Annotated[str, typer.Option(help="Page title.")] = "shopseq report",
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Write one self-contained HTML report (works offline) of the analyses and artifacts."""
    store_path = store or default_store_path()
    directories = tuple(artifacts) if artifacts else (store_path.resolve().parent,)
    config = ReportConfig(title=title, artifact_dirs=directories)
    run_report(store_path, out or store_path.resolve().parent / "report.html", config, threads)
