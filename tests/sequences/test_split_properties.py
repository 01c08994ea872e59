"""Property-based checks: splits never lose or duplicate an event and never leak test into train."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from shopseq.schema import ACTION_CODES, Action
from shopseq.sequences import EventArrays, Split, leave_last_out, time_cut

BASE = datetime(2024, 1, 1)
BASE_S = int(BASE.replace(tzinfo=UTC).timestamp())
raw_events = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 8), st.integers(0, 500)), max_size=80
)


def _arrays(rows: list[tuple[int, int, int]]) -> EventArrays:
    # Sorted by (owner, ts, input order) as fetch_events returns them.
    ordered = sorted(enumerate(rows), key=lambda p: (f"u{p[1][0]}", p[1][2], p[0]))
    return EventArrays(
        owner_ids=pa.array([f"u{r[0]}" for _, r in ordered], pa.string()),
        item_ids=pa.array([f"i{r[1]}" for _, r in ordered], pa.string()),
        category_ids=pa.array([None] * len(ordered), pa.string()),
        actions=np.full(len(ordered), ACTION_CODES[Action.VIEW], np.int8),
        ts=np.array([r[2] + BASE_S for _, r in ordered], np.int64),
    )


def _decoded(split: Split, sequences, positions=None) -> Counter:
    owners = split.owner_vocab.decode(sequences.owner)
    items = split.item_vocab.decode(sequences.items)
    out = Counter()
    seq_of = np.repeat(np.arange(len(sequences)), sequences.lengths)
    for e in range(sequences.n_events):
        out[(owners[seq_of[e]], items[e], int(sequences.ts[e]))] += 1
    return out


def _targets(split: Split, cases) -> Counter:
    full = cases.sequences
    owners = split.owner_vocab.decode(full.owner[cases.seq_index])
    events = full.offsets[cases.seq_index] + cases.position
    items = split.item_vocab.decode(full.items[events])
    return Counter((o, i, int(full.ts[e])) for o, i, e in zip(owners, items, events, strict=True))


def _all(rows: list[tuple[int, int, int]]) -> Counter:
    return Counter((f"u{u}", f"i{i}", t + BASE_S) for u, i, t in rows)


def _check(split: Split, rows: list[tuple[int, int, int]]) -> None:
    train = _decoded(split, split.train)
    valid, test = _targets(split, split.valid), _targets(split, split.test)
    # Unknown test items decode to None: compare on (owner, ts) plus the item where known.
    test_known = Counter({k: v for k, v in test.items() if k[1] is not None})
    everything = _all(rows)
    n_unknown_test = sum(v for k, v in test.items() if k[1] is None)
    assert n_unknown_test == split.report.test_cold_start_items
    assert sum(train.values()) + sum(valid.values()) + sum(test.values()) == len(rows)
    assert train + valid + test_known <= everything
    assert sum((everything - train - valid - test_known).values()) == n_unknown_test
    # Histories end strictly before their target.
    for cases in (split.valid, split.test):
        hist = cases.histories()
        assert np.all(hist.lengths == cases.position)
    assert split.train_full.n_events == split.train.n_events + len(split.valid)


@settings(max_examples=80, deadline=None)
@given(rows=raw_events)
def test_leave_last_out_partitions_events_without_leakage(rows: list) -> None:
    split = leave_last_out(_arrays(rows))
    _check(split, rows)
    # Each evaluable owner contributes exactly its last event to test.
    lengths = Counter(f"u{u}" for u, _, _ in rows)
    assert len(split.test) == sum(1 for n in lengths.values() if n >= 3)


@settings(max_examples=80, deadline=None)
@given(rows=raw_events, cut=st.integers(0, 500), width=st.integers(0, 200))
def test_time_cut_partitions_events_and_train_is_before_the_cut(
    rows: list, cut: int, width: int
) -> None:
    cut_at = BASE + timedelta(seconds=cut)
    valid_at = cut_at - timedelta(seconds=width)
    split = time_cut(_arrays(rows), cut_at, valid_at)
    _check(split, rows)
    valid_s, cut_s = BASE_S + cut - width, BASE_S + cut
    assert np.all(split.train.ts < valid_s)
    test_ts = split.test.sequences.ts[
        split.test.sequences.offsets[split.test.seq_index] + split.test.position
    ]
    assert np.all(test_ts >= cut_s)
