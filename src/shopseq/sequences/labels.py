"""Labelled examples at a cut-off: features from before it, labels from a horizon after it.

Two grains:

* **Owner examples** (:func:`user_examples`): for every user active before a cut-off ``T``, the
  features of :func:`~shopseq.sequences.features.user_features` (events before ``T`` only) and the
  labels of :func:`label_users` (events in ``[T, T + horizon)`` only): the next action type, the
  seconds to the next event (right-censored at the horizon, with an ``observed`` flag; censored
  rows are kept), purchase within a horizon, churn (no activity within a horizon) and spend.
  :func:`plan_snapshots` places rolling training cut-offs, a validation cut-off and a test cut-off
  so that no training or validation label window reaches past the next cut-off: the test snapshot
  is later than every training one and its labels are read by nothing else.
* **Session-prefix examples** (:func:`session_intent_examples`): at each position ``k`` of a
  session (after its first ``k`` events, none of them a purchase), will the session end in a
  purchase? This is the early-prediction setting of the RecSys Challenge 2015.

Everything is an Ibis expression, so it runs on DuckDB or Spark; nothing loops over owners.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopseq.errors import InputError
from shopseq.schema import (
    ACTION,
    PRICE,
    QUANTITY,
    SESSION_ID,
    SOURCE_FILE_ID,
    SOURCE_ROW,
    TS,
    USER_ID,
    Action,
    epoch_micros,
)
from shopseq.sequences.features import (
    CUTOFF,
    FeatureConfig,
    session_prefix_features,
    user_features,
)

__all__ = [
    "CHURN",
    "CUTOFF",
    "LABEL_COLUMNS",
    "NEXT_ACTION",
    "NEXT_EVENT_OBSERVED",
    "NEXT_EVENT_SECONDS",
    "N_PURCHASE_DAYS",
    "PURCHASE",
    "SESSION_LABEL_COLUMNS",
    "SESSION_PURCHASE",
    "SPEND",
    "TASK_LABELS",
    "LabelConfig",
    "SessionIntentConfig",
    "SnapshotConfig",
    "SnapshotPlan",
    "event_time_range",
    "label_users",
    "plan_snapshots",
    "session_intent_examples",
    "session_labels",
    "user_examples",
    "user_snapshots",
]

NEXT_ACTION = "next_action"
NEXT_EVENT_SECONDS = "next_event_seconds"
NEXT_EVENT_OBSERVED = "next_event_observed"
PURCHASE = "purchase"
CHURN = "churn"
SPEND = "spend"
N_PURCHASE_DAYS = "n_purchase_days_after"
SESSION_PURCHASE = "session_purchase"

#: Label columns of an owner example (everything else but the keys is a feature).
LABEL_COLUMNS: tuple[str, ...] = (
    NEXT_ACTION,
    NEXT_EVENT_SECONDS,
    NEXT_EVENT_OBSERVED,
    PURCHASE,
    CHURN,
    SPEND,
    N_PURCHASE_DAYS,
)
#: Label and bookkeeping columns of a session-prefix example that are not features.
SESSION_LABEL_COLUMNS: tuple[str, ...] = (SESSION_PURCHASE, "session_start", "session_end")

#: Task name (as the CLI spells it) -> the label column it predicts (a plain dict literal).
TASK_LABELS: dict[str, str] = {
    "next-action": NEXT_ACTION,
    "next-time": NEXT_EVENT_SECONDS,
    "purchase": PURCHASE,
    "churn": CHURN,
    "clv": SPEND,
    "session-intent": SESSION_PURCHASE,
}


class LabelConfig(BaseModel):
    """Which owners get an example at a cut-off ``T``, and the label horizons after ``T``.

    Attributes:
        next_event_horizon: The next event (its action and its delay) is looked for in
            ``[T, T + next_event_horizon)``; with none there, the delay is censored at the
            horizon and the next action is null.
        purchase_horizon: ``purchase`` is 1 if the owner buys in ``[T, T + purchase_horizon)``.
        churn_horizon: ``churn`` is 1 if the owner has no event at all in
            ``[T, T + churn_horizon)``.
        spend_horizon: ``spend`` sums price x quantity of purchases in ``[T, T + spend_horizon)``
            (quantity 1 when missing, price 0 when missing); ``n_purchase_days_after`` counts the
            distinct days with a purchase there (the transactions of the customer-base models).
        min_events: Owners need at least this many events before ``T``.
        active_within: Only owners with an event in ``[T - active_within, T)`` (``None``: every
            owner with an event before ``T``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    next_event_horizon: timedelta = timedelta(days=7)
    purchase_horizon: timedelta = timedelta(days=7)
    churn_horizon: timedelta = timedelta(days=14)
    spend_horizon: timedelta = timedelta(days=14)
    min_events: int = Field(default=1, ge=1)
    active_within: timedelta | None = None

    @field_validator(
        "next_event_horizon", "purchase_horizon", "churn_horizon", "spend_horizon", "active_within"
    )
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() < 1:
            raise ValueError(f"horizons must be at least one second; got {value}")
        return value

    @property
    def span(self) -> timedelta:
        """The longest horizon: labels at ``T`` read events in ``[T, T + span)`` only."""
        return max(
            self.next_event_horizon, self.purchase_horizon, self.churn_horizon, self.spend_horizon
        )


class SessionIntentConfig(BaseModel):
    """Where session-intent examples are taken.

    Attributes:
        positions: Prefix lengths ``k``: an example after the first ``k`` events of every session
            that has at least ``k`` events and no purchase among them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    positions: tuple[int, ...] = (1, 2, 3, 5, 10)

    @field_validator("positions")
    @classmethod
    def _sorted_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1 or list(value) != sorted(set(value)):
            raise ValueError(
                f"positions must be distinct increasing integers >= 1; got {list(value)}"
            )
        return value


class SnapshotConfig(BaseModel):
    """Where the rolling cut-offs go.

    Attributes:
        n_train: Training snapshots.
        step: Time between consecutive training cut-offs (``None``: the label span, so training
            label windows do not overlap each other).
        test_cutoff: The test cut-off (naive UTC; ``None``: the label span before the data's end,
            the latest cut-off whose labels the data fully observes).
        min_history: The first training cut-off must have at least this much data before it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_train: int = Field(default=3, ge=1, le=100)
    step: timedelta | None = None
    test_cutoff: datetime | None = None
    min_history: timedelta = timedelta(0)

    @field_validator("step")
    @classmethod
    def _step_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() < 1:
            raise ValueError(f"step must be at least one second; got {value}")
        return value

    @model_validator(mode="after")
    def _naive(self) -> SnapshotConfig:
        if self.test_cutoff is not None and self.test_cutoff.tzinfo is not None:
            raise ValueError(f"test_cutoff must be naive UTC; got {self.test_cutoff}")
        return self


@dataclass(frozen=True, slots=True)
class SnapshotPlan:
    """Cut-offs of the training, validation and test snapshots (naive UTC).

    Attributes:
        train: Training cut-offs, oldest first; each one's label window ends at or before
            ``valid``.
        valid: Validation cut-off (calibration, model choice); its labels end at or before
            ``test``.
        test: Test cut-off, later than every other; its label window is the data's last.
        span: The label span (``LabelConfig.span``).
        data_start: First event.
        data_end: One second after the last event.
    """

    train: tuple[datetime, ...]
    valid: datetime
    test: datetime
    span: timedelta
    data_start: datetime
    data_end: datetime

    @property
    def cutoffs(self) -> tuple[datetime, ...]:
        """Every cut-off in time order (train..., valid, test)."""
        return (*self.train, self.valid, self.test)


def _second(moment: datetime) -> int:
    return epoch_micros(moment) // 1_000_000


def _seconds(column: ibis.TimestampValue) -> ibis.IntegerValue:
    # Truncate first: epoch_seconds() keeps fractions on DuckDB but not on Spark (STACK.md).
    return column.truncate("s").epoch_seconds().cast("int64")


def event_time_range(events: ibis.Table) -> tuple[datetime, datetime]:
    """Return the first and last event time.

    Args:
        events: Events.

    Returns:
        ``(first, last)`` as naive UTC datetimes.

    Raises:
        InputError: If there are no events.
    """
    row = events.aggregate(first=events[TS].min(), last=events[TS].max()).to_pyarrow().to_pylist()
    first, last = row[0]["first"], row[0]["last"]
    if first is None or last is None:
        raise InputError("no events (is the store prepared, and do the filters match?)")
    return first.replace(tzinfo=None), last.replace(tzinfo=None)


def plan_snapshots(
    data_start: datetime, data_last: datetime, labels: LabelConfig, config: SnapshotConfig
) -> SnapshotPlan:
    """Place the cut-offs: test last, validation one label span before, training before that.

    Args:
        data_start: First event (naive UTC).
        data_last: Last event (naive UTC).
        labels: Label horizons (their span separates the snapshots).
        config: Number and spacing of the training snapshots.

    Returns:
        The plan.

    Raises:
        InputError: If the data is too short for the snapshots, or the test cut-off leaves less
            than the label span of data after it.
    """
    span = labels.span
    data_end = data_last + timedelta(seconds=1)
    test = config.test_cutoff if config.test_cutoff is not None else data_end - span
    if test + span > data_end:
        raise InputError(
            f"test cut-off {test} + label span {span} reaches past the data's end {data_end}; "
            "labels there would be censored by the end of the data: choose an earlier test "
            "cut-off or shorter horizons"
        )
    valid = test - span
    step = config.step if config.step is not None else span
    train = tuple(valid - span - i * step for i in reversed(range(config.n_train)))
    if train[0] <= data_start + config.min_history:
        needed = (test + span) - train[0] + config.min_history
        raise InputError(
            f"the data covers {data_start} .. {data_last} ({data_end - data_start}); "
            f"{config.n_train} training snapshots every {step} plus validation and test with a "
            f"label span of {span} need more than {needed} (the first training cut-off would be "
            f"{train[0]}): use fewer snapshots, a shorter step or shorter horizons"
        )
    return SnapshotPlan(train, valid, test, span, data_start, data_end)


def label_users(events: ibis.Table, cutoff: datetime, config: LabelConfig) -> ibis.Table:
    """Labels at one cut-off for every owner active before it.

    Columns: ``user_id``, ``next_action`` (action of the first event in the next-event horizon,
    null if none), ``next_event_seconds`` (seconds from the cut-off to that event; the horizon's
    length when censored), ``next_event_observed`` (bool), ``purchase`` and ``churn`` (int 0/1),
    ``spend`` (float) and ``n_purchase_days_after`` (int).

    Args:
        events: Prepared events.
        cutoff: The cut-off ``T`` (naive UTC).
        config: Horizons and which owners count.

    Returns:
        One row per eligible owner (an expression; any engine).
    """
    cut = ibis.literal(cutoff)
    past = events.filter(events[TS] < cut)
    owners = past.group_by(USER_ID).aggregate(_n_past=past.count(), _last_past=past[TS].max())
    owners = owners.filter(owners._n_past >= config.min_events)
    if config.active_within is not None:
        owners = owners.filter(owners._last_past >= ibis.literal(cutoff - config.active_within))
    owners = owners.select(USER_ID)

    future = events.filter((events[TS] >= cut) & (events[TS] < ibis.literal(cutoff + config.span)))
    order = [future[TS], future[SOURCE_FILE_ID], future[SOURCE_ROW]]
    ranked = future.mutate(_rank=ibis.row_number().over(group_by=future[USER_ID], order_by=order))
    first = ranked.filter(
        (ranked._rank == 0) & (ranked[TS] < ibis.literal(cutoff + config.next_event_horizon))
    ).select(
        _next_user=ranked[USER_ID], _next_action=ranked[ACTION], _next_second=_seconds(ranked[TS])
    )
    is_purchase = future[ACTION] == Action.PURCHASE.value
    in_spend = is_purchase & (future[TS] < ibis.literal(cutoff + config.spend_horizon))
    value = future[PRICE].fill_null(0.0) * future[QUANTITY].fill_null(1).cast("float64")
    after = future.group_by(USER_ID).aggregate(
        _bought=(is_purchase & (future[TS] < ibis.literal(cutoff + config.purchase_horizon)))
        .cast("int64")
        .max(),
        _active=(future[TS] < ibis.literal(cutoff + config.churn_horizon)).cast("int64").max(),
        _spend=ibis.ifelse(in_spend, value, 0.0).sum(),
        _days=future[TS].date().nunique(where=in_spend),
    )
    after = after.rename(_after_user=USER_ID)
    joined = owners.left_join(first, owners[USER_ID] == first._next_user).left_join(
        after, owners[USER_ID] == after._after_user
    )
    horizon_seconds = int(config.next_event_horizon.total_seconds())
    observed = joined._next_second.notnull()
    return joined.select(
        USER_ID,
        **{
            NEXT_ACTION: joined._next_action,
            NEXT_EVENT_SECONDS: ibis.ifelse(
                observed, joined._next_second - _second(cutoff), horizon_seconds
            ).cast("float64"),
            NEXT_EVENT_OBSERVED: observed,
            PURCHASE: joined._bought.fill_null(0),
            CHURN: 1 - joined._active.fill_null(0),
            SPEND: joined._spend.fill_null(0.0),
            N_PURCHASE_DAYS: joined._days.fill_null(0).cast("int64"),
        },
    )


def user_examples(
    events: ibis.Table,
    cutoff: datetime,
    labels: LabelConfig,
    features: FeatureConfig | None = None,
) -> ibis.Table:
    """Features before and labels after one cut-off, one row per eligible owner.

    Args:
        events: Prepared (sessionised) events.
        cutoff: The cut-off (naive UTC).
        labels: Label horizons and eligibility.
        features: Feature windows (default :class:`FeatureConfig`).

    Returns:
        ``user_id``, ``cutoff``, the feature columns and the :data:`LABEL_COLUMNS`.
    """
    feats = user_features(events, cutoff, features or FeatureConfig())
    labelled = label_users(events, cutoff, labels).rename(_label_user=USER_ID)
    joined = feats.inner_join(labelled, feats[USER_ID] == labelled._label_user)
    return joined.drop("_label_user")


def user_snapshots(
    events: ibis.Table,
    cutoffs: tuple[datetime, ...] | list[datetime],
    labels: LabelConfig,
    features: FeatureConfig | None = None,
) -> ibis.Table:
    """Examples at several cut-offs stacked (rolling training snapshots).

    Args:
        events: Prepared events.
        cutoffs: Cut-offs (naive UTC).
        labels: Label horizons and eligibility.
        features: Feature windows.

    Returns:
        The union of :func:`user_examples` at every cut-off (``cutoff`` tells them apart).

    Raises:
        InputError: If no cut-off is given.
    """
    if not cutoffs:
        raise InputError("user_snapshots needs at least one cut-off; got none")
    tables = [user_examples(events, cutoff, labels, features) for cutoff in cutoffs]
    result = tables[0]
    for table in tables[1:]:
        result = result.union(table)
    return result


def session_labels(events: ibis.Table) -> ibis.Table:
    """Whether each session ends in a purchase, with its first and last event time.

    Args:
        events: Prepared (sessionised) events.

    Returns:
        ``user_id``, ``session_id``, ``session_start``, ``session_end`` and ``session_purchase``
        (int 0/1).
    """
    is_purchase = events[ACTION] == Action.PURCHASE.value
    return events.group_by([USER_ID, SESSION_ID]).aggregate(
        session_start=events[TS].min(),
        session_end=events[TS].max(),
        **{SESSION_PURCHASE: is_purchase.cast("int64").max()},
    )


def session_intent_examples(
    events: ibis.Table,
    config: SessionIntentConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ibis.Table:
    """Session-prefix examples: prefix features after ``k`` events, label "ends in a purchase".

    With ``end`` given, only sessions entirely before ``end`` are kept, so a training window's
    labels never read events at or after the next window's start.

    Args:
        events: Prepared (sessionised) events.
        config: Prefix positions.
        start: Keep sessions starting at or after this time (naive UTC).
        end: Keep sessions whose last event is before this time (naive UTC).

    Returns:
        The columns of :func:`~shopseq.sequences.features.session_prefix_features` plus
        :data:`SESSION_LABEL_COLUMNS`.
    """
    sessions = session_labels(events)
    if start is not None:
        sessions = sessions.filter(sessions.session_start >= ibis.literal(start))
    if end is not None:
        sessions = sessions.filter(sessions.session_end < ibis.literal(end))
    sessions = sessions.rename(_label_user=USER_ID, _label_session=SESSION_ID)
    prefixes = session_prefix_features(events, config.positions)
    joined = prefixes.inner_join(
        sessions,
        (prefixes[USER_ID] == sessions._label_user)
        & (prefixes[SESSION_ID] == sessions._label_session),
    )
    return joined.drop("_label_user", "_label_session")
