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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa

from shopseq.errors import StoreError
from shopseq.schema import duckdb_ddl

__all__ = ["DEFAULT_STORE_NAME", "Store", "open_spark_store", "open_store"]

#: File name of the default store, created in the working directory by the CLI.
DEFAULT_STORE_NAME = "shopseq.duckdb"

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
    """

    path: Path | None
    backend: Any
    connection: duckdb.DuckDBPyConnection | None
    spark_session: Any = None

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
            where = f" in {self.path}" if self.path else ""
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
        return name in self.backend.list_tables()

    def materialize(self, name: str, expr: ibis.Table) -> ibis.Table:
        """Write ``expr`` as table ``name`` (replacing it) and return the stored table.

        Args:
            name: Table name.
            expr: The expression to compute.

        Returns:
            The stored table.
        """
        self.backend.create_table(name, expr, overwrite=True)
        return self.backend.table(name)

    def write_arrow(self, name: str, data: pa.Table) -> ibis.Table:
        """Write an Arrow table as table ``name`` (replacing it).

        Args:
            name: Table name.
            data: The rows.

        Returns:
            The stored table.
        """
        if self.spark_session is not None:
            # Ibis goes through pandas, which turns null floats into NaN; Spark 4 reads Arrow
            # directly and keeps nulls.
            self.spark_session.createDataFrame(data).createOrReplaceTempView(name)
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


def open_store(
    path: Path | None,
    *,
    read_only: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> Store:
    """Open (creating if needed) the embedded DuckDB event store.

    Args:
        path: DuckDB file; ``None`` opens a private in-memory store (tests, one-off runs).
        read_only: Open without write access (several readers may share a file).
        threads: DuckDB worker threads; ``None`` lets DuckDB use every core.
        memory_limit: DuckDB memory limit such as ``"1GB"`` (it spills to disk beyond it);
            ``None`` keeps DuckDB's default (80 % of RAM).

    Returns:
        The open store, with the ingest tables created.

    Raises:
        StoreError: If the file cannot be opened (locked by another writer, corrupt, no access).
    """
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
    if not read_only:
        con.execute(duckdb_ddl("events"))
        con.execute(_QUARANTINE_DDL)
        con.execute(_SOURCE_FILES_DDL)
    return Store(path=path, backend=ibis.duckdb.from_connection(con), connection=con)


def open_spark_store(session: Any) -> Store:
    """Wrap a running Spark session as a store: the same Ibis transforms run on Spark.

    Use it when events outgrow one machine. The Spark session should use UTC
    (``spark.sql.session.timeZone=UTC``) so that naive timestamps mean the same as in DuckDB.
    Ingest's bulk append path is DuckDB-only; load events into Spark with Spark's own readers
    (or ``store.write_arrow``) and run ``prepare`` / ``sequences`` / ``analyze`` expressions.

    Args:
        session: A ``pyspark.sql.SparkSession``.

    Returns:
        A store backed by Spark (``connection`` is ``None``).
    """
    try:
        backend = ibis.pyspark.connect(session)
    except ImportError as err:  # pragma: no cover - depends on the optional extra
        raise StoreError("Spark support needs: pip install 'shopseq[spark]'") from err
    return Store(path=None, backend=backend, connection=None, spark_session=session)
