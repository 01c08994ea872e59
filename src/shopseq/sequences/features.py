"""Per-user features as of a cut time, and per-session prefix features, computed in the store.

Only events strictly before the cut-off are read (``ts < as_of`` for users; the first ``k`` events
of a session and the user's events before the session started, for session prefixes), so features
built for a test period never see it. Everything is an Ibis expression (DuckDB or Spark); nothing
loops over users in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import ibis
from pydantic import BaseModel, ConfigDict

from shopseq.errors import InputError
from shopseq.schema import (
    ACTION,
    CATEGORY_ID,
    ITEM_ID,
    PRICE,
    QUANTITY,
    SESSION_ID,
    SOURCE_FILE_ID,
    SOURCE_ROW,
    TS,
    USER_ID,
    Action,
)

__all__ = ["CUTOFF", "FeatureConfig", "session_prefix_features", "user_features"]

#: Column holding the cut-off an example was built at (the moment of prediction).
CUTOFF = "cutoff"

_DAY = 86_400.0


class FeatureConfig(BaseModel):
    """Windows of the per-user features.

    Attributes:
        lookback: Only events in ``[as_of - lookback, as_of)`` are read (``None``: all history).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lookback: timedelta | None = None


def _seconds(column: ibis.TimestampValue) -> ibis.IntegerValue:
    # Truncate first: epoch_seconds() keeps fractions on DuckDB but not on Spark (STACK.md).
    return column.truncate("s").epoch_seconds().cast("int64")


def _order(table: ibis.Table) -> list[ibis.Value]:
    """The total order of events within an owner (the one every stage uses)."""
    return [table[TS], table[SOURCE_FILE_ID], table[SOURCE_ROW]]


def user_features(
    events: ibis.Table, as_of: datetime, config: FeatureConfig | None = None
) -> ibis.Table:
    """Build one row of features per user from their events before ``as_of``.

    Columns: ``cutoff`` (``as_of``), ``recency_days`` (since the last event),
    ``purchase_recency_days`` (null if never bought), ``frequency`` (purchases), ``monetary`` (sum
    of price x quantity of purchases), ``n_events``, ``n_sessions``, ``n_items``,
    ``n_categories``, ``tenure_days``, ``mean_gap_seconds`` (between consecutive events), and
    ``share_<action>`` for every action.

    Args:
        events: Prepared events (sessionised).
        as_of: Cut time (naive UTC); events at or after it are ignored.
        config: Feature windows (default :class:`FeatureConfig`).

    Returns:
        The feature table (an expression; any engine).
    """
    config = config or FeatureConfig()
    as_of_lit = ibis.literal(as_of)
    past = events.filter(events[TS] < as_of_lit)
    if config.lookback is not None:
        past = past.filter(past[TS] >= ibis.literal(as_of - config.lookback))
    window = ibis.window(group_by=past[USER_ID], order_by=_order(past))
    with_gap = past.mutate(_sec=_seconds(past[TS]), _prev=_seconds(past[TS]).lag().over(window))
    gap_seconds = (with_gap._sec - with_gap._prev).cast("float64")
    is_purchase = with_gap[ACTION] == Action.PURCHASE.value
    spend = ibis.ifelse(
        is_purchase, with_gap[PRICE].fill_null(0) * with_gap[QUANTITY].fill_null(1), 0
    )
    shares = {
        f"share_{action.value}": (with_gap[ACTION] == action.value).cast("float64").mean()
        for action in Action
    }
    grouped = with_gap.group_by(USER_ID).aggregate(
        _last=with_gap._sec.max(),
        _first=with_gap._sec.min(),
        _last_purchase=with_gap._sec.max(where=is_purchase),
        frequency=is_purchase.cast("int64").sum(),
        monetary=spend.sum(),
        n_events=with_gap.count(),
        n_sessions=with_gap[SESSION_ID].nunique(),
        n_items=with_gap[ITEM_ID].nunique(),
        n_categories=with_gap[CATEGORY_ID].nunique(),
        mean_gap_seconds=gap_seconds.mean(),
        **shares,
    )
    as_of_s = _seconds(as_of_lit)
    return grouped.mutate(
        **{CUTOFF: as_of_lit},
        recency_days=(as_of_s - grouped._last) / _DAY,
        purchase_recency_days=(as_of_s - grouped._last_purchase) / _DAY,
        tenure_days=(grouped._last - grouped._first) / _DAY,
    ).drop("_last", "_first", "_last_purchase")


def _user_history(events: ibis.Table) -> ibis.Table:
    """Per (user, distinct time): the user's events and purchases strictly before that time."""
    is_purchase = (events[ACTION] == Action.PURCHASE.value).cast("int64")
    per_time = events.group_by([USER_ID, TS]).aggregate(_n=events.count(), _buys=is_purchase.sum())
    window = ibis.window(group_by=per_time[USER_ID], order_by=per_time[TS], rows=(None, 0))
    ordered = ibis.window(group_by=per_time[USER_ID], order_by=per_time[TS])
    return per_time.select(
        _hist_user=per_time[USER_ID],
        _hist_ts=per_time[TS],
        # Cumulative sums up to and including this time, minus this time: strictly before it.
        user_prior_events=per_time._n.sum().over(window) - per_time._n,
        user_prior_purchases=per_time._buys.sum().over(window) - per_time._buys,
        _prev_ts=_seconds(per_time[TS].lag().over(ordered)),
    )


def session_prefix_features(events: ibis.Table, positions: Sequence[int]) -> ibis.Table:
    """Features of every session after its first ``k`` events, for each ``k`` in ``positions``.

    A session has a row for ``k`` when it has at least ``k`` events and none of its first ``k``
    is a purchase (after a purchase there is nothing left to predict). Features read only those
    ``k`` events and the user's events strictly before the session's first event.

    Columns: ``user_id``, ``session_id``, ``k``, ``cutoff`` (time of the ``k``-th event: the
    moment of prediction), ``n_<action>`` counts, ``n_items``, ``n_categories``,
    ``repeat_events`` (events on an item already seen in the prefix), ``duration_seconds``,
    ``last_dwell_seconds`` (null for ``k = 1``), ``last_action``, ``max_price``, ``mean_price``,
    ``cart_value``, ``start_hour``, ``start_weekday`` (Monday 0), ``user_prior_events``,
    ``user_prior_purchases``, ``user_prior_sessions`` and ``seconds_since_prev_event`` (null for a
    user's first session).

    Args:
        events: Prepared (sessionised) events.
        positions: Prefix lengths, each >= 1.

    Returns:
        One row per (session, k) (an expression; any engine).

    Raises:
        InputError: If ``positions`` is empty or holds a value below 1.
    """
    if not positions or min(positions) < 1:
        raise InputError(f"positions must be integers >= 1; got {list(positions)}")
    keys = [USER_ID, SESSION_ID]
    window = ibis.window(group_by=[events[k] for k in keys], order_by=_order(events))
    ranked = events.mutate(_pos=ibis.row_number().over(window), _sec=_seconds(events[TS]))
    starts = ranked.filter(ranked._pos == 0)
    session_order = ibis.window(group_by=starts[USER_ID], order_by=starts[TS])
    starts = starts.select(
        _start_user=starts[USER_ID],
        _start_session=starts[SESSION_ID],
        _start_ts=starts[TS],
        # Sessions of this user that started strictly earlier (rank counts smaller values).
        user_prior_sessions=ibis.rank().over(session_order),
    )
    history = _user_history(events)
    starts = starts.left_join(
        history,
        (starts._start_user == history._hist_user) & (starts._start_ts == history._hist_ts),
    )
    starts = starts.select(
        "_start_user",
        "_start_session",
        "user_prior_sessions",
        "user_prior_events",
        "user_prior_purchases",
        seconds_since_prev_event=(_seconds(starts._start_ts) - starts._prev_ts).cast("float64"),
    )

    tables = []
    for k in positions:  # one aggregation per prefix length (a handful), not per session
        prefix = ranked.filter(ranked._pos < k)
        action = prefix[ACTION]
        counts = {
            f"n_{a.value}": (action == a.value).cast("int64").sum()
            for a in Action
            if a is not Action.PURCHASE
        }
        agg = prefix.group_by(keys).aggregate(
            _n=prefix.count(),
            _buys=(action == Action.PURCHASE.value).cast("int64").sum(),
            _first=prefix._sec.min(),
            _last=prefix._sec.max(),
            _before_last=prefix._sec.max(where=prefix._pos == k - 2),
            _start=prefix[TS].min(),
            **{CUTOFF: prefix[TS].max()},
            last_action=action.max(where=prefix._pos == k - 1),
            n_items=prefix[ITEM_ID].nunique(),
            n_categories=prefix[CATEGORY_ID].nunique(),
            max_price=prefix[PRICE].max(),
            mean_price=prefix[PRICE].mean(),
            cart_value=ibis.ifelse(action == Action.CART.value, prefix[PRICE], 0.0).sum(),
            **counts,
        )
        agg = agg.filter((agg._n == k) & (agg._buys == 0))
        tables.append(
            agg.mutate(
                k=ibis.literal(k, "int64"),
                repeat_events=agg._n - agg.n_items,
                duration_seconds=(agg._last - agg._first).cast("float64"),
                last_dwell_seconds=(agg._last - agg._before_last).cast("float64"),
                start_hour=agg._start.hour().cast("int64"),
                start_weekday=agg._start.day_of_week.index().cast("int64"),
            ).drop("_n", "_buys", "_first", "_last", "_before_last", "_start")
        )
    prefixes = tables[0]
    for table in tables[1:]:
        prefixes = prefixes.union(table)
    joined = prefixes.inner_join(
        starts,
        (prefixes[USER_ID] == starts._start_user) & (prefixes[SESSION_ID] == starts._start_session),
    )
    return joined.drop("_start_user", "_start_session")
