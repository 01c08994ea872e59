"""`shopseq stats`: profile the event store."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from shopseq.artifacts import json_value
from shopseq.prepare.profile import profile_store
from shopseq.store import open_store

from .options import StoreOption, ThreadsOption, console, default_store_path
from .render import show_profile

__all__ = ["stats"]


def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    store: StoreOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Events per action, users, items, sessions, distributions, date range, quarantine."""
    with open_store(store or default_store_path(), read_only=True, threads=threads) as opened:
        profile = profile_store(opened)
    if as_json:
        typer.echo(json.dumps(profile.to_dict(), indent=2, default=json_value))
    else:
        show_profile(console, profile)
