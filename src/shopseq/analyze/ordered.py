"""Every event's place in its session, computed once and shared by the ordered analyses.

Funnels, paths, transitions and the intent states each read a session's events in the total
event order (time, then lineage: :func:`~shopseq.analyze.result.event_order`), and each used to
sort the events by session for itself. :func:`session_order` adds that order as columns, in one
window pass:

* :data:`EVENT_POS`: 0-based position of the event in its session;
* :data:`PREV_ACTION` / :data:`NEXT_ACTION`: the action of the previous / next event of the
  session (null at its first / last event);
* :data:`PREV_CATEGORY` / :data:`NEXT_CATEGORY`: the same for the category.

Whether an earlier event of the session had the same item (the intent states' ``view
(revisit)``) is not a column here: a second window over (session, item) doubled the order
table's cost on 10 M events for the one analysis that reads it, which finds it within its own
per-session aggregate instead (analyze/hmm.py).

The report materialises it once (``ReportContext.ordered``) and passes it to each analysis; an
analysis given plain events computes what it needs itself, and gives the same result
(``tests/analyze/test_ordered.py``). It is an Ibis expression: any engine.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

from shopseq.analyze.result import event_order
from shopseq.schema import ACTION, CATEGORY_ID, SESSION_ID

__all__ = [
    "EVENT_POS",
    "NEXT_ACTION",
    "NEXT_CATEGORY",
    "ORDER_COLUMNS",
    "PREV_ACTION",
    "PREV_CATEGORY",
    "has_session_order",
    "session_order",
]

EVENT_POS = "event_pos"
PREV_ACTION, NEXT_ACTION = "prev_action", "next_action"
PREV_CATEGORY, NEXT_CATEGORY = "prev_category", "next_category"
#: The columns :func:`session_order` adds.
ORDER_COLUMNS = (EVENT_POS, PREV_ACTION, NEXT_ACTION, PREV_CATEGORY, NEXT_CATEGORY)


def session_order(events: ibis.Table) -> ibis.Table:
    """Add each event's place in its session (the columns of :data:`ORDER_COLUMNS`).

    Args:
        events: Prepared (sessionised) events.

    Returns:
        The events with the order columns (an expression; materialise it to share it).
    """
    window = ibis.window(group_by=events[SESSION_ID], order_by=event_order(events))
    # Ibis types lag/lead like their column, NOT NULL included, and a materialised table then
    # rejects the null at a session's edge: say they are nullable.
    nullable = dt.String(nullable=True)
    return events.mutate(
        **{
            EVENT_POS: ibis.row_number().over(window),
            PREV_ACTION: events[ACTION].lag().over(window).cast(nullable),
            NEXT_ACTION: events[ACTION].lead().over(window).cast(nullable),
            PREV_CATEGORY: events[CATEGORY_ID].lag().over(window).cast(nullable),
            NEXT_CATEGORY: events[CATEGORY_ID].lead().over(window).cast(nullable),
        }
    )


def has_session_order(events: ibis.Table) -> bool:
    """Whether ``events`` already holds the columns of :func:`session_order`.

    Args:
        events: A table of events.

    Returns:
        True when every order column is there.
    """
    return set(ORDER_COLUMNS) <= set(events.columns)
