"""Serving jobs the service and the CLI share: the durable event log, its import, similar items.

The service appends every accepted event to an :class:`EventLog` (SQLite in WAL mode with
``synchronous=FULL``: a commit is on disk when it returns) before it acknowledges the request.
``shopseq ingest --from-serve LOG`` calls :func:`import_served_events`, which moves the log's
events into the event store exactly once: each chunk of the log is written in one DuckDB
transaction together with a ``source_files`` row naming the log and the sequence range
(``serve:<log id>:<first>-<last>``), and the next import starts after the highest range found
there, so an import that crashed is redone whole and one that committed is never repeated.

Why SQLite and not DuckDB for the log: DuckDB allows one writer process and is slow at many small
transactions (docs/serve.md has the measurements); SQLite's WAL commits thousands of small groups
per second and lets ``ingest`` read while the service writes.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from shopseq.errors import InputError, StoreError, UnknownIdError
from shopseq.runs.nextitem import NextItemRun
from shopseq.schema import (
    ACTION,
    CATEGORY_ID,
    EVENT_COLUMNS,
    ITEM_ID,
    PRICE,
    QUANTITY,
    QUERY,
    SESSION_ID,
    SOURCE_FILE_ID,
    SOURCE_ROW,
    STORED_SCHEMA,
    TS,
    USER_ID,
)
from shopseq.sequences import Sequences
from shopseq.store import Store

__all__ = [
    "EVENT_LOG_VERSION",
    "EventLog",
    "ServedImport",
    "SimilarItems",
    "import_served_events",
    "similar_items",
]

#: Version of the log's tables; bump it when a column's meaning changes.
EVENT_LOG_VERSION = 1

_COLUMNS = (USER_ID, ITEM_ID, ACTION, "ts_us", SESSION_ID, CATEGORY_ID, PRICE, QUANTITY, QUERY)
_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events ("
    " seq INTEGER PRIMARY KEY,"  # the rowid: strictly increasing, never reused (no deletes)
    " received_us INTEGER NOT NULL,"
    " user_id TEXT NOT NULL, item_id TEXT NOT NULL, action TEXT NOT NULL, ts_us INTEGER NOT NULL,"
    " session_id TEXT, category_id TEXT, price REAL, quantity INTEGER, query TEXT)",
)


class EventLog:
    """An append-only, fsynced log of accepted events (one SQLite file in WAL mode).

    One instance may be used from one thread at a time (the service's committer thread writes;
    readers open their own instance). Several processes may write one file: SQLite serialises
    their commits.

    Args:
        path: The log file (created with its tables when absent).
        pseudonymized: Recorded in a new log: whether its user ids are keyed pseudonyms.
        read_only: Open for reading only (the file must exist).

    Raises:
        StoreError: If the file cannot be opened or is not an event log of this version.
    """

    def __init__(self, path: Path, *, pseudonymized: bool = False, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.is_file():
            raise StoreError(f"{self.path}: no such event log; the service writes it (--log)")
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            uri = f"file:{self.path}?mode=ro" if read_only else f"file:{self.path}"
            self._con = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
            if not read_only:
                self._con.execute("PRAGMA journal_mode=WAL")
                # FULL: the WAL is fsynced at every commit, so an acknowledged event survives a
                # power loss too (NORMAL survives only a crash of the process).
                self._con.execute("PRAGMA synchronous=FULL")
                with self._con:
                    for statement in _DDL:
                        self._con.execute(statement)
                    self._con.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('log_id', ?), ('version', ?), "
                        "('pseudonymized', ?)",
                        (uuid.uuid4().hex, str(EVENT_LOG_VERSION), str(int(pseudonymized))),
                    )
            meta = dict(self._con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: cannot open the event log: {err}") from err
        if meta.get("version") != str(EVENT_LOG_VERSION):
            raise StoreError(
                f"{self.path}: event log version {meta.get('version')!r}; this shopseq reads "
                f"version {EVENT_LOG_VERSION}"
            )
        #: Identity of this log (a random hex id written when the file was created).
        self.log_id: str = meta["log_id"]
        #: Whether the user ids in this log are keyed pseudonyms.
        self.pseudonymized: bool = meta.get("pseudonymized") == "1"

    def append(self, events: pa.Table) -> tuple[int, int]:
        """Append accepted events in one fsynced transaction.

        Args:
            events: Canonical event columns (``schema.EVENT_SCHEMA`` types).

        Returns:
            ``(first, last)`` sequence numbers given to them (``(0, -1)`` when empty).
        """
        n = events.num_rows
        if n == 0:
            return (0, -1)
        received = int(datetime.now(UTC).timestamp() * 1_000_000)
        ts_us = events.column(TS).cast(pa.int64()).to_pylist()
        columns = [events.column(c).to_pylist() for c in EVENT_COLUMNS]
        rows = [
            (
                received,
                *(ts_us[i] if c == TS else columns[j][i] for j, c in enumerate(EVENT_COLUMNS)),
            )
            for i in range(n)
        ]
        with self._con:
            cursor = self._con.executemany(
                f"INSERT INTO events (received_us, {', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})",
                rows,
            )
            del cursor
            last = self.last_seq()
        return (last - n + 1, last)

    def last_seq(self) -> int:
        """Return the highest sequence number in the log (0 when empty)."""
        row = self._con.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        """Return the number of events in the log."""
        row = self._con.execute("SELECT COUNT(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def user_items(
        self, after: int = 0, batch: int = 100_000
    ) -> Iterator[list[tuple[int, str, str]]]:
        """Yield ``(seq, user_id, item_id)`` of events after ``after``, in sequence order.

        Args:
            after: Start after this sequence number.
            batch: Rows per yielded list.

        Yields:
            Lists of up to ``batch`` rows.
        """
        while True:
            rows = self._con.execute(
                "SELECT seq, user_id, item_id FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, batch),
            ).fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    def read(self, after: int, limit: int) -> pa.Table:
        """Read events after a sequence number as a table (``seq`` plus the canonical columns).

        Args:
            after: Start after this sequence number.
            limit: At most this many events.

        Returns:
            Columns ``seq`` then ``schema.EVENT_SCHEMA``.
        """
        rows = self._con.execute(
            f"SELECT seq, {', '.join(_COLUMNS)} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * (len(_COLUMNS) + 1)
        data: dict[str, pa.Array] = {"seq": pa.array(columns[0], pa.int64())}
        for n, field in enumerate(STORED_SCHEMA):
            if field.name not in EVENT_COLUMNS:
                continue
            values: Sequence[Any] = columns[n + 1]
            if field.name == TS:
                data[TS] = pa.array(values, pa.int64()).cast(pa.timestamp("us"))
            else:
                data[field.name] = pa.array(values, field.type)
        return pa.table(data)

    def close(self) -> None:
        """Close the file."""
        self._con.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class ServedImport:
    """What one ``import_served_events`` call did.

    Attributes:
        log: The log file.
        log_id: Its identity.
        imported: Events written to the store by this call.
        chunks: Transactions committed by this call.
        already_imported: Events of this log that earlier imports had written.
        last_seq: Highest sequence number now in the store for this log.
    """

    log: Path
    log_id: str
    imported: int
    chunks: int
    already_imported: int
    last_seq: int


def _source_prefix(log_id: str) -> str:
    return f"serve:{log_id}:"


def imported_up_to(store: Store, log_id: str) -> tuple[int, int]:
    """Return (highest sequence number, events) of a log already in the store.

    Args:
        store: The event store.
        log_id: The log's identity.

    Returns:
        ``(last_seq, n_events)``; ``(0, 0)`` when nothing of it was imported.
    """
    rows = store.sql(
        "SELECT path, rows_accepted FROM source_files WHERE starts_with(path, ?)",
        [_source_prefix(log_id)],
    ).to_pylist()
    last = max((int(r["path"].rsplit("-", 1)[1]) for r in rows), default=0)
    return last, sum(int(r["rows_accepted"]) for r in rows)


def import_served_events(log_path: Path, store: Store, *, chunk: int = 100_000) -> ServedImport:
    """Move the events of a service's log into the event store, exactly once.

    Args:
        log_path: The service's event log (``--log`` of ``shopseq serve``).
        store: The event store (DuckDB).
        chunk: Events per transaction.

    Returns:
        What was imported.

    Raises:
        StoreError: If the log cannot be read or the store written.
    """
    if chunk < 1:
        raise InputError(f"The 'chunk' parameter must be an int >= 1. Got {chunk}.")
    with EventLog(log_path, read_only=True) as log:
        after, before = imported_up_to(store, log.log_id)
        imported = chunks = 0
        while True:
            rows = log.read(after, chunk)
            if rows.num_rows == 0:
                break
            seq = rows.column("seq").to_numpy()
            first, last = int(seq[0]), int(seq[-1])
            table = rows.drop_columns(["seq"])
            with store.transaction() as con:
                file_id = con.execute(
                    "SELECT COALESCE(MAX(source_file_id), 0) + 1 FROM source_files"
                ).fetchone()
                fid = int(file_id[0]) if file_id else 1
                table = table.append_column(
                    SOURCE_FILE_ID, pa.array(np.full(len(seq), fid, np.int32))
                ).append_column(SOURCE_ROW, pa.array(seq, pa.int64()))
                con.register("_served", table.cast(STORED_SCHEMA))
                con.execute("INSERT INTO events SELECT * FROM _served")
                con.unregister("_served")
                source = f"{_source_prefix(log.log_id)}{first}-{last}"
                con.execute(
                    "INSERT INTO source_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        fid,
                        source,
                        hashlib.sha256(source.encode()).hexdigest(),
                        0,
                        "serve",
                        log.pseudonymized,
                        len(seq),
                        len(seq),
                        0,
                        datetime.now(UTC).replace(tzinfo=None),
                    ],
                )
            imported += len(seq)
            chunks += 1
            after = last
        return ServedImport(Path(log_path), log.log_id, imported, chunks, before, after)


@dataclass(frozen=True, slots=True)
class SimilarItems:
    """Items most related to one item, from a run.

    Attributes:
        item: The item asked about.
        items: Related external item ids, best first.
        scores: Their scores.
        method: ``similar_items`` (the model's own item similarity) or ``next_after`` (the model's
            ranking of what follows a history holding just this item).
    """

    item: str
    items: list[str]
    scores: list[float]
    method: str


def similar_items(run: NextItemRun, item: str, k: int) -> SimilarItems:
    """Top ``k`` items related to ``item``: the model's own similarity where it has one.

    Every next-item model can answer "what comes after a shopper who looked at just this item",
    which is what an item page's "customers also viewed" needs; a model with a ``similar_items``
    method (item factors) answers with that instead.

    Args:
        run: The loaded run.
        item: External item id.
        k: Number of items.

    Returns:
        The related items (never the item itself).

    Raises:
        InputError: If ``k`` < 1.
        UnknownIdError: If the run does not know the item.
    """
    if k < 1:
        raise InputError(f"The 'k' parameter of similar must be an int >= 1. Got {k}.")
    index = int(run.encode_items([item])[0])
    if index <= 0:
        raise UnknownIdError(
            f"item id {item!r} is not in this run's vocabulary ({run.items.size - 1} items)"
        )
    # A model with item factors (ALS, BPR) says which items are alike: ``similar_items(indices,
    # k) -> Recommendations``.
    own = getattr(run.model, "similar_items", None)
    if callable(own):
        recs, method = own(np.array([index]), k), "similar_items"
    else:
        recs = run.model.recommend(Sequences.from_lists([[index]]), k, exclude_seen=True)
        method = "next_after"
    items, values = np.asarray(recs.items)[0], np.asarray(recs.scores)[0]
    keep = (items > 0) & (items != index)
    return SimilarItems(
        item,
        run.decode_items(items[keep]),
        [float(s) for s in values[keep]],
        method,
    )
