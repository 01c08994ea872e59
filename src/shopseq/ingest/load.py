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
import functools
import hashlib
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, SecretBytes

from shopseq.errors import (
    ConfigError,
    InputError,
    SchemaMismatchError,
    ShopseqError,
    StoreError,
    UnreadableFileError,
)
from shopseq.ingest.append import (
    Target,
    append_fused,
    append_staged,
    append_table_fused,
    drop_staging,
    scalar,
)
from shopseq.ingest.layouts import Layout
from shopseq.ingest.native import NativeParquet, native_parquet
from shopseq.ingest.pseudonymize import Pseudonymizer
from shopseq.ingest.quarantine import RejectedRow
from shopseq.ingest.readers import (
    DEFAULT_BLOCK_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    LINE_COLUMN,
    RawBatch,
    ReadStats,
    read_batches,
)
from shopseq.ingest.validate import RuleSet, compile_rules
from shopseq.schema import EVENT_COLUMNS, SESSION_ID, USER_ID
from shopseq.store import Store

__all__ = ["FileReport", "IngestConfig", "IngestReport", "ingest_files"]

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
        fused: Validate each block inside its insert and read plain Parquet files with DuckDB's
            own reader (``append.py``, ``native.py``); ``False`` runs the staged path they are
            tested against (a temporary table per block, every file through PyArrow).
        memory_mb: DuckDB's memory limit while ingesting and for the checkpoint after, in MB
            (never above the store's own; ``None``: the store's). Ingest streams bounded blocks
            and needs little: a larger buffer only fills with pages already written, and the
            checkpoint after a large file took all of it (10 M CSV events at a 1 GB limit:
            peak 1.15 GB against 0.68 GB at 256 MB, in the same time; docs/scaling.md).
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
    fused: bool = True
    memory_mb: int | None = Field(default=256, ge=16)


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
        report = _ingest_capped(path, rules, config, store, pseudonymizer, on_progress)
        reports.append(report)
        if on_file is not None:
            on_file(report)
    # Checkpoint under the cap: left to closing, it ran under the store's full limit.
    with _cap(store, config):
        store.checkpoint()
    return IngestReport(files=tuple(reports))


def _cap(store: Store, config: IngestConfig) -> contextlib.AbstractContextManager[None]:
    return store.memory_capped(config.memory_mb) if config.memory_mb else contextlib.nullcontext()


def _ingest_capped(
    path: Path,
    rules: RuleSet,
    config: IngestConfig,
    store: Store,
    pseudonymizer: Pseudonymizer | None,
    on_progress: Callable[[Path, int], None] | None,
) -> FileReport:
    """One file under ``config.memory_mb``; again under the store's own limit if it ran out.

    A file the cap is too small for (DuckDB's ``OutOfMemoryException``) has had its transaction
    rolled back, so nothing of the first try stays.
    """
    try:
        with _cap(store, config):
            return _ingest_one(path, rules, config, store, pseudonymizer, on_progress)
    except Exception as err:
        if config.memory_mb is None or not store.is_out_of_memory(err):
            raise
    return _ingest_one(path, rules, config, store, pseudonymizer, on_progress)


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
    native = native_parquet(path, config.layout) if config.fused and pseudonymizer is None else None
    if native is not None:
        try:
            counts = _ingest_native(path, sha, native, rules, config, store)
        except _NativeRefused:
            counts = None  # rolled back: the PyArrow reader reads (or rejects) the file instead
        if counts is not None:
            if on_progress is not None:
                on_progress(path, counts.rows_read)
            return counts.report(path, sha, time.perf_counter() - started)
    counts = _ingest_batches(path, sha, rules, config, store, pseudonymizer, on_progress)
    return counts.report(path, sha, time.perf_counter() - started)


@dataclass(slots=True)
class _Counts:
    file_id: int = 0
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    lines: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, bad: list[RejectedRow], accepted: int) -> None:
        self.accepted += accepted
        self.quarantined += len(bad)
        for rejected in bad:
            self.by_reason[rejected.reason.value] = self.by_reason.get(rejected.reason.value, 0) + 1

    def report(self, path: Path, sha: str, seconds: float) -> FileReport:
        return FileReport(
            path,
            sha,
            self.file_id,
            self.rows_read,
            self.accepted,
            self.quarantined,
            self.by_reason,
            seconds=seconds,
            lines=self.lines,
        )


class _NativeRefused(Exception):
    """DuckDB's Parquet reader refused the file (e.g. text that is not UTF-8)."""


def _ingest_native(
    path: Path, sha: str, native: NativeParquet, rules: RuleSet, config: IngestConfig, store: Store
) -> _Counts:
    """A plain Parquet file through DuckDB's own reader, validated in the insert."""
    counts = _Counts(rows_read=native.rows, lines=native.rows)
    with store.transaction() as con:
        counts.file_id = scalar(
            con, "SELECT COALESCE(MAX(source_file_id), 0) + 1 FROM source_files"
        )
        target = Target(path, counts.file_id, rules, config.strict)
        try:
            bad, accepted = append_fused(
                con, target, native.relation, native.schema, native.rows, control_ids=native.ids
            )
        except duckdb.Error as err:
            raise _NativeRefused(str(err)) from err
        counts.add(bad, accepted)
        _commit_file(con, path, sha, config, counts, pseudonymized=False)
    return counts


def _ingest_batches(
    path: Path,
    sha: str,
    rules: RuleSet,
    config: IngestConfig,
    store: Store,
    pseudonymizer: Pseudonymizer | None,
    on_progress: Callable[[Path, int], None] | None,
) -> _Counts:
    """A file through ``read_batches``, one block at a time."""
    redact = pseudonymizer is not None
    replaced, withheld = pseudonymized_columns(config.layout)
    fused = config.fused and pseudonymizer is None
    counts = _Counts()
    stats = ReadStats()
    batches = read_batches(
        path,
        config.layout,
        block_bytes=config.block_bytes,
        max_line_bytes=config.max_line_bytes,
        stats=stats,
        use_threads=config.use_threads,
    )
    # The fused path reads the next block in a thread while DuckDB validates this one (both
    # release the GIL); at most one block is read ahead, so memory stays bounded.
    source = _Prefetch(path, batches, redact) if fused else _Inline(path, batches, redact)
    # On failure the reader is closed at once, so its buffers do not outlive the error.
    with contextlib.closing(source), store.transaction() as con:
        counts.file_id = scalar(
            con, "SELECT COALESCE(MAX(source_file_id), 0) + 1 FROM source_files"
        )
        target = Target(
            path,
            counts.file_id,
            rules,
            config.strict,
            pseudonymizer,
            tuple(replaced),
            frozenset(withheld),
        )
        while True:
            batch = source.next()
            if batch is None:
                break
            counts.rows_read += batch.records
            counts.lines += batch.lines
            try:
                if fused:
                    bad, accepted = append_table_fused(con, target, batch.table, batch.rejected)
                else:
                    bad, accepted = append_staged(con, target, batch.table, batch.rejected)
            except (ShopseqError, duckdb.OutOfMemoryException):
                raise  # out of memory: ingest_files retries the file without its memory cap
            except Exception as err:
                raise _unexpected(path, batch, err, redact) from err
            counts.add(bad, accepted)
            if on_progress is not None:
                on_progress(path, counts.rows_read)
        drop_staging(con)
        if stats.physical_lines != stats.header_lines + counts.lines:
            raise StoreError(
                f"{path.name}: lines do not reconcile: the file has {stats.physical_lines} "
                f"physical lines, the header took {stats.header_lines} and the "
                f"{counts.rows_read} records read cover {counts.lines}; nothing was written "
                "(this is a shopseq bug)"
            )
        counts.lines = stats.physical_lines
        _commit_file(con, path, sha, config, counts, pseudonymized=pseudonymizer is not None)
    return counts


def _commit_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    sha: str,
    config: IngestConfig,
    counts: _Counts,
    *,
    pseudonymized: bool,
) -> None:
    """Check that the counts reconcile, then record the file (committed with its rows)."""
    if counts.rows_read != counts.accepted + counts.quarantined:
        raise StoreError(
            f"{path.name}: counts do not reconcile: read {counts.rows_read}, accepted "
            f"{counts.accepted}, quarantined {counts.quarantined}; nothing was written (this is "
            "a shopseq bug)"
        )
    con.execute(
        "INSERT INTO source_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            counts.file_id,
            str(path),
            sha,
            path.stat().st_size,
            config.layout.name,
            pseudonymized,
            counts.rows_read,
            counts.accepted,
            counts.quarantined,
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )


class _Inline:
    """The reader's batches, read when asked for."""

    def __init__(self, path: Path, batches: Generator[RawBatch, None, None], redact: bool) -> None:
        self._fetch = functools.partial(_next_batch, path, batches, redact)
        self._batches = batches

    def next(self) -> RawBatch | None:
        return self._fetch()

    def close(self) -> None:
        self._batches.close()


class _Prefetch(_Inline):
    """The reader's batches, the next one read in a thread while the caller works."""

    def __init__(self, path: Path, batches: Generator[RawBatch, None, None], redact: bool) -> None:
        super().__init__(path, batches, redact)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopseq-read")
        self._pending: Future[RawBatch | None] | None = None
        self._started = False

    def next(self) -> RawBatch | None:
        if not self._started:
            # The header and first block are read here (a file rejected at its header never
            # starts the thread); reading ahead starts with the second block.
            self._started = True
            batch = self._fetch()
        elif self._pending is None:
            return None
        else:
            batch = self._pending.result()  # the reader's error, if any, is raised here
        self._pending = self._pool.submit(self._fetch) if batch is not None else None
        return batch

    def close(self) -> None:
        if self._pending is not None:
            # The generator cannot be closed while the thread is inside it: wait for it.
            with contextlib.suppress(Exception):
                self._pending.result()
            self._pending = None
        self._pool.shutdown(wait=True)
        super().close()


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
