"""Cohort retention, repeat-purchase rate and session statistics.

Cohort: the calendar week (Monday start, UTC) or month of a user's first event (or first
purchase). A cohort user is *retained in period k* when they have an event (or a purchase, with
``activity='purchase'``) in the k-th week/month after the cohort's own (k = 0 is the cohort period).
Periods after the last event in the data are not observed yet: their cells are ``None``, never 0.

Repeat-purchase rate: among users with at least one order, the share with two or more, where an
order is a session with at least one purchase.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.analyze.result import Result, fetch_rows
from shopseq.schema import ACTION, SESSION_ID, TS, USER_ID, Action

__all__ = [
    "Cohort",
    "RepeatPurchase",
    "RetentionConfig",
    "RetentionResult",
    "SessionStats",
    "retention",
]

_PURCHASE = Action.PURCHASE.value


class RetentionConfig(BaseModel):
    """How to form cohorts and what counts as coming back.

    Attributes:
        period: Cohort and retention period.
        cohort_by: Cohort of a user's first event or first purchase.
        activity: What counts as active in a later period: any event or a purchase.
        max_periods: Periods after the cohort period to report.
        max_cohorts: Latest cohorts reported.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: Literal["week", "month"] = "week"
    cohort_by: Literal["first_activity", "first_purchase"] = "first_activity"
    activity: Literal["any", "purchase"] = "any"
    max_periods: int = Field(default=12, ge=1)
    max_cohorts: int = Field(default=26, ge=1)


@dataclass(frozen=True, slots=True)
class Cohort(Result):
    """One cohort's retention curve.

    Attributes:
        start: First day of the cohort period.
        size: Users in the cohort.
        retained: Users active in period k (``None``: not observed yet), k = 0..max_periods.
        rates: ``retained / size`` per period.
    """

    start: date
    size: int
    retained: tuple[int | None, ...]
    rates: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class RepeatPurchase(Result):
    """Repeat purchasing.

    Attributes:
        n_buyers: Users with at least one order (a session with a purchase).
        n_repeat_buyers: Users with two or more orders.
        rate: ``n_repeat_buyers / n_buyers`` (0 without buyers).
        mean_orders_per_buyer: Orders per buyer.
    """

    n_buyers: int
    n_repeat_buyers: int
    rate: float
    mean_orders_per_buyer: float


@dataclass(frozen=True, slots=True)
class SessionStats(Result):
    """Session statistics.

    Attributes:
        n_sessions: Sessions.
        n_users: Users.
        sessions_per_user: Mean sessions per user.
        mean_events: Mean events per session.
        median_events: Median events per session.
        median_duration_seconds: Median time from first to last event of a session.
        mean_duration_seconds: Mean of the same.
        bounce_rate: Share of sessions with a single event.
        purchase_rate: Share of sessions with a purchase.
    """

    n_sessions: int
    n_users: int
    sessions_per_user: float
    mean_events: float
    median_events: float
    median_duration_seconds: float
    mean_duration_seconds: float
    bounce_rate: float
    purchase_rate: float


@dataclass(frozen=True, slots=True)
class RetentionResult(Result):
    """Cohort retention with the repeat-purchase rate and session statistics.

    Attributes:
        period: ``week`` or ``month``.
        cohort_by: ``first_activity`` or ``first_purchase``.
        activity: ``any`` or ``purchase``.
        last_period: Start of the last period with data (partly observed).
        cohorts: Oldest first.
        repeat_purchase: Repeat purchasing.
        sessions: Session statistics.
    """

    period: str
    cohort_by: str
    activity: str
    last_period: date | None
    cohorts: tuple[Cohort, ...]
    repeat_purchase: RepeatPurchase
    sessions: SessionStats


def _period_index(ts: ibis.TimestampValue, period: str) -> ibis.IntegerValue:
    """A running period number: weeks since the epoch's Monday, or months since year 0."""
    if period == "week":
        # 1970-01-05 was a Monday: whole weeks since then, so truncation and indexing agree.
        monday = ibis.timestamp("1970-01-05 00:00:00").epoch_seconds()
        return ((ts.epoch_seconds() - monday) / 604_800).floor().cast("int64")
    return (ts.year() * 12 + ts.month() - 1).cast("int64")


def _period_start(index: int, period: str) -> date:
    if period == "week":
        return date.fromordinal(date(1970, 1, 5).toordinal() + 7 * index)
    return date(index // 12, index % 12 + 1, 1)


def _cohorts(events: ibis.Table, config: RetentionConfig) -> tuple[list[Cohort], date | None]:
    users = events.select(
        _user=events[USER_ID],
        _p=_period_index(events[TS], config.period),
        _buy=events[ACTION] == _PURCHASE,
    )
    last = fetch_rows(users.aggregate(last=users._p.max()))[0]["last"]
    if last is None:
        return [], None
    anchor = users if config.cohort_by == "first_activity" else users.filter(users._buy)
    first = anchor.group_by("_user").aggregate(_c=anchor._p.min())
    active = users if config.activity == "any" else users.filter(users._buy)
    activity = active.select("_user", "_p").distinct()
    joined = activity.join(first, "_user")
    offsets = joined.mutate(_k=joined._p - joined._c)
    offsets = offsets.filter((offsets._k >= 0) & (offsets._k <= config.max_periods))
    counts = offsets.group_by(["_c", "_k"]).aggregate(n=offsets._user.nunique())
    sizes = first.group_by("_c").aggregate(size=first._user.count())
    size_rows = fetch_rows(sizes.order_by(ibis.desc("_c")).limit(config.max_cohorts))
    kept = [int(r["_c"]) for r in size_rows]
    cells = {
        (int(r["_c"]), int(r["_k"])): int(r["n"])
        for r in fetch_rows(counts.filter(counts._c.isin(kept)))
    }
    cohorts = []
    for row in sorted(size_rows, key=lambda r: int(r["_c"])):
        c, size = int(row["_c"]), int(row["size"])
        retained = tuple(
            cells.get((c, k), 0) if c + k <= int(last) else None
            for k in range(config.max_periods + 1)
        )
        cohorts.append(
            Cohort(
                start=_period_start(c, config.period),
                size=size,
                retained=retained,
                rates=tuple(None if n is None else n / size for n in retained),
            )
        )
    return cohorts, _period_start(int(last), config.period)


def _repeat_purchase(events: ibis.Table) -> RepeatPurchase:
    buys = events.filter(events[ACTION] == _PURCHASE)
    orders = buys.group_by(USER_ID).aggregate(_orders=buys[SESSION_ID].nunique())
    row = fetch_rows(
        orders.aggregate(
            buyers=orders.count(),
            repeat=(orders._orders >= 2).cast("int64").sum(),
            mean=orders._orders.mean(),
        )
    )[0]
    buyers, repeat = int(row["buyers"] or 0), int(row["repeat"] or 0)
    return RepeatPurchase(
        n_buyers=buyers,
        n_repeat_buyers=repeat,
        rate=repeat / buyers if buyers else 0.0,
        mean_orders_per_buyer=float(row["mean"] or 0.0),
    )


def _session_stats(events: ibis.Table) -> SessionStats:
    sessions = events.group_by(SESSION_ID).aggregate(
        _user=events[USER_ID].arbitrary(),
        _n=events.count(),
        _seconds=(events[TS].max().epoch_seconds() - events[TS].min().epoch_seconds()).cast(
            "float64"
        ),
        _buy=(events[ACTION] == _PURCHASE).any(),
    )
    row = fetch_rows(
        sessions.aggregate(
            n=sessions.count(),
            users=sessions._user.nunique(),
            mean_events=sessions._n.mean(),
            median_events=sessions._n.cast("float64").median(),
            median_seconds=sessions._seconds.median(),
            mean_seconds=sessions._seconds.mean(),
            bounce=(sessions._n == 1).cast("float64").mean(),
            buy=sessions._buy.cast("float64").mean(),
        )
    )[0]
    n, users = int(row["n"] or 0), int(row["users"] or 0)
    return SessionStats(
        n_sessions=n,
        n_users=users,
        sessions_per_user=n / users if users else 0.0,
        mean_events=float(row["mean_events"] or 0.0),
        median_events=float(row["median_events"] or 0.0),
        median_duration_seconds=float(row["median_seconds"] or 0.0),
        mean_duration_seconds=float(row["mean_seconds"] or 0.0),
        bounce_rate=float(row["bounce"] or 0.0),
        purchase_rate=float(row["buy"] or 0.0),
    )


def retention(events: ibis.Table, config: RetentionConfig) -> RetentionResult:
    """Compute cohort retention, the repeat-purchase rate and session statistics.

    Args:
        events: Prepared events (``store.table("events_prepared")``).
        config: Period, cohort anchor and activity.

    Returns:
        The retention tables (empty cohorts when there are no events).
    """
    cohorts, last = _cohorts(events, config)
    return RetentionResult(
        period=config.period,
        cohort_by=config.cohort_by,
        activity=config.activity,
        last_period=last,
        cohorts=tuple(cohorts),
        repeat_purchase=_repeat_purchase(events),
        sessions=_session_stats(events),
    )
