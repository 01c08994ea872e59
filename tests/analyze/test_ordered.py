"""The shared session order: analyses given it equal the same analyses on plain events."""

from __future__ import annotations

import random
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest

from shopseq.analyze import (
    ORDER_COLUMNS,
    FunnelConfig,
    PathsConfig,
    PatternConfig,
    TransitionConfig,
    funnel_breakdowns,
    has_session_order,
    mine_patterns,
    paths,
    session_order,
    transitions,
)
from shopseq.analyze.hmm import _context_symbols, encode_symbols
from shopseq.schema import ACTION_CODES, Action
from shopseq.sequences import SequenceConfig, fetch_events


def _random_rows(seed: int, n: int = 700) -> list[tuple]:
    """Sessions with timestamp ties (lineage breaks them), repeated items, missing categories."""
    rng = random.Random(seed)
    actions = ["view", "view", "view", "cart", "purchase", "search", "favorite"]
    rows = []
    for _ in range(n):
        user = f"u{rng.randrange(25)}"
        session = f"{user}#{rng.randrange(4)}"
        seconds = rng.randrange(0, 120) * 60  # few distinct times: many ties
        category = rng.choice(["a", "b", "c", "d", None])
        rows.append((user, session, f"i{rng.randrange(6)}", rng.choice(actions), seconds,
                     category, 1.0))  # fmt: skip
    return rows


@pytest.mark.parametrize("seed", [1, 2])
def test_paths_transitions_and_funnel_equal_on_the_ordered_table(make_events, store, seed):
    events = make_events(_random_rows(seed))
    ordered = session_order(events)
    assert has_session_order(ordered) and not has_session_order(events)
    assert set(ORDER_COLUMNS) <= set(ordered.columns)
    config = PathsConfig(max_steps=3, flow_steps=3)
    plain = paths(events, config)
    assert plain.to_purchase and plain.to_exit  # the comparison is not between empty results
    assert paths(ordered, config) == plain
    for by in ("session", "user"):
        tc = TransitionConfig(by=by, max_categories=2)
        assert transitions(ordered, tc) == transitions(events, tc)
    assert transitions(ordered, TransitionConfig(max_categories=2, include_start_exit=False)) == (
        transitions(events, TransitionConfig(max_categories=2, include_start_exit=False))
    )
    for pc in (PatternConfig(min_sessions=2), PatternConfig(min_sessions=2, max_sequences=30)):
        mined = mine_patterns(events, pc)
        assert mined.patterns  # something was found, and compared
        assert mine_patterns(ordered, pc) == mined
    users = [f"u{i}" for i in range(20)]
    segments = store.write_arrow(
        "segments", pa.table({"user_id": users, "segment": [f"s{i % 3}" for i in range(20)]})
    )
    for by in ("session", "user"):
        fc = FunnelConfig(by=by, window_seconds=3_000, max_groups=3)
        views = funnel_breakdowns(ordered, fc, ("category", "segment"), segments)
        assert views == funnel_breakdowns(events, fc, ("category", "segment"), segments)
        assert views["category"].overall.steps[-1].n > 0


def test_order_columns_follow_time_then_lineage(make_events):
    rows = [
        ("u1", "s1", "a", "view", 10, "c1", 1.0),
        ("u1", "s1", "b", "view", 5, None, 1.0),
        ("u1", "s1", "a", "cart", 10, "c2", 1.0),  # same time as line 1: lineage decides
        ("u2", "s2", "a", "view", 0, "c1", 1.0),
    ]
    # Materialised, as the report does: lag/lead of a NOT NULL column must be nullable.
    got = (
        session_order(make_events(rows))
        .cache()
        .order_by(["session_id", "event_pos"])
        .select("item_id", "action", *ORDER_COLUMNS)
        .to_pyarrow()
        .to_pylist()
    )
    assert [(r["item_id"], r["action"], r["event_pos"]) for r in got] == [
        ("b", "view", 0),
        ("a", "view", 1),
        ("a", "cart", 2),
        ("a", "view", 0),
    ]
    assert [r["prev_action"] for r in got] == [None, "view", "view", None]
    assert [r["next_action"] for r in got] == ["view", "cart", None, None]
    assert [r["prev_category"] for r in got] == [None, None, "c1", None]
    assert [r["next_category"] for r in got] == ["c1", "c2", None, None]


def _reference_symbols(events, alphabet: str):
    """``encode_symbols`` as it was: every event fetched sorted, the context found in NumPy."""
    arrays = fetch_events(events, SequenceConfig(by="session"))
    offsets = arrays.boundaries()
    codes = arrays.actions.astype(np.int64)
    raw = codes
    if alphabet == "action_context":
        context = _context_symbols(arrays, offsets)
        raw = np.where(codes == ACTION_CODES[Action.VIEW], len(Action) + context, codes)
    owners = arrays.owner_ids.take(pa.array(offsets[:-1]))
    return owners.to_pylist(), offsets, raw


@pytest.mark.parametrize("alphabet", ["action", "action_context"])
def test_session_symbols_from_the_engine_equal_the_fetched_events(make_events, alphabet):
    events = make_events(_random_rows(3))
    owners, offsets, raw = _reference_symbols(events, alphabet)
    for table in (events, session_order(events)):
        got = encode_symbols(table, "session", alphabet)
        assert got.owner_ids.to_pylist() == owners
        np.testing.assert_array_equal(got.offsets, offsets)
        names = list(got.names)
        full = [a.value for a in Action] + ["view (new)", "view (same category)", "view (revisit)"]
        np.testing.assert_array_equal([full.index(names[s]) for s in got.symbols], raw)
        bought = [ACTION_CODES[Action.PURCHASE] in raw[a:b] for a, b in pairwise(offsets)]
        np.testing.assert_array_equal(got.converted, bought)
    if alphabet == "action_context":  # every context occurs: the comparison covers them all
        assert {"view (new)", "view (same category)", "view (revisit)"} <= set(got.names)


def test_a_revisit_is_an_item_seen_earlier_in_the_same_session(make_events):
    rows = [
        ("u1", "s1", "a", "cart", 0, "c1", 1.0),  # any earlier event counts, not only views
        ("u1", "s1", "b", "view", 1, "c1", 1.0),  # new item, same category as the cart
        ("u1", "s1", "a", "view", 2, "c2", 1.0),  # revisit of the cart's item
        ("u1", "s1", "c", "view", 3, "c3", 1.0),  # new, seen only later in another session
        ("u2", "s2", "a", "view", 0, "c1", 1.0),  # "a" was seen in s1, not in s2: new
        ("u2", "s2", "c", "view", 5, "c1", 1.0),  # same category, new here
        ("u2", "s2", "a", "view", 4, "c9", 1.0),  # earlier in time than line 6: a revisit
    ]
    got = encode_symbols(make_events(rows), "session", "action_context")
    names = [got.names[s] for s in got.symbols]
    assert got.owner_ids.to_pylist() == ["s1", "s2"]
    assert names == [
        "cart", "view (same category)", "view (revisit)", "view (new)",
        "view (new)", "view (revisit)", "view (new)",
    ]  # fmt: skip
