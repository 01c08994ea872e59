"""De-duplication: exact duplicate events, and rapid repeats of the same user/item/action."""

from __future__ import annotations

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.schema import ACTION, EVENT_COLUMNS, ITEM_ID, SOURCE_FILE_ID, SOURCE_ROW, TS, USER_ID

__all__ = ["DedupeConfig", "drop_exact_duplicates", "drop_repeats"]


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
    window = ibis.window(
        group_by=[events[c] for c in EVENT_COLUMNS],
        order_by=[events[SOURCE_FILE_ID], events[SOURCE_ROW]],
    )
    ranked = events.mutate(_copy=ibis.row_number().over(window))
    return ranked.filter(ranked._copy == 0).drop("_copy")


def drop_repeats(events: ibis.Table, config: DedupeConfig) -> ibis.Table:
    """Drop events repeating the previous same user/item/action within the configured window.

    Each event is compared with the previous event of the same user, item and action (not with the
    previous kept one), so a burst of reloads collapses to its first event.

    Args:
        events: Events with lineage columns.
        config: The repeat window.

    Returns:
        The events without rapid repeats (unchanged when the window is 0).
    """
    if config.repeat_window_seconds == 0:
        return events
    window = ibis.window(
        group_by=[events[USER_ID], events[ITEM_ID], events[ACTION]],
        order_by=[events[TS], events[SOURCE_FILE_ID], events[SOURCE_ROW]],
    )
    with_prev = events.mutate(_prev_ts=events[TS].lag().over(window))
    # Compare timestamps with an interval rather than subtracting epoch seconds: Spark truncates
    # epoch seconds, DuckDB keeps fractions (../shared/STACK.md).
    limit = with_prev._prev_ts + ibis.interval(seconds=config.repeat_window_seconds)
    keep = with_prev._prev_ts.isnull() | (with_prev[TS] > limit)
    return with_prev.filter(keep).drop("_prev_ts")
