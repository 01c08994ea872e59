"""Ingest files into the event store: every row accepted or quarantined, counts reconciled.

Each file is ingested in one transaction: its accepted events, its quarantined rows and its
fingerprint are committed together, and only if ``rows_read == rows_accepted + rows_quarantined``.
A file whose SHA-256 is already in ``source_files`` is skipped, so re-ingesting never duplicates.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, SecretBytes

from shopseq.errors import BadRowError, InputError, StoreError
from shopseq.ingest.layouts import Layout
from shopseq.ingest.pseudonymize import Pseudonymizer
from shopseq.ingest.quarantine import QuarantineReason, RejectedRow
from shopseq.ingest.readers import DEFAULT_BLOCK_BYTES, LINE_COLUMN, read_batches
from shopseq.ingest.validate import RuleSet, compile_rules, validation_sql
from shopseq.schema import EVENT_COLUMNS, USER_ID
from shopseq.store import Store

__all__ = ["FileReport", "IngestConfig", "IngestReport", "ingest_files"]

_REDACTED = "<redacted: pseudonymised ingest>"


class IngestConfig(BaseModel):
    """How to ingest.

    Attributes:
        layout: How the files are laid out.
        strict: Stop at the first bad row (raising :class:`BadRowError`) instead of quarantining.
        pseudonymize_key: Key for HMAC pseudonyms of user ids; ``None`` keeps ids as they are.
        block_bytes: Bytes of input per batch (bounds memory).
        ts_min: Earliest accepted timestamp (naive UTC).
        ts_max: Latest accepted timestamp (naive UTC); ``None`` means one day after ingest time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    layout: Layout
    strict: bool = False
    pseudonymize_key: SecretBytes | None = None
    block_bytes: int = Field(default=DEFAULT_BLOCK_BYTES, gt=0)
    ts_min: datetime = datetime(1990, 1, 1)
    ts_max: datetime | None = None


@dataclass(frozen=True, slots=True)
class FileReport:
    """What happened to one file.

    Attributes:
        path: The file.
        sha256: Its fingerprint.
        source_file_id: Its id in the store (lineage of its events).
        rows_read: Data rows read (header excluded).
        rows_accepted: Rows written to ``events``.
        rows_quarantined: Rows written to ``quarantine``.
        by_reason: Quarantined rows per reason.
        already_ingested: The fingerprint was known; nothing was written.
        seconds: Wall time.
    """

    path: Path
    sha256: str
    source_file_id: int
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    by_reason: dict[str, int] = field(default_factory=dict)
    already_ingested: bool = False
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What happened to every file of one ingest run."""

    files: tuple[FileReport, ...]

    @property
    def rows_read(self) -> int:
        """Rows read over all newly ingested files."""
        return sum(f.rows_read for f in self.files if not f.already_ingested)

    @property
    def rows_accepted(self) -> int:
        """Rows accepted over all newly ingested files."""
        return sum(f.rows_accepted for f in self.files if not f.already_ingested)

    @property
    def rows_quarantined(self) -> int:
        """Rows quarantined over all newly ingested files."""
        return sum(f.rows_quarantined for f in self.files if not f.already_ingested)


def _fingerprint(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def ingest_files(
    paths: Sequence[Path],
    config: IngestConfig,
    store: Store,
    *,
    on_progress: Callable[[Path, int], None] | None = None,
) -> IngestReport:
    """Validate and load ``paths`` into ``store``.

    Args:
        paths: Input files.
        config: How to read and validate them.
        store: The event store.
        on_progress: Called with (file, rows read so far) after each batch.

    Returns:
        One report per file.

    Raises:
        InputError: If a file does not exist.
        SchemaMismatchError: If a file lacks the layout's columns.
        BadRowError: In strict mode, at the first bad row (nothing of that file is written).
    """
    ts_max = config.ts_max or datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    rules = compile_rules(config.layout, config.ts_min, ts_max)
    pseudonymizer = (
        Pseudonymizer(config.pseudonymize_key.get_secret_value())
        if config.pseudonymize_key is not None
        else None
    )
    reports = []
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        reports.append(_ingest_one(path, rules, config, store, pseudonymizer, on_progress))
    return IngestReport(files=tuple(reports))


def _ingest_one(
    path: Path,
    rules: RuleSet,
    config: IngestConfig,
    store: Store,
    pseudonymizer: Pseudonymizer | None,
    on_progress: Callable[[Path, int], None] | None,
) -> FileReport:
    started = time.perf_counter()
    sha = _fingerprint(path)
    known = store.sql(
        "SELECT source_file_id, rows_read, rows_accepted, rows_quarantined FROM source_files "
        "WHERE sha256 = ?",
        [sha],
    ).to_pylist()
    if known:
        row = known[0]
        return FileReport(
            path,
            sha,
            row["source_file_id"],
            row["rows_read"],
            row["rows_accepted"],
            row["rows_quarantined"],
            already_ingested=True,
        )
    rows_read = accepted = quarantined = 0
    by_reason: dict[str, int] = {}
    with store.transaction() as con:
        file_id = _scalar(con, "SELECT COALESCE(MAX(source_file_id), 0) + 1 FROM source_files")
        for batch in read_batches(path, config.layout, block_bytes=config.block_bytes):
            rows_read += batch.table.num_rows + len(batch.rejected)
            con.register("_raw_batch", batch.table)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _checked AS "
                + validation_sql(rules, batch.table.schema, "_raw_batch")
            )
            con.unregister("_raw_batch")
            bad = _bad_rows(con, batch.rejected, rules)
            if config.strict and bad:
                first = min(bad, key=lambda r: r.line)
                raise BadRowError(
                    path,
                    first.line,
                    first.column,
                    first.raw_value,
                    first.reason.value,
                    first.detail,
                )
            accepted += _insert_accepted(con, file_id, pseudonymizer)
            quarantined += _insert_quarantine(
                con, path, file_id, bad, pseudonymizer is not None, config.layout
            )
            for rejected in bad:
                by_reason[rejected.reason.value] = by_reason.get(rejected.reason.value, 0) + 1
            if on_progress is not None:
                on_progress(path, rows_read)
        con.execute("DROP TABLE IF EXISTS _checked")
        if rows_read != accepted + quarantined:
            raise StoreError(
                f"{path.name}: counts do not reconcile: read {rows_read}, accepted {accepted}, "
                f"quarantined {quarantined}; nothing was written (this is a shopseq bug)"
            )
        con.execute(
            "INSERT INTO source_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                file_id,
                str(path),
                sha,
                path.stat().st_size,
                config.layout.name,
                pseudonymizer is not None,
                rows_read,
                accepted,
                quarantined,
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
    return FileReport(
        path,
        sha,
        file_id,
        rows_read,
        accepted,
        quarantined,
        by_reason,
        seconds=time.perf_counter() - started,
    )


def _bad_rows(
    con: duckdb.DuckDBPyConnection, rejected: list[RejectedRow], rules: RuleSet
) -> list[RejectedRow]:
    found = con.execute(
        f"SELECT {LINE_COLUMN}, reason, bad_column, bad_value FROM _checked "
        f"WHERE reason IS NOT NULL ORDER BY {LINE_COLUMN}"
    ).fetchall()
    checked = [
        RejectedRow(
            int(line),
            column or "",
            value if value is not None else "",
            QuarantineReason(reason),
            rules.details[QuarantineReason(reason)],
        )
        for line, reason, column, value in found
    ]
    return rejected + checked


def _insert_accepted(
    con: duckdb.DuckDBPyConnection, file_id: int, pseudonymizer: Pseudonymizer | None
) -> int:
    columns = ", ".join(EVENT_COLUMNS)
    select = f"SELECT {columns}, {file_id}, {LINE_COLUMN} FROM _checked WHERE reason IS NULL"
    if pseudonymizer is None:
        con.execute(f"INSERT INTO events {select}")
    else:
        table = con.execute(select).to_arrow_table()
        index = table.schema.get_field_index(USER_ID)
        table = table.set_column(index, USER_ID, pseudonymizer.apply(table.column(USER_ID)))
        con.register("_accepted", table)
        con.execute("INSERT INTO events SELECT * FROM _accepted")
        con.unregister("_accepted")
    return _scalar(con, "SELECT count(*) FROM _checked WHERE reason IS NULL")


def _scalar(con: duckdb.DuckDBPyConnection, query: str) -> int:
    row = con.execute(query).fetchone()
    if row is None:  # an aggregate always returns one row
        raise StoreError(f"query returned no row: {query}")
    return int(row[0])


def _insert_quarantine(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    file_id: int,
    bad: list[RejectedRow],
    redact: bool,
    layout: Layout,
) -> int:
    if not bad:
        return 0
    user_source = layout.columns.get(USER_ID)
    values = [
        _REDACTED if redact and (not r.column or r.column == user_source) else r.raw_value
        for r in bad
    ]
    table = pa.table(
        {
            "source_file_id": pa.array([file_id] * len(bad), pa.int32()),
            "source_row": pa.array([r.line for r in bad], pa.int64()),
            "column_name": pa.array([r.column for r in bad], pa.string()),
            "raw_value": pa.array(values, pa.string()),
            "reason": pa.array([r.reason.value for r in bad], pa.string()),
            "message": pa.array(
                [
                    BadRowError.render(path.name, r.line, r.column, v, r.detail)
                    for r, v in zip(bad, values, strict=True)
                ],
                pa.string(),
            ),
        }
    )
    con.register("_quarantine", table)
    con.execute("INSERT INTO quarantine SELECT * FROM _quarantine")
    con.unregister("_quarantine")
    return len(bad)
