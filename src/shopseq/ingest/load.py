"""Ingest files into the event store: every row accepted or quarantined, counts reconciled.

Each file is ingested in one transaction: its accepted events, its quarantined rows and its
fingerprint are committed together, and only if two independent counts reconcile:
``rows_read == rows_accepted + rows_quarantined`` *and* the physical lines of the file, counted
where lines are cut, equal the header's lines plus the lines covered by every record read. A file
whose SHA-256 is already in ``source_files`` is skipped, so re-ingesting never duplicates.

A file that cannot be read (damaged or truncated compression, corrupt Parquet, ...) fails as a
:class:`ShopseqError` naming it; nothing of it is written, and files committed before it stay.
Under ``--pseudonymize`` every column that can carry the user id (user, session, anything mapped
from the same source columns) is replaced by keyed hashes, and the raw text of rejected rows in
those columns (or whole rows) is withheld from the quarantine and from error messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, SecretBytes

from shopseq.errors import (
    BadRowError,
    ConfigError,
    InputError,
    SchemaMismatchError,
    ShopseqError,
    StoreError,
    UnreadableFileError,
)
from shopseq.ingest.csvrecords import clip
from shopseq.ingest.layouts import Layout
from shopseq.ingest.pseudonymize import Pseudonymizer
from shopseq.ingest.quarantine import QuarantineReason, RejectedRow
from shopseq.ingest.readers import (
    DEFAULT_BLOCK_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    LINE_COLUMN,
    RawBatch,
    ReadStats,
    read_batches,
)
from shopseq.ingest.validate import RuleSet, compile_rules, validation_sql
from shopseq.schema import EVENT_COLUMNS, SESSION_ID, USER_ID
from shopseq.store import Store

__all__ = ["FileReport", "IngestConfig", "IngestReport", "ingest_files"]

_REDACTED = "<redacted: pseudonymised ingest>"
#: What reading a file can raise from the libraries underneath (codecs, Arrow, the OS).
_LIBRARY_ERRORS = (
    OSError,
    EOFError,
    UnicodeError,
    ValueError,
    ArithmeticError,
    pa.ArrowException,
    duckdb.Error,
    MemoryError,
)
_WITHHELD = "(details withheld under --pseudonymize: they may quote the file; rerun without it)"


class IngestConfig(BaseModel):
    """How to ingest.

    Attributes:
        layout: How the files are laid out.
        strict: Stop at the first bad row (raising :class:`BadRowError`) instead of quarantining.
        pseudonymize_key: Key for HMAC pseudonyms of user ids; ``None`` keeps ids as they are.
        block_bytes: Bytes of input per batch (bounds memory).
        max_line_bytes: Longest line (or multi-line CSV record) read; longer ones are
            quarantined as ``line_too_long`` (bounds memory for files without line breaks).
        ts_min: Earliest accepted timestamp (naive UTC).
        ts_max: Latest accepted timestamp (naive UTC); ``None`` means one day after ingest time.
        use_threads: Let the CSV parser use several threads.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    layout: Layout
    strict: bool = False
    pseudonymize_key: SecretBytes | None = None
    block_bytes: int = Field(default=DEFAULT_BLOCK_BYTES, gt=0)
    max_line_bytes: int = Field(default=DEFAULT_MAX_LINE_BYTES, ge=1024)
    ts_min: datetime = datetime(1990, 1, 1)
    ts_max: datetime | None = None
    use_threads: bool = True


@dataclass(frozen=True, slots=True)
class FileReport:
    """What happened to one file.

    Attributes:
        path: The file.
        sha256: Its fingerprint.
        source_file_id: Its id in the store (lineage of its events).
        rows_read: Records read (header excluded; a CSV record may span several lines).
        rows_accepted: Rows written to ``events``.
        rows_quarantined: Rows written to ``quarantine``.
        by_reason: Quarantined rows per reason.
        already_ingested: The fingerprint was known; nothing was written.
        seconds: Wall time.
        lines: Physical lines of the file, header included (rows for Parquet; 0 when skipped).
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
    lines: int = 0


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
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as err:
        raise UnreadableFileError(path, f"cannot be read: {err.strerror or err}") from err


def check_paths(paths: Sequence[Path]) -> None:
    """Check that every path is a readable file before anything is ingested.

    Args:
        paths: Input files.

    Raises:
        InputError: Naming the first path that does not exist, is a directory or cannot be read.
    """
    for path in paths:
        if path.is_dir():
            raise InputError(
                f"{path}: is a directory; pass the files in it (e.g. {path / '*.csv'})"
            )
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if not path.is_file():
            raise InputError(f"{path}: is not a regular file (a device or pipe cannot be ingested)")
        try:
            with path.open("rb"):
                pass
        except OSError as err:
            raise InputError(f"{path}: cannot be read: {err.strerror or err}") from err


def ingest_files(
    paths: Sequence[Path],
    config: IngestConfig,
    store: Store,
    *,
    on_progress: Callable[[Path, int], None] | None = None,
    on_file: Callable[[FileReport], None] | None = None,
) -> IngestReport:
    """Validate and load ``paths`` into ``store``, one transaction per file.

    Every path is checked first (nothing is ingested if one is missing); files are then
    ingested in order and the first file that fails stops the run: the files before it stay
    committed (``on_file`` has been called for each), nothing of it is written.

    Args:
        paths: Input files.
        config: How to read and validate them.
        store: The event store.
        on_progress: Called with (file, rows read so far) after each batch.
        on_file: Called with each file's report once it is committed (or skipped).

    Returns:
        One report per file.

    Raises:
        InputError: If a path does not exist, is a directory or cannot be read.
        SchemaMismatchError: If a file lacks the layout's columns.
        UnreadableFileError: If a file is damaged, truncated or not what its layout says.
        BadRowError: In strict mode, at the first bad row (nothing of that file is written).
    """
    check_paths(paths)
    ts_max = config.ts_max or datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    if ts_max <= config.ts_min:
        raise ConfigError(
            f"--ts-max {ts_max} is not after --ts-min {config.ts_min}: no timestamp could be "
            "accepted"
        )
    rules = compile_rules(config.layout, config.ts_min, ts_max)
    pseudonymizer = (
        Pseudonymizer(config.pseudonymize_key.get_secret_value())
        if config.pseudonymize_key is not None
        else None
    )
    reports = []
    for path in paths:
        report = _ingest_one(path, rules, config, store, pseudonymizer, on_progress)
        reports.append(report)
        if on_file is not None:
            on_file(report)
    return IngestReport(files=tuple(reports))


def pseudonymized_columns(layout: Layout) -> tuple[list[str], set[str]]:
    """What ``--pseudonymize`` replaces.

    Args:
        layout: The layout.

    Returns:
        (canonical columns replaced by pseudonyms, source columns whose raw text is withheld).
        The user id, the session id (which often embeds or equals it) and any canonical column
        read from the same source columns as either.
    """
    sources = {layout.columns[c] for c in (USER_ID, SESSION_ID) if c in layout.columns}
    if layout.user_fallback_column:
        sources.add(layout.user_fallback_column)
    canonical = [USER_ID] + [
        c
        for c in EVENT_COLUMNS
        if c != USER_ID and (c == SESSION_ID or layout.columns.get(c) in sources)
    ]
    return [c for c in canonical if c == USER_ID or c in layout.columns], sources


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
    redact = pseudonymizer is not None
    replaced, withheld = pseudonymized_columns(config.layout)
    rows_read = accepted = quarantined = lines = 0
    by_reason: dict[str, int] = {}
    stats = ReadStats()
    batches = read_batches(
        path,
        config.layout,
        block_bytes=config.block_bytes,
        max_line_bytes=config.max_line_bytes,
        stats=stats,
        use_threads=config.use_threads,
    )
    # On failure the reader is closed at once, so its buffers do not outlive the error.
    with contextlib.closing(batches), store.transaction() as con:
        file_id = _scalar(con, "SELECT COALESCE(MAX(source_file_id), 0) + 1 FROM source_files")
        while True:
            batch = _next_batch(path, batches, redact)
            if batch is None:
                break
            rows_read += batch.records
            lines += batch.lines
            try:
                bad, n_accepted = _load_batch(
                    con, path, batch, rules, config, file_id, pseudonymizer, replaced, withheld
                )
            except ShopseqError:
                raise
            except Exception as err:
                raise _unexpected(path, batch, err, redact) from err
            accepted += n_accepted
            quarantined += len(bad)
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
        if stats.physical_lines != stats.header_lines + lines:
            raise StoreError(
                f"{path.name}: lines do not reconcile: the file has {stats.physical_lines} "
                f"physical lines, the header took {stats.header_lines} and the {rows_read} "
                f"records read cover {lines}; nothing was written (this is a shopseq bug)"
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
        lines=stats.physical_lines,
    )


def _next_batch(
    path: Path, batches: Generator[RawBatch, None, None], redact: bool
) -> RawBatch | None:
    """The next batch; every error of the readers' libraries becomes a ShopseqError here."""
    try:
        return next(batches)
    except StopIteration:
        return None
    except (SchemaMismatchError, UnreadableFileError) as err:
        if redact and isinstance(err, SchemaMismatchError) and err.found:
            # A headerless file read with a header layout would show its first row here.
            raise SchemaMismatchError(
                path,
                missing=err.missing,
                found=[f"<{len(err.found)} names withheld under --pseudonymize>"],
                hint=err.hint,
            ) from None
        raise
    except ShopseqError:
        raise
    except _LIBRARY_ERRORS as err:
        detail = f"{type(err).__name__}: {str(err)[:300]}" if not redact else _WITHHELD
        raise UnreadableFileError(
            path, f"cannot be read ({detail}); nothing of it was ingested"
        ) from err
    except Exception as err:
        detail = f"{type(err).__name__}: {str(err)[:300]}" if not redact else _WITHHELD
        raise UnreadableFileError(
            path,
            f"could not be read ({detail}); nothing of it was ingested (this is a shopseq bug: "
            "please report it)",
        ) from err


def _unexpected(
    path: Path, batch: RawBatch, err: BaseException, redact: bool
) -> UnreadableFileError:
    column = batch.table.column(LINE_COLUMN)
    span = f" (lines {column[0]}-{column[-1]})" if len(column) else ""
    detail = f"{type(err).__name__}: {str(err)[:300]}" if not redact else _WITHHELD
    return UnreadableFileError(
        path,
        f"could not be validated{span}: {detail}; nothing of it was ingested (this is a "
        "shopseq bug: please report it)",
    )


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    batch: RawBatch,
    rules: RuleSet,
    config: IngestConfig,
    file_id: int,
    pseudonymizer: Pseudonymizer | None,
    replaced: list[str],
    withheld: set[str],
) -> tuple[list[RejectedRow], int]:
    redact = pseudonymizer is not None
    con.register("_raw_batch", batch.table)
    # Materialise the validated batch once (as a view inside INSERT ... WHERE, DuckDB
    # re-evaluated the rule chain and ran >10x slower, measured on 1 M rows).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _checked AS "
        + validation_sql(rules, batch.table.schema, "_raw_batch")
    )
    con.unregister("_raw_batch")
    if config.strict:
        bad = _bad_rows(con, batch.rejected, rules)
        if bad:
            first = min(bad, key=lambda r: r.line)
            value = _shown(first, redact, withheld)
            raise BadRowError(
                path, first.line, first.column, value, first.reason.value, first.detail
            )
    n_accepted = _insert_accepted(con, file_id, pseudonymizer, replaced)
    if config.strict:
        bad = []
    else:
        has_bad = n_accepted < batch.table.num_rows
        bad = _bad_rows(con, batch.rejected, rules) if has_bad else list(batch.rejected)
    _insert_quarantine(con, path, file_id, bad, redact, withheld)
    return bad, n_accepted


def _shown(row: RejectedRow, redact: bool, withheld: set[str]) -> str:
    """The raw value of a rejected row as it may be stored or shown."""
    if redact and (not row.column or row.column in withheld):
        return _REDACTED
    return row.raw_value


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
            clip(value) if value is not None else "",
            QuarantineReason(reason),
            rules.details[QuarantineReason(reason)],
        )
        for line, reason, column, value in found
    ]
    return rejected + checked


def _insert_accepted(
    con: duckdb.DuckDBPyConnection,
    file_id: int,
    pseudonymizer: Pseudonymizer | None,
    replaced: list[str],
) -> int:
    columns = ", ".join(EVENT_COLUMNS)
    select = f"SELECT {columns}, {file_id}, {LINE_COLUMN} FROM _checked WHERE reason IS NULL"
    if pseudonymizer is None:
        return _scalar(con, f"INSERT INTO events {select}")
    table = con.execute(select).to_arrow_table()
    for name in replaced:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pseudonymizer.apply(table.column(name)))
    con.register("_accepted", table)
    con.execute("INSERT INTO events SELECT * FROM _accepted")
    con.unregister("_accepted")
    return int(table.num_rows)


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
    withheld: set[str],
) -> int:
    if not bad:
        return 0
    values = [_shown(r, redact, withheld) for r in bad]
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
