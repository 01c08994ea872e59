"""Baseline-specific checks with values computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from shopseq.errors import ArtifactError, InputError
from shopseq.nextitem.baselines import (
    ItemKNN,
    ItemKNNConfig,
    MarkovChain,
    Popularity,
    PopularityConfig,
    SessionKNN,
    SessionKNNConfig,
)
from shopseq.sequences import Sequences

BACKOFF_TOL = 1e-5  # popularity back-off is <= 1e-6 per item


def test_popularity_counts_and_recent_window() -> None:
    train = Sequences.from_lists([[1, 1, 2], [3, 3, 3]])
    # from_lists gives ts = position: the window of 1 day covers everything here, so use real ts.
    train = Sequences(
        train.owner,
        train.offsets,
        train.items,
        train.actions,
        np.array([0, 0, 10 * 86_400, 0, 0, 10 * 86_400]),
        train.categories,
    )
    everything = Popularity().fit(train, 4).score(Sequences.from_lists([[]]))[0]
    np.testing.assert_allclose(everything[1:], [2, 1, 3], atol=BACKOFF_TOL)
    recent = Popularity(PopularityConfig(window_days=1)).fit(train, 4)
    np.testing.assert_allclose(
        recent.score(Sequences.from_lists([[]]))[0, 1:], [0, 1, 1], atol=BACKOFF_TOL
    )


def test_markov_chain_transition_probabilities_from_last_known_item() -> None:
    train = Sequences.from_lists([[1, 2], [1, 3], [1, 2, 4]])
    model = MarkovChain().fit(train, 5)
    scores = model.score(Sequences.from_lists([[4, 1], [1, -1], [4]]))
    np.testing.assert_allclose(scores[0, 1:], [0, 2 / 3, 1 / 3, 0], atol=BACKOFF_TOL)
    np.testing.assert_allclose(scores[1, 1:], [0, 2 / 3, 1 / 3, 0], atol=BACKOFF_TOL)  # -1 skipped
    # Item 4 has no successor: pure popularity back-off (item 1 most frequent).
    assert np.argmax(scores[2, 1:]) + 1 == 1 and scores[2, 1:].max() < BACKOFF_TOL


def test_item_knn_cosine_with_distance_and_direction_weights() -> None:
    train = Sequences.from_lists([[1, 2, 3]])
    model = ItemKNN(ItemKNNConfig(window=2, history_len=1)).fit(train, 4)
    scores = model.score(Sequences.from_lists([[1], [2]]))
    # Each item occurs once, so cosine divides by 1; 1->2 at distance 1, 1->3 at distance 2.
    np.testing.assert_allclose(scores[0, 1:], [0, 1.0, 0.5], atol=BACKOFF_TOL)
    # From 2: 3 follows (1.0), 1 precedes (backward weight 0.5).
    np.testing.assert_allclose(scores[1, 1:], [0.5, 0, 1.0], atol=BACKOFF_TOL)


def test_item_knn_keeps_only_n_neighbors_per_item() -> None:
    train = Sequences.from_lists([[1, 2, 3, 4, 5, 6]])
    model = ItemKNN(ItemKNNConfig(window=5, n_neighbors=2)).fit(train, 7)
    assert model.similarity_ is not None
    assert np.diff(model.similarity_.indptr).max() == 2


def test_session_knn_votes_with_cosine_similarity() -> None:
    train = Sequences.from_lists([[1, 2], [1, 3, 5], [4, 5]])
    model = SessionKNN(SessionKNNConfig(k=2)).fit(train, 6)
    scores = model.score(Sequences.from_lists([[1]]))[0]
    s0, s1 = 1 / math.sqrt(2), 1 / math.sqrt(3)  # cos([1], {1,2}), cos([1], {1,3,5})
    np.testing.assert_allclose(scores[1:], [s0 + s1, s0, s1, 0, s1], atol=BACKOFF_TOL)
    # With k=1 only the most similar session ({1, 2}) votes.
    top1 = SessionKNN(SessionKNNConfig(k=1)).fit(train, 6).score(Sequences.from_lists([[1]]))[0]
    np.testing.assert_allclose(top1[1:], [s0, s0, 0, 0, 0], atol=BACKOFF_TOL)


def test_session_knn_weights_recent_history_items_more() -> None:
    train = Sequences.from_lists([[1, 8], [2, 9]])
    model = SessionKNN(SessionKNNConfig(k=2)).fit(train, 10)
    scores = model.score(Sequences.from_lists([[1, 2]]))[0]
    assert scores[9] > scores[8]  # item 2 is the most recent, so its neighbour session wins


def test_fit_rejects_out_of_range_items() -> None:
    with pytest.raises(InputError, match="item index 5 but n_items is 5"):
        MarkovChain().fit(Sequences.from_lists([[1, 5]]), 5)


def test_load_rejects_another_models_directory(tmp_path: Path) -> None:
    MarkovChain().fit(Sequences.from_lists([[1, 2]]), 3).save(tmp_path / "m")
    with pytest.raises(ArtifactError, match="holds a 'MarkovChain' model, not ItemKNN"):
        ItemKNN.load(tmp_path / "m")
    with pytest.raises(ArtifactError, match="cannot load Popularity"):
        Popularity.load(tmp_path / "missing")
