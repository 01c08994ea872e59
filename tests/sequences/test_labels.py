"""Labels at a cut-off, rolling snapshots and session-prefix examples on hand-checked logs."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from events_factory import BASE, event_rows

from shopseq.errors import InputError
from shopseq.prepare import SessionizeConfig, sessionize
from shopseq.sequences.labels import (
    LabelConfig,
    SessionIntentConfig,
    SnapshotConfig,
    label_users,
    plan_snapshots,
    session_intent_examples,
    user_examples,
    user_snapshots,
)
from shopseq.store import Store

HOUR, DAY = 3600, 86_400
T = BASE + timedelta(days=10)
T_S = 10 * DAY


def _events(store: Store, rows: list[tuple]):
    table = store.write_arrow("events", event_rows(rows))
    return sessionize(table, SessionizeConfig())


def _by_user(table) -> dict[str, dict]:
    return {row["user_id"]: row for row in table.to_pyarrow().to_pylist()}


def test_labels_read_only_the_horizons_after_the_cutoff(store: Store) -> None:
    rows = [
        # u1: a view an hour after T, a purchase two days after (2 x 10.0).
        ("u1", "i1", "view", T_S - DAY),
        ("u1", "i1", "view", T_S + HOUR),
        ("u1", "i1", "purchase", T_S + 2 * DAY, "c1", 10.0, 2),
        # u2: nothing after T: censored next event, churned.
        ("u2", "i2", "cart", T_S - 5 * DAY),
        # u3: first seen after T: no example.
        ("u3", "i3", "view", T_S + HOUR),
        # u4: an event exactly at T belongs to the future; ties resolved by source row.
        ("u4", "i4", "view", T_S - HOUR),
        ("u4", "i4", "cart", T_S),
        ("u4", "i5", "view", T_S),
        # u5: next event after the next-event horizon but inside the churn horizon.
        ("u5", "i1", "view", T_S - HOUR),
        ("u5", "i1", "purchase", T_S + 8 * DAY, None, 4.0),
        ("u5", "i1", "purchase", T_S + 8 * DAY + HOUR, None, 6.0),
    ]
    labels = _by_user(label_users(_events(store, rows), T, LabelConfig()))
    assert set(labels) == {"u1", "u2", "u4", "u5"}
    u1, u2, u4, u5 = (labels[u] for u in ("u1", "u2", "u4", "u5"))
    assert (u1["next_action"], u1["next_event_seconds"], u1["next_event_observed"]) == (
        "view",
        HOUR,
        True,
    )
    assert (u1["purchase"], u1["churn"], u1["spend"], u1["n_purchase_days_after"]) == (
        1,
        0,
        20.0,
        1,
    )
    assert u2["next_action"] is None
    assert u2["next_event_observed"] is False
    assert u2["next_event_seconds"] == 7 * DAY  # censored at the horizon, the row kept
    assert (u2["purchase"], u2["churn"], u2["spend"]) == (0, 1, 0.0)
    assert (u4["next_action"], u4["next_event_seconds"]) == ("cart", 0.0)
    assert u5["next_event_observed"] is False
    assert (u5["purchase"], u5["churn"]) == (0, 0)  # bought on day 8: outside 7 days
    assert u5["spend"] == 10.0  # but inside the 14-day spend horizon (one purchase day)
    assert u5["n_purchase_days_after"] == 1


def test_eligibility_needs_min_events_and_recent_activity(store: Store) -> None:
    rows = [
        ("old", "i1", "view", 0),
        ("old", "i1", "view", 60),
        ("new", "i1", "view", T_S - DAY),
        ("new", "i2", "view", T_S - DAY + 60),
        ("single", "i1", "view", T_S - HOUR),
    ]
    config = LabelConfig(min_events=2, active_within=timedelta(days=3))
    assert set(_by_user(label_users(_events(store, rows), T, config))) == {"new"}


def test_user_examples_join_past_features_to_future_labels(store: Store) -> None:
    rows = [
        ("u1", "i1", "view", T_S - 2 * DAY, "c1", 5.0),
        ("u1", "i1", "purchase", T_S - DAY, "c1", 5.0, 1),
        ("u1", "i2", "purchase", T_S + DAY, "c1", 50.0, 1),
    ]
    events = _events(store, rows)
    row = _by_user(user_examples(events, T, LabelConfig()))["u1"]
    assert row["cutoff"] == T
    assert row["frequency"] == 1  # the purchase after T is a label, not a feature
    assert row["monetary"] == 5.0
    assert row["purchase"] == 1
    assert row["spend"] == 50.0
    stacked = user_snapshots(events, [T - timedelta(days=1, hours=12), T], LabelConfig())
    cutoffs = sorted(r["cutoff"] for r in stacked.to_pyarrow().to_pylist())
    assert cutoffs == [T - timedelta(days=1, hours=12), T]


def test_plan_puts_test_after_every_training_snapshot() -> None:
    labels = LabelConfig(
        next_event_horizon=timedelta(days=2),
        purchase_horizon=timedelta(days=2),
        churn_horizon=timedelta(days=3),
        spend_horizon=timedelta(days=3),
    )
    start, last = datetime(2024, 1, 1), datetime(2024, 2, 1) - timedelta(seconds=1)
    plan = plan_snapshots(start, last, labels, SnapshotConfig(n_train=3, step=timedelta(days=1)))
    assert plan.test == datetime(2024, 1, 29)
    assert plan.valid == datetime(2024, 1, 26)
    assert plan.train == (datetime(2024, 1, 21), datetime(2024, 1, 22), datetime(2024, 1, 23))
    # No training or validation label window reaches the next cut-off.
    assert max(plan.train) + plan.span <= plan.valid
    assert plan.valid + plan.span <= plan.test
    assert plan.cutoffs == (*plan.train, plan.valid, plan.test)


def test_plan_refuses_data_too_short_or_a_late_test_cutoff() -> None:
    start, last = datetime(2024, 1, 1), datetime(2024, 1, 20)
    with pytest.raises(InputError, match=r"3 training snapshots every 14 days.*need more than"):
        plan_snapshots(start, last, LabelConfig(), SnapshotConfig())
    late = SnapshotConfig(n_train=1, test_cutoff=datetime(2024, 1, 15))
    with pytest.raises(InputError, match=r"test cut-off 2024-01-15 00:00:00 \+ label span"):
        plan_snapshots(start, last, LabelConfig(), late)


def test_label_config_rejects_a_zero_horizon() -> None:
    with pytest.raises(ValueError, match="horizons must be at least one second"):
        LabelConfig(churn_horizon=timedelta(0))
    with pytest.raises(ValueError, match="positions must be distinct increasing"):
        SessionIntentConfig(positions=(3, 1))


def test_session_prefixes_stop_at_the_first_purchase(store: Store) -> None:
    rows = [
        # u1 session 1 (no purchase), then session 2 a day later: view, view, cart, purchase.
        ("u1", "a", "view", 0, "c1", 10.0),
        ("u1", "b", "view", 60, "c1", 20.0),
        ("u1", "a", "view", DAY, "c1", 10.0),
        ("u1", "a", "view", DAY + 30, "c1", 10.0),
        ("u1", "c", "cart", DAY + 100, "c2", 40.0),
        ("u1", "c", "purchase", DAY + 200, "c2", 40.0, 1),
        ("u1", "d", "view", DAY + 300, "c2", 5.0),
        # u2: buys at once: nothing to predict.
        ("u2", "a", "purchase", 0, "c1", 10.0, 1),
    ]
    table = session_intent_examples(
        _events(store, rows), SessionIntentConfig(positions=(1, 2, 3, 4))
    )
    got = {(r["session_id"], r["k"]): r for r in table.to_pyarrow().to_pylist()}
    assert sorted(got) == [("u1#1", 1), ("u1#1", 2), ("u1#2", 1), ("u1#2", 2), ("u1#2", 3)]
    assert [got[("u1#1", k)]["session_purchase"] for k in (1, 2)] == [0, 0]
    third = got[("u1#2", 3)]
    assert third["session_purchase"] == 1
    assert (third["n_view"], third["n_cart"], third["n_items"], third["repeat_events"]) == (
        2,
        1,
        2,
        1,
    )
    assert (third["duration_seconds"], third["last_dwell_seconds"]) == (100.0, 70.0)
    assert third["last_action"] == "cart"
    assert (third["max_price"], third["cart_value"]) == (40.0, 40.0)
    assert third["cutoff"] == BASE + timedelta(seconds=DAY + 100)
    assert (third["user_prior_events"], third["user_prior_sessions"]) == (2, 1)
    assert third["seconds_since_prev_event"] == DAY - 60
    first = got[("u1#1", 1)]
    assert first["last_dwell_seconds"] is None
    assert (first["user_prior_events"], first["seconds_since_prev_event"]) == (0, None)


def test_session_window_keeps_only_sessions_inside_it(store: Store) -> None:
    rows = [
        ("u1", "a", "view", 0),
        ("u1", "b", "view", 60),
        ("u2", "a", "view", DAY - 60),
        ("u2", "b", "view", DAY + 60),  # straddles the window's end
        ("u3", "a", "view", 2 * DAY),
    ]
    events = _events(store, rows)
    window = session_intent_examples(
        events, SessionIntentConfig(positions=(1,)), end=BASE + timedelta(days=1)
    )
    assert {r["user_id"] for r in window.to_pyarrow().to_pylist()} == {"u1"}
    later = session_intent_examples(
        events, SessionIntentConfig(positions=(1,)), start=BASE + timedelta(days=1)
    )
    assert {r["user_id"] for r in later.to_pyarrow().to_pylist()} == {"u3"}
