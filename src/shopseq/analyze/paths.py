"""Most frequent action paths leading to a purchase and to an exit, and the flows of a Sankey view.

A session's path is its sequence of actions with consecutive repeats collapsed (view, view, cart
-> view > cart), so paths describe what kind of step came next, not how many products were
browsed. *Path to purchase*: the last ``max_steps`` steps up to and including the session's first
purchase. *Path to exit*: the last ``max_steps`` steps of a session without a purchase. A path
cut to ``max_steps`` starts with ``…``.

*Flows*: every session's first ``flow_steps`` steps as numbered nodes (``1. view``,
``2. cart``, ...), stopping at the first purchase; a session that ends goes to ``exit`` and one
that goes on past the last step goes to ``continues``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.analyze.ordered import EVENT_POS, PREV_ACTION, has_session_order
from shopseq.analyze.result import Result, event_order, fetch_rows
from shopseq.schema import ACTION, SESSION_ID, Action

__all__ = ["Flow", "PathCount", "PathsConfig", "PathsResult", "paths"]

_PURCHASE = Action.PURCHASE.value
_SEP = " > "
ELLIPSIS, EXIT, CONTINUES = "…", "exit", "continues"


class PathsConfig(BaseModel):
    """Path lengths and how many to report.

    Attributes:
        max_steps: Steps kept before the purchase or the exit.
        top_k: Most frequent paths reported for each end.
        flow_steps: Steps shown in the flows (Sankey view).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int = Field(default=5, ge=1, le=50)
    top_k: int = Field(default=10, ge=1)
    flow_steps: int = Field(default=4, ge=1, le=20)


@dataclass(frozen=True, slots=True)
class PathCount(Result):
    """A path and how many sessions took it.

    Attributes:
        path: Steps in order (``…`` first when earlier steps were cut).
        n: Sessions.
        share: ``n`` over the sessions that reached that end.
    """

    path: tuple[str, ...]
    n: int
    share: float


@dataclass(frozen=True, slots=True)
class Flow(Result):
    """Sessions moving from one numbered step to the next.

    Attributes:
        source: Node like ``1. view``.
        target: Node like ``2. cart``, ``exit`` or ``continues``.
        n: Sessions.
    """

    source: str
    target: str
    n: int


@dataclass(frozen=True, slots=True)
class PathsResult(Result):
    """Frequent paths and flows.

    Attributes:
        n_sessions: Sessions.
        n_purchase_sessions: Sessions with a purchase.
        to_purchase: Most frequent paths to the first purchase.
        to_exit: Most frequent last steps of sessions without a purchase.
        flows: Sankey edges, largest first.
    """

    n_sessions: int
    n_purchase_sessions: int
    to_purchase: tuple[PathCount, ...]
    to_exit: tuple[PathCount, ...]
    flows: tuple[Flow, ...]


def _sessions(events: ibis.Table) -> ibis.Table:
    """One row per session: its collapsed steps, their number and the first purchase's index."""
    if has_session_order(events):
        # The shared ordered table (analyze/ordered.py): previous action and position are there.
        steps = events.filter(
            events[PREV_ACTION].isnull() | (events[PREV_ACTION] != events[ACTION])
        )
        keyed = ibis.struct({"p": steps[EVENT_POS], "a": steps[ACTION]})
        session = steps[SESSION_ID]
    else:
        window = ibis.window(group_by=events[SESSION_ID], order_by=event_order(events))
        order = event_order(events)
        marked = events.select(
            _s=events[SESSION_ID],
            _a=events[ACTION],
            _prev=events[ACTION].lag().over(window),
            _t=order[0],
            _f=order[1],
            _r=order[2],
        )
        steps = marked.filter(marked._prev.isnull() | (marked._prev != marked._a))
        keyed = ibis.struct({"t": steps._t, "f": steps._f, "r": steps._r, "a": steps._a})
        session = steps._s
    # Sorting each session's small list of structs (position or time and lineage first) is ~4x
    # faster in DuckDB 1.5 than an ordered aggregate (collect(order_by=...)) on 1 M events.
    sessions = steps.group_by(_s=session).aggregate(
        _steps=keyed.collect().sort().map(lambda step: step.a)
    )
    return sessions.mutate(_n=sessions._steps.length(), _buy=sessions._steps.index(_PURCHASE))


def _top_paths(
    sessions: ibis.Table, end: ibis.IntegerValue, config: PathsConfig
) -> tuple[list[PathCount], int]:
    """Count the last ``max_steps`` steps before ``end`` (exclusive index) per session."""
    begin = ibis.greatest(0, end - config.max_steps)
    keyed = sessions.select(_path=sessions._steps[begin:end].join(_SEP), _cut=begin > 0)
    counted = keyed.group_by(["_path", "_cut"]).aggregate(n=ibis._.count())
    total = int(fetch_rows(counted.aggregate(total=counted.n.sum()))[0]["total"] or 0)
    # A cut path and the uncut path of the same steps tie on (n, _path): the uncut one first
    # (the order among them was left to the engine, so it could change from run to run).
    rows = fetch_rows(counted.order_by([ibis.desc("n"), "_path", "_cut"]).limit(config.top_k))
    result = [
        PathCount(
            path=((ELLIPSIS,) if r["_cut"] else ()) + tuple(str(r["_path"]).split(_SEP)),
            n=int(r["n"]),
            share=int(r["n"]) / total if total else 0.0,
        )
        for r in rows
    ]
    return result, total


def _flows(sessions: ibis.Table, config: PathsConfig) -> tuple[Flow, ...]:
    """Sankey edges from the counted distinct session prefixes (few: at most 6^flow_steps)."""
    bought = sessions._buy >= 0
    stop = ibis.least(config.flow_steps, ibis.ifelse(bought, sessions._buy + 1, sessions._n))
    ending = ibis.cases(
        (bought & (sessions._buy < config.flow_steps), ibis.literal(_PURCHASE)),
        (sessions._n <= config.flow_steps, ibis.literal(EXIT)),
        else_=ibis.literal(CONTINUES),
    )
    prefixes = sessions.select(_prefix=sessions._steps[0:stop].join(_SEP), _end=ending)
    counted = prefixes.group_by(["_prefix", "_end"]).aggregate(n=ibis._.count())
    edges: dict[tuple[str, str], int] = {}
    for row in fetch_rows(counted):
        steps = [f"{i}. {a}" for i, a in enumerate(str(row["_prefix"]).split(_SEP), start=1)]
        if row["_end"] != _PURCHASE:
            steps.append(str(row["_end"]))
        for source, target in pairwise(steps):
            edges[(source, target)] = edges.get((source, target), 0) + int(row["n"])
    ordered = sorted(edges.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(Flow(source=s, target=t, n=n) for (s, t), n in ordered)


def paths(events: ibis.Table, config: PathsConfig) -> PathsResult:
    """Find the most frequent paths to purchase and to exit, and the Sankey flows.

    Args:
        events: Prepared events (``store.table("events_prepared")``), or them in
            :func:`~shopseq.analyze.ordered.session_order` (the same result, sooner).
        config: Path lengths and counts.

    Returns:
        The paths and flows.
    """
    # One ordered pass builds every session's step list; the three summaries then read that.
    sessions = _sessions(events).cache()
    bought = sessions.filter(sessions._buy >= 0)
    to_purchase, n_buy = _top_paths(bought, bought._buy + 1, config)
    exits = sessions.filter(sessions._buy < 0)
    to_exit, _ = _top_paths(exits, exits._n, config)
    n_sessions = int(sessions.count().execute())
    return PathsResult(
        n_sessions=n_sessions,
        n_purchase_sessions=n_buy,
        to_purchase=tuple(to_purchase),
        to_exit=tuple(to_exit),
        flows=_flows(sessions, config),
    )
