"""``prepare_log``: what each prepare run removed and filled, stored beside ``events_prepared``.

``prepare_events`` appends one row per run. Later stages read the counts from here instead of
recounting them (the report's dataset section recounted the exact duplicates with a hash
aggregation over every raw event: 14 % of a 10 M-event report). A row describes the current
tables only while the events and the prepared events still hold the rows it counted
(:func:`latest_prepare_counts` checks both counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import ibis
import pyarrow as pa

from shopseq.store import Store

__all__ = ["PREPARE_LOG_TABLE", "PrepareCounts", "append_prepare_log", "latest_prepare_counts"]

#: The table (named in ``store.py``'s table list).
PREPARE_LOG_TABLE = "prepare_log"

_SCHEMA = pa.schema(
    [
        ("prepared_at", pa.timestamp("us")),
        ("rows_in", pa.int64()),
        ("exact_duplicates", pa.int64()),
        ("repeats", pa.int64()),
        ("bot_users", pa.int64()),
        ("bot_events", pa.int64()),
        ("filled_category_id", pa.int64()),
        ("filled_price", pa.int64()),
        ("filled_quantity", pa.int64()),
        ("sessions", pa.int64()),
        ("rows_out", pa.int64()),
    ]
)


@dataclass(frozen=True, slots=True)
class PrepareCounts:
    """One run's counts (the fields of ``PrepareReport`` without its timings).

    Attributes:
        prepared_at: When the run finished (naive UTC).
        rows_in: Events read from ``events``.
        exact_duplicates: Removed as exact copies.
        repeats: Removed as rapid repeats.
        bot_users: Users flagged as bots.
        bot_events: Their events, removed.
        filled: Values filled per column.
        sessions: Sessions written.
        rows_out: Events written to ``events_prepared``.
    """

    prepared_at: datetime
    rows_in: int
    exact_duplicates: int
    repeats: int
    bot_users: int
    bot_events: int
    filled: dict[str, int]
    sessions: int
    rows_out: int


def append_prepare_log(store: Store, counts: PrepareCounts) -> None:
    """Add one run's counts to ``prepare_log`` (earlier runs' rows are kept).

    Args:
        store: The store ``events_prepared`` was just written to.
        counts: The run's counts.
    """
    row = {
        "prepared_at": counts.prepared_at,
        "rows_in": counts.rows_in,
        "exact_duplicates": counts.exact_duplicates,
        "repeats": counts.repeats,
        "bot_users": counts.bot_users,
        "bot_events": counts.bot_events,
        **{f"filled_{c}": counts.filled.get(c, 0) for c in ("category_id", "price", "quantity")},
        "sessions": counts.sessions,
        "rows_out": counts.rows_out,
    }
    new = pa.Table.from_pylist([row], schema=_SCHEMA)
    if store.has_table(PREPARE_LOG_TABLE):
        old = store.table(PREPARE_LOG_TABLE).to_pyarrow().select(_SCHEMA.names).cast(_SCHEMA)
        new = pa.concat_tables([old, new])
    store.write_arrow(PREPARE_LOG_TABLE, new)


def latest_prepare_counts(store: Store, rows_in: int, rows_out: int) -> PrepareCounts | None:
    """The last run's counts, if they still describe the store's tables.

    Ingest only appends, so a log row whose ``rows_in`` and ``rows_out`` equal today's counts of
    ``events`` and ``events_prepared`` counted exactly these tables; after a later ingest (or a
    prepare that wrote no log: older stores) the answer is ``None`` and the caller recounts.

    Args:
        store: The store.
        rows_in: Rows of ``events`` now.
        rows_out: Rows of ``events_prepared`` now.

    Returns:
        The counts, or ``None``.
    """
    if not store.has_table(PREPARE_LOG_TABLE):
        return None
    log = store.table(PREPARE_LOG_TABLE)
    rows = log.order_by(ibis.desc("prepared_at")).limit(1).to_pyarrow().to_pylist()
    if not rows or rows[0]["rows_in"] != rows_in or rows[0]["rows_out"] != rows_out:
        return None
    r = rows[0]
    prepared_at = r["prepared_at"]
    if prepared_at is not None and prepared_at.tzinfo is not None:  # Spark hands back aware
        prepared_at = prepared_at.astimezone(UTC).replace(tzinfo=None)
    return PrepareCounts(
        prepared_at=prepared_at,
        rows_in=int(r["rows_in"]),
        exact_duplicates=int(r["exact_duplicates"]),
        repeats=int(r["repeats"]),
        bot_users=int(r["bot_users"]),
        bot_events=int(r["bot_events"]),
        filled={c: int(r[f"filled_{c}"]) for c in ("category_id", "price", "quantity")},
        sessions=int(r["sessions"]),
        rows_out=int(r["rows_out"]),
    )
