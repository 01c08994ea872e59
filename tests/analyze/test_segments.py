from __future__ import annotations

import random
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from shopseq.analyze.segments import SegmentConfig, segment_features, segment_users
from shopseq.sequences import user_features

T0 = datetime(2024, 1, 1)  # the conftest's first moment

DAY = 86_400.0


def test_rfm_scores_rank_recency_and_score_buyers_only(make_events):
    rows = []
    # five users whose last event is 40, 30, 20, 10, 0 days before the end
    for i, days_ago in enumerate([40, 30, 20, 10, 0]):
        rows.append((f"u{i}", f"u{i}#1", "x", "view", (40 - days_ago) * DAY, "c", 1.0))
    # u3 buys once (10.0), u4 twice (5.0 + 30.0): F and M rank among these two buyers
    rows.append(("u3", "u3#1", "x", "purchase", 30 * DAY + 1, "c", 10.0))
    rows.append(("u4", "u4#1", "x", "purchase", 40 * DAY - 2, "c", 5.0))
    rows.append(("u4", "u4#1", "y", "purchase", 40 * DAY - 1, "c", 30.0))
    result = segment_users(make_events(rows), SegmentConfig(k=2))
    scores = {r["user_id"]: r for r in result.assignments.to_pylist()}
    assert [scores[f"u{i}"]["r_score"] for i in range(5)] == [1, 2, 3, 4, 5]
    assert [scores[f"u{i}"]["f_score"] for i in range(5)] == [0, 0, 0, 1, 5]
    assert [scores[f"u{i}"]["m_score"] for i in range(5)] == [0, 0, 0, 1, 5]
    assert result.rfm_grid[0][0] == 1  # u0: R 1, never bought
    assert result.rfm_grid[4][5] == 1  # u4: R 5, F 5
    assert sum(map(sum, result.rfm_grid)) == 5


def test_kmeans_separates_heavy_buyers_from_one_visit_browsers(make_events):
    rows = []
    for i in range(10):  # heavy buyers: 6 sessions each over the last weeks, a purchase in each
        for s in range(6):
            t = (60 + 5 * s) * DAY + i
            rows.append((f"b{i}", f"b{i}#{s}", "x", "view", t, "c", 20.0))
            rows.append((f"b{i}", f"b{i}#{s}", "x", "cart", t + 10, "c", 20.0))
            rows.append((f"b{i}", f"b{i}#{s}", "x", "purchase", t + 20, "c", 20.0))
    for i in range(30):  # one view, long ago
        rows.append((f"v{i}", f"v{i}#1", "y", "view", i * 100.0, "c", 5.0))
    result = segment_users(make_events(rows), SegmentConfig(k=2, seed=1))
    assert result.n_users == 40
    big, small = result.segments
    assert (big.n_users, small.n_users) == (30, 10)
    assert big.share == pytest.approx(0.75)
    assert (big.buyer_share, small.buyer_share) == (0.0, 1.0)
    assert small.frequency == pytest.approx(6.0)
    assert small.monetary == pytest.approx(120.0)
    assert big.name.endswith("browsers") and "lapsed" in big.name
    assert small.name.endswith("buyers") and "active" in small.name
    labels = {r["user_id"]: r["segment"] for r in result.assignments.to_pylist()}
    assert {labels[f"b{i}"] for i in range(10)} == {1}
    assert {labels[f"v{i}"] for i in range(30)} == {0}
    assert "assignments" not in result.to_dict()


def test_segments_of_an_empty_log(make_events):
    result = segment_users(make_events([]), SegmentConfig())
    assert (result.n_users, result.segments) == (0, ())


def test_segment_features_equal_the_user_feature_columns(store, rows_table):
    """The lean per-user query gives what segments used to read from user_features."""
    rng = random.Random(5)
    actions = ["view", "view", "cart", "purchase", "return", "search"]
    rows = []
    for _ in range(500):
        user = f"u{rng.randrange(30)}"
        price = rng.choice([None, 1.5, 20.0, 7.25])
        seconds = rng.randrange(0, 50 * 86_400) + rng.choice([0.0, 0.4])
        session, item = f"{user}#{rng.randrange(4)}", f"i{rng.randrange(9)}"
        category = rng.choice(["a", "b", None])
        rows.append((user, session, item, rng.choice(actions), seconds, category, price))
    table = rows_table(rows)
    # A missing quantity on some purchases (counted as 1) and missing session ids (one group).
    quantity = [rng.choice([None, 1, 3]) for _ in range(table.num_rows)]
    session = [None if i % 37 == 0 else s for i, s in enumerate(table["session_id"].to_pylist())]
    table = table.set_column(table.schema.get_field_index("quantity"), "quantity",
                             pa.array(quantity, pa.int32()))  # fmt: skip
    table = table.set_column(table.schema.get_field_index("session_id"), "session_id",
                             pa.array(session, pa.string()))  # fmt: skip
    events = store.write_arrow("events_prepared", table)
    columns = ["user_id", "recency_days", "frequency", "monetary", "n_sessions", "n_events",
               "share_cart", "share_purchase", "n_purchase", "n_return"]  # fmt: skip
    for as_of in (T0 + timedelta(days=50, seconds=1), T0 + timedelta(days=20, seconds=0.5)):
        lean = segment_features(events, as_of).select(columns).order_by("user_id").to_pyarrow()
        full = user_features(events, as_of).select(columns).order_by("user_id").to_pyarrow()
        assert lean.num_rows > 20
        for name in columns:
            if name == "monetary":  # a sum of floats: the engine may add in another order
                assert lean[name].to_pylist() == pytest.approx(full[name].to_pylist(), rel=1e-12)
            else:
                assert lean[name].to_pylist() == full[name].to_pylist(), name
