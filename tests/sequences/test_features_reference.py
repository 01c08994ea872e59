"""``user_features`` equals the plan it replaced (issue 10), feature for feature, on edge cases.

``reference_user_features`` below is ``user_features`` as it was before issue 10 made it fast
(main 3995eb0): one shared subquery of the events, a window over all its columns feeding one big
per-event aggregate, and the session and category aggregates joined on the user. It is kept
here as the specification: every feature of the fast version must equal it, on a generated log
plus hand-written edge cases (ties and sub-second times, interleaved and missing session ids,
missing categories, prices and quantities, zero prices, events at and after the cut-off,
one-event users), for several cut-offs and windows.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import ibis
import numpy as np
import pyarrow as pa
import pytest
from events_factory import BASE, event_rows

from shopseq.prepare import SessionizeConfig, sessionize
from shopseq.schema import (
    ACTION,
    CATEGORY_ID,
    ITEM_ID,
    PRICE,
    QUANTITY,
    SESSION_ID,
    SOURCE_FILE_ID,
    SOURCE_ROW,
    STORED_SCHEMA,
    TS,
    USER_ID,
    Action,
)
from shopseq.sequences.features import CUTOFF, FeatureConfig, user_features
from shopseq.store import Store
from shopseq.synthetic import GeneratorConfig, generate_events

_DAY = 86_400.0

# --- the reference: user_features of main 3995eb0, unchanged but for its name and docstring ---


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


def _past_events(events: ibis.Table, as_of: datetime, config: FeatureConfig) -> ibis.Table:
    """Events before ``as_of`` (within the lookback)."""
    past = events.filter(events[TS] < ibis.literal(as_of))
    if config.lookback is not None:
        past = past.filter(past[TS] >= ibis.literal(as_of - config.lookback))
    return past


def _with_neighbours(past: ibis.Table) -> ibis.Table:
    """``past`` with the per-event columns of the event aggregates (gaps, last event, price level).

    Only the per-event aggregates read these: the session and category aggregates start from
    ``past`` itself, so the engine sorts the events once, not once per aggregate (Ibis inlines a
    shared subquery, and DuckDB then computes its windows again for every use). One window spec
    (lag and lead over the same order) is one sort.
    """
    window = ibis.window(group_by=past[USER_ID], order_by=_order(past))
    sec = _seconds(past[TS])
    with_prev = past.mutate(
        _sec=sec,
        _prev_sec=sec.lag().over(window),
        _prev_session=past[SESSION_ID].lag().over(window),
        # ts is never null before a cut-off, so no next ts means the user's last event.
        _is_last=past[TS].lead().over(window).isnull(),
    )
    # Price level: the event's price against its category's median price before the cut-off.
    priced = past.filter(past[PRICE].notnull() & past[CATEGORY_ID].notnull())
    medians = priced.group_by(CATEGORY_ID).aggregate(_cat_median=priced[PRICE].median())
    medians = medians.rename(_median_category=CATEGORY_ID)
    joined = with_prev.left_join(medians, with_prev[CATEGORY_ID] == medians._median_category)
    return joined.drop("_median_category")


def _user_event_aggregates(ev: ibis.Table, as_of: datetime, config: FeatureConfig) -> ibis.Table:
    action = ev[ACTION]
    is_purchase = action == Action.PURCHASE.value
    is_cart = action == Action.CART.value
    value = ev[PRICE].fill_null(0.0) * ev[QUANTITY].fill_null(1).cast("float64")
    gap = (ev._sec - ev._prev_sec).cast("float64")
    same_session = ev._prev_session == ev[SESSION_ID]
    short = ev[TS] >= ibis.literal(as_of - config.short_window)
    long = ev[TS] >= ibis.literal(as_of - config.long_window)
    hour = ev[TS].hour()
    day = _seconds(ev[TS].truncate("D"))  # start of the event's day (UTC), in seconds
    weekday = ev[TS].day_of_week.index()
    as_of_weekday = (as_of.weekday(), as_of.hour)
    angle = hour.cast("float64") * (2 * math.pi / 24)
    counts = {f"n_{a.value}": (action == a.value).cast("int64").sum() for a in Action}
    shares = {f"share_{a.value}": (action == a.value).cast("float64").mean() for a in Action}
    return ev.group_by(USER_ID).aggregate(
        _last=ev._sec.max(),
        _first=ev._sec.min(),
        _last_purchase=ev._sec.max(where=is_purchase),
        _first_purchase_day=day.min(where=is_purchase),
        _last_purchase_day=day.max(where=is_purchase),
        _last_cart=ev._sec.max(where=is_cart),
        frequency=is_purchase.cast("int64").sum(),
        monetary=ibis.ifelse(is_purchase, value, 0.0).sum(),
        n_events=ev.count(),
        n_items=ev[ITEM_ID].nunique(),
        n_categories=ev[CATEGORY_ID].nunique(),
        n_purchase_days=day.nunique(where=is_purchase),
        mean_gap_seconds=gap.mean(),
        median_gap_seconds=gap.median(),
        mean_dwell_seconds=gap.mean(where=same_session),
        median_dwell_seconds=_where(same_session, gap).median(),
        mean_session_gap_hours=gap.mean(where=~same_session) / 3600.0,
        median_session_gap_hours=_where(~same_session, gap).median() / 3600.0,
        std_session_gap_hours=gap.std(where=~same_session) / 3600.0,
        n_events_short=short.cast("int64").sum(),
        n_events_long=long.cast("int64").sum(),
        n_cart_short=(short & is_cart).cast("int64").sum(),
        n_purchase_short=(short & is_purchase).cast("int64").sum(),
        n_purchase_long=(long & is_purchase).cast("int64").sum(),
        weekend_share=(weekday >= 5).cast("float64").mean(),
        evening_share=(hour >= 18).cast("float64").mean(),
        night_share=(hour < 6).cast("float64").mean(),
        hour_sin=angle.sin().mean(),
        hour_cos=angle.cos().mean(),
        # Habit at the moment of prediction: how often this user is active at this hour / day.
        share_at_cutoff_hour=(hour == as_of_weekday[1]).cast("float64").mean(),
        share_at_cutoff_weekday=(weekday == as_of_weekday[0]).cast("float64").mean(),
        mean_price=ev[PRICE].mean(),
        price_vs_category=(ev[PRICE] / ev._cat_median).mean(where=ev._cat_median > 0),
        purchase_price_vs_category=(ev[PRICE] / ev._cat_median).mean(
            where=is_purchase & (ev._cat_median > 0)
        ),
        last_action=action.max(where=ev._is_last),
        **counts,
        **shares,
    )


def _user_session_aggregates(ev: ibis.Table, as_of: datetime, config: FeatureConfig) -> ibis.Table:
    action = ev[ACTION]
    sec = _seconds(ev[TS])
    sessions = ev.group_by([USER_ID, SESSION_ID]).aggregate(
        _n=ev.count(),
        _seconds=(sec.max() - sec.min()).cast("float64"),
        _start=ev[TS].min(),
        _cart=(action == Action.CART.value).cast("int64").max(),
        _buy=(action == Action.PURCHASE.value).cast("int64").max(),
    )
    abandoned = (sessions._cart == 1) & (sessions._buy == 0)
    short = sessions._start >= ibis.literal(as_of - config.short_window)
    return sessions.group_by(USER_ID).aggregate(
        n_sessions=sessions.count(),
        n_sessions_short=short.cast("int64").sum(),
        mean_session_events=sessions._n.mean(),
        max_session_events=sessions._n.max(),
        mean_session_seconds=sessions._seconds.mean(),
        abandoned_carts=abandoned.cast("int64").sum(),
        abandoned_carts_short=(abandoned & short).cast("int64").sum(),
        buying_session_share=sessions._buy.cast("float64").mean(),
    )


def _user_category_aggregates(ev: ibis.Table) -> ibis.Table:
    known = ev.filter(ev[CATEGORY_ID].notnull())
    per_category = known.group_by([USER_ID, CATEGORY_ID]).aggregate(_c=known.count())
    count = per_category._c.cast("float64")
    totals = per_category.group_by(USER_ID).aggregate(
        _total=count.sum(), _c_log_c=(count * count.ln()).sum(), _top=count.max()
    )
    # Entropy of the category mix in nats: ln N - sum(c ln c) / N (one pass, no second join).
    return totals.select(
        USER_ID,
        category_entropy=totals._total.ln() - totals._c_log_c / totals._total,
        top_category_share=totals._top / totals._total,
    )


def reference_user_features(
    events: ibis.Table, as_of: datetime, config: FeatureConfig | None = None
) -> ibis.Table:
    """``user_features`` of main 3995eb0 (see the module docstring)."""
    config = config or FeatureConfig()
    past = _past_events(events, as_of, config)
    per_event = _user_event_aggregates(_with_neighbours(past), as_of, config)
    per_session = _user_session_aggregates(past, as_of, config).rename(_s_user=USER_ID)
    per_category = _user_category_aggregates(past).rename(_c_user=USER_ID)
    joined = per_event.left_join(per_session, per_event[USER_ID] == per_session._s_user)
    joined = joined.left_join(per_category, joined[USER_ID] == per_category._c_user)
    as_of_lit = ibis.literal(as_of)
    as_of_s = _seconds(as_of_lit)
    short_days = config.short_window.total_seconds() / _DAY
    long_days = config.long_window.total_seconds() / _DAY
    features = joined.mutate(
        **{CUTOFF: as_of_lit},
        recency_days=_days(as_of_s - joined._last),
        purchase_recency_days=_days(as_of_s - joined._last_purchase),
        cart_recency_days=_days(as_of_s - joined._last_cart),
        tenure_days=_days(joined._last - joined._first),
        first_purchase_age_days=_days(as_of_s - joined._first_purchase_day),
        purchase_span_days=_days(joined._last_purchase_day - joined._first_purchase_day),
        avg_purchase_day_value=_ratio(joined.monetary, joined.n_purchase_days),
        cart_to_purchase=_ratio(joined.n_purchase, joined.n_cart),
        activity_trend=_ratio(
            joined.n_events_short.cast("float64") / short_days,
            joined.n_events_long.cast("float64") / long_days,
        ),
        category_entropy=joined.category_entropy.fill_null(0.0),
        top_category_share=joined.top_category_share,
    )
    return features.drop(
        "_s_user",
        "_c_user",
        "_last",
        "_first",
        "_last_purchase",
        "_first_purchase_day",
        "_last_purchase_day",
        "_last_cart",
    )


# --- the comparison ---

HOUR = 3600
AS_OF = BASE + timedelta(days=20, hours=9, minutes=30)

EDGE_ROWS = [
    # Ties: same second, order decided by the source row; the last event is the cart.
    ("tie", "a", "view", 5 * HOUR, "c1", 10.0, None, "t1"),
    ("tie", "b", "purchase", 5 * HOUR, "c1", 12.0, 3, "t1"),
    ("tie", "b", "cart", 5 * HOUR, "c1", 12.0, None, "t1"),
    # Interleaved session ids (a dataset's own sessions need not be contiguous in time).
    ("interleaved", "a", "view", 2 * HOUR, "c1", 10.0, None, "s1"),
    ("interleaved", "b", "cart", 2 * HOUR + 30, "c2", 0.0, None, "s2"),
    ("interleaved", "a", "cart", 2 * HOUR + 90, "c1", 10.0, None, "s1"),
    ("interleaved", "b", "purchase", 3 * HOUR, "c2", 0.0, 2, "s2"),
    ("interleaved", "c", "view", 3 * 86_400, None, None, None, "s1"),
    # Missing session ids, categories, prices and quantities.
    ("nulls", "a", "view", 86_400, None, None, None, None),
    ("nulls", "a", "purchase", 86_400 + 60, None, None, None, None),
    ("nulls", "b", "purchase", 2 * 86_400, "c3", None, None, "n1"),
    ("nulls", "b", "return", 2 * 86_400 + 5, "c3", 7.5, 1, None),
    # Purchases on several days, in the short window, and an event at the cut-off (ignored).
    ("buyer", "a", "purchase", 4 * 86_400 + 23 * HOUR, "c1", 20.0, 1, "b1"),
    ("buyer", "a", "purchase", 5 * 86_400 + 1 * HOUR, "c1", 20.0, 2, "b2"),
    ("buyer", "b", "remove_from_cart", 18 * 86_400, "c2", 30.0, None, "b3"),
    ("buyer", "b", "favorite", 19 * 86_400, "c2", 30.0, None, "b3"),
    ("buyer", "c", "search", 20 * 86_400 + 9 * HOUR + 30 * 60, "c2", 30.0, None, "b4"),
    # One event; and a user whose only event is after the cut-off (no row).
    ("single", "a", "view", 10 * 86_400, "c9", 0.0, None, "x1"),
    ("later", "a", "view", 25 * 86_400, "c1", 10.0, None, "y1"),
]


def _edge_events() -> pa.Table:
    rows = event_rows(EDGE_ROWS)
    # Sub-second times: the per-second truncation must be the same in both versions.
    ts = rows.column(TS).to_numpy().astype("datetime64[us]")
    ts[3:6] = ts[3:6] + np.timedelta64(250_000, "us")
    rows = rows.set_column(rows.schema.get_field_index(TS), TS, pa.array(ts))
    return rows.cast(STORED_SCHEMA)


def _generated_events(store: Store) -> pa.Table:
    events = generate_events(GeneratorConfig(n_events=6_000, n_days=30, seed=11))
    n = events.num_rows
    ts = events.column(TS).to_numpy().astype("datetime64[us]")
    ts[::5] = ts[::5] + np.timedelta64(400_000, "us")  # sub-second times and near-ties
    events = events.set_column(events.schema.get_field_index(TS), TS, pa.array(ts))
    events = events.append_column(SOURCE_FILE_ID, pa.array(np.full(n, 2, np.int32)))
    events = events.append_column(SOURCE_ROW, pa.array(np.arange(n, dtype=np.int64)))
    stored = sessionize(
        store.write_arrow("generated", events.cast(STORED_SCHEMA)), SessionizeConfig()
    )
    return stored.to_pyarrow().select(STORED_SCHEMA.names).cast(STORED_SCHEMA)


def _rows(table: pa.Table) -> dict[str, dict]:
    return {row[USER_ID]: row for row in table.to_pylist()}


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        # Sums of the same values in another order may differ in the last bits.
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


@pytest.fixture
def events(store: Store) -> ibis.Table:
    table = pa.concat_tables([_generated_events(store), _edge_events()])
    return store.write_arrow("events_prepared", table)


CASES = {
    "default": (AS_OF, FeatureConfig()),
    "lookback and short windows": (
        AS_OF,
        FeatureConfig(
            lookback=timedelta(days=9), short_window=timedelta(days=2), long_window=timedelta(5)
        ),
    ),
    "early cut-off": (BASE + timedelta(days=4, hours=23, seconds=1), FeatureConfig()),
    "equal windows": (
        BASE + timedelta(days=12),
        FeatureConfig(short_window=timedelta(days=3), long_window=timedelta(days=3)),
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_features_equal_the_reference_plan(events: ibis.Table, case: str) -> None:
    as_of, config = CASES[case]
    fast = user_features(events, as_of, config).to_pyarrow()
    reference = reference_user_features(events, as_of, config).to_pyarrow()
    assert fast.schema.names == reference.schema.names  # same columns in the same order
    assert fast.schema == reference.schema
    fast_rows, reference_rows = _rows(fast), _rows(reference)
    assert fast_rows.keys() == reference_rows.keys()
    assert len(fast_rows) > 20
    differ = {
        (user, name): (value, reference_rows[user][name])
        for user, row in fast_rows.items()
        for name, value in row.items()
        if not _same(value, reference_rows[user][name])
    }
    assert not differ


def test_the_edge_cases_are_in_the_comparison(events: ibis.Table) -> None:
    rows = _rows(user_features(events, AS_OF).to_pyarrow())
    assert "later" not in rows  # only events after the cut-off
    assert rows["single"]["n_events"] == 1
    assert rows["tie"]["last_action"] == "cart"  # the tie is broken by the source row
    assert rows["interleaved"]["n_sessions"] == 2
    assert rows["buyer"]["n_events"] == 4  # the event at the cut-off is not read
    assert rows["nulls"]["n_sessions"] == 2  # the null session id is one group, as in SQL
