"""The prepare pipeline: events -> events_prepared, one small step at a time, each step counted."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.prepare.bots import BotFilterConfig, bot_users, drop_bot_users
from shopseq.prepare.dedupe import DedupeConfig, drop_exact_duplicates, drop_repeats
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


def _nulls(table: ibis.Table, column: str) -> int:
    return int(table[column].isnull().sum().execute() or 0)


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

    Each step is materialised so that what it removed or filled can be counted and reported.

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
    exact = store.materialize("_prep_exact", drop_exact_duplicates(events))
    n_exact = _count(exact)
    repeats = store.materialize("_prep_repeats", drop_repeats(exact, config.dedupe))
    n_repeats = _count(repeats)
    seconds["dedupe"] = time.perf_counter() - step

    step = time.perf_counter()
    bots = store.materialize("_prep_bots", bot_users(repeats, config.bots))
    n_bot_users = _count(bots)
    clean = repeats
    if n_bot_users:
        clean = store.materialize("_prep_clean", drop_bot_users(repeats, bots))
    n_clean = _count(clean)
    seconds["bots"] = time.perf_counter() - step

    step = time.perf_counter()
    nulls_before = {c: _nulls(clean, c) for c in (CATEGORY_ID, PRICE, QUANTITY)}
    filled = store.materialize("_prep_filled", fill_missing(clean, config.missing))
    filled_counts = {c: nulls_before[c] - _nulls(filled, c) for c in nulls_before}
    seconds["missing"] = time.perf_counter() - step

    step = time.perf_counter()
    ordered = sessionize(filled, config.sessionize).order_by(
        [USER_ID, TS, SOURCE_FILE_ID, SOURCE_ROW]
    )
    prepared = store.materialize(PREPARED_TABLE, ordered)
    n_sessions = int(prepared[SESSION_ID].nunique().execute())
    rows_out = _count(prepared)
    seconds["sessionize"] = time.perf_counter() - step
    for name in ("_prep_exact", "_prep_repeats", "_prep_bots", "_prep_clean", "_prep_filled"):
        store.backend.drop_table(name, force=True)
    seconds["total"] = time.perf_counter() - started
    return PrepareReport(
        rows_in=rows_in,
        exact_duplicates=rows_in - n_exact,
        repeats=n_exact - n_repeats,
        bot_users=n_bot_users,
        bot_events=n_repeats - n_clean,
        filled=filled_counts,
        sessions=n_sessions,
        rows_out=rows_out,
        seconds=seconds,
    )
