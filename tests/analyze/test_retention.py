from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest

from shopseq.analyze.retention import RetentionConfig, retention

DAY = 86_400.0
T0 = datetime(2024, 1, 1)  # a Monday, as in conftest.py


def test_weekly_cohorts_on_a_known_log(make_events):
    rows = [
        # cohort week 0: u1 (active weeks 0, 1, 3), u2 (week 0 only)
        ("u1", "u1#1", "a", "view", 0, "c", 1.0),
        ("u1", "u1#2", "a", "view", 8 * DAY, "c", 1.0),
        ("u1", "u1#3", "a", "purchase", 22 * DAY, "c", 1.0),
        ("u2", "u2#1", "a", "view", 2 * DAY, "c", 1.0),
        # cohort week 1: u3 (weeks 1, 2)
        ("u3", "u3#1", "a", "purchase", 7 * DAY, "c", 1.0),
        ("u3", "u3#2", "a", "purchase", 15 * DAY, "c", 1.0),
    ]
    result = retention(make_events(rows), RetentionConfig(max_periods=4))
    assert result.last_period == date(2024, 1, 22)
    first, second = result.cohorts
    assert (first.start, first.size) == (date(2024, 1, 1), 2)
    assert first.retained == (2, 1, 0, 1, None)  # week 4 is after the data: not observed
    assert first.rates[:4] == (1.0, 0.5, 0.0, 0.5)
    assert (second.start, second.size) == (date(2024, 1, 8), 1)
    assert second.retained == (1, 1, 0, None, None)
    # u1 has 1 order, u3 has 2 (distinct purchase sessions)
    assert result.repeat_purchase.n_buyers == 2
    assert result.repeat_purchase.n_repeat_buyers == 1
    assert result.repeat_purchase.rate == pytest.approx(0.5)
    stats = result.sessions
    assert (stats.n_sessions, stats.n_users) == (6, 3)
    assert stats.bounce_rate == pytest.approx(1.0)
    assert stats.purchase_rate == pytest.approx(3 / 6)


def _hand_retention(rows, period, cohort_by, activity, max_periods):
    def index(seconds):
        day = (T0 + timedelta(seconds=seconds)).date()
        if period == "week":
            return (day.toordinal() - date(1970, 1, 5).toordinal()) // 7
        return day.year * 12 + day.month - 1

    anchor, active = {}, defaultdict(set)
    last = max(index(r[4]) for r in rows)
    for user, _s, _i, action, seconds, _c, _p in rows:
        p = index(seconds)
        if cohort_by == "first_activity" or action == "purchase":
            anchor[user] = min(anchor.get(user, p), p)
        if activity == "any" or action == "purchase":
            active[user].add(p)
    table = {}
    for user, c in anchor.items():
        _size, cells = table.setdefault(c, [0, [0] * (max_periods + 1)])
        table[c][0] += 1
        for k in range(max_periods + 1):
            if c + k in active[user]:
                cells[k] += 1
    return {
        c: (size, tuple(n if c + k <= last else None for k, n in enumerate(cells)))
        for c, (size, cells) in table.items()
    }, last


@pytest.mark.parametrize(
    ("period", "cohort_by", "activity"),
    [
        ("week", "first_activity", "any"),
        ("week", "first_purchase", "purchase"),
        ("month", "first_activity", "purchase"),
    ],
)
def test_retention_matches_a_plain_python_computation(make_events, period, cohort_by, activity):
    rng = random.Random(3)
    rows = []
    for i in range(500):
        user = f"u{rng.randrange(40)}"
        action = rng.choice(["view", "view", "cart", "purchase"])
        rows.append((user, f"{user}#{i % 7}", "x", action, rng.uniform(0, 100 * DAY), "c", 1.0))
    config = RetentionConfig(period=period, cohort_by=cohort_by, activity=activity, max_periods=5)
    result = retention(make_events(rows), config)
    expected, _last = _hand_retention(rows, period, cohort_by, activity, 5)

    def start(index):
        if period == "week":
            return date(1970, 1, 5) + timedelta(days=7 * index)
        return date(index // 12, index % 12 + 1, 1)

    got = {c.start: (c.size, c.retained) for c in result.cohorts}
    assert got == {start(c): v for c, v in expected.items()}


def test_retention_of_an_empty_log_is_empty(make_events):
    result = retention(make_events([]), RetentionConfig())
    assert result.cohorts == ()
    assert result.repeat_purchase.n_buyers == 0
    assert result.sessions.n_sessions == 0


@pytest.mark.realdata
def test_retention_matches_a_plain_python_computation_on_cdnow(shared_data, store):
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events

    path = shared_data / "cdnow" / "CDNOW_sample.txt"
    ingest_files([path], IngestConfig(layout=BUILTIN_LAYOUTS["cdnow-sample"]), store)
    prepare_events(store, PrepareConfig())
    events = store.table("events_prepared")
    data = events.select("user_id", "session_id", "action", "ts").to_pyarrow().to_pylist()
    rows = [
        (r["user_id"], r["session_id"], "x", r["action"], (r["ts"] - T0).total_seconds(), "c", 1.0)
        for r in data
    ]
    config = RetentionConfig(period="month", max_periods=6, max_cohorts=100)
    result = retention(events, config)
    expected, _last = _hand_retention(rows, "month", "first_activity", "any", 6)
    got = {(c.start.year * 12 + c.start.month - 1): (c.size, c.retained) for c in result.cohorts}
    assert got == expected
    assert sum(size for size, _ in expected.values()) == 2357  # every CDNOW sample customer
    buyers = {}
    for user, session, *_ in rows:
        buyers.setdefault(user, set()).add(session)
    repeat = sum(len(s) >= 2 for s in buyers.values())
    assert result.repeat_purchase.n_repeat_buyers == repeat
