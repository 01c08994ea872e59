"""The event store: one embedded DuckDB file by default, the same Ibis expressions on Spark.

Tables
------
``events``          validated events (``schema.STORED_SCHEMA``), append-only, written by ingest
``quarantine``      every rejected input row: file, line, column, raw value, reason, message
``source_files``    one row per ingested file: fingerprint (SHA-256), layout, row counts
``events_prepared`` events after ``prepare`` (deduplicated, cleaned, sessionised); same grain
``prepare_log``     what each prepare step removed or filled, per run

Transforms (``prepare/``, ``sequences/``, ``analyze/`` ...) receive ``Store.table(name)`` as an
``ibis.Table`` and return expressions; only the store materialises them. Raw SQL is used for the
write path of ingest (bulk appends of Arrow batches), which is engine-specific by nature.

Three kinds of store run the same expressions:

* a DuckDB file (:func:`open_store` on a file path; the default);
* Spark (:func:`open_spark_store`): tables are Parquet datasets under an output path that Spark
  can write (local, HDFS, S3-compatible), one directory per table, partitioned by event date
  (``event_date=YYYY-MM-DD/``) when the table has a ``ts`` column;
* such a Parquet directory read on one machine (:func:`open_store` on a directory, read-only):
  DuckDB views over the datasets, so ``sequences``, ``train`` and ``forecast`` read what Spark
  wrote. :meth:`Store.export_parquet` writes the same layout from a DuckDB file.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa

from shopseq.errors import NotAStoreError, StoreError
from shopseq.schema import TS, duckdb_ddl

__all__ = [
    "DEFAULT_STORE_NAME",
    "PARTITION_COLUMN",
    "Store",
    "open_parquet_store",
    "open_spark_store",
    "open_store",
]

#: File name of the default store, created in the working directory by the CLI.
DEFAULT_STORE_NAME = "shopseq.duckdb"

#: Hive partition column of the Parquet tables that have a ``ts`` column (the UTC date of ``ts``);
#: dropped again when a table is read.
PARTITION_COLUMN = "event_date"

_QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS quarantine (
    source_file_id INTEGER NOT NULL,
    source_row BIGINT NOT NULL,
    column_name VARCHAR NOT NULL,
    raw_value VARCHAR,
    reason VARCHAR NOT NULL,
    message VARCHAR NOT NULL
)"""

_SOURCE_FILES_DDL = """
CREATE TABLE IF NOT EXISTS source_files (
    source_file_id INTEGER PRIMARY KEY,
    path VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL UNIQUE,
    size_bytes BIGINT NOT NULL,
    layout VARCHAR NOT NULL,
    pseudonymized BOOLEAN NOT NULL,
    rows_read BIGINT NOT NULL,
    rows_accepted BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    ingested_at TIMESTAMP NOT NULL
)"""


@dataclass
class Store:
    """An open event store.

    Attributes:
        path: The DuckDB file (``None`` for an in-memory store or a non-DuckDB backend).
        backend: The Ibis backend every transform runs on.
        connection: The raw DuckDB connection (``None`` on other engines); used by ingest's
            bulk appends only.
        spark_session: The Spark session when the store runs on Spark.
        output: Where a Spark store writes its tables as Parquet (a directory or URI Spark can
            write; ``None``: Spark's own warehouse).
        partition_by_date: Partition Parquet tables that have ``ts`` by ``event_date``.
        memory_limit: The DuckDB memory limit the store was opened with (``None``: DuckDB's
            default), restored exactly after :meth:`memory_capped` (DuckDB prints the setting
            rounded, so the printed value cannot restore it).
    """

    path: Path | None
    backend: Any
    connection: duckdb.DuckDBPyConnection | None
    spark_session: Any = None
    output: str | None = None
    partition_by_date: bool = True
    memory_limit: str | None = None

    def table(self, name: str) -> ibis.Table:
        """Return a stored table as an Ibis expression.

        Args:
            name: Table name.

        Returns:
            The table expression.

        Raises:
            StoreError: If the table does not exist.
        """
        if not self.has_table(name):
            where = f" in {self.path or self.output}" if self.path or self.output else ""
            hint = {
                "events": "run `shopseq ingest` first",
                "events_prepared": "run `shopseq prepare` first",
            }.get(name, "")
            raise StoreError(f"table '{name}' not found{where}" + (f"; {hint}" if hint else ""))
        return self.backend.table(name)

    def has_table(self, name: str) -> bool:
        """Tell whether ``name`` exists in the store.

        Args:
            name: Table name.

        Returns:
            True if the table exists.
        """
        if name in self.backend.list_tables():
            return True
        return self._register_parquet(name)

    def materialize(self, name: str, expr: ibis.Table, *, temp: bool = False) -> ibis.Table:
        """Write ``expr`` as table ``name`` (replacing it) and return the stored table.

        On DuckDB one ``CREATE OR REPLACE [TEMP] TABLE ... AS`` statement (atomic: a reader sees
        the old table or the new one). Ibis's ``create_table`` creates the table and then runs an
        ``INSERT ... SELECT`` into it, and that insert runs out of memory under a memory limit
        where the same query as one ``CREATE TABLE AS`` does not: the 10 M-event exact-duplicate
        aggregation at a 100 MB limit (the ratio of 100 M events at 2 GB) failed 5 runs of 6 as
        create-then-insert and passed 8 of 8 as one statement, measured side by side (at 100 M
        events under 2 GB that aggregation fails either way: prepare then dedupes by digest).

        On Spark with an ``output``, a table whose name does not start with ``_`` is written as
        a Parquet dataset ``<output>/<name>`` (partitioned by ``event_date`` when it has ``ts``);
        ``_``-prefixed working tables stay in Spark's warehouse (``backend.drop_table`` drops them).

        Args:
            name: Table name.
            expr: The expression to compute.
            temp: A DuckDB temporary table (in memory, spilled under the memory limit, never
                written to the store's file, gone at close); ignored on Spark, whose working
                tables are dropped by their callers.

        Returns:
            The stored table.
        """
        if self._parquet_path(name) is not None:
            self._write_parquet_spark(name, self.spark_session.sql(self.backend.compile(expr)))
            return self.backend.table(name)
        if self.connection is not None:
            kind = "TEMP TABLE" if temp else "TABLE"
            # Registers the expression's in-memory tables, as Ibis's own create_table does.
            self.backend._run_pre_execute_hooks(expr)
            query = self.backend.compile(expr)
            self.connection.execute(f"CREATE OR REPLACE {kind} {_ident(name)} AS {query}")
            return self.backend.table(name)
        self.backend.create_table(name, expr, overwrite=True)
        return self.backend.table(name)

    def is_out_of_memory(self, error: BaseException) -> bool:
        """Tell whether ``error`` is the engine running out of memory under its limit.

        Args:
            error: An exception raised by a query of this store.

        Returns:
            True for DuckDB's ``OutOfMemoryException`` (a query another plan may still finish).
        """
        return self.connection is not None and isinstance(error, duckdb.OutOfMemoryException)

    def export_parquet(self, name: str, output: Path) -> Path:
        """Write table ``name`` of a DuckDB store as ``<output>/<name>`` in the Parquet layout.

        The layout a Spark store writes and reads (partitioned by ``event_date`` when the table
        has ``ts``), so a Spark job can start from events ingested on one machine. The dataset is
        written beside and then moved into place: a reader never sees half of it.

        Args:
            name: Table name.
            output: The Parquet store directory.

        Returns:
            The dataset directory.

        Raises:
            StoreError: If the table does not exist or this is not a DuckDB store.
        """
        con = self._duckdb()
        columns = self.table(name).columns
        target = Path(output) / name
        tmp = target.with_name(f".{name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        select = f"SELECT * FROM {_ident(name)}"
        options = "FORMAT parquet"
        if TS in columns and self.partition_by_date:
            select = (
                f"SELECT *, CAST({_ident(TS)} AS DATE) AS {PARTITION_COLUMN} FROM {_ident(name)}"
            )
            options += f", PARTITION_BY ({PARTITION_COLUMN})"
        else:
            tmp.mkdir()
        destination = tmp if TS in columns and self.partition_by_date else tmp / "part-0.parquet"
        con.execute(f"COPY ({select}) TO {_literal(str(destination))} ({options})")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
        return target

    def write_arrow(self, name: str, data: pa.Table) -> ibis.Table:
        """Write an Arrow table as table ``name`` (replacing it; Parquet on a Spark output).

        Args:
            name: Table name.
            data: The rows.

        Returns:
            The stored table.
        """
        if self.spark_session is not None:
            # Ibis goes through pandas, which turns null floats into NaN; Spark 4 reads Arrow
            # directly and keeps nulls.
            frame = self.spark_session.createDataFrame(data)
            if self._parquet_path(name) is not None:
                self._write_parquet_spark(name, frame)
            else:
                frame.createOrReplaceTempView(name)
            return self.backend.table(name)
        self.backend.create_table(name, data, overwrite=True)
        return self.backend.table(name)

    def sql(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """Run a read query on the DuckDB connection and return Arrow.

        Args:
            query: SQL text.
            params: Positional parameters.

        Returns:
            The result as an Arrow table.
        """
        return self._duckdb().execute(query, params or []).to_arrow_table()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block in one DuckDB transaction: all of it is committed, or none of it.

        Yields:
            The connection to write with.
        """
        con = self._duckdb()
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @contextmanager
    def memory_capped(self, megabytes: int) -> Iterator[None]:
        """Run a block with DuckDB's memory limit at most ``megabytes``, then restore it.

        The limit is only ever lowered (a store opened with less keeps its own).

        Args:
            megabytes: The cap, in MB (10^6 bytes, as DuckDB's ``MB``).

        Yields:
            Nothing; the block runs under the cap.
        """
        con = self._duckdb()
        row = con.execute("SELECT current_setting('memory_limit')").fetchone()
        if _setting_bytes(str(row[0]) if row else "") <= megabytes * 10**6:
            yield
            return
        con.execute(f"SET memory_limit = '{int(megabytes)}MB'")
        try:
            yield
        finally:
            if self.memory_limit is None:
                con.execute("RESET memory_limit")
            else:
                con.execute("SET memory_limit = ?", [self.memory_limit])

    def checkpoint(self) -> None:
        """Write DuckDB's committed changes into the database file now.

        A checkpoint DuckDB refuses (another connection's transaction in its way, or not enough
        memory under the limit of the moment) is left to closing, which checkpoints anyway:
        nothing committed depends on it.
        """
        with suppress(duckdb.TransactionException, duckdb.OutOfMemoryException):
            self._duckdb().execute("CHECKPOINT")

    def close(self) -> None:
        """Close the store (checkpointing the DuckDB file)."""
        if self.connection is not None:
            self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        if self.connection is None:
            raise StoreError("this operation needs the embedded DuckDB store, not a Spark backend")
        return self.connection

    def _parquet_path(self, name: str) -> str | None:
        if self.spark_session is None or self.output is None or name.startswith("_"):
            return None
        return f"{self.output.rstrip('/')}/{name}"

    def _register_parquet(self, name: str) -> bool:
        """Register ``<output>/<name>`` as a Spark view if that dataset exists."""
        path = self._parquet_path(name)
        if path is None:
            return False
        from pyspark.errors import AnalysisException

        try:
            frame = self.spark_session.read.parquet(path)
        except AnalysisException:  # no such path
            return False
        if PARTITION_COLUMN in frame.columns:
            frame = frame.drop(PARTITION_COLUMN)
        frame.createOrReplaceTempView(name)
        return True

    def _write_parquet_spark(self, name: str, frame: Any) -> None:
        """Write a Spark DataFrame as ``<output>/<name>`` and register it as view ``name``."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import TimestampType

        path = self._parquet_path(name)
        # shopseq timestamps are naive UTC. Spark types a timestamp it computes (a literal such
        # as a feature table's cut-off, a cast) as TIMESTAMP_LTZ and writes it to Parquet as
        # "adjusted to UTC", which DuckDB then reads as TIMESTAMPTZ: a different column from the
        # one the same expression gives on DuckDB. The session is UTC (runs.engine), so the cast
        # to TIMESTAMP_NTZ keeps the wall clock and only the annotation changes.
        for field in frame.schema.fields:
            if isinstance(field.dataType, TimestampType):
                frame = frame.withColumn(field.name, F.col(field.name).cast("timestamp_ntz"))
        writer_frame = frame
        partitioned = TS in frame.columns and self.partition_by_date
        if partitioned:
            writer_frame = frame.withColumn(PARTITION_COLUMN, F.to_date(F.col(TS)))
        writer = writer_frame.write.mode("overwrite")
        if partitioned:
            writer = writer.partitionBy(PARTITION_COLUMN)
        writer.parquet(path)
        self._register_parquet(name)


def open_store(
    path: Path | None,
    *,
    read_only: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> Store:
    """Open (creating if needed) the embedded DuckDB event store.

    Args:
        path: DuckDB file; ``None`` opens a private in-memory store (tests, one-off runs); a
            directory opens the Parquet tables in it read-only (:func:`open_parquet_store`).
        read_only: Open without write access (several readers may share a file).
        threads: DuckDB worker threads; ``None`` lets DuckDB use every core.
        memory_limit: DuckDB memory limit such as ``"1GB"`` (it spills to disk beyond it);
            ``None`` keeps DuckDB's default (80 % of RAM).

    Returns:
        The open store, with the ingest tables created.

    Raises:
        StoreError: If the file cannot be opened (locked by another writer, corrupt, no access).
    """
    if path is not None and path.is_dir():
        if not read_only:
            raise StoreError(
                f"{path} is a Parquet store directory (written by --engine spark or `shopseq "
                "export`); it opens read-only on one machine"
            )
        return open_parquet_store(path, threads=threads, memory_limit=memory_limit)
    if path is not None:
        _check_is_duckdb(path)
    try:
        if path is None:
            con = duckdb.connect(":memory:")
        else:
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                raise StoreError(f"no event store at {path}; run `shopseq ingest` first")
            con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as err:
        raise StoreError(f"cannot open event store {path}: {err}") from err
    # Naive timestamps are UTC everywhere; text with an offset is converted, never read as local.
    _configure(con, threads, memory_limit)
    if not read_only:
        con.execute(duckdb_ddl("events"))
        con.execute(_QUARANTINE_DDL)
        con.execute(_SOURCE_FILES_DDL)
    return Store(
        path=path,
        backend=ibis.duckdb.from_connection(con),
        connection=con,
        memory_limit=memory_limit,
    )


#: Bytes 8-11 of every DuckDB database file.
_DUCKDB_MAGIC = b"DUCK"


def _check_is_duckdb(path: Path) -> None:
    """Refuse an existing file that is not a DuckDB database (e.g. a CSV passed as --store).

    DuckDB itself does not: given ``events.csv`` it opened an empty in-memory database, so
    ``prepare`` "succeeded" on no events and ``stats`` failed with a catalog error.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except FileNotFoundError:
        return
    except OSError as err:
        raise StoreError(f"cannot open event store {path}: {err.strerror or err}") from err
    if head and head[8:12] != _DUCKDB_MAGIC:
        raise NotAStoreError(
            f"{path} is not a DuckDB event store (it exists and is another kind of file); "
            "pass the store with --store and the data files to `shopseq ingest`"
        )


def _configure(
    con: duckdb.DuckDBPyConnection, threads: int | None, memory_limit: str | None
) -> None:
    # Naive timestamps are UTC everywhere; text with an offset is converted, never read as local.
    con.execute("SET TimeZone = 'UTC'")
    # DuckDB's own progress bar would interleave with Rich output and corrupt --json output.
    con.execute("SET enable_progress_bar = false")
    if threads is not None:
        con.execute(f"SET threads TO {int(threads)}")
    if memory_limit is not None:
        try:
            con.execute("SET memory_limit = ?", [memory_limit])
        except duckdb.Error as err:
            raise StoreError(f"invalid memory limit {memory_limit!r}: {err}") from err


_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def _setting_bytes(text: str) -> float:
    """Bytes of a DuckDB size setting as ``current_setting`` prints it (``953.6 MiB``)."""
    number, _, unit = text.strip().partition(" ")
    try:
        return float(number) * _UNITS[unit or "bytes"]
    except (KeyError, ValueError):
        return float("inf")  # an unknown form: treat as unlimited, so the cap applies


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_parquet_store(
    path: Path, *, threads: int | None = None, memory_limit: str | None = None
) -> Store:
    """Open a Parquet store directory on one machine, read-only: one DuckDB view per table.

    Every sub-directory holding Parquet files is a table (``event_date=`` partitions are read
    and the partition column dropped again), so the single-machine stages read what a Spark
    store wrote.

    Args:
        path: The directory.
        threads: DuckDB worker threads (``None``: every core).
        memory_limit: DuckDB memory limit.

    Returns:
        The store (``path`` is the directory; writes are refused by DuckDB).

    Raises:
        StoreError: If the directory holds no Parquet table.
    """
    con = duckdb.connect(":memory:")
    _configure(con, threads, memory_limit)
    tables = []
    for table_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        if table_dir.name.startswith((".", "_")) or not any(table_dir.rglob("*.parquet")):
            continue
        partitioned = any(
            p.is_dir() and p.name.startswith(f"{PARTITION_COLUMN}=") for p in table_dir.iterdir()
        )
        glob = _literal(str(table_dir / ("**/*.parquet" if partitioned else "*.parquet")))
        source = f"read_parquet({glob}, hive_partitioning = {str(partitioned).lower()})"
        drop = f" EXCLUDE ({PARTITION_COLUMN})" if partitioned else ""
        con.execute(f"CREATE VIEW {_ident(table_dir.name)} AS SELECT *{drop} FROM {source}")
        tables.append(table_dir.name)
    if not tables:
        con.close()
        raise StoreError(f"{path} holds no Parquet table (one sub-directory per table expected)")
    return Store(
        path=path,
        backend=ibis.duckdb.from_connection(con),
        connection=con,
        memory_limit=memory_limit,
    )


def _arrow_spark_backend() -> Any:
    """Ibis's PySpark backend, collecting results as Arrow instead of through pandas.

    Ibis's ``to_pyarrow`` on PySpark goes ``toPandas`` -> Arrow: most of the Spark path's extra
    time on 2 M events (STACK.md), and pandas turns null floats into NaN. Spark 4's
    ``DataFrame.toArrow`` hands Arrow over directly; the result is then cast to the
    expression's schema exactly as Ibis does.

    Returns:
        An unconnected backend instance (``.connect(session)`` it).
    """
    _ = ibis.pyspark  # loads the backend as Ibis does: registers its options
    from ibis.backends.pyspark import Backend
    from ibis.formats.pyarrow import PyArrowData

    class ArrowSparkBackend(Backend):  # type: ignore[misc]
        def to_pyarrow(
            self,
            expr: Any,
            /,
            *,
            params: Any = None,
            limit: int | str | None = None,
            **kwargs: Any,
        ) -> pa.Table:
            self._run_pre_execute_hooks(expr)
            table_expr = expr.as_table()
            sql = self.compile(table_expr, params=params, limit=limit, **kwargs)
            arrow = self._session.sql(sql).toArrow()
            table = PyArrowData.convert_table(arrow, table_expr.schema())
            return expr.__pyarrow_result__(table)

    return ArrowSparkBackend()


def open_spark_store(
    session: Any, output: str | Path | None = None, *, partition_by_date: bool = True
) -> Store:
    """Wrap a running Spark session as a store: the same Ibis transforms run on Spark.

    Use it when events outgrow one machine. The Spark session should use UTC
    (``spark.sql.session.timeZone=UTC``) so that naive timestamps mean the same as in DuckDB
    (``runs.engine`` sets it). With ``output``, tables are read from and written to Parquet
    datasets ``<output>/<table>`` (see the module docstring), which :func:`open_store` reads
    on one machine.

    Args:
        session: A ``pyspark.sql.SparkSession``.
        output: Directory or URI of the Parquet tables (``None``: Spark's own tables and views
            only).
        partition_by_date: Partition tables that have ``ts`` by ``event_date``.

    Returns:
        A store backed by Spark (``connection`` is ``None``).
    """
    try:
        backend = _arrow_spark_backend().connect(session)
    except ImportError as err:  # pragma: no cover - depends on the optional extra
        raise StoreError("Spark support needs: pip install 'shopseq[spark]'") from err
    return Store(
        path=None,
        backend=backend,
        connection=None,
        spark_session=session,
        output=None if output is None else str(output),
        partition_by_date=partition_by_date,
    )
