"""Per-user features on a log whose every value is computed by hand."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from events_factory import BASE, event_rows

from shopseq.prepare import SessionizeConfig, sessionize
from shopseq.sequences.features import FeatureConfig, user_features
from shopseq.store import Store

HOUR, DAY = 3600, 86_400
# BASE is Monday 2024-01-01 00:00; the cut-off is Thursday 2024-01-11 10:00.
AS_OF = BASE + timedelta(days=10, hours=10)


def _features(store: Store, rows: list[tuple], config: FeatureConfig | None = None) -> dict:
    events = sessionize(store.write_arrow("events", event_rows(rows)), SessionizeConfig())
    table = user_features(events, AS_OF, config).to_pyarrow()
    return {row["user_id"]: row for row in table.to_pylist()}


ROWS = [
    # u1 session 1, day 0 (Monday) 10:00: view a (c1, 10), cart a, purchase a x2 -> bought.
    ("u1", "a", "view", 10 * HOUR, "c1", 10.0),
    ("u1", "a", "cart", 10 * HOUR + 60, "c1", 10.0),
    ("u1", "a", "purchase", 10 * HOUR + 180, "c1", 10.0, 2),
    # u1 session 2, day 6 (Sunday) 20:00: view b (c2, 30), cart b -> abandoned cart.
    ("u1", "b", "view", 6 * DAY + 20 * HOUR, "c2", 30.0),
    ("u1", "b", "cart", 6 * DAY + 20 * HOUR + 120, "c2", 30.0),
    # u1 session 3, day 9 (Wednesday) 10:00: view c (c1, 20).
    ("u1", "c", "view", 9 * DAY + 10 * HOUR, "c1", 20.0),
    # u2: one view at day 10 08:00 (c1, 40); and an event after the cut-off (ignored).
    ("u2", "a", "view", 10 * DAY + 8 * HOUR, "c1", 40.0),
    ("u2", "a", "purchase", 11 * DAY, "c1", 40.0, 1),
]


def test_user_features_match_hand_computed_values(store: Store) -> None:
    u1 = _features(store, ROWS)["u1"]
    assert u1["cutoff"] == AS_OF
    assert (u1["n_events"], u1["n_sessions"], u1["n_items"], u1["n_categories"]) == (6, 3, 3, 2)
    assert (u1["n_view"], u1["n_cart"], u1["n_purchase"], u1["frequency"]) == (3, 2, 1, 1)
    assert u1["monetary"] == 20.0
    assert u1["recency_days"] == pytest.approx(1.0)
    assert u1["purchase_recency_days"] == pytest.approx(10 + (10 * HOUR - 10 * HOUR - 180) / DAY)
    assert u1["cart_recency_days"] == pytest.approx(
        (10 * DAY + 10 * HOUR - 6 * DAY - 20 * HOUR - 120) / DAY
    )
    assert u1["tenure_days"] == pytest.approx(9.0)
    # Purchases by day: one day; its age is counted from that day's midnight.
    assert u1["n_purchase_days"] == 1
    assert u1["first_purchase_age_days"] == pytest.approx(10 + 10 / 24)
    assert u1["purchase_span_days"] == 0.0
    assert u1["avg_purchase_day_value"] == 20.0
    # Funnel: 1 purchase per 2 carts; session 2 is an abandoned cart.
    assert u1["cart_to_purchase"] == 0.5
    assert (u1["abandoned_carts"], u1["buying_session_share"]) == (1, pytest.approx(1 / 3))
    assert (u1["mean_session_events"], u1["max_session_events"]) == (2.0, 3)
    assert u1["mean_session_seconds"] == pytest.approx((180 + 120 + 0) / 3)
    # Dwell (within sessions): 60, 120, 120 s; session gaps: two, in hours.
    assert u1["mean_dwell_seconds"] == pytest.approx(100.0)
    assert u1["median_dwell_seconds"] == pytest.approx(120.0)
    gap1 = (6 * DAY + 20 * HOUR - 10 * HOUR - 180) / HOUR
    gap2 = (9 * DAY + 10 * HOUR - 6 * DAY - 20 * HOUR - 120) / HOUR
    assert u1["mean_session_gap_hours"] == pytest.approx((gap1 + gap2) / 2)
    assert u1["std_session_gap_hours"] == pytest.approx(abs(gap1 - gap2) / math.sqrt(2))
    # Trend: 6 events in 30 days, 3 of them (days 6 and 9) in the last 7 days.
    assert (u1["n_events_short"], u1["n_events_long"]) == (3, 6)
    assert u1["activity_trend"] == pytest.approx((3 / 7) / (6 / 30))
    assert (u1["n_cart_short"], u1["abandoned_carts_short"], u1["n_sessions_short"]) == (1, 1, 2)
    # Category mix: c1 x4, c2 x2.
    assert u1["category_entropy"] == pytest.approx(
        -(4 / 6) * math.log(4 / 6) - (2 / 6) * math.log(2 / 6)
    )
    assert u1["top_category_share"] == pytest.approx(4 / 6)
    # Habits: the cut-off is a Thursday at 10: four events at 10 h, two on Sunday evening.
    assert (u1["share_at_cutoff_hour"], u1["share_at_cutoff_weekday"]) == (
        pytest.approx(4 / 6),
        0.0,
    )
    assert (u1["weekend_share"], u1["evening_share"], u1["night_share"]) == (
        pytest.approx(2 / 6),
        pytest.approx(2 / 6),
        0.0,
    )
    # Price level: medians before the cut-off are c1: median(10, 10, 10, 20, 40) = 10, c2: 30.
    ratios = [1, 1, 1, 1, 1, 2]
    assert u1["price_vs_category"] == pytest.approx(sum(ratios) / 6)
    assert u1["purchase_price_vs_category"] == pytest.approx(1.0)
    assert u1["last_action"] == "view"


def test_user_with_one_event_gets_nulls_not_zeros_where_undefined(store: Store) -> None:
    u2 = _features(store, ROWS)["u2"]
    assert (u2["n_events"], u2["frequency"], u2["n_purchase"]) == (1, 0, 0)  # the buy is later
    assert u2["purchase_recency_days"] is None
    assert u2["cart_to_purchase"] is None
    assert u2["mean_gap_seconds"] is None
    assert u2["category_entropy"] == 0.0
    assert u2["price_vs_category"] == pytest.approx(4.0)


def test_lookback_and_windows_restrict_what_is_read(store: Store) -> None:
    config = FeatureConfig(lookback=timedelta(days=5), short_window=timedelta(days=2))
    u1 = _features(store, ROWS, config)["u1"]
    assert u1["n_events"] == 3  # sessions 2 and 3 only
    assert u1["frequency"] == 0
    assert u1["n_events_short"] == 1
    with pytest.raises(ValueError, match="need 0 < short_window <= long_window"):
        FeatureConfig(short_window=timedelta(days=40))
