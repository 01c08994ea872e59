"""Options shared by several commands (resolved here, at the edge, then passed down)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shopseq.store import DEFAULT_STORE_NAME

__all__ = [
    "MemoryOption",
    "StoreOption",
    "ThreadsOption",
    "console",
    "default_store_path",
    "err_console",
]

#: Output for results; errors go to stderr.
console = Console()
err_console = Console(stderr=True)


def default_store_path() -> Path:
    """The store used when ``--store`` is not given: ``$SHOPSEQ_STORE`` or ./shopseq.duckdb.

    Returns:
        The path.
    """
    return Path(os.environ.get("SHOPSEQ_STORE", DEFAULT_STORE_NAME))


StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Event store (DuckDB file). Default: $SHOPSEQ_STORE or ./shopseq.duckdb.",
        show_default=False,
    ),
]

ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        max=1024,
        help="Worker threads for DuckDB (default: all cores).",
        show_default=False,
    ),
]

_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*([KMGT]i?B|B)\s*$", re.IGNORECASE)


def _memory_limit(value: str | None) -> str | None:
    """Check a memory limit such as 1GB or 512MiB before DuckDB sees it."""
    if value is not None and not _MEMORY.match(value):
        raise typer.BadParameter(
            f"{value!r} is not a memory size; expected e.g. 1GB, 512MB or 2GiB"
        )
    return value


MemoryOption = Annotated[
    str | None,
    typer.Option(
        "--memory-limit",
        help="DuckDB memory limit, e.g. 1GB (it spills to disk beyond it). Default: 80% of RAM.",
        show_default=False,
        callback=_memory_limit,
    ),
]
