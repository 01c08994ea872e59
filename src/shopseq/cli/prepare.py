"""`shopseq prepare`: clean and sessionise the stored events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shopseq.prepare import (
    BotFilterConfig,
    DedupeConfig,
    PrepareConfig,
    PrepareReport,
    SessionizeConfig,
    prepare_events,
)
from shopseq.runs.engine import EngineConfig, open_engine_store

from .cluster import (
    EngineOption,
    SparkAppOption,
    SparkConfOption,
    SparkMasterOption,
    SparkOutputOption,
    engine_config,
)
from .options import MemoryOption, StoreOption, ThreadsOption, console, default_store_path
from .render import show_prepare

__all__ = ["prepare", "run_prepare"]


def run_prepare(
    config: PrepareConfig,
    store_path: Path,
    threads: int | None = None,
    memory_limit: str | None = None,
    engine: EngineConfig | None = None,
) -> PrepareReport:
    """Run prepare with a status line and print the report.

    Args:
        config: Prepare settings.
        store_path: The DuckDB file.
        threads: DuckDB threads.
        memory_limit: DuckDB memory limit.
        engine: The engine (``None``: the DuckDB store).

    Returns:
        The report.
    """
    with (
        open_engine_store(
            engine or EngineConfig(), store_path, threads=threads, memory_limit=memory_limit
        ) as store,
        console.status("preparing events"),
    ):
        report = prepare_events(store, config)
    show_prepare(console, report)
    return report


def prepare(
    session_gap: Annotated[
        int, typer.Option(help="Inactivity gap (seconds) that ends a session.")
    ] = 1800,
    dataset_sessions: Annotated[
        bool, typer.Option(help="Use the session ids the data brought.")
    ] = False,
    repeat_window: Annotated[
        int, typer.Option(help="Drop same user/item/action repeated within N seconds (0: off).")
    ] = 0,
    max_events_per_minute: Annotated[
        int | None, typer.Option(help="Remove users with more events in one minute (bots).")
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
    """Clean (dedupe, missing values, bots) and sessionise events into events_prepared.

    With ``--engine spark`` the same steps run on Spark over ``<spark-output>/events`` and write
    ``<spark-output>/events_prepared`` (Parquet, partitioned by date).
    """
    engine_cfg = engine_config(engine, spark_master, spark_app_name, spark_conf, spark_output)
    config = PrepareConfig(
        dedupe=DedupeConfig(repeat_window_seconds=repeat_window),
        bots=BotFilterConfig(max_events_per_minute=max_events_per_minute),
        sessionize=SessionizeConfig(gap_seconds=session_gap, use_dataset_sessions=dataset_sessions),
    )
    run_prepare(config, store or default_store_path(), threads, memory_limit, engine_cfg)
