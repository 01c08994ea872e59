"""`shopseq ingest`: validate files into the event store."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretBytes
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from shopseq.errors import ConfigError, ShopseqError
from shopseq.ingest import (
    BUILTIN_LAYOUTS,
    FileReport,
    IngestConfig,
    IngestReport,
    Layout,
    TsFormat,
    check_paths,
    generic_layout,
    ingest_files,
    load_layout_file,
)
from shopseq.ingest.readers import DEFAULT_MAX_LINE_BYTES
from shopseq.runs.engine import EngineConfig, open_engine_store
from shopseq.store import open_store

from .cluster import (
    EngineOption,
    SparkAppOption,
    SparkConfOption,
    SparkMasterOption,
    SparkOutputOption,
    engine_config,
    spark_workers_use_this_python,
)
from .options import (
    MemoryOption,
    StoreOption,
    ThreadsOption,
    console,
    default_store_path,
    err_console,
)
from .render import show_ingest, show_items

__all__ = ["ingest", "resolve_layout", "run_ingest", "run_ingest_spark"]

KEY_ENV = "SHOPSEQ_PSEUDONYM_KEY"


_DELIMITER_NAMES = {"\\t": "\t", "tab": "\t", "TAB": "\t", "space": " "}


def resolve_layout(
    layout: str | None,
    layout_file: Path | None,
    columns: list[str],
    actions: list[str],
    delimiter: str | None,
    ts_format: TsFormat | None,
    no_header: bool,
    ts_strptime: str | None = None,
    source_columns: str | None = None,
) -> Layout:
    """Turn the layout options into one validated layout.

    Args:
        layout: Built-in layout name.
        layout_file: TOML layout file.
        columns: ``canonical=source`` overrides.
        actions: ``source=action`` overrides.
        delimiter: Field separator override (``tab`` or a backslash and t mean a tab).
        ts_format: Timestamp format override.
        no_header: The file has no header line.
        ts_strptime: Format for ``--ts-format strptime``.
        source_columns: Comma-separated column names of a file without a header.

    Returns:
        The layout.

    Raises:
        ConfigError: If the name is unknown, both a name and a file are given, or a value is
            invalid (the message names the option).
    """
    if layout and layout_file:
        raise ConfigError("give --layout or --layout-file, not both")
    if layout_file:
        base = load_layout_file(layout_file)
    elif layout:
        if layout not in BUILTIN_LAYOUTS:
            raise ConfigError(
                f"unknown layout {layout!r}; built-in layouts: {', '.join(BUILTIN_LAYOUTS)}"
            )
        base = BUILTIN_LAYOUTS[layout]
    else:
        base = BUILTIN_LAYOUTS["shopseq"]
    if delimiter is not None:
        delimiter = _DELIMITER_NAMES.get(delimiter, delimiter)
        if delimiter != "whitespace" and (
            len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n'
        ):
            raise ConfigError(
                f"--delimiter {delimiter!r}: expected one ASCII character other than a quote or "
                "a line break (tab, or 'whitespace' for runs of spaces)"
            )
    names = None
    if source_columns is not None:
        names = tuple(n.strip() for n in source_columns.split(","))
        if not all(names):
            raise ConfigError(
                f"--source-columns {source_columns!r}: expected comma-separated names, e.g. "
                "user,item,ts"
            )
    if not (columns or actions or delimiter or ts_format or no_header or ts_strptime or names):
        return base
    return generic_layout(
        columns,
        actions,
        base=base,
        delimiter=delimiter,
        ts_format=ts_format,
        header=False if no_header else None,
        ts_strptime=ts_strptime,
        source_columns=names,
    )


def _pseudonym_key(key_file: Path | None) -> SecretBytes:
    if key_file is not None:
        try:
            return SecretBytes(key_file.read_bytes().strip())
        except OSError as err:
            raise ConfigError(f"--key-file {key_file}: cannot read: {err}") from err
    value = os.environ.get(KEY_ENV)
    if not value:
        raise ConfigError(
            f"--pseudonymize needs a secret key: pass --key-file PATH or set ${KEY_ENV} "
            "(e.g. python -c 'import secrets; print(secrets.token_hex(32))'); keep it outside "
            "the store, and reuse it so later files map users to the same pseudonyms"
        )
    return SecretBytes(value.encode())


def run_ingest(
    files: list[Path],
    config: IngestConfig,
    store_path: Path,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> IngestReport:
    """Ingest with a progress display and print the report.

    When a file fails, the files committed before it are still reported (they stay in the
    store), then the error is raised.

    Args:
        files: Input files.
        config: Ingest settings.
        store_path: The DuckDB file.
        threads: DuckDB threads.
        memory_limit: DuckDB memory limit.

    Returns:
        The report.
    """
    check_paths(files)
    done: list[FileReport] = []
    try:
        with (
            open_store(store_path, threads=threads, memory_limit=memory_limit) as store,
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("ingesting", total=None)

            def advance(path: Path, rows: int) -> None:
                progress.update(task, description=f"ingesting {escape(path.name)}: {rows:,} rows")

            report = ingest_files(files, config, store, on_progress=advance, on_file=done.append)
    except ShopseqError:
        if done:
            show_ingest(console, IngestReport(files=tuple(done)))
        rest = files[len(done) :]
        if done and rest:
            err_console.print(
                f"committed {len(done)} of {len(files)} files; not ingested: "
                + ", ".join(escape(str(p)) for p in rest)
                + " (fix the first and re-run: committed files are skipped by their SHA-256)",
                highlight=False,
                soft_wrap=True,
            )
        raise
    show_ingest(console, report)
    return report


def run_ingest_spark(files: list[str], config: IngestConfig, engine: EngineConfig) -> IngestReport:
    """Ingest on Spark (paths as Spark reads them) and print the report.

    Args:
        files: Files, directories or globs (local, ``hdfs://``, ``s3a://`` ...).
        config: Ingest settings.
        engine: The Spark engine.

    Returns:
        The report.
    """
    from shopseq.ingest.spark import ingest_on_spark

    spark_workers_use_this_python()
    with (
        open_engine_store(engine, Path(), require_events=False) as store,
        console.status("ingesting on Spark"),
    ):
        report = ingest_on_spark(files, config, store)
    show_ingest(console, report)
    return report


def ingest(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="CSV (plain, .gz/.zst/.bz2/.xz), Parquet or JSON-lines files (with --engine "
            "spark: any path, directory or glob Spark reads).",
            metavar="FILES",
            show_default=False,
        ),
    ] = None,
    layout: Annotated[
        str | None, typer.Option(help="Built-in layout (see --list-layouts).")
    ] = None,
    layout_file: Annotated[Path | None, typer.Option(help="Layout TOML file.")] = None,
    column: Annotated[
        list[str] | None, typer.Option("--column", help="Map a column: canonical=source.")
    ] = None,
    action: Annotated[
        list[str] | None, typer.Option("--action", help="Map an action: source_value=action.")
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="Field separator.")] = None,
    ts_format: Annotated[TsFormat | None, typer.Option(help="Timestamp format.")] = None,
    no_header: Annotated[bool, typer.Option(help="The files have no header line.")] = False,
    source_columns: Annotated[
        str | None,
        typer.Option(help="Column names of files without a header, comma-separated, in order."),
    ] = None,
    ts_strptime: Annotated[
        str | None,
        typer.Option(help="Format for --ts-format strptime, e.g. '%Y-%m-%d %H:%M:%S'."),
    ] = None,
    max_line_bytes: Annotated[
        int,
        typer.Option(
            min=1024,
            help="Longest line read; longer lines are quarantined as line_too_long.",
        ),
    ] = DEFAULT_MAX_LINE_BYTES,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad row.")] = False,
    pseudonymize: Annotated[
        bool,
        typer.Option(help=f"Replace user ids by keyed hashes (key: --key-file or ${KEY_ENV})."),
    ] = False,
    key_file: Annotated[Path | None, typer.Option(help="File holding the pseudonym key.")] = None,
    ts_min: Annotated[datetime, typer.Option(help="Earliest accepted timestamp (UTC).")] = datetime(
        1990, 1, 1
    ),
    ts_max: Annotated[
        datetime | None, typer.Option(help="Latest accepted timestamp (UTC; default: now + 1 day).")
    ] = None,
    list_layouts: Annotated[bool, typer.Option(help="List built-in layouts and exit.")] = False,
    from_serve: Annotated[
        Path | None,
        typer.Option(help="Move the events a service logged (its --log) into the store, once."),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(
            help="Item side table (CSV: item -> category, price, brand), stored as 'items'; "
            "fills the events' missing category and price."
        ),
    ] = None,
    item_column: Annotated[
        list[str] | None,
        typer.Option("--item-column", help="Map an --items column: canonical=source."),
    ] = None,
    store: StoreOption = None,
    threads: ThreadsOption = None,
    memory_limit: MemoryOption = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = "local[*]",
    spark_app_name: SparkAppOption = "shopseq",
    spark_conf: SparkConfOption = None,
    spark_output: SparkOutputOption = None,
) -> None:
    """Validate raw event files into the event store; bad rows go to quarantine with reasons.

    With ``--engine spark`` the same rules run on Spark and write ``events`` (partitioned by
    date), ``quarantine`` and ``source_files`` as Parquet under ``--spark-output``.
    """
    engine_cfg = engine_config(engine, spark_master, spark_app_name, spark_conf, spark_output)
    if list_layouts:
        table = Table(title="Built-in layouts")
        table.add_column("name")
        table.add_column("what it reads")
        for name, value in BUILTIN_LAYOUTS.items():
            table.add_row(name, value.description)
        console.print(table)
        return
    if engine_cfg.spark is not None and (from_serve is not None or items is not None):
        raise ConfigError("--from-serve and --items need the DuckDB store (--engine duckdb)")
    if from_serve is not None:
        from .serve import import_served

        import_served(from_serve, store or default_store_path(), threads)
        return
    if not files and items is None:
        raise typer.BadParameter(
            "give the files to ingest (or --items FILE, --from-serve LOG, or --list-layouts)",
            param_hint="FILES",
        )
    paths = [Path(f) for f in files or []]
    item_mapping = _mappings(item_column or [], "--item-column")
    if items is not None:
        check_paths([items])
    if not files and items is not None:  # only the side table, joined onto the stored events
        run_items(items, item_mapping, store or default_store_path(), threads, memory_limit)
        return
    chosen = resolve_layout(
        layout,
        layout_file,
        column or [],
        action or [],
        delimiter,
        ts_format,
        no_header,
        ts_strptime,
        source_columns,
    )
    config = IngestConfig(
        layout=chosen,
        strict=strict,
        pseudonymize_key=_pseudonym_key(key_file) if pseudonymize else None,
        max_line_bytes=max_line_bytes,
        ts_min=ts_min,
        ts_max=ts_max,
    )
    if engine_cfg.spark is not None:
        run_ingest_spark(list(files or []), config, engine_cfg)
        return
    run_ingest(paths, config, store or default_store_path(), threads, memory_limit)
    if items is not None:
        run_items(items, item_mapping, store or default_store_path(), threads, memory_limit)


def _mappings(pairs: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        canonical, sep, source = pair.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise ConfigError(f"{flag} {pair!r}: expected CANONICAL=SOURCE, e.g. item_id=itemId")
        out[canonical.strip()] = source.strip()
    return out


def run_items(
    path: Path,
    mapping: dict[str, str],
    store_path: Path,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> None:
    """Read an item side table, join it onto the store's events and print what it changed.

    Args:
        path: The side table.
        mapping: ``canonical -> source`` column overrides.
        store_path: The DuckDB file.
        threads: DuckDB threads.
        memory_limit: DuckDB memory limit.
    """
    from shopseq.ingest.items import join_items, read_items

    rows = read_items(path, mapping)
    with open_store(store_path, threads=threads, memory_limit=memory_limit) as store:
        joined = join_items(store, rows)
    show_items(console, joined)
