"""Group commit: concurrent requests' events validated together and made durable by one fsync.

Requests put their events on a queue and wait. One thread takes everything queued (up to
``max_group_events``), runs ingest's rules over all of it in one DuckDB query, appends the accepted
events to the log in one SQLite transaction (one fsync), applies them to the live state and only
then answers each request with its own accepted count and per-event errors. While one group is
being fsynced the next one gathers, so the number of fsyncs per second stays flat as the request
rate grows; that is what takes durable posting from hundreds to many thousands of events per
second (docs/serve.md).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from shopseq.errors import InputError
from shopseq.ingest import BUILTIN_LAYOUTS
from shopseq.ingest.pseudonymize import Pseudonymizer
from shopseq.ingest.quarantine import RejectedRow
from shopseq.ingest.readers import LINE_COLUMN
from shopseq.ingest.records import check_records
from shopseq.ingest.validate import compile_rules
from shopseq.runs.serving import EventLog
from shopseq.schema import EVENT_COLUMNS, ITEM_ID, SESSION_ID, USER_ID
from shopseq.serve.state import UserState

__all__ = ["CommitResult", "GroupCommitter", "Record", "validation_connection"]

_log = logging.getLogger("shopseq.serve")
_TS_MIN = datetime(1990, 1, 1)  # ingest's default earliest timestamp


@dataclass(frozen=True, slots=True)
class CommitResult:
    """One request's share of a group commit.

    Attributes:
        accepted: Events of the request now durable in the log and applied to the state.
        rejected: The request's rejected events (``line`` is the index within the request).
        first_seq: Sequence number of its first accepted event (``None`` if none).
        last_seq: Sequence number of its last accepted event (``None`` if none).
    """

    accepted: int
    rejected: list[RejectedRow]
    first_seq: int | None
    last_seq: int | None


class _Unvalidated(Exception):
    """The validation query failed on a group's values (not a rejection: an error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the events could not be validated ({reason}); check each value's type and "
            "range (see docs/schema.md) and send them again"
        )
        self.reason = reason


#: One posted event: the canonical columns (``schema.EVENT_COLUMNS`` order) as text or None.
Record = tuple[str | None, ...]


@dataclass
class _Pending:
    records: list[Record]
    future: Future[CommitResult] = field(default_factory=Future)


def validation_connection() -> duckdb.DuckDBPyConnection:
    """The committer's private in-memory DuckDB connection for ingest's validation query.

    Planning that query costs more than running it on a group of posted events (several ms per
    group either way). The optimizer buys nothing on tables of tens of rows: with every optimizer
    switched off the query took 30-50 % less per group (1 to 1,000 rows) and gives the same
    accepted rows and rejections (``tests/serve/test_eventlog.py`` checks it). Every optimizer is
    named, so one that a later DuckDB adds does not change the plan either.

    Returns:
        The connection (UTC, one thread, optimizers off).
    """
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 1")
    names = [str(row[0]) for row in con.execute("SELECT name FROM duckdb_optimizers()").fetchall()]
    con.execute(f"SET disabled_optimizers = '{','.join(names)}'")
    return con


class GroupCommitter:
    """The committer thread and its queue.

    Args:
        log_path: The event log.
        state: The live state the accepted events are applied to.
        pseudonymizer: Applied to accepted user ids before they are stored (``None``: none).
        max_group_events: Most events in one group.
        max_future: How far past the clock an event's time may be.
        on_commit: Called with (accepted, rejected, seconds) after each group (metrics).
    """

    def __init__(
        self,
        log_path: Path,
        state: UserState,
        pseudonymizer: Pseudonymizer | None,
        *,
        max_group_events: int,
        max_future: timedelta,
        on_commit: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.log = EventLog(log_path, pseudonymized=pseudonymizer is not None)
        self.state = state
        self.pseudonymizer = pseudonymizer
        self.max_group_events = max_group_events
        self.max_future = max_future
        self.on_commit = on_commit
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._con = validation_connection()
        self._layout = BUILTIN_LAYOUTS["shopseq"]
        self._thread = threading.Thread(target=self._run, name="shopseq-commit", daemon=True)
        self.groups = 0
        #: Whether the live state missed committed events (a state store outage).
        self.state_behind = False
        #: Highest sequence number committed (read by other threads; written by the committer).
        self.log_last_seq = self.log.last_seq()

    def rebuild_state(self) -> int:
        """Apply the log's events the state has not seen yet (at start, before serving).

        Returns:
            Events applied.
        """
        applied = 0
        after = self.state.applied_seq(self.log.log_id)
        for rows in self.log.user_items(after):
            self.state.extend([(u, i) for _, u, i in rows], self.log.log_id, rows[-1][0])
            applied += len(rows)
        return applied

    def _apply(self, pairs: list[tuple[str, str]], last: int) -> None:
        """Apply durable events to the state; if it fails, the events are still acknowledged.

        They are in the log, so answering 5xx would make clients send them twice. The state is
        marked behind and caught up from the log at the next group (and at every start).
        """
        try:
            if self.state_behind:
                self.rebuild_state()
                self.state_behind = False
            else:
                self.state.extend(pairs, self.log.log_id, last)
        except Exception as err:  # a state store outage must not lose the acknowledgement
            if not self.state_behind:
                _log.warning("live state update failed (%s); catching up from the log", err)
            self.state_behind = True

    def start(self) -> None:
        """Start the committer thread."""
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the committer thread is running."""
        return self._thread.is_alive()

    def submit(self, records: list[Record]) -> Future[CommitResult]:
        """Queue a request's records (the canonical columns as text, in ``EVENT_COLUMNS`` order).

        Plain tuples, not an Arrow table per request: the group's table is built once, in the
        committer thread, instead of once per request on the event loop.

        Args:
            records: One tuple per posted event.

        Returns:
            A future resolved once the accepted events are durable and applied.
        """
        pending = _Pending(records)
        if not self._thread.is_alive():
            pending.future.set_exception(RuntimeError("the event committer is not running"))
        else:
            self._queue.put(pending)
        return pending.future

    def stop(self) -> None:
        """Commit what is queued, stop the thread and close the log."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)
        self.log.close()
        self._con.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group, n_events = [first], len(first.records)
            while n_events < self.max_group_events:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
                n_events += len(more.records)
            self._commit_or_split(group, n_events)

    def _commit_or_split(self, group: list[_Pending], n_events: int) -> None:
        """Commit a group; if its validation fails, commit each request on its own.

        One request whose values break the validation query itself must not fail the others
        that happened to share its group.
        """
        try:
            self._commit(group)
        except _Unvalidated as err:
            if len(group) > 1:
                for pending in group:
                    self._commit_or_split([pending], len(pending.records))
                return
            _log.warning("a request's events could not be validated: %s", err.reason)
            group[0].future.set_exception(InputError(str(err)))
        except Exception as err:  # every waiting request must hear of the failure
            _log.exception("group commit of %d events failed", n_events)
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(err)

    def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        offsets = [0]
        rows: list[Record] = []
        for pending in group:
            rows.extend(pending.records)
            offsets.append(len(rows))
        columns = list(zip(*rows, strict=True))
        records = pa.table(
            {
                **{c: pa.array(columns[n], pa.string()) for n, c in enumerate(EVENT_COLUMNS)},
                LINE_COLUMN: pa.array(range(len(rows)), pa.int64()),
            }
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        rules = compile_rules(self._layout, _TS_MIN, now + self.max_future)
        try:
            checked = check_records(self._con, records, rules)
        except duckdb.Error as err:
            raise _Unvalidated(type(err).__name__) from err
        accepted = checked.accepted
        if self.pseudonymizer is not None and accepted.num_rows:
            # The session id often embeds or equals the user id: it is pseudonymised the same way
            # as ingest --pseudonymize does it, so a session that is the user stays equal to it.
            for column in (USER_ID, SESSION_ID):
                index = accepted.schema.get_field_index(column)
                hashed = self.pseudonymizer.apply(accepted.column(column))
                accepted = accepted.set_column(index, column, hashed)
        lines = accepted.column(LINE_COLUMN).to_pylist()
        first, last = self.log.append(accepted.drop_columns([LINE_COLUMN]))
        if lines:
            self.log_last_seq = last
            pairs = zip(
                accepted.column(USER_ID).to_pylist(),
                accepted.column(ITEM_ID).to_pylist(),
                strict=True,
            )
            self._apply(list(pairs), last)
        self.groups += 1
        # Each request's share: accepted lines are in input order, so a request's seq range is
        # contiguous.
        results: list[tuple[int, list[RejectedRow], int | None, int | None]] = []
        position = 0
        by_request: list[list[RejectedRow]] = [[] for _ in group]
        cut = 0
        for row in checked.rejected:
            while row.line >= offsets[cut + 1]:
                cut += 1
            line = row.line - offsets[cut]
            by_request[cut].append(
                RejectedRow(line, row.column, row.raw_value, row.reason, row.detail)
            )
        for n, _pending in enumerate(group):
            start = position
            while position < len(lines) and lines[position] < offsets[n + 1]:
                position += 1
            count = position - start
            seqs = (first + start, first + position - 1) if count else (None, None)
            results.append((count, by_request[n], *seqs))
        for pending, (count, rejected, lo, hi) in zip(group, results, strict=True):
            pending.future.set_result(CommitResult(count, rejected, lo, hi))
        if self.on_commit is not None:
            self.on_commit(len(lines), len(checked.rejected), time.perf_counter() - started)
