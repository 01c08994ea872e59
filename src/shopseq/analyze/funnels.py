"""Ordered multi-step funnels (view -> cart -> purchase by default) within a conversion window.

Definition (the one the tests re-derive by hand): for each owner (a session, or a user), step 1 is
the owner's **first** event with the first action. Step k is reached by the first event with the
k-th action that comes after the event that reached step k-1 (in the total event order: time,
then lineage) and at most ``window_seconds`` after the step-1 event. An owner who reaches step k
has reached every earlier step. Time between steps is measured between those events.

Everything runs in the store's engine: one ranked, filtered copy of the funnel actions, one join
per step, and one grouped aggregate per view (:func:`funnel_breakdowns` gives several views of one
pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import ibis
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopseq.analyze.ordered import EVENT_POS, has_session_order
from shopseq.analyze.result import Result, event_order, fetch_rows
from shopseq.errors import InputError
from shopseq.schema import ACTION, CATEGORY_ID, SESSION_ID, TS, USER_ID, Action

__all__ = [
    "FunnelConfig",
    "FunnelResult",
    "FunnelSeries",
    "FunnelStep",
    "funnel",
    "funnel_breakdowns",
]

#: Group label of events without a category.
UNKNOWN = "unknown"


class FunnelConfig(BaseModel):
    """Which funnel to measure.

    Attributes:
        steps: The ordered actions (at least two).
        by: Count sessions or users.
        window_seconds: Conversion window: later steps must happen this soon after step 1.
        breakdown: Also split by the category of the step-1 event, or by user segment.
        max_groups: Largest groups (by step-1 owners) kept in the breakdown.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: tuple[Action, ...] = (Action.VIEW, Action.CART, Action.PURCHASE)
    by: Literal["session", "user"] = "session"
    window_seconds: int = Field(default=86_400, gt=0)
    breakdown: Literal["none", "category", "segment"] = "none"
    max_groups: int = Field(default=12, gt=0)

    @field_validator("steps")
    @classmethod
    def _two_steps(cls, value: tuple[Action, ...]) -> tuple[Action, ...]:
        if len(value) < 2:
            raise ValueError(f"a funnel needs at least 2 steps; got {len(value)}")
        return value


@dataclass(frozen=True, slots=True)
class FunnelStep(Result):
    """One step of a funnel.

    Attributes:
        action: The step's action.
        n: Owners who reached it.
        rate_from_start: ``n`` / owners who reached step 1.
        rate_from_previous: ``n`` / owners who reached the previous step (1.0 for step 1).
        dropped: Owners who reached the previous step but not this one (0 for step 1).
        median_seconds_from_previous: Median time from the previous step (``None`` for step 1
            or when nobody reached it).
    """

    action: str
    n: int
    rate_from_start: float
    rate_from_previous: float
    dropped: int
    median_seconds_from_previous: float | None


@dataclass(frozen=True, slots=True)
class FunnelSeries(Result):
    """The funnel of one group (or of everyone).

    Attributes:
        group: Group label (``"all"`` for the overall funnel).
        steps: One entry per configured step.
    """

    group: str
    steps: tuple[FunnelStep, ...]

    @property
    def conversion(self) -> float:
        """Share of step-1 owners who reached the last step."""
        return self.steps[-1].rate_from_start


@dataclass(frozen=True, slots=True)
class FunnelResult(Result):
    """A funnel, overall and per group.

    Attributes:
        by: ``session`` or ``user``.
        window_seconds: The conversion window used.
        breakdown: How ``groups`` were split (``none``: no groups).
        overall: The funnel of every owner.
        groups: Largest groups first.
    """

    by: str
    window_seconds: int
    breakdown: str
    overall: FunnelSeries
    groups: tuple[FunnelSeries, ...]


def _reached(events: ibis.Table, config: FunnelConfig, segments: ibis.Table | None) -> ibis.Table:
    """One row per owner who reached step 1: its groups and the time of every step reached.

    ``_category`` is the category of the step-1 event; with ``segments``, ``_segment`` is the
    owner's user's segment (``unknown`` for a user without one).
    """
    owner = SESSION_ID if config.by == "session" else USER_ID
    actions = [a.value for a in config.steps]
    funnel_events = events.filter(events[ACTION].isin(actions))
    # Positions in the total order, so that a step is never matched by the same or an earlier
    # event even when timestamps tie. The shared ordered table (analyze/ordered.py) has them
    # already: positions among all of a session's events order its funnel events alike.
    position = (
        funnel_events[EVENT_POS]
        if config.by == "session" and has_session_order(events)
        else ibis.row_number().over(
            ibis.window(group_by=funnel_events[owner], order_by=event_order(funnel_events))
        )
    )
    ranked = funnel_events.select(
        _owner=funnel_events[owner],
        _user=funnel_events[USER_ID],
        _action=funnel_events[ACTION],
        _ts=funnel_events[TS],
        _category=funnel_events[CATEGORY_ID].fill_null(UNKNOWN),
        _pos=position,
    )
    first = ranked.filter(ranked._action == actions[0])
    state = first.group_by("_owner").aggregate(
        _pos_0=first._pos.min(),
        _t_0=first._ts.argmin(first._pos),
        _user=first._user.argmin(first._pos),
        _category=first._category.argmin(first._pos),
    )
    window = ibis.interval(seconds=config.window_seconds)
    for k, action in enumerate(actions[1:], start=1):
        step = ranked.filter(ranked._action == action)
        previous = state.select("_owner", _prev_pos=state[f"_pos_{k - 1}"], _start=state._t_0)
        joined = step.join(previous, "_owner")
        joined = joined.filter(
            (joined._pos > joined._prev_pos) & (joined._ts <= joined._start + window)
        )
        hit = joined.group_by("_owner").aggregate(
            **{f"_pos_{k}": joined._pos.min(), f"_t_{k}": joined._ts.argmin(joined._pos)}
        )
        state = state.left_join(hit, "_owner").drop("_owner_right")
    if segments is not None:
        labels = segments.select(_seg_user=segments[USER_ID], _seg=segments.segment.cast("string"))
        state = state.left_join(labels, state._user == labels._seg_user)
        state = state.mutate(_segment=state._seg.fill_null(UNKNOWN)).drop("_seg_user", "_seg")
    return state


def _series(rows: list[dict[str, Any]], config: FunnelConfig) -> list[FunnelSeries]:
    result = []
    for row in rows:
        counts = [int(row[f"n_{k}"] or 0) for k in range(len(config.steps))]
        steps = []
        for k, action in enumerate(config.steps):
            prev = counts[k - 1] if k else counts[0]
            median = row.get(f"median_{k}")
            steps.append(
                FunnelStep(
                    action=action.value,
                    n=counts[k],
                    rate_from_start=counts[k] / counts[0] if counts[0] else 0.0,
                    rate_from_previous=counts[k] / prev if prev else 0.0,
                    dropped=prev - counts[k],
                    median_seconds_from_previous=None if median is None else float(median),
                )
            )
        result.append(FunnelSeries(group=str(row["group"]), steps=tuple(steps)))
    return result


def funnel(
    events: ibis.Table, config: FunnelConfig, segments: ibis.Table | None = None
) -> FunnelResult:
    """Measure an ordered funnel.

    Args:
        events: Prepared events (``store.table("events_prepared")``).
        config: Steps, owner, window and breakdown.
        segments: ``user_id``, ``segment`` per user (e.g. ``SegmentsResult.assignments``
            written to the store); needed only for ``breakdown='segment'``.

    Returns:
        The funnel overall and, with a breakdown, per group (largest ``max_groups`` groups).

    Raises:
        InputError: If ``breakdown='segment'`` and no segments are given.
    """
    breakdowns = () if config.breakdown == "none" else (config.breakdown,)
    by = funnel_breakdowns(events, config, breakdowns, segments)
    return by[config.breakdown] if breakdowns else by["none"]


def funnel_breakdowns(
    events: ibis.Table,
    config: FunnelConfig,
    breakdowns: tuple[Literal["category", "segment"], ...],
    segments: ibis.Table | None = None,
) -> dict[str, FunnelResult]:
    """One funnel, broken down several ways from one pass (``config.breakdown`` is ignored).

    The steps each owner reached are found once and kept (cached in the engine); the overall
    funnel and every breakdown are aggregates over that one table, so asking for the category
    and the segment view costs one funnel, not two (each equals :func:`funnel` with that
    breakdown; ``tests/analyze/test_funnels.py`` checks it).

    Args:
        events: Prepared events, or them in :func:`~shopseq.analyze.ordered.session_order`
            (the same result, sooner).
        config: Steps, owner, window, groups kept.
        breakdowns: The views wanted besides the overall funnel (none: overall only).
        segments: ``user_id``, ``segment`` per user; needed for the ``segment`` view.

    Returns:
        ``FunnelResult`` per breakdown asked (``"none"`` when none was).

    Raises:
        InputError: If ``segment`` is asked for and no segments are given.
    """
    if "segment" in breakdowns and segments is None:
        raise InputError("breakdown='segment' needs a segments table (user_id, segment)")
    state = _reached(events, config, segments if "segment" in breakdowns else None)
    if breakdowns:
        state = state.cache()
    n_steps = len(config.steps)
    metrics: dict[str, ibis.Value] = {}
    for k in range(n_steps):
        reached = state[f"_t_{k}"]
        metrics[f"n_{k}"] = reached.count()
        if k:
            gap = reached.epoch_seconds() - state[f"_t_{k - 1}"].epoch_seconds()
            metrics[f"median_{k}"] = gap.cast("float64").median()
    overall_rows = fetch_rows(state.aggregate(**metrics).mutate(group=ibis.literal("all")))
    overall = _series(overall_rows, config)[0]

    def result(breakdown: str, groups: list[FunnelSeries]) -> FunnelResult:
        return FunnelResult(
            by=config.by,
            window_seconds=config.window_seconds,
            breakdown=breakdown,
            overall=overall,
            groups=tuple(groups),
        )

    if not breakdowns:
        return {"none": result("none", [])}
    out: dict[str, FunnelResult] = {}
    for breakdown in dict.fromkeys(breakdowns):
        grouped = (
            state.group_by(group=state[f"_{breakdown}"])
            .aggregate(**metrics)
            .order_by([ibis.desc("n_0"), "group"])
            .limit(config.max_groups)
        )
        out[breakdown] = result(breakdown, _series(fetch_rows(grouped), config))
    return out
