from __future__ import annotations

import pytest

from shopseq.analyze.transitions import TransitionConfig, transitions


def test_transition_matrices_on_a_known_log(make_events):
    rows = [
        ("u1", "s1", "a", "view", 0, "c1", 1.0),
        ("u1", "s1", "b", "view", 1, "c1", 1.0),
        ("u1", "s1", "b", "cart", 2, "c2", 1.0),
        ("u1", "s1", "b", "purchase", 3, "c2", 1.0),
        ("u2", "s2", "a", "search", 0, None, 1.0),
        ("u2", "s2", "a", "view", 1, "c1", 1.0),
        ("u2", "s3", "a", "view", 5000, "c3", 1.0),
    ]
    result = transitions(make_events(rows), TransitionConfig(max_categories=2))
    actions = result.actions
    assert actions.rows == ("start", "view", "search", "cart", "purchase")
    assert actions.columns == ("view", "search", "cart", "purchase", "exit")
    # view -> view 1, view -> cart 1, view -> exit 2 (s2 and s3 end on a view)
    assert actions.counts[actions.rows.index("view")] == (1, 0, 1, 0, 2)
    assert actions.probability("view", "exit") == pytest.approx(0.5)
    assert actions.probability("start", "view") == pytest.approx(2 / 3)
    assert actions.probability("purchase", "exit") == pytest.approx(1.0)
    assert result.n_transitions == 4  # 3 in s1, 1 in s2
    cats = result.categories
    # c1 (3 events) and c2 (2) are the top 2; c3 becomes "other"; the missing one "unknown"
    assert cats.rows == ("start", "c1", "c2", "other", "unknown")
    assert cats.probability("c1", "c2") == pytest.approx(1 / 3)
    assert cats.probability("unknown", "c1") == pytest.approx(1.0)
    assert cats.probability("start", "other") == pytest.approx(1 / 3)
    for row in actions.probabilities + cats.probabilities:
        assert sum(row) == pytest.approx(1.0)


def test_transitions_without_start_and_exit(make_events):
    rows = [
        ("u1", "s1", "a", "view", 0, "c1", 1.0),
        ("u1", "s1", "a", "cart", 1, "c1", 1.0),
    ]
    result = transitions(make_events(rows), TransitionConfig(include_start_exit=False))
    assert result.actions.rows == ("view", "cart")
    assert result.actions.counts == ((0, 1), (0, 0))
    assert result.actions.probabilities[1] == (0.0, 0.0)
