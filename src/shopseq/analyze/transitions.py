"""First-order Markov transition matrices: action -> action and category -> category.

A transition is a pair of consecutive events of one session (or user) in the total event order.
With ``include_start_exit`` the matrices also hold a ``start`` row (the first event of each
session) and an ``exit`` column (the last event), so the action matrix shows where sessions begin
and end. Rows are "from", columns are "to"; probabilities are row-normalised counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.analyze.ordered import EVENT_POS, NEXT_ACTION, NEXT_CATEGORY, has_session_order
from shopseq.analyze.result import Result, event_order, fetch_rows
from shopseq.schema import ACTION, CATEGORY_ID, SESSION_ID, USER_ID, Action

__all__ = ["TransitionConfig", "TransitionMatrix", "TransitionsResult", "transitions"]

START, EXIT, OTHER, UNKNOWN = "start", "exit", "other", "unknown"


class TransitionConfig(BaseModel):
    """Which transitions to count.

    Attributes:
        by: Consecutive events of one session or of one user.
        max_categories: Most frequent categories kept as states; the rest become ``other``.
        include_start_exit: Add the ``start`` row and the ``exit`` column.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    by: Literal["session", "user"] = "session"
    max_categories: int = Field(default=15, ge=1)
    include_start_exit: bool = True


@dataclass(frozen=True, slots=True)
class TransitionMatrix(Result):
    """Counts and probabilities of moving from one state to the next.

    Attributes:
        rows: "From" states.
        columns: "To" states.
        counts: ``counts[i][j]`` transitions from ``rows[i]`` to ``columns[j]``.
        probabilities: ``counts`` divided by each row's total (0 for an empty row).
    """

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    probabilities: tuple[tuple[float, ...], ...]

    def probability(self, source: str, target: str) -> float:
        """Return P(next = target | current = source).

        Args:
            source: A row state.
            target: A column state.

        Returns:
            The probability.
        """
        return self.probabilities[self.rows.index(source)][self.columns.index(target)]


@dataclass(frozen=True, slots=True)
class TransitionsResult(Result):
    """Both matrices.

    Attributes:
        by: ``session`` or ``user``.
        n_transitions: Event-to-event transitions counted (start/exit not included).
        actions: Action -> action.
        categories: Category -> category (top categories, ``other``, ``unknown``).
    """

    by: str
    n_transitions: int
    actions: TransitionMatrix
    categories: TransitionMatrix


def _matrix(
    counts: dict[tuple[str, str], int], rows: list[str], columns: list[str]
) -> TransitionMatrix:
    table = tuple(tuple(counts.get((r, c), 0) for c in columns) for r in rows)
    probabilities = tuple(tuple(n / sum(row) if sum(row) else 0.0 for n in row) for row in table)
    return TransitionMatrix(
        rows=tuple(rows), columns=tuple(columns), counts=table, probabilities=probabilities
    )


def transitions(events: ibis.Table, config: TransitionConfig) -> TransitionsResult:
    """Count action and category transitions (one grouped query over a window).

    Args:
        events: Prepared events (``store.table("events_prepared")``), or them in
            :func:`~shopseq.analyze.ordered.session_order` (the same result, sooner).
        config: Owner, category states, start/exit.

    Returns:
        The action and category transition matrices.
    """
    owner = SESSION_ID if config.by == "session" else USER_ID
    top = (
        events.filter(events[CATEGORY_ID].notnull())
        .group_by(_top=events[CATEGORY_ID])
        .aggregate(_n=ibis._.count())
        .order_by([ibis.desc("_n"), "_top"])
        .limit(config.max_categories)
    )
    top_names = [str(r["_top"]) for r in fetch_rows(top)]

    def state(category: ibis.StringValue) -> ibis.StringValue:
        if not top_names:
            return ibis.literal(UNKNOWN)
        return ibis.cases(
            (category.isnull(), UNKNOWN), (category.isin(top_names), category), else_=OTHER
        )

    if config.by == "session" and has_session_order(events):
        # The shared ordered table (analyze/ordered.py) has the next event's action and
        # category; a next category maps to its state as the event's own does.
        has_next = events[NEXT_ACTION].notnull()
        stepped = events.select(
            _a=events[ACTION],
            _c=state(events[CATEGORY_ID]),
            _next_a=events[NEXT_ACTION],
            _next_c=ibis.ifelse(has_next, state(events[NEXT_CATEGORY]), ibis.null("string")),
            _first=events[EVENT_POS] == 0,
        )
    else:
        window = ibis.window(group_by=events[owner], order_by=event_order(events))
        stepped = events.mutate(_a=events[ACTION], _c=state(events[CATEGORY_ID])).mutate(
            _next_a=ibis._._a.lead().over(window),
            _next_c=ibis._._c.lead().over(window),
            _first=ibis.row_number().over(window) == 0,
        )
    pairs = stepped.group_by(["_a", "_c", "_next_a", "_next_c", "_first"]).aggregate(
        n=ibis._.count()
    )
    action_counts: dict[tuple[str, str], int] = {}
    category_counts: dict[tuple[str, str], int] = {}
    n_transitions = 0
    for row in fetch_rows(pairs):
        n = int(row["n"])
        a, c, next_a, next_c = row["_a"], row["_c"], row["_next_a"], row["_next_c"]
        if next_a is not None:
            n_transitions += n
        if next_a is not None or config.include_start_exit:
            ta, tc = (next_a, next_c) if next_a is not None else (EXIT, EXIT)
            action_counts[(a, ta)] = action_counts.get((a, ta), 0) + n
            category_counts[(c, tc)] = category_counts.get((c, tc), 0) + n
        if row["_first"] and config.include_start_exit:
            action_counts[(START, a)] = action_counts.get((START, a), 0) + n
            category_counts[(START, c)] = category_counts.get((START, c), 0) + n
    present_actions = {a for pair in action_counts for a in pair} - {START, EXIT}
    action_states: list[str] = [a.value for a in Action if a.value in present_actions]
    category_states = [
        c for c in [*top_names, OTHER, UNKNOWN] if any(c in pair for pair in category_counts)
    ]
    head = [START] if config.include_start_exit else []
    tail = [EXIT] if config.include_start_exit else []
    return TransitionsResult(
        by=config.by,
        n_transitions=n_transitions,
        actions=_matrix(action_counts, head + action_states, action_states + tail),
        categories=_matrix(category_counts, head + category_states, category_states + tail),
    )
