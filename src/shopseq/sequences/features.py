"""Per-user features as of a cut time, and per-session prefix features, computed in the store.

Only events strictly before the cut-off are read (``ts < as_of`` for users; the first ``k`` events
of a session and the user's events before the session started, for session prefixes), so features
built for a test period never see it. Everything is an Ibis expression (DuckDB or Spark); nothing
loops over users in Python.

How :func:`user_features` is computed (it scores every owner of a store, so its plan matters):
each group of features is one aggregate that reads only its own columns of the stored events —
the order-free per-event aggregates (counts, sums, shares, times, price level), distinct items,
the gaps (the only features that need the events in order: one window, one sort, of six
columns), the sessions and the categories — and the per-user results are joined on the user.
Reading the events once per group costs a columnar scan each; sharing one subquery instead made
Ibis emit a CTE that DuckDB materialised with every column of every event, and sent the wide rows
through the window's sort. ``tests/sequences/test_features_reference.py`` keeps the earlier plan as
the reference every feature must equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import ibis
from pydantic import BaseModel, ConfigDict, model_validator

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

__all__ = [
    "CATEGORICAL_FEATURES",
    "CUTOFF",
    "USER_FEATURE_COLUMNS",
    "USER_KEY_COLUMNS",
    "FeatureConfig",
    "session_prefix_features",
    "user_features",
]

#: Column holding the cut-off an example was built at (the moment of prediction).
CUTOFF = "cutoff"

_DAY = 86_400.0


class FeatureConfig(BaseModel):
    """Windows of the per-user features.

    Attributes:
        lookback: Only events in ``[as_of - lookback, as_of)`` are read (``None``: all history).
        short_window: The recent window of the trend features (``*_7d`` by default).
        long_window: The longer window they are compared with (``*_30d`` by default).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lookback: timedelta | None = None
    short_window: timedelta = timedelta(days=7)
    long_window: timedelta = timedelta(days=30)

    @model_validator(mode="after")
    def _windows(self) -> FeatureConfig:
        if not timedelta(0) < self.short_window <= self.long_window:
            raise ValueError(
                f"need 0 < short_window <= long_window; got {self.short_window} and "
                f"{self.long_window}"
            )
        return self


#: Columns of :func:`user_features` that are not numeric model inputs.
USER_KEY_COLUMNS: tuple[str, ...] = (USER_ID, CUTOFF)
#: Columns of :func:`user_features`, in order (the order models were trained with).
USER_FEATURE_COLUMNS: tuple[str, ...] = (
    USER_ID,
    "frequency",
    "monetary",
    "n_events",
    "n_items",
    "n_categories",
    "n_purchase_days",
    "mean_gap_seconds",
    "median_gap_seconds",
    "mean_dwell_seconds",
    "median_dwell_seconds",
    "mean_session_gap_hours",
    "median_session_gap_hours",
    "std_session_gap_hours",
    "n_events_short",
    "n_events_long",
    "n_cart_short",
    "n_purchase_short",
    "n_purchase_long",
    "weekend_share",
    "evening_share",
    "night_share",
    "hour_sin",
    "hour_cos",
    "share_at_cutoff_hour",
    "share_at_cutoff_weekday",
    "mean_price",
    "price_vs_category",
    "purchase_price_vs_category",
    "last_action",
    *(f"n_{a.value}" for a in Action),
    *(f"share_{a.value}" for a in Action),
    "n_sessions",
    "n_sessions_short",
    "mean_session_events",
    "max_session_events",
    "mean_session_seconds",
    "abandoned_carts",
    "abandoned_carts_short",
    "buying_session_share",
    "category_entropy",
    "top_category_share",
    CUTOFF,
    "recency_days",
    "purchase_recency_days",
    "cart_recency_days",
    "tenure_days",
    "first_purchase_age_days",
    "purchase_span_days",
    "avg_purchase_day_value",
    "cart_to_purchase",
    "activity_trend",
)
#: Categorical feature columns (strings: the action of the last event).
CATEGORICAL_FEATURES: tuple[str, ...] = ("last_action",)


def _seconds(column: ibis.TimestampValue) -> ibis.IntegerValue:
    # Truncate first: epoch_seconds() keeps fractions on DuckDB but not on Spark (STACK.md).
    return column.truncate("s").epoch_seconds().cast("int64")


def _order(table: ibis.Table) -> list[ibis.Value]:
    """The total order of events within an owner (the one every stage uses)."""
    return [table[TS], table[SOURCE_FILE_ID], table[SOURCE_ROW]]


def _days(seconds: ibis.NumericValue) -> ibis.FloatingValue:
    # Cast first: Spark reads the literal 86400.0 as a decimal and would divide in decimals.
    return seconds.cast("float64") / _DAY


def _ratio(numerator: ibis.NumericValue, denominator: ibis.NumericValue) -> ibis.NumericValue:
    """``numerator / denominator`` as float, null where the denominator is 0 or null."""
    return ibis.ifelse(denominator > 0, numerator.cast("float64") / denominator, ibis.null())


def _where(condition: ibis.BooleanValue, value: ibis.NumericValue) -> ibis.NumericValue:
    """``value`` where ``condition`` holds, else null (aggregates skip nulls).

    Used instead of ``median(where=...)``: Ibis 12 compiles that to a Spark ``percentile`` whose
    percentage is not a constant, which Spark rejects.
    """
    return ibis.ifelse(condition, value, ibis.null()).cast("float64")


def _past_events(
    events: ibis.Table, as_of: datetime, config: FeatureConfig, columns: Sequence[str]
) -> ibis.Table:
    """The ``columns`` of the events before ``as_of`` (within the lookback).

    Each group of features asks for its own columns, so each reads the stored events itself
    (a columnar scan of a few columns) instead of sharing one subquery: Ibis turns a shared
    subquery into a CTE, which DuckDB materialises whole (every column of every event) before
    the first use.
    """
    past = events.filter(events[TS] < ibis.literal(as_of))
    if config.lookback is not None:
        past = past.filter(past[TS] >= ibis.literal(as_of - config.lookback))
    return past.select(*columns)


def _category_medians(events: ibis.Table, as_of: datetime, config: FeatureConfig) -> ibis.Table:
    """Each category's median price over every user's events before the cut-off."""
    priced = _past_events(events, as_of, config, [CATEGORY_ID, PRICE])
    priced = priced.filter(priced[PRICE].notnull() & priced[CATEGORY_ID].notnull())
    medians = priced.group_by(CATEGORY_ID).aggregate(_cat_median=priced[PRICE].median())
    return medians.rename(_median_category=CATEGORY_ID)


def _user_gap_aggregates(events: ibis.Table, as_of: datetime, config: FeatureConfig) -> ibis.Table:
    """Gaps between a user's consecutive events (all, within a session, between sessions).

    The only features that need the events in order: one window (lag and lead over the same
    order: one sort) over the few columns they read, so the sort moves little data.
    """
    ev = _past_events(
        events, as_of, config, [USER_ID, TS, SOURCE_FILE_ID, SOURCE_ROW, SESSION_ID, ACTION]
    )
    window = ibis.window(group_by=ev[USER_ID], order_by=_order(ev))
    sec = _seconds(ev[TS])
    ev = ev.mutate(
        _gap=(sec - sec.lag().over(window)).cast("float64"),
        _same_session=ev[SESSION_ID].lag().over(window) == ev[SESSION_ID],
        # ts is never null before a cut-off, so no next ts means the user's last event.
        _is_last=ev[TS].lead().over(window).isnull(),
    )
    gap, same_session = ev._gap, ev._same_session
    return ev.group_by(USER_ID).aggregate(
        mean_gap_seconds=gap.mean(),
        median_gap_seconds=gap.median(),
        mean_dwell_seconds=gap.mean(where=same_session),
        median_dwell_seconds=_where(same_session, gap).median(),
        mean_session_gap_hours=gap.mean(where=~same_session) / 3600.0,
        median_session_gap_hours=_where(~same_session, gap).median() / 3600.0,
        std_session_gap_hours=gap.std(where=~same_session) / 3600.0,
        last_action=ev[ACTION].max(where=ev._is_last),
    )


def _user_event_aggregates(
    events: ibis.Table, as_of: datetime, config: FeatureConfig
) -> ibis.Table:
    """Everything that is a plain aggregate of a user's events (no order needed).

    Written for the engine's cost per event: integer counts are ``count(where=...)`` (DuckDB sums
    an integer column into a 128-bit accumulator, twice as slow), and times are kept as
    timestamps until after the aggregate (the first, last, first-purchase day ... are converted
    to seconds once per user, not once per event; truncation is monotone, so the values are the
    same).
    """
    past = _past_events(events, as_of, config, [USER_ID, ACTION, TS, CATEGORY_ID, PRICE, QUANTITY])
    medians = _category_medians(events, as_of, config)
    ev = past.left_join(medians, past[CATEGORY_ID] == medians._median_category)
    action = ev[ACTION]
    ts = ev[TS]
    is_purchase = action == Action.PURCHASE.value
    is_cart = action == Action.CART.value
    value = ev[PRICE].fill_null(0.0) * ev[QUANTITY].fill_null(1).cast("float64")
    short = ts >= ibis.literal(as_of - config.short_window)
    long = ts >= ibis.literal(as_of - config.long_window)
    hour = ts.hour()
    weekday = ts.day_of_week.index()
    as_of_weekday = (as_of.weekday(), as_of.hour)
    counts = {f"n_{a.value}": ev.count(where=action == a.value) for a in Action}
    return ev.group_by(USER_ID).aggregate(
        _last_ts=ts.max(),
        _first_ts=ts.min(),
        _last_purchase_ts=ts.max(where=is_purchase),
        _first_purchase_ts=ts.min(where=is_purchase),
        _last_cart_ts=ts.max(where=is_cart),
        monetary=ibis.ifelse(is_purchase, value, 0.0).sum(),
        n_events=ev.count(),
        n_purchase_days=ts.truncate("D").nunique(where=is_purchase),
        n_events_short=ev.count(where=short),
        n_events_long=ev.count(where=long),
        n_cart_short=ev.count(where=short & is_cart),
        n_purchase_short=ev.count(where=short & is_purchase),
        n_purchase_long=ev.count(where=long & is_purchase),
        weekend_share=(weekday >= 5).cast("float64").mean(),
        evening_share=(hour >= 18).cast("float64").mean(),
        night_share=(hour < 6).cast("float64").mean(),
        # Events per hour of the day: hour_sin / hour_cos are summed from these after the
        # aggregate, in a fixed order, so every engine gets the same bits (a mean of cosines
        # summed in the engine's own order is last-bit noise around 0 that differs by engine).
        **{f"_hour_{h}": ev.count(where=hour == h) for h in range(24)},
        # Habit at the moment of prediction: how often this user is active at this hour / day.
        share_at_cutoff_hour=(hour == as_of_weekday[1]).cast("float64").mean(),
        share_at_cutoff_weekday=(weekday == as_of_weekday[0]).cast("float64").mean(),
        mean_price=ev[PRICE].mean(),
        price_vs_category=(ev[PRICE] / ev._cat_median).mean(where=ev._cat_median > 0),
        purchase_price_vs_category=(ev[PRICE] / ev._cat_median).mean(
            where=is_purchase & (ev._cat_median > 0)
        ),
        **counts,
    )


def _user_item_counts(events: ibis.Table, as_of: datetime, config: FeatureConfig) -> ibis.Table:
    """Distinct items per user, as the number of (user, item) groups.

    Cheaper than a ``nunique`` inside the event aggregate: DuckDB's distinct aggregates slowed
    every other aggregate of that query (measured: 1.3 of 3.0 CPU seconds on 1.5 M events).
    """
    ev = _past_events(events, as_of, config, [USER_ID, ITEM_ID])
    pairs = ev.group_by([USER_ID, ITEM_ID]).aggregate()
    return pairs.group_by(USER_ID).aggregate(n_items=pairs.count())


def _user_session_aggregates(
    events: ibis.Table, as_of: datetime, config: FeatureConfig
) -> ibis.Table:
    ev = _past_events(events, as_of, config, [USER_ID, SESSION_ID, TS, ACTION])
    action = ev[ACTION]
    sessions = ev.group_by([USER_ID, SESSION_ID]).aggregate(
        _n=ev.count(),
        _start=ev[TS].min(),
        _end=ev[TS].max(),
        _cart=(action == Action.CART.value).cast("int64").max(),
        _buy=(action == Action.PURCHASE.value).cast("int64").max(),
    )
    abandoned = (sessions._cart == 1) & (sessions._buy == 0)
    short = sessions._start >= ibis.literal(as_of - config.short_window)
    seconds = (_seconds(sessions._end) - _seconds(sessions._start)).cast("float64")
    return sessions.group_by(USER_ID).aggregate(
        n_sessions=sessions.count(),
        n_sessions_short=sessions.count(where=short),
        mean_session_events=sessions._n.mean(),
        max_session_events=sessions._n.max(),
        mean_session_seconds=seconds.mean(),
        abandoned_carts=sessions.count(where=abandoned),
        abandoned_carts_short=sessions.count(where=abandoned & short),
        buying_session_share=sessions._buy.cast("float64").mean(),
    )


def _user_category_aggregates(
    events: ibis.Table, as_of: datetime, config: FeatureConfig
) -> ibis.Table:
    ev = _past_events(events, as_of, config, [USER_ID, CATEGORY_ID])
    known = ev.filter(ev[CATEGORY_ID].notnull())
    per_category = known.group_by([USER_ID, CATEGORY_ID]).aggregate(_c=known.count())
    count = per_category._c.cast("float64")
    totals = per_category.group_by(USER_ID).aggregate(
        # One row per known category: their number is the count of distinct categories.
        n_categories=per_category.count(),
        _total=count.sum(),
        _c_log_c=(count * count.ln()).sum(),
        _top=count.max(),
    )
    # Entropy of the category mix in nats: ln N - sum(c ln c) / N (one pass, no second join).
    return totals.select(
        USER_ID,
        "n_categories",
        category_entropy=totals._total.ln() - totals._c_log_c / totals._total,
        top_category_share=totals._top / totals._total,
    )


def user_features(
    events: ibis.Table, as_of: datetime, config: FeatureConfig | None = None
) -> ibis.Table:
    """Build one row of features per user from their events before ``as_of``.

    Columns (``_short`` / ``_long`` are the config's windows before ``as_of``, 7 and 30 days by
    default):

    * keys: ``user_id``, ``cutoff`` (``as_of``);
    * recency, frequency, monetary: ``recency_days``, ``purchase_recency_days``,
      ``cart_recency_days`` (null if never), ``frequency`` (purchase events), ``monetary`` (sum of
      price x quantity of purchases), ``n_purchase_days``, ``first_purchase_age_days`` and
      ``purchase_span_days`` (the BG/NBD ``T`` and ``t_x`` in days), ``avg_purchase_day_value``;
    * volume and mix: ``n_events``, ``n_items``, ``n_categories``, ``tenure_days``,
      ``n_<action>`` and ``share_<action>`` for every action, ``last_action`` (categorical);
    * funnel: ``cart_to_purchase`` (purchases per cart), ``abandoned_carts`` (sessions with a cart
      and no purchase), ``abandoned_carts_short``, ``buying_session_share``;
    * sessions: ``n_sessions``, ``n_sessions_short``, ``mean_session_events``,
      ``max_session_events``, ``mean_session_seconds``;
    * time: ``mean_gap_seconds`` / ``median_gap_seconds`` (between consecutive events),
      ``mean_dwell_seconds`` / ``median_dwell_seconds`` (within a session),
      ``mean_session_gap_hours`` / ``median_session_gap_hours`` / ``std_session_gap_hours``
      (between sessions);
    * trend: ``n_events_short``, ``n_events_long``, ``activity_trend`` (daily rate in the short
      window over the long one; 1 = steady), ``n_cart_short``, ``n_purchase_short``,
      ``n_purchase_long``;
    * category mix: ``category_entropy`` (nats), ``top_category_share``;
    * habits: ``weekend_share``, ``evening_share`` (18-24 h), ``night_share`` (0-6 h),
      ``hour_sin`` / ``hour_cos`` (mean of the hour on the clock circle),
      ``share_at_cutoff_hour`` / ``share_at_cutoff_weekday`` (events at the cut-off's hour /
      weekday);
    * price: ``mean_price``, ``price_vs_category`` (mean price over the category's median price,
      medians from all users' events before ``as_of``), ``purchase_price_vs_category``.

    Args:
        events: Prepared events (sessionised).
        as_of: Cut time (naive UTC); events at or after it are ignored.
        config: Feature windows (default :class:`FeatureConfig`).

    Returns:
        The feature table (an expression; any engine).
    """
    config = config or FeatureConfig()
    per_event = _user_event_aggregates(events, as_of, config)
    items = _user_item_counts(events, as_of, config).rename(_i_user=USER_ID)
    gaps = _user_gap_aggregates(events, as_of, config).rename(_g_user=USER_ID)
    per_session = _user_session_aggregates(events, as_of, config).rename(_s_user=USER_ID)
    per_category = _user_category_aggregates(events, as_of, config).rename(_c_user=USER_ID)
    joined = per_event.left_join(items, per_event[USER_ID] == items._i_user)
    joined = joined.left_join(gaps, joined[USER_ID] == gaps._g_user)
    joined = joined.left_join(per_session, joined[USER_ID] == per_session._s_user)
    joined = joined.left_join(per_category, joined[USER_ID] == per_category._c_user)
    as_of_lit = ibis.literal(as_of)
    as_of_s = _seconds(as_of_lit)
    short_days = config.short_window.total_seconds() / _DAY
    long_days = config.long_window.total_seconds() / _DAY
    last = _seconds(joined._last_ts)
    # Starts of the first and last purchase days (UTC), in seconds.
    first_purchase_day = _seconds(joined._first_purchase_ts.truncate("D"))
    last_purchase_day = _seconds(joined._last_purchase_ts.truncate("D"))
    features = joined.mutate(
        # A share of the events is their count over all of them (as the mean of 0/1 did).
        **{
            f"share_{a.value}": joined[f"n_{a.value}"].cast("float64") / joined.n_events
            for a in Action
        },
        **{CUTOFF: as_of_lit},
        # Every user with an event has a category row unless none of their events has one.
        n_categories=joined.n_categories.fill_null(0),
        frequency=joined.n_purchase,
        recency_days=_days(as_of_s - last),
        purchase_recency_days=_days(as_of_s - _seconds(joined._last_purchase_ts)),
        cart_recency_days=_days(as_of_s - _seconds(joined._last_cart_ts)),
        tenure_days=_days(last - _seconds(joined._first_ts)),
        first_purchase_age_days=_days(as_of_s - first_purchase_day),
        purchase_span_days=_days(last_purchase_day - first_purchase_day),
        avg_purchase_day_value=_ratio(joined.monetary, joined.n_purchase_days),
        cart_to_purchase=_ratio(joined.n_purchase, joined.n_cart),
        activity_trend=_ratio(
            joined.n_events_short.cast("float64") / short_days,
            joined.n_events_long.cast("float64") / long_days,
        ),
        category_entropy=joined.category_entropy.fill_null(0.0),
        hour_sin=_clock_mean(joined, math.sin),
        hour_cos=_clock_mean(joined, math.cos),
    )
    return features.select(*USER_FEATURE_COLUMNS)


def _clock_mean(joined: ibis.Table, function: Callable[[float], float]) -> ibis.FloatingValue:
    """Mean of ``function(hour * 2 pi / 24)`` over a user's events, from their hour counts."""
    total: ibis.FloatingValue = ibis.literal(0.0)
    for h in range(24):
        total = total + joined[f"_hour_{h}"].cast("float64") * function(h * 2 * math.pi / 24)
    return total / joined.n_events


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
