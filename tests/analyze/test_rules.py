from __future__ import annotations

import pytest

from shopseq.analyze.rules import RuleConfig, association_rules


def _basket(session, items, action="purchase"):
    return [("u", session, item, action, i, f"c{item}", 1.0) for i, item in enumerate(items)]


def _log():
    # 10 baskets: {a, b} x4, {a} x1, {b, c} x2, {c} x1, {d} x2; plus views that do not count
    rows = []
    baskets = [["a", "b"]] * 4 + [["a"]] + [["b", "c"]] * 2 + [["c"]] + [["d"]] * 2
    for i, items in enumerate(baskets):
        rows += _basket(f"s{i}", items)
        rows += _basket(f"s{i}", ["a", "d"], action="view")
    return rows


def test_rules_support_confidence_and_lift_match_hand_counts(make_events):
    config = RuleConfig(min_baskets=1, min_support=0.2, min_confidence=0.5, min_lift=0.0)
    result = association_rules(make_events(_log()), config)
    assert (result.n_baskets, result.n_baskets_total) == (10, 10)
    rules = {(r.antecedent, r.consequent): r for r in result.rules}
    # supports: a 0.5, b 0.6, c 0.3, ab 0.4, bc 0.2
    ab = rules[(("a",), ("b",))]
    assert (ab.n, ab.support) == (4, pytest.approx(0.4))
    assert ab.confidence == pytest.approx(0.4 / 0.5)
    assert ab.lift == pytest.approx(0.4 / 0.5 / 0.6)
    cb = rules[(("c",), ("b",))]
    assert cb.confidence == pytest.approx(0.2 / 0.3)
    assert cb.lift == pytest.approx(0.2 / 0.3 / 0.6)
    # b -> c has confidence 0.2 / 0.6 < 0.5: filtered out
    assert (("b",), ("c",)) not in rules
    assert [r.lift for r in result.rules] == sorted((r.lift for r in result.rules), reverse=True)


def test_rules_respect_min_lift_and_actions(make_events):
    events = make_events(_log())
    lifted = association_rules(
        events, RuleConfig(min_baskets=1, min_support=0.2, min_confidence=0.5, min_lift=1.2)
    )
    # lifts: a -> b and b -> a 1.33, c -> b 1.11
    assert {(r.antecedent, r.consequent) for r in lifted.rules} == {
        (("a",), ("b",)),
        (("b",), ("a",)),
    }
    # counting views too, every basket gets a and d: a -> d holds always (lift 1)
    every = association_rules(
        events,
        RuleConfig(actions=None, min_baskets=1, min_support=0.9, min_confidence=0.9, min_lift=0.0),
    )
    assert {(r.antecedent, r.consequent) for r in every.rules} == {
        (("a",), ("d",)),
        (("d",), ("a",)),
    }
    assert every.rules[0].lift == pytest.approx(1.0)


def test_rules_on_baskets_without_pairs_are_empty(make_events):
    result = association_rules(
        make_events(_basket("s1", ["a"])), RuleConfig(min_baskets=1, min_support=0.5)
    )
    assert result.rules == ()
    assert result.n_baskets == 1
    empty = association_rules(make_events([]), RuleConfig())
    assert (empty.n_baskets_total, empty.rules) == (0, ())


def test_rules_need_min_baskets_as_well_as_min_support(make_events):
    events = make_events(_log())
    config = RuleConfig(min_baskets=5, min_support=0.1, min_confidence=0.0, min_lift=0.0)
    assert association_rules(events, config).rules == ()  # {a, b} is in 4 baskets only
    config = config.model_copy(update={"min_baskets": 4})
    assert {r.n for r in association_rules(events, config).rules} == {4}


def test_rules_raise_the_minimum_count_when_too_many_pairs_are_frequent(make_events):
    events = make_events(_log())
    config = RuleConfig(min_baskets=1, min_support=0.1, min_confidence=0.0, min_lift=0.0)
    assert association_rules(events, config).min_count == 1
    # pairs: {a, b} in 4 baskets, {b, c} in 2; allowing one pair raises the count to 3
    capped = association_rules(events, config.model_copy(update={"max_pairs": 1}))
    assert capped.min_count == 3
    assert {(r.antecedent, r.consequent) for r in capped.rules} == {
        (("a",), ("b",)),
        (("b",), ("a",)),
    }
