"""`shopseq serve`: the HTTP service; `shopseq serve keys add/list/revoke`: its API keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from .options import console

__all__ = ["app", "import_served"]

DEFAULT_KEYS = Path("serve-keys.json")
DEFAULT_LOG = Path("serve-events.sqlite")

app = typer.Typer(
    help="Serve a run over HTTP: live events in, recommendations out (see docs/serve.md).",
    invoke_without_command=True,
    no_args_is_help=False,
)
keys_app = typer.Typer(help="API keys of the service (stored hashed; shown once when made).")
app.add_typer(keys_app, name="keys")

KeysOption = Annotated[
    Path, typer.Option("--keys", help="API-key file (hashes only).", show_default=True)
]


@app.callback()
def serve(
    ctx: typer.Context,
    run: Annotated[
        Path | None, typer.Option(help="Run directory to serve (shopseq train --out).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    log: Annotated[
        Path, typer.Option(help="Durable event log (SQLite, WAL; created when absent).")
    ] = DEFAULT_LOG,
    keys: KeysOption = DEFAULT_KEYS,
    predictions: Annotated[
        list[Path] | None,
        typer.Option(
            "--predictions",
            help="A per-user prediction run (shopseq predict TASK --out DIR); repeat it, "
            "one per task.",
        ),
    ] = None,
    forecasts: Annotated[
        Path | None, typer.Option(help="forecasts.json from shopseq forecast --out DIR.")
    ] = None,
    state: Annotated[
        str, typer.Option(help="Live state: memory, or a redis:// URL shared by replicas.")
    ] = "memory",
    pseudonymize: Annotated[
        bool,
        typer.Option(
            help="Pseudonymise user ids with ingest's keyed HMAC (key: --key-file or "
            "$SHOPSEQ_PSEUDONYM_KEY); use it when the run was trained on pseudonymised ingest."
        ),
    ] = False,
    key_file: Annotated[Path | None, typer.Option(help="File holding the pseudonym key.")] = None,
    max_body_bytes: Annotated[int, typer.Option(min=1024, help="Largest request body.")] = 1 << 20,
    max_batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Most events per request.")
    ] = 1000,
    max_recent: Annotated[int, typer.Option(min=1, help="Live events kept per user.")] = 200,
    threads: Annotated[int, typer.Option(min=1, help="Torch threads of a neural model.")] = 1,
    reuse_port: Annotated[
        bool, typer.Option(help="SO_REUSEPORT: several processes share the port (use Redis).")
    ] = False,
    access_log: Annotated[bool, typer.Option(help="One log line per request.")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve runs: POST /v1/events, GET /v1/users/{id}/recommendations and /predictions, ..."""
    if ctx.invoked_subcommand is not None:
        return
    from pydantic import ValidationError

    from shopseq.errors import ConfigError

    from .flags import flag_errors

    if run is None:
        raise ConfigError("shopseq serve needs --run DIR (a run directory from shopseq train)")
    # One BLAS thread per process: measured 8x the throughput of the default under concurrent
    # requests (STACK.md). numpy is already imported, so the pool is limited, not the variable.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    from shopseq.serve import ServeConfig
    from shopseq.serve.server import serve as run_server

    from .ingest import _pseudonym_key as pseudonym_key

    try:
        config = ServeConfig(
            run=run,
            log=log,
            keys=keys,
            predictions=tuple(predictions or ()),
            forecasts=forecasts,
            state=state,
            pseudonymize_key=pseudonym_key(key_file) if pseudonymize else None,
            max_body_bytes=max_body_bytes,
            max_batch=max_batch,
            max_recent=max_recent,
            threads=threads,
        )
    except ValidationError as err:
        raise ConfigError(flag_errors(err)) from err
    if not keys.is_file():
        console.print(
            f"[yellow]note:[/] no API-key file at {escape(str(keys))}: every request but "
            "/healthz and "
            "/readyz will get 401. Make one with: shopseq serve keys add NAME"
        )
    run_server(
        config,
        host,
        port,
        reuse_port=reuse_port,
        log_level=log_level,
        access_log=access_log,
    )


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. shop-frontend.")],
    role: Annotated[
        str, typer.Option(help="client (events and reads) or admin (also reload).")
    ] = "client",
    keys: KeysOption = DEFAULT_KEYS,
    quiet: Annotated[bool, typer.Option(help="Print only the key (for scripts).")] = False,
) -> None:
    """Make a key and print it once (only its SHA-256 is stored)."""
    from shopseq.errors import ConfigError
    from shopseq.serve.keys import KeyStore

    if role not in ("client", "admin"):
        raise ConfigError(f"--role must be client or admin; got {role!r}")
    chosen: Literal["client", "admin"] = "admin" if role == "admin" else "client"
    key, record = KeyStore(keys).add(name, chosen)
    if quiet:
        print(key)
        return
    console.print(
        f"{record.role} key {record.key_id} ({escape(record.name)}) added to {escape(str(keys))}; "
        "it is shown only now:",
        highlight=False,
    )
    print(key)


@keys_app.command("list")
def keys_list(keys: KeysOption = DEFAULT_KEYS) -> None:
    """List keys (ids, names, roles, dates; never the keys)."""
    from shopseq.serve.keys import KeyStore

    table = Table(title=f"API keys in {keys}")
    for column in ("id", "name", "role", "created", "revoked"):
        table.add_column(column)
    for key in KeyStore(keys).records():
        table.add_row(key.key_id, escape(key.name), key.role, key.created_at, key.revoked_at or "-")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see keys list).")],
    keys: KeysOption = DEFAULT_KEYS,
) -> None:
    """Revoke a key (a running service refuses it within a second)."""
    from shopseq.serve.keys import KeyStore

    record = KeyStore(keys).revoke(key_id)
    console.print(f"revoked key {record.key_id} ({escape(record.name)}) at {record.revoked_at}")


def import_served(log: Path, store_path: Path, threads: int | None) -> None:
    """``shopseq ingest --from-serve LOG``: move a service's logged events into the store once.

    Args:
        log: The service's event log.
        store_path: The DuckDB event store.
        threads: DuckDB threads.
    """
    from shopseq.runs.serving import import_served_events
    from shopseq.store import open_store

    with open_store(store_path, threads=threads) as store:
        done = import_served_events(log, store)
    console.print(
        f"{escape(str(log))}: {done.imported:,} served events imported into "
        f"{escape(str(store_path))} in {done.chunks} "
        f"transaction(s); {done.already_imported:,} were already there (log {done.log_id}, "
        f"up to sequence {done.last_seq:,}). Run shopseq prepare, then shopseq train."
    )
