"""ALS / BPR specifics (the shared contract is in test_contract.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shopseq.errors import ArtifactError, InputError
from shopseq.nextitem import RankingConfig, rank_cases
from shopseq.nextitem.baselines import Popularity
from shopseq.nextitem.mf import (
    ALS,
    BPR,
    ALSConfig,
    BPRConfig,
    fold_in_least_squares,
    interaction_matrix,
)
from shopseq.sequences import Sequences

N_GROUPS, GROUP = 6, 4
N_ITEMS = 1 + N_GROUPS * GROUP + 1  # item 25 is in the vocabulary but never in training


def grouped_data(n: int = 300, seed: int = 0) -> Sequences:
    """Each sequence draws 3 items of one group of 4 (items 1-4, 5-8, ...)."""
    rng = np.random.default_rng(seed)
    lists = []
    for _ in range(n):
        group = int(rng.integers(N_GROUPS))
        lists.append((1 + group * GROUP + rng.choice(GROUP, 3, replace=False)).tolist())
    return Sequences.from_lists(lists)


@pytest.fixture(params=["als", "bpr"])
def model(request: pytest.FixtureRequest) -> ALS | BPR:
    if request.param == "als":
        return ALS(ALSConfig(factors=8)).fit(grouped_data(), N_ITEMS)
    return BPR(BPRConfig(factors=8)).fit(grouped_data(), N_ITEMS)


def test_hand_written_fold_in_equals_implicits_als_solve() -> None:
    als = ALS(ALSConfig(factors=8, alpha=5.0, regularization=0.3)).fit(grouped_data(), N_ITEMS)
    histories = Sequences.from_lists([[1, 2, 2], [5], [], [9, 13, 17, 21], [-1, 3]])
    weights = interaction_matrix(histories, N_ITEMS, "log")
    assert als.item_factors_ is not None
    scaled = weights.copy()
    scaled.data *= 5.0
    ours = fold_in_least_squares(scaled, als.item_factors_, 0.3)
    np.testing.assert_allclose(ours, als.user_factors(histories), rtol=1e-3, atol=1e-5)
    assert np.all(ours[2] == 0)  # an empty history folds in to the zero vector


def test_fold_in_batches_give_the_same_vectors_as_one_batch() -> None:
    rng = np.random.default_rng(1)
    factors = rng.normal(size=(40, 5))
    weights = sp.random(2500, 40, density=0.1, format="csr", random_state=2) * 3
    whole = fold_in_least_squares(weights, factors, 0.5)
    parts = np.vstack([fold_in_least_squares(weights[i : i + 7], factors, 0.5) for i in (0, 7, 14)])
    np.testing.assert_allclose(whole[:21], parts, rtol=1e-5, atol=1e-6)


def test_interaction_matrix_counts_and_keeps_last_events() -> None:
    seqs = Sequences.from_lists([[3, 3, 0, -1, 4, 3], [2]])
    counts = interaction_matrix(seqs, 6, "count").toarray()
    assert counts[0].tolist() == [0, 0, 0, 3, 1, 0]
    assert interaction_matrix(seqs, 6, "binary").toarray()[0].tolist() == [0, 0, 0, 1, 1, 0]
    last_two = interaction_matrix(seqs, 6, "count", history_len=2).toarray()
    assert last_two[0].tolist() == [0, 0, 0, 1, 1, 0]
    assert last_two[1].tolist() == [0, 0, 1, 0, 0, 0]


def test_history_len_ignores_older_events(model: ALS | BPR) -> None:
    short = type(model)(model.config.model_copy(update={"history_len": 1}))
    short.item_factors_, short.n_items_, short.backoff_ = (
        model.item_factors_,
        model.n_items_,
        model.backoff_,
    )
    scores = short.score(Sequences.from_lists([[5, 9, 1], [1]]))
    np.testing.assert_array_equal(scores[0], scores[1])


def test_scores_the_history_group_first(model: ALS | BPR) -> None:
    # A history never seen in training (a new owner) is scored from its items alone.
    recs = model.recommend(Sequences.from_lists([[5, 6], [21]]), 3)
    assert set(recs.items[0, :2].tolist()) == {7, 8}
    assert set(recs.items[1].tolist()) == {22, 23, 24}


def test_similar_items_are_the_same_group_never_itself(model: ALS | BPR) -> None:
    similar = model.similar_items(np.array([1, 10, 24]), 3)
    assert [set(row) for row in similar.items.tolist()] == [{2, 3, 4}, {9, 11, 12}, {21, 22, 23}]
    assert np.all(np.diff(similar.scores, axis=1) <= 0)


def test_similar_items_of_an_item_never_trained_is_empty() -> None:
    # ALS solves an item without interactions to the zero vector: no direction, no neighbours.
    als = ALS(ALSConfig(factors=8)).fit(grouped_data(), N_ITEMS)
    similar = als.similar_items(np.array([25, 1]), 3)
    assert similar.items[0].tolist() == [-1, -1, -1]
    assert 25 not in similar.items[1]


def test_similar_items_rejects_padding_and_out_of_range(model: ALS | BPR) -> None:
    with pytest.raises(InputError, match=r"item index 0 is outside \[1, 25\]"):
        model.similar_items(np.array([3, 0]), 2)
    with pytest.raises(InputError, match="item index 26"):
        model.similar_items(np.array([26]), 2)


def test_fit_rejects_items_beyond_n_items() -> None:
    with pytest.raises(InputError, match="item index 24 but n_items is 10"):
        ALS().fit(grouped_data(), 10)


def test_load_rejects_another_models_directory(tmp_path: Path) -> None:
    ALS(ALSConfig(factors=4)).fit(grouped_data(), N_ITEMS).save(tmp_path / "m")
    with pytest.raises(ArtifactError, match="holds a 'ALS' model, not BPR"):
        BPR.load(tmp_path / "m")
    with pytest.raises(ArtifactError, match="cannot load ALS"):
        ALS.load(tmp_path / "missing")


def test_bpr_embeddings_drop_the_bias_column() -> None:
    bpr = BPR(BPRConfig(factors=8)).fit(grouped_data(), N_ITEMS)
    assert bpr.item_factors_ is not None
    assert bpr.item_factors_.shape == (N_ITEMS, 9)
    assert bpr._embeddings().shape == (N_ITEMS, 8)


@pytest.mark.realdata
@pytest.mark.slow
def test_als_and_bpr_beat_popularity_on_beauty_validation(shared_data: Path) -> None:
    from shopseq.sequences.benchmark_files import read_user_sequence_lines

    split = read_user_sequence_lines(shared_data / "sequential-benchmarks/s3rec/Beauty.txt")
    n_items = split.item_vocab.size
    cases = split.valid.subset(np.arange(0, len(split.valid), 7))
    config = RankingConfig(exclude_seen=True, n_bootstrap=0)
    pop = rank_cases(Popularity().fit(split.train, n_items), cases, n_items, config)
    for model in (ALS(ALSConfig(factors=64)), BPR(BPRConfig(factors=64))):
        result = rank_cases(model.fit(split.train, n_items), cases, n_items, config)
        assert result.metrics["NDCG@10"] > 3 * pop.metrics["NDCG@10"]


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_the_runs_threads_reach_implicit_and_the_leaderboard_row(name: str) -> None:
    from shopseq.runs.nextitem import fit_model, model_config
    from shopseq.runtime import TorchRuntime

    config = model_config(name, {}, n_epochs=None, seed=0, threads=2)
    assert getattr(config, "threads") == 2  # noqa: B009 (configs are typed BaseModel)
    # An explicit parameter wins over the shared option.
    explicit = model_config(name, {"threads": 1}, n_epochs=None, seed=0, threads=2)
    assert getattr(explicit, "threads") == 1  # noqa: B009
    fitted = fit_model(name, config, TorchRuntime(threads=2), grouped_data(), N_ITEMS, None)
    assert fitted.info["threads"] == 2
