"""Prepare steps on logs whose right answer is known by construction."""

from __future__ import annotations

import pytest
from events_factory import load_events

from shopseq.prepare import (
    BotFilterConfig,
    DedupeConfig,
    MissingValueConfig,
    PrepareConfig,
    SessionizeConfig,
    drop_exact_duplicates,
    drop_repeats,
    fill_missing,
    prepare_events,
    sessionize,
)
from shopseq.store import Store


def _rows(store: Store, query: str) -> list[dict]:
    return store.sql(query).to_pylist()


def test_exact_duplicates_keep_the_first_copy(store: Store) -> None:
    load_events(store, [("u1", "i1", "view", 0), ("u1", "i1", "view", 0), ("u1", "i1", "view", 1)])
    kept = store.materialize("t", drop_exact_duplicates(store.table("events")))
    assert kept.count().execute() == 2
    assert sorted(kept.source_row.to_pyarrow().to_pylist()) == [2, 4]


def test_rapid_repeats_within_the_window_are_dropped(store: Store) -> None:
    load_events(
        store,
        [
            ("u1", "i1", "view", 0),
            ("u1", "i1", "view", 3),
            ("u1", "i1", "view", 9),
            ("u1", "i1", "view", 30),
            ("u1", "i1", "cart", 31),
        ],
    )
    kept = drop_repeats(store.table("events"), DedupeConfig(repeat_window_seconds=5))
    rows = sorted(kept.source_row.to_pyarrow().to_pylist())
    # 3 s after 0 -> dropped; 9 s is 6 s after the previous (3) -> kept; 30 kept; the cart differs.
    assert rows == [2, 4, 5, 6]


def test_missing_category_and_price_are_filled_from_the_item(store: Store) -> None:
    load_events(
        store,
        [
            ("u1", "i1", "view", 0, "c1", 10.0),
            ("u1", "i1", "view", 1, "c1", 20.0),
            ("u2", "i1", "view", 2, None, None),
            ("u2", "i2", "purchase", 3, None, None),
            ("u2", "i1", "cart", 4, "c2", 12.0),
        ],
    )
    filled = fill_missing(store.table("events"), MissingValueConfig())
    rows = {r["source_row"]: r for r in filled.to_pyarrow().to_pylist()}
    assert rows[4]["category_id"] == "c1"  # modal category of i1
    assert rows[4]["price"] == 12.0  # median of 10, 20, 12
    assert rows[5]["category_id"] is None and rows[5]["price"] is None  # i2 never has them
    assert rows[5]["quantity"] == 1  # a purchase without quantity is one unit
    assert rows[2]["quantity"] is None  # views keep no quantity


def test_sessionize_starts_new_session_after_gap(store: Store) -> None:
    minute = 60
    load_events(
        store,
        [
            ("u1", "i1", "view", 0),
            ("u1", "i2", "view", 29 * minute),
            ("u1", "i3", "view", 60 * minute),
            ("u2", "i1", "view", 5),
            ("u1", "i4", "view", 60 * minute),
        ],
    )
    out = sessionize(store.table("events"), SessionizeConfig(gap_seconds=30 * minute))
    sessions = {r["source_row"]: r["session_id"] for r in out.to_pyarrow().to_pylist()}
    assert sessions == {2: "u1#1", 3: "u1#1", 4: "u1#2", 5: "u2#1", 6: "u1#2"}


def test_dataset_sessions_are_kept_when_asked(store: Store) -> None:
    load_events(
        store,
        [
            ("u1", "i1", "view", 0, None, None, None, "s9"),
            ("u1", "i2", "view", 10, None, None, None, None),
        ],
    )
    out = sessionize(store.table("events"), SessionizeConfig(use_dataset_sessions=True))
    sessions = {r["source_row"]: r["session_id"] for r in out.to_pyarrow().to_pylist()}
    assert sessions == {2: "s9", 3: "u1#1"}


def test_prepare_report_accounts_for_every_event(store: Store) -> None:
    rows = [("bot", f"i{k}", "view", k) for k in range(40)]  # 40 events in 40 s
    rows += [
        ("u1", "i1", "view", 0),
        ("u1", "i1", "view", 0),
        ("u1", "i1", "view", 2),
        ("u1", "i2", "view", 4000),
    ]
    load_events(store, rows)
    config = PrepareConfig(
        dedupe=DedupeConfig(repeat_window_seconds=5), bots=BotFilterConfig(max_events_per_minute=30)
    )
    report = prepare_events(store, config)
    assert report.rows_in == 44
    assert (report.exact_duplicates, report.repeats) == (1, 1)
    assert (report.bot_users, report.bot_events) == (1, 40)
    assert report.rows_out == 2
    assert report.rows_in - report.exact_duplicates - report.repeats - report.bot_events == (
        report.rows_out
    )
    assert report.sessions == 2


@pytest.mark.parametrize("limit", [0, -1])
def test_bot_threshold_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        BotFilterConfig(max_events_per_minute=limit)
