"""Property-based checks: sessionisation never loses, duplicates or reorders an event."""

from __future__ import annotations

from events_factory import load_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopseq.prepare import SessionizeConfig, sessionize
from shopseq.store import open_store

# Few users and items, timestamps with many ties and sub-gap/over-gap spacing.
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3"]),
        st.sampled_from(["i1", "i2", "i3", "i4"]),
        st.sampled_from(["view", "cart", "purchase"]),
        st.integers(min_value=0, max_value=20_000),
    ),
    min_size=0,
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=events_strategy, gap=st.integers(min_value=1, max_value=5_000))
def test_sessionize_keeps_every_event_once_and_cuts_only_at_gaps(rows: list, gap: int) -> None:
    with open_store(None, threads=1) as store:
        load_events(store, rows)
        out = sessionize(store.table("events"), SessionizeConfig(gap_seconds=gap))
        result = out.to_pyarrow().to_pylist()
    assert sorted(r["source_row"] for r in result) == list(range(2, len(rows) + 2))
    by_user: dict[str, list] = {}
    for r in result:
        by_user.setdefault(r["user_id"], []).append(r)
    for user, events in by_user.items():
        events.sort(key=lambda r: (r["ts"], r["source_row"]))
        numbers = [int(r["session_id"].split("#")[1]) for r in events]
        assert all(r["session_id"].startswith(f"{user}#") for r in events)
        assert numbers[0] == 1
        for prev, cur, n_prev, n_cur in zip(events, events[1:], numbers, numbers[1:], strict=False):
            new_session = (cur["ts"] - prev["ts"]).total_seconds() > gap
            assert n_cur == n_prev + (1 if new_session else 0)
