from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from pydantic import ValidationError

from shopseq.analyze.patterns import PatternConfig, mine_patterns, prefixspan


def _contains(seq, pattern, max_gap):
    """Brute force: some increasing positions match the pattern with gaps <= max_gap."""
    for positions in itertools.combinations(range(len(seq)), len(pattern)):
        if all(seq[p] == t for p, t in zip(positions, pattern, strict=True)) and all(
            max_gap is None or b - a <= max_gap for a, b in itertools.pairwise(positions)
        ):
            return True
    return False


def _csr(seqs):
    tokens = np.array([t for s in seqs for t in s], dtype=np.int64)
    offsets = np.cumsum([0] + [len(s) for s in seqs]).astype(np.int64)
    return tokens, offsets


@pytest.mark.parametrize("max_gap", [1, 2, None])
def test_prefixspan_matches_brute_force_on_random_sequences(max_gap):
    rng = random.Random(max_gap or 0)
    seqs = [[rng.randrange(4) for _ in range(rng.randrange(1, 7))] for _ in range(60)]
    tokens, offsets = _csr(seqs)
    found = dict(prefixspan(tokens, offsets, min_count=6, max_gap=max_gap, max_length=3))
    expected = {}
    for length in (1, 2, 3):
        for pattern in itertools.product(range(4), repeat=length):
            n = sum(_contains(s, pattern, max_gap) for s in seqs)
            if n >= 6:
                expected[pattern] = n
    assert found == expected


def _session(user, session, items, category="c"):
    return [(user, session, item, "view", i, category, 1.0) for i, item in enumerate(items)]


def test_mine_patterns_finds_a_planted_sequence_with_its_support(make_events):
    rows = []
    for i in range(10):  # a > b > c planted in 10 of 20 sessions, with noise between a and b
        rows += _session(f"u{i}", f"s{i}", ["a", f"x{i}", "b", "c"])
    for i in range(10, 20):
        rows += _session(f"u{i}", f"s{i}", ["c", "b", "a", "a"])
    config = PatternConfig(min_sessions=1, min_support=0.5, max_gap=2, min_length=3, max_length=3)
    result = mine_patterns(make_events(rows), config)
    assert result.n_sequences == result.n_sequences_total == 20
    assert not result.sampled
    assert [(p.tokens, p.n, p.support) for p in result.patterns] == [
        (("a", "b", "c"), 10, 0.5),
        (("c", "b", "a"), 10, 0.5),
    ]
    # gap 1 breaks a > b (x sits between them); repeats collapse (a a -> a)
    tight = mine_patterns(
        make_events(rows), PatternConfig(min_sessions=1, min_support=0.5, max_gap=1)
    )
    expected = {("b", "c"), ("c", "b"), ("b", "a"), ("c", "b", "a")}
    assert {p.tokens for p in tight.patterns} == expected


def test_mine_patterns_samples_a_reproducible_subset(make_events):
    rows = []
    for i in range(50):
        rows += _session(f"u{i}", f"s{i}", ["a", "b"])
    events = make_events(rows)
    config = PatternConfig(max_sequences=20, min_sessions=1, min_support=0.5, token="item")
    first, second = mine_patterns(events, config), mine_patterns(events, config)
    assert (first.n_sequences, first.n_sequences_total) == (20, 50)
    assert first.sampled
    assert first.patterns == second.patterns
    assert first.patterns[0].tokens == ("a", "b")
    assert first.patterns[0].n == 20


def test_pattern_config_rejects_inverted_lengths():
    with pytest.raises(ValidationError, match="must not exceed max_length"):
        PatternConfig(min_length=4, max_length=2)
