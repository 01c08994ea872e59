"""`shopseq generate`: write a realistic synthetic shop log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shopseq.synthetic import GenerateReport, GeneratorConfig, generate_events, write_events

from .options import console

__all__ = ["generate", "run_generate"]


def run_generate(config: GeneratorConfig, output: Path) -> GenerateReport:
    """Generate and write a log with a status line, then print what was written.

    Args:
        config: Generator settings.
        output: Destination file (suffix picks the format).

    Returns:
        The report.
    """
    started = time.perf_counter()
    with console.status(f"generating ~{config.n_events:,} events"):
        table = generate_events(config)
        report = write_events(table, output, config)
    seconds = time.perf_counter() - started
    defects = ", ".join(f"{k} {v:,}" for k, v in sorted(report.defects.items()) if v)
    console.print(
        f"wrote {report.n_rows_written:,} rows to {escape(str(output))} in {seconds:.1f}s "
        f"({report.n_clean_events:,} clean events, {report.n_duplicates:,} duplicates"
        + (f", defects: {defects}" if defects else "")
        + ")"
    )
    return report


def generate(
    output: Annotated[
        Path, typer.Argument(help="File to write: .csv, .csv.gz, .csv.zst, .parquet, .jsonl")
    ],
    events: Annotated[
        int, typer.Option("--events", "-n", help="Approximate number of events.")
    ] = 1_000_000,
    users: Annotated[int | None, typer.Option(help="Users (default: events / 40).")] = None,
    items: Annotated[int | None, typer.Option(help="Items (default: events / 100).")] = None,
    days: Annotated[int, typer.Option(help="Days covered.")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same file).")] = 0,
    dirty: Annotated[float, typer.Option(help="Fraction of malformed rows to inject.")] = 0.0,
    duplicates: Annotated[float, typer.Option(help="Fraction of rows written twice.")] = 0.0,
    sequence_structure: Annotated[
        bool,
        typer.Option(
            "--sequence-structure",
            help="Plant session missions and favourite items (structure a first-order model "
            "cannot use; see GeneratorConfig.plant_sequence_structure).",
        ),
    ] = False,
) -> None:
    """Write a synthetic log that behaves like a shop (deterministic by seed)."""
    config = GeneratorConfig(
        n_events=events,
        n_users=users,
        n_items=items,
        n_days=days,
        seed=seed,
        dirty_fraction=dirty,
        duplicate_fraction=duplicates,
        plant_sequence_structure=sequence_structure,
    )
    run_generate(config, output)
