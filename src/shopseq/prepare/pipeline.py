"""The prepare pipeline: events -> events_prepared in as few passes as the counts allow."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.prepare.bots import BotFilterConfig, bot_users, drop_bot_users
from shopseq.prepare.dedupe import (
    REPEAT_FLAG,
    DedupeConfig,
    drop_exact_duplicates,
    drop_exact_duplicates_by_digest,
    drop_repeats,
    flag_repeats,
)
from shopseq.prepare.log import PrepareCounts, append_prepare_log
from shopseq.prepare.missing import MissingValueConfig, fill_missing
from shopseq.prepare.sessionize import SessionizeConfig, sessionize
from shopseq.schema import (
    CATEGORY_ID,
    PRICE,
    QUANTITY,
    SESSION_ID,
    SOURCE_FILE_ID,
    SOURCE_ROW,
    TS,
    USER_ID,
)
from shopseq.store import Store

__all__ = ["PREPARED_TABLE", "PrepareConfig", "PrepareReport", "prepare_events", "prepare_table"]

#: The table every later stage reads.
PREPARED_TABLE = "events_prepared"


class PrepareConfig(BaseModel):
    """All prepare steps' settings.

    Attributes:
        dedupe: De-duplication.
        missing: Missing-value policy.
        bots: Bot filter.
        sessionize: Sessionisation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dedupe: DedupeConfig = Field(default_factory=DedupeConfig)
    missing: MissingValueConfig = Field(default_factory=MissingValueConfig)
    bots: BotFilterConfig = Field(default_factory=BotFilterConfig)
    sessionize: SessionizeConfig = Field(default_factory=SessionizeConfig)


@dataclass(frozen=True, slots=True)
class PrepareReport:
    """What each step did. ``rows_in - removed == rows_out`` always holds.

    Attributes:
        rows_in: Events read from ``events``.
        exact_duplicates: Removed as exact copies.
        repeats: Removed as rapid repeats.
        bot_users: Users flagged as bots.
        bot_events: Their events, removed.
        filled: Values filled per column.
        sessions: Sessions in the result.
        rows_out: Events written to ``events_prepared``.
        seconds: Wall time per step.
    """

    rows_in: int
    exact_duplicates: int
    repeats: int
    bot_users: int
    bot_events: int
    filled: dict[str, int]
    sessions: int
    rows_out: int
    seconds: dict[str, float] = field(default_factory=dict)


def _count(table: ibis.Table) -> int:
    return int(table.count().execute())


_FILLED = (CATEGORY_ID, PRICE, QUANTITY)


def _null_counts(table: ibis.Table, **extra: ibis.Scalar) -> dict[str, int]:
    """Nulls of the filled columns, plus ``extra`` aggregates, in one query."""
    counts = {c: table[c].isnull().sum() for c in _FILLED} | extra
    row = table.aggregate(**counts).to_pyarrow().to_pylist()[0]
    return {name: int(value or 0) for name, value in row.items()}


def _scratch(store: Store, name: str, expr: ibis.Table) -> ibis.Table:
    """Materialise an intermediate table, in memory where the engine can.

    On DuckDB a temporary table (kept in memory, spilled under the memory limit, never written to
    the store's file, gone at close): materialising the 2 M-event dedupe took half the time of a
    stored table, measured side by side. Engines without temporary tables (Ibis on Spark) get
    a stored table, dropped at the end of the pipeline.
    """
    return store.materialize(name, expr, temp=True)


def _deduplicate(store: Store, events: ibis.Table, config: DedupeConfig) -> ibis.Table:
    """The exact-duplicate-free events (repeats flagged when on), materialised once.

    The one aggregation over every column first (the fastest); when DuckDB runs out of memory
    in it, again by digest (:func:`drop_exact_duplicates_by_digest`, which groups one integer per
    row and finished at 100 M events under 2 GB where the first did not).
    """

    def flagged(deduped: ibis.Table) -> ibis.Table:
        return flag_repeats(deduped, config) if config.repeat_window_seconds > 0 else deduped

    try:
        return _scratch(store, "_prep_deduped", flagged(drop_exact_duplicates(events)))
    except Exception as err:
        if not store.is_out_of_memory(err):
            raise
    return _scratch(store, "_prep_deduped", flagged(drop_exact_duplicates_by_digest(events)))


def _ordered(prepared: ibis.Table) -> ibis.Table:
    return prepared.order_by([USER_ID, TS, SOURCE_FILE_ID, SOURCE_ROW])


def prepare_table(events: ibis.Table, config: PrepareConfig) -> ibis.Table:
    """Compose every prepare step into one expression (no counting; any engine).

    Args:
        events: Events with lineage columns.
        config: Settings.

    Returns:
        The prepared events expression.
    """
    deduped = drop_repeats(drop_exact_duplicates(events), config.dedupe)
    if config.bots.max_events_per_minute is not None:
        deduped = drop_bot_users(deduped, bot_users(deduped, config.bots))
    return sessionize(fill_missing(deduped, config.missing), config.sessionize)


def prepare_events(store: Store, config: PrepareConfig) -> PrepareReport:
    """Run every prepare step on the store's events and write ``events_prepared``.

    As few passes as the counts allow (each pass over the events costs about as much as the
    next): the exact-duplicate aggregation is materialised once with the rapid repeats flagged
    in it (every later step reads it); the fills, sessionisation and the sorted write are one
    query. What each step removed or filled is counted from those two tables with one aggregate
    query each (flags summed, nulls counted before and after), not by materialising every step.
    The bot filter, when on, adds its own small pass.

    Args:
        store: The event store.
        config: Settings.

    Returns:
        The step counts.
    """
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    events = store.table("events")
    rows_in = _count(events)

    step = time.perf_counter()
    repeats_on = config.dedupe.repeat_window_seconds > 0
    first = _deduplicate(store, events, config.dedupe)
    if repeats_on:
        row = (
            first.aggregate(_n=first.count(), _repeats=first[REPEAT_FLAG].cast("int64").sum())
            .to_pyarrow()
            .to_pylist()[0]
        )
        n_exact, n_repeats = int(row["_n"]), int(row["_repeats"] or 0)
        kept = first.filter(~first[REPEAT_FLAG]).drop(REPEAT_FLAG)
    else:
        n_exact, n_repeats, kept = _count(first), 0, first
    seconds["dedupe"] = time.perf_counter() - step

    step = time.perf_counter()
    n_bot_users, n_bot_events, clean = 0, 0, kept
    if config.bots.max_events_per_minute is not None:
        bots = _scratch(store, "_prep_bots", bot_users(kept, config.bots))
        n_bot_users = _count(bots)
        if n_bot_users:
            clean = _scratch(store, "_prep_clean", drop_bot_users(kept, bots))
            n_bot_events = n_exact - n_repeats - _count(clean)
    seconds["bots"] = time.perf_counter() - step

    step = time.perf_counter()
    nulls_before = _null_counts(clean)
    seconds["missing"] = time.perf_counter() - step

    step = time.perf_counter()
    # Fills, sessions and the sorted write in one query over the cleaned events.
    filled = fill_missing(clean, config.missing)
    prepared = store.materialize(PREPARED_TABLE, _ordered(sessionize(filled, config.sessionize)))
    after = _null_counts(prepared, _rows=prepared.count(), _sessions=prepared[SESSION_ID].nunique())
    seconds["sessionize"] = time.perf_counter() - step
    for name in ("_prep_deduped", "_prep_bots", "_prep_clean"):
        store.backend.drop_table(name, force=True)
    counts = PrepareCounts(
        prepared_at=datetime.now(UTC).replace(tzinfo=None),
        rows_in=rows_in,
        exact_duplicates=rows_in - n_exact,
        repeats=n_repeats,
        bot_users=n_bot_users,
        bot_events=n_bot_events,
        filled={c: nulls_before[c] - after[c] for c in _FILLED},
        sessions=after["_sessions"],
        rows_out=after["_rows"],
    )
    # Stored, so later stages (the report's dataset section) read the counts, not recount them.
    append_prepare_log(store, counts)
    seconds["total"] = time.perf_counter() - started
    return PrepareReport(
        rows_in=counts.rows_in,
        exact_duplicates=counts.exact_duplicates,
        repeats=counts.repeats,
        bot_users=counts.bot_users,
        bot_events=counts.bot_events,
        filled=counts.filled,
        sessions=counts.sessions,
        rows_out=counts.rows_out,
        seconds=seconds,
    )
