"""De-duplication: exact duplicate events, and rapid repeats of the same user/item/action."""

from __future__ import annotations

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.schema import ACTION, EVENT_COLUMNS, ITEM_ID, SOURCE_FILE_ID, SOURCE_ROW, TS, USER_ID

_ROW_SPAN = 1 << 40  # rows per file that fit below the file id (about 1.1e12)

__all__ = [
    "REPEAT_FLAG",
    "DedupeConfig",
    "drop_exact_duplicates",
    "drop_exact_duplicates_by_digest",
    "drop_repeats",
    "flag_repeats",
]

#: Column :func:`flag_repeats` adds: True on an event that repeats within the window.
REPEAT_FLAG = "_repeat"


class DedupeConfig(BaseModel):
    """How to de-duplicate.

    Attributes:
        repeat_window_seconds: An event repeating the same user, item and action within this many
            seconds of the previous such event is dropped (double clicks, page reloads, logging
            retries); 0 keeps repeats and removes exact duplicates only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    repeat_window_seconds: int = Field(default=0, ge=0)


def drop_exact_duplicates(events: ibis.Table) -> ibis.Table:
    """Keep one copy of events equal in every canonical column (the first by file and row).

    Args:
        events: Events with lineage columns.

    Returns:
        The events without exact duplicates.
    """
    # One hash aggregation keyed on the canonical columns, keeping the smallest lineage packed in
    # one int64 (file id in the high bits): 1.6-1.8x faster on 10 M events than a row_number()
    # window over the same keys (measured side by side), and no join back is needed.
    key = events[SOURCE_FILE_ID].cast("int64") * _ROW_SPAN + events[SOURCE_ROW]
    first = events.group_by([events[c] for c in EVENT_COLUMNS]).aggregate(_first=key.min())
    return first.mutate(
        **{
            SOURCE_FILE_ID: (first._first // _ROW_SPAN).cast("int32"),
            SOURCE_ROW: first._first % _ROW_SPAN,
        }
    ).drop("_first")


def drop_exact_duplicates_by_digest(events: ibis.Table) -> ibis.Table:
    """:func:`drop_exact_duplicates` in less memory: only rows sharing a digest are grouped.

    A 64-bit hash of every canonical column finds the candidates (the digests seen more than
    once: exact duplicates share one, and a collision only adds a candidate); the exact
    aggregation then runs over those rows alone, and every other row is kept as it is. The one
    aggregation over every column of :func:`drop_exact_duplicates` is 2.2x faster on 10 M events
    but its hash table of all rows did not fit DuckDB's 2 GB limit at 100 M events (3 runs of 3
    out of memory); this way, grouping one integer per row, finished in 104 s (2,576 MB peak).

    Args:
        events: Events with lineage columns.

    Returns:
        The same rows as :func:`drop_exact_duplicates` (in another order).
    """
    digest = ibis.struct({c: events[c] for c in EVENT_COLUMNS}).hash()
    keyed = events.mutate(_digest=digest)
    seen = keyed.group_by("_digest").aggregate(_n=keyed.count())
    shared = seen.filter(seen._n > 1).select("_digest")
    unique = keyed.anti_join(shared, "_digest").drop("_digest")
    candidates = keyed.semi_join(shared, "_digest").drop("_digest")
    return unique.union(drop_exact_duplicates(candidates).select(*unique.columns), distinct=False)


def flag_repeats(events: ibis.Table, config: DedupeConfig) -> ibis.Table:
    """Add :data:`REPEAT_FLAG`, True on a repeat within the window (never when the window is 0).

    A repeat is an event within the window after the previous event of the same user, item and
    action (not the previous kept one), so a burst of reloads collapses to its first event. A
    flag instead of a filter lets the pipeline count the repeats from the pass that finds them.

    Args:
        events: Events with lineage columns.
        config: The repeat window.

    Returns:
        The events with the flag column.
    """
    if config.repeat_window_seconds == 0:
        return events.mutate(**{REPEAT_FLAG: ibis.literal(False)})
    window = ibis.window(
        group_by=[events[USER_ID], events[ITEM_ID], events[ACTION]],
        order_by=[events[TS], events[SOURCE_FILE_ID], events[SOURCE_ROW]],
    )
    prev_ts = events[TS].lag().over(window)
    # Compare timestamps with an interval rather than subtracting epoch seconds: Spark truncates
    # epoch seconds, DuckDB keeps fractions (../shared/STACK.md).
    repeat = prev_ts.notnull() & (
        events[TS] <= prev_ts + ibis.interval(seconds=config.repeat_window_seconds)
    )
    return events.mutate(**{REPEAT_FLAG: repeat})


def drop_repeats(events: ibis.Table, config: DedupeConfig) -> ibis.Table:
    """Drop events repeating the previous same user/item/action within the configured window.

    Args:
        events: Events with lineage columns.
        config: The repeat window (see :func:`flag_repeats`).

    Returns:
        The events without rapid repeats (unchanged when the window is 0).
    """
    if config.repeat_window_seconds == 0:
        return events
    flagged = flag_repeats(events, config)
    return flagged.filter(~flagged[REPEAT_FLAG]).drop(REPEAT_FLAG)
