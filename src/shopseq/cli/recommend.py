"""`shopseq recommend`: top-k items for one user from a saved run directory (no store needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .options import console

__all__ = ["recommend"]


def recommend(
    user: Annotated[str, typer.Option("--user", "-u", help="User (or session) id.")],
    k: Annotated[int, typer.Option("-k", min=1, help="Number of items.")] = 10,
    run: Annotated[Path, typer.Option(help="Run directory from shopseq train.")] = Path(
        "runs/sknn"
    ),
    exclude_seen: Annotated[
        bool, typer.Option(help="Never recommend an item the user already has.")
    ] = True,
    recent: Annotated[
        list[str] | None,
        typer.Option(
            "--recent",
            help="An item the user just interacted with (repeatable, oldest first): answers a "
            "new visitor from the session so far.",
        ),
    ] = None,
) -> None:
    """Recommend the next items for one user from a saved run (new users get a fallback)."""
    from shopseq.runs.nextitem import NextItemRun

    answer = NextItemRun.load(run).recommend(
        user, k, exclude_seen=exclude_seen, recent=tuple(recent or ())
    )
    known = [i for i in answer.history if i is not None]
    last = ", ".join(known[-5:])
    console.print(escape(f"{answer.note} (last: {last or '-'})"), highlight=False)
    table = Table(title=escape(f"Top {k} for {user}"))
    table.add_column("#", justify="right")
    table.add_column("item")
    table.add_column("score", justify="right")
    for rank, (item, score) in enumerate(zip(answer.items, answer.scores, strict=True), start=1):
        table.add_row(str(rank), escape(item), f"{score:.4g}")
    console.print(table)
