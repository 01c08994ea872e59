"""Sequences, vocabularies, padding, windows and features on hand-checked data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from events_factory import load_events

from shopseq.errors import ArtifactError, UnknownIdError
from shopseq.prepare import PrepareConfig, prepare_events
from shopseq.schema import ACTION_CODES, Action
from shopseq.sequences import (
    SequenceConfig,
    Sequences,
    Vocabulary,
    fetch_events,
    leave_last_out,
    sliding_windows,
    user_features,
)
from shopseq.store import Store


def test_vocabulary_orders_by_frequency_and_round_trips(tmp_path: Path) -> None:
    vocab = Vocabulary.from_values("item", pa.array(["b", "a", "b", None, "c", "b", "a"]))
    assert vocab.ids.to_pylist() == ["b", "a", "c"]
    assert vocab.size == 4
    np.testing.assert_array_equal(vocab.encode(pa.array(["a", "zz", None, "c"])), [2, -1, -1, 3])
    assert vocab.decode(np.array([1, 0, -1, 3])) == ["b", None, None, "c"]
    vocab.save(tmp_path / "v.parquet")
    loaded = Vocabulary.load("item", tmp_path / "v.parquet")
    assert loaded.ids.to_pylist() == vocab.ids.to_pylist()
    with pytest.raises(UnknownIdError, match=r"item id 'zz' is not in the vocabulary \(3 known"):
        vocab.encode_one("zz")
    with pytest.raises(ArtifactError, match="cannot read item vocabulary"):
        Vocabulary.load("item", tmp_path / "missing.parquet")


def test_to_padded_left_pads_and_keeps_the_most_recent() -> None:
    seqs = Sequences.from_lists([[1, 2, 3, 4, 5], [7], [], [-1, 8]])
    np.testing.assert_array_equal(seqs.to_padded(3), [[3, 4, 5], [0, 0, 7], [0, 0, 0], [0, 0, 8]])


def test_prefixes_and_subset_select_the_right_events() -> None:
    seqs = Sequences.from_lists([[1, 2, 3, 4], [5, 6]])
    pre = seqs.prefixes(np.array([0, 1, 0]), np.array([3, 1, 0]), max_len=2)
    assert [list(pre.items_of(i)) for i in range(3)] == [[2, 3], [5], []]
    sub = seqs.subset(np.array([1, 0]))
    assert [list(sub.items_of(i)) for i in range(2)] == [[5, 6], [1, 2, 3, 4]]


def test_sliding_windows_cover_each_sequence_from_the_end() -> None:
    seqs = Sequences.from_lists([[1, 2, 3, 4, 5, 6, 7], [8, 9]])
    windows, owner = sliding_windows(seqs, window=3, stride=3)
    np.testing.assert_array_equal(windows, [[5, 6, 7], [2, 3, 4], [0, 0, 1], [0, 8, 9]])
    np.testing.assert_array_equal(owner, [0, 0, 0, 1])


def test_fetch_events_orders_by_time_then_lineage_and_encodes(store: Store) -> None:
    load_events(
        store,
        [
            ("u2", "i1", "view", 10),
            ("u1", "i2", "cart", 5),
            ("u1", "i1", "view", 5),
            ("u1", "i3", "purchase", 1),
        ],
    )
    events = fetch_events(store.table("events"), SequenceConfig())
    assert events.owner_ids.to_pylist() == ["u1", "u1", "u1", "u2"]
    assert events.item_ids.to_pylist() == ["i3", "i2", "i1", "i1"]  # tie at 5 s: file row order
    assert events.actions.tolist() == [
        ACTION_CODES[Action.PURCHASE],
        ACTION_CODES[Action.CART],
        ACTION_CODES[Action.VIEW],
        ACTION_CODES[Action.VIEW],
    ]
    np.testing.assert_array_equal(events.boundaries(), [0, 3, 4])


def test_collapse_repeats_and_action_filter(store: Store) -> None:
    load_events(
        store,
        [
            ("u1", "i1", "view", 1),
            ("u1", "i1", "cart", 2),
            ("u1", "i2", "view", 3),
            ("u1", "i2", "search", 4),
        ],
    )
    cfg = SequenceConfig(collapse_repeats=True, actions=(Action.VIEW, Action.CART))
    events = fetch_events(store.table("events"), cfg)
    assert events.item_ids.to_pylist() == ["i1", "i2"]


def test_time_gaps_restart_at_each_sequence(store: Store) -> None:
    load_events(
        store,
        [
            ("u1", "a", "view", 0),
            ("u1", "b", "view", 30),
            ("u1", "c", "view", 100),
            ("u2", "a", "view", 7),
            ("u2", "b", "view", 9),
        ],
    )
    split = leave_last_out(fetch_events(store.table("events"), SequenceConfig()))
    full = split.test.sequences
    np.testing.assert_array_equal(full.time_gaps(), [0, 30, 70, 0, 2])
    assert split.report.owners_too_short == 1  # u2 has 2 events: trains only


def test_user_features_use_only_events_before_the_cut(store: Store) -> None:
    day = 86_400
    load_events(
        store,
        [
            ("u1", "i1", "view", 0, "c1", 10.0),
            ("u1", "i1", "purchase", 60, "c1", 10.0, 2),
            ("u1", "i2", "purchase", 2 * day, "c2", 5.0, 1),
            ("u1", "i3", "purchase", 10 * day, "c2", 99.0, 1),
        ],
    )
    prepare_events(store, PrepareConfig())
    feats = user_features(store.table("events_prepared"), datetime(2024, 1, 4))
    row = feats.to_pyarrow().to_pylist()[0]
    assert row["frequency"] == 2
    assert row["monetary"] == pytest.approx(2 * 10.0 + 5.0)
    assert row["n_events"] == 3
    assert row["recency_days"] == pytest.approx(1.0)
    assert row["n_categories"] == 2
    assert row["share_purchase"] == pytest.approx(2 / 3)
