"""Which engine runs the table stages: the embedded DuckDB file (default) or a Spark cluster.

Ingest compiles its rules to Spark SQL (``ingest.spark``); prepare, sequences and splits,
per-user features, analytics and forecast series are Ibis expressions;
:func:`open_engine_store` hands them a store on the chosen engine and they run unchanged. On
Spark, results land as Parquet datasets under ``SparkConfig.output`` (partitioned by event
date), which :func:`shopseq.store.open_store` reads on one machine -- so ``train`` and
``forecast`` can run on a laptop from what a cluster prepared.

A Spark session costs ~13 s to start on a quiet machine (43-55 s on a busy one, STACK.md): a job
opens one and runs every expression in it. The session always uses UTC (naive timestamps then
mean the same on both engines) and writes Parquet timestamps as microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopseq.errors import ConfigError, StoreError
from shopseq.store import Store, open_spark_store, open_store

__all__ = ["EngineConfig", "SparkConfig", "open_engine_store", "spark_session"]

#: Settings every shopseq Spark session has; a ``conf`` pair may not change them.
_FIXED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


class SparkConfig(BaseModel):
    """A Spark session and where its results land.

    Attributes:
        master: Master URL (``local[*]``, ``local[2]``, ``spark://host:7077``, ``yarn``, ...).
        app_name: Application name shown by the cluster.
        conf: Extra Spark settings (``spark.executor.memory`` -> ``8g``, ...).
        output: Directory or URI (``/data/shop``, ``hdfs://...``, ``s3a://bucket/shop``) of the
            Parquet tables: ``events`` is read from ``<output>/events`` and results are written
            beside it. Spark's own warehouse (working tables) is ``<output>/_warehouse``
            unless ``conf`` sets ``spark.sql.warehouse.dir``.
        partition_by_date: Partition tables that have ``ts`` by ``event_date``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    master: str = "local[*]"
    app_name: str = "shopseq"
    conf: dict[str, str] = Field(default_factory=dict)
    output: str
    partition_by_date: bool = True

    @field_validator("conf")
    @classmethod
    def _fixed_settings(cls, value: dict[str, str]) -> dict[str, str]:
        for key, fixed in _FIXED_CONF.items():
            if key in value and value[key] != fixed:
                raise ValueError(
                    f"{key} must be {fixed!r} (shopseq relies on it); got {value[key]!r}"
                )
        return value

    @field_validator("output")
    @classmethod
    def _some_output(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a directory or URI")
        return value

    def session_conf(self) -> dict[str, str]:
        """Every setting the session is built with (``conf``, the warehouse and the fixed ones).

        Returns:
            Setting -> value.
        """
        warehouse = f"{self.output.rstrip('/')}/_warehouse"
        return {
            "spark.sql.warehouse.dir": warehouse,
            "spark.ui.showConsoleProgress": "false",
            **self.conf,
            **_FIXED_CONF,
        }


class EngineConfig(BaseModel):
    """The engine of the table stages.

    Attributes:
        engine: ``duckdb`` (the store file) or ``spark``.
        spark: The Spark session and output (required for ``spark``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkConfig | None = None

    @model_validator(mode="after")
    def _spark_settings(self) -> EngineConfig:
        if self.engine == "spark" and self.spark is None:
            raise ValueError("engine 'spark' needs a Spark config (at least its output path)")
        if self.engine == "duckdb" and self.spark is not None:
            raise ValueError("a Spark config was given but the engine is 'duckdb'")
        return self


@contextmanager
def spark_session(config: SparkConfig) -> Iterator[Any]:
    """A Spark session built from ``config``, stopped afterwards unless it was running already.

    Args:
        config: The session settings.

    Yields:
        The ``pyspark.sql.SparkSession``.

    Raises:
        ConfigError: If pyspark is not installed.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise ConfigError("--engine spark needs pyspark: pip install 'shopseq[spark]'") from err
    running = SparkSession.getActiveSession()
    builder = SparkSession.builder.master(config.master).appName(config.app_name)
    for key, value in config.session_conf().items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if running is not None:
        # getOrCreate keeps the running session's static settings: set what can be set.
        for key, value in _FIXED_CONF.items():
            session.conf.set(key, value)
    try:
        yield session
    finally:
        if running is None:
            session.stop()


@contextmanager
def open_engine_store(
    config: EngineConfig,
    store_path: Path,
    *,
    read_only: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
    require_events: bool = True,
) -> Iterator[Store]:
    """Open the store the table stages run on.

    Args:
        config: The engine.
        store_path: The DuckDB file (or Parquet directory) for ``duckdb``; unused on Spark.
        read_only: Open the DuckDB store without write access.
        threads: DuckDB threads (Spark's parallelism comes from its master and conf).
        memory_limit: DuckDB memory limit.
        require_events: On Spark, fail unless ``<output>/events`` exists (``False`` for
            ingest, which writes it).

    Yields:
        The open store.

    Raises:
        StoreError: If the store cannot be opened.
    """
    if config.spark is None:
        with open_store(
            store_path, read_only=read_only, threads=threads, memory_limit=memory_limit
        ) as store:
            yield store
        return
    with spark_session(config.spark) as session:
        store = open_spark_store(
            session, config.spark.output, partition_by_date=config.spark.partition_by_date
        )
        if require_events and not store.has_table("events"):
            raise StoreError(
                f"no events at {config.spark.output}/events (Parquet, one directory per table); "
                "write them with `shopseq ingest --engine spark --spark-output <output> FILES`, "
                "or `shopseq export events --to <output>` from a DuckDB store"
            )
        yield store
