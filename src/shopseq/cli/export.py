"""`shopseq export`: write a table of the DuckDB store as Parquet, the layout Spark reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shopseq.store import open_store

from .options import StoreOption, ThreadsOption, console, default_store_path

__all__ = ["export"]


def export(
    to: Annotated[
        Path,
        typer.Option("--to", help="Parquet store directory (the --spark-output of later steps)."),
    ],
    table: Annotated[str, typer.Argument(help="Table to write.")] = "events",
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Write a table as <to>/<table> (Parquet, partitioned by date) for --engine spark.

    The same directory opens read-only as ``--store <to>`` on one machine.
    """
    with (
        open_store(store or default_store_path(), read_only=True, threads=threads) as opened,
        console.status(f"writing {table}"),
    ):
        path = opened.export_parquet(table, to)
    console.print(
        f"{escape(table)} written to {escape(str(path))} (read it with --engine spark "
        f"--spark-output {escape(str(to))})"
    )
