"""Per-user features computed as of a cut time (RFM, time gaps, action and category mix).

Only events strictly before ``as_of`` are read, so features built for a test period never see it.
"""

from __future__ import annotations

from datetime import datetime

import ibis

from shopseq.schema import ACTION, CATEGORY_ID, PRICE, QUANTITY, SESSION_ID, TS, USER_ID, Action

__all__ = ["user_features"]


def user_features(events: ibis.Table, as_of: datetime) -> ibis.Table:
    """Build one row of features per user from their events before ``as_of``.

    Columns: ``recency_days`` (since the last event), ``purchase_recency_days`` (null if never
    bought), ``frequency`` (purchases), ``monetary`` (sum of price x quantity of purchases),
    ``n_events``, ``n_sessions``, ``n_items``, ``n_categories``, ``tenure_days``,
    ``mean_gap_seconds`` (between consecutive events), and ``share_<action>`` for every action.

    Args:
        events: Prepared events (sessionised).
        as_of: Cut time (naive UTC); events at or after it are ignored.

    Returns:
        The feature table (an expression; any engine).
    """
    past = events.filter(events[TS] < ibis.literal(as_of))
    window = ibis.window(group_by=past[USER_ID], order_by=past[TS])
    with_gap = past.mutate(_prev=past[TS].lag().over(window))
    gap_seconds = (with_gap[TS].epoch_seconds() - with_gap._prev.epoch_seconds()).cast("float64")
    is_purchase = with_gap[ACTION] == Action.PURCHASE.value
    spend = ibis.ifelse(
        is_purchase, with_gap[PRICE].fill_null(0) * with_gap[QUANTITY].fill_null(1), 0
    )
    shares = {
        f"share_{action.value}": (with_gap[ACTION] == action.value).cast("float64").mean()
        for action in Action
    }
    grouped = with_gap.group_by(USER_ID).aggregate(
        _last=with_gap[TS].max(),
        _first=with_gap[TS].min(),
        _last_purchase=with_gap[TS].max(where=is_purchase),
        frequency=is_purchase.cast("int64").sum(),
        monetary=spend.sum(),
        n_events=with_gap.count(),
        n_sessions=with_gap[SESSION_ID].nunique(),
        n_items=with_gap["item_id"].nunique(),
        n_categories=with_gap[CATEGORY_ID].nunique(),
        mean_gap_seconds=gap_seconds.mean(),
        **shares,
    )
    as_of_lit = ibis.literal(as_of)
    day = 86_400.0
    return grouped.mutate(
        recency_days=(as_of_lit.epoch_seconds() - grouped._last.epoch_seconds()) / day,
        purchase_recency_days=(as_of_lit.epoch_seconds() - grouped._last_purchase.epoch_seconds())
        / day,
        tenure_days=(grouped._last.epoch_seconds() - grouped._first.epoch_seconds()) / day,
    ).drop("_last", "_first", "_last_purchase")
