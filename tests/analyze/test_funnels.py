from __future__ import annotations

import random
import statistics
from collections import defaultdict

import pyarrow as pa
import pytest
from pydantic import ValidationError

from shopseq.analyze.funnels import FunnelConfig, funnel, funnel_breakdowns
from shopseq.errors import InputError
from shopseq.schema import Action

H = 3600.0


def test_funnel_counts_drop_off_and_median_time_on_a_known_log(make_events):
    rows = [
        # s1: view -> cart (60 s) -> purchase (120 s): converts
        ("u1", "s1", "a", "view", 0, "c1", 10.0),
        ("u1", "s1", "a", "cart", 60, "c1", 10.0),
        ("u1", "s1", "a", "purchase", 180, "c1", 10.0),
        # s2: view -> cart (30 s), no purchase
        ("u2", "s2", "b", "view", 0, "c2", 5.0),
        ("u2", "s2", "b", "cart", 30, "c2", 5.0),
        # s3: view only
        ("u3", "s3", "c", "view", 0, "c1", 1.0),
        # s4: cart before view does not count; view -> purchase without a later cart stops at 1
        ("u4", "s4", "d", "cart", 0, "c1", 1.0),
        ("u4", "s4", "d", "view", 10, "c1", 1.0),
        ("u4", "s4", "d", "purchase", 20, "c1", 1.0),
        # s5: no view at all: not in the funnel
        ("u5", "s5", "e", "purchase", 0, "c1", 1.0),
    ]
    result = funnel(make_events(rows), FunnelConfig())
    steps = result.overall.steps
    assert [s.n for s in steps] == [4, 2, 1]
    assert [s.dropped for s in steps] == [0, 2, 1]
    assert steps[1].rate_from_start == pytest.approx(0.5)
    assert steps[2].rate_from_previous == pytest.approx(0.5)
    assert steps[1].median_seconds_from_previous == pytest.approx(45.0)  # median of 60 and 30
    assert steps[2].median_seconds_from_previous == pytest.approx(120.0)
    assert steps[0].median_seconds_from_previous is None


def test_funnel_window_excludes_late_steps(make_events):
    rows = [
        ("u1", "s1", "a", "view", 0, "c1", 1.0),
        ("u1", "s1", "a", "cart", 2 * H, "c1", 1.0),
        ("u1", "s1", "a", "purchase", 3 * H, "c1", 1.0),
    ]
    events = make_events(rows)
    assert [s.n for s in funnel(events, FunnelConfig(window_seconds=10_000)).overall.steps] == [
        1,
        1,
        0,
    ]
    assert [s.n for s in funnel(events, FunnelConfig()).overall.steps] == [1, 1, 1]


def test_funnel_breaks_down_by_first_step_category_and_by_segment(make_events, store):
    rows = [
        ("u1", "s1", "a", "view", 0, "c1", 1.0),
        ("u1", "s1", "a", "cart", 1, "c1", 1.0),
        ("u2", "s2", "b", "view", 0, "c2", 1.0),
        ("u2", "s2", "a", "cart", 5, "c1", 1.0),
        ("u3", "s3", "b", "view", 0, None, 1.0),
    ]
    events = make_events(rows)
    by_cat = funnel(events, FunnelConfig(steps=(Action.VIEW, Action.CART), breakdown="category"))
    groups = {g.group: [s.n for s in g.steps] for g in by_cat.groups}
    assert groups == {"c1": [1, 1], "c2": [1, 1], "unknown": [1, 0]}

    import pyarrow as pa

    segments = store.write_arrow(
        "segments", pa.table({"user_id": ["u1", "u2"], "segment": ["loyal", "new"]})
    )
    config = FunnelConfig(steps=(Action.VIEW, Action.CART), breakdown="segment")
    by_seg = funnel(events, config, segments)
    assert {g.group: [s.n for s in g.steps] for g in by_seg.groups} == {
        "loyal": [1, 1],
        "new": [1, 1],
        "unknown": [1, 0],
    }
    with pytest.raises(InputError, match="needs a segments table"):
        funnel(events, config)


def test_funnel_config_rejects_a_single_step():
    with pytest.raises(ValidationError, match="at least 2 steps"):
        FunnelConfig(steps=(Action.VIEW,))


def _hand_funnel(rows, steps, by, window):
    """The documented definition, in plain Python over the rows."""
    owners = defaultdict(list)
    for line, (user, session, _item, action, seconds, _cat, _price) in enumerate(rows):
        owners[session if by == "session" else user].append((seconds, line, action))
    counts = [0] * len(steps)
    gaps = [[] for _ in steps]
    for events in owners.values():
        events.sort()
        start = next((i for i, e in enumerate(events) if e[2] == steps[0]), None)
        if start is None:
            continue
        counts[0] += 1
        pos, t0 = start, events[start][0]
        for k in range(1, len(steps)):
            nxt = next(
                (
                    i
                    for i in range(pos + 1, len(events))
                    if events[i][2] == steps[k] and events[i][0] <= t0 + window
                ),
                None,
            )
            if nxt is None:
                break
            counts[k] += 1
            gaps[k].append(events[nxt][0] - events[pos][0])
            pos = nxt
    return counts, [statistics.median(g) if g else None for g in gaps]


@pytest.mark.parametrize("by", ["session", "user"])
def test_funnel_matches_a_plain_python_computation_on_a_random_log(make_events, by):
    rng = random.Random(7)
    actions = ["view", "view", "view", "cart", "purchase", "search"]
    rows = []
    for _i in range(400):
        user = f"u{rng.randrange(15)}"
        session = f"{user}#{rng.randrange(3)}"
        seconds = rng.randrange(0, 3 * 86_400)
        rows.append((user, session, "x", rng.choice(actions), seconds, "c", 1.0))
    steps = ("view", "cart", "purchase")
    config = FunnelConfig(by=by, window_seconds=40_000)
    result = funnel(make_events(rows), config)
    counts, medians = _hand_funnel(rows, steps, by, 40_000)
    assert [s.n for s in result.overall.steps] == counts
    for step, median in zip(result.overall.steps, medians, strict=True):
        if median is None:
            assert step.median_seconds_from_previous is None
        else:
            assert step.median_seconds_from_previous == pytest.approx(median)


@pytest.mark.realdata
def test_funnel_matches_a_plain_python_computation_on_rees46(shared_data, store):
    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events

    path = shared_data / "rees46-multi-category-store" / "2019-Oct_first17434rows.csv"
    ingest_files([path], IngestConfig(layout=BUILTIN_LAYOUTS["rees46"]), store)
    prepare_events(store, PrepareConfig())
    events = store.table("events_prepared")
    data = (
        events.order_by(["session_id", "ts", "source_file_id", "source_row"])
        .select("user_id", "session_id", "action", "ts")
        .to_pyarrow()
        .to_pylist()
    )
    t0 = min(r["ts"] for r in data)
    rows = [
        (r["user_id"], r["session_id"], "x", r["action"], (r["ts"] - t0).total_seconds(), "c", 1.0)
        for r in data
    ]
    for by in ("session", "user"):
        result = funnel(events, FunnelConfig(by=by))
        counts, medians = _hand_funnel(rows, ("view", "cart", "purchase"), by, 86_400)
        assert [s.n for s in result.overall.steps] == counts
        assert counts[2] > 0  # the slice has purchases: the check is not vacuous
        for step, median in zip(result.overall.steps[1:], medians[1:], strict=True):
            assert step.median_seconds_from_previous == pytest.approx(median)


@pytest.mark.parametrize("by", ["session", "user"])
def test_several_breakdowns_from_one_pass_equal_one_funnel_each(make_events, store, by):
    rng = random.Random(11)
    actions = ["view", "view", "view", "cart", "purchase", "search"]
    rows = []
    for _i in range(600):
        user = f"u{rng.randrange(40)}"
        session = f"{user}#{rng.randrange(3)}"
        category = rng.choice(["a", "b", "c", None])
        rows.append(
            (user, session, "x", rng.choice(actions), rng.randrange(200_000), category, 1.0)
        )
    events = make_events(rows)
    # u0..u29 have a segment; the others fall into "unknown".
    users = [f"u{i}" for i in range(30)]
    segments = store.write_arrow(
        "segments", pa.table({"user_id": users, "segment": [f"s{i % 4}" for i in range(30)]})
    )
    config = FunnelConfig(by=by, window_seconds=50_000, max_groups=3)
    views = funnel_breakdowns(events, config, ("category", "segment"), segments)
    for breakdown in ("category", "segment"):
        alone = funnel(events, config.model_copy(update={"breakdown": breakdown}), segments)
        assert views[breakdown] == alone
        assert len(alone.groups) == 3  # the cut to max_groups is part of what is compared
    assert funnel_breakdowns(events, config, ())["none"] == funnel(events, config)
    with pytest.raises(InputError, match="needs a segments table"):
        funnel_breakdowns(events, config, ("segment",))
