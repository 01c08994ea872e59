"""The approximate top-k: exact at a high ef on small data, valid items, seen ones excluded."""

from __future__ import annotations

import numpy as np
import pytest

from shopseq.errors import InputError
from shopseq.metrics.ranking import top_k
from shopseq.sequences import Sequences

pytest.importorskip("faiss", reason="the approximate top-k needs the 'ann' extra (faiss-cpu)")

from shopseq.nextitem.approximate import ApproximateTopK, IndexConfig
from shopseq.nextitem.gru4rec import GRU4Rec, GRU4RecConfig


def _exact(weight: np.ndarray, bias: np.ndarray, states: np.ndarray) -> np.ndarray:
    product: np.ndarray = states.astype(np.float64) @ weight.T.astype(np.float64) + bias
    scores = product.astype(np.float32)
    scores[:, 0] = -np.inf
    return scores


def test_high_ef_returns_the_exact_top_k_with_bias_and_seen_items() -> None:
    rng = np.random.default_rng(0)
    n_items, d = 2001, 16
    weight = rng.normal(size=(n_items, d)).astype(np.float32)
    bias = rng.normal(scale=2.0, size=n_items).astype(np.float32)  # large: it must count
    states = rng.normal(size=(20, d)).astype(np.float32)
    seen = Sequences.from_lists([rng.integers(1, n_items, size=int(n)) for n in range(20)])
    index = ApproximateTopK(weight, bias, IndexConfig(m=16, ef_construction=200))
    got = index.search(states, 10, seen=seen, ef=n_items)
    want = top_k(_exact(weight, bias, states), 10, seen=seen)
    assert np.array_equal(got.items, want.items)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-5)
    for row in range(len(seen)):
        history = seen.items[seen.offsets[row] : seen.offsets[row + 1]]
        assert not np.isin(got.items[row], history).any()
    assert ((got.items >= 1) & (got.items < n_items)).all()  # never padding, never out of range


def test_low_ef_still_returns_distinct_valid_items_and_checks_arguments() -> None:
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(500, 8)).astype(np.float32)
    index = ApproximateTopK(weight, None, IndexConfig(m=8, ef_search=1))
    got = index.search(rng.normal(size=(5, 8)).astype(np.float32), 20)
    for row in got.items:
        assert len(set(row.tolist())) == 20 and ((row >= 1) & (row < 500)).all()
    short = ApproximateTopK(weight[:4], None).search(np.ones((1, 8), np.float32), 10)
    assert sorted(short.items[0][:3].tolist()) == [1, 2, 3] and (short.items[0][3:] == -1).all()
    with pytest.raises(InputError):
        index.search(np.ones((1, 8), np.float32), 0)
    with pytest.raises(InputError):
        index.search(np.ones((2, 8), np.float32), 3, seen=Sequences.from_lists([[1]]))


def test_gru4rec_index_agrees_with_its_exact_recommend() -> None:
    n_items = 1500
    rng = np.random.default_rng(2)
    train = Sequences.from_lists([rng.integers(1, n_items, size=10) for _ in range(150)])
    model = GRU4Rec(GRU4RecConfig(layers=(24,), n_epochs=1, n_sample=64)).fit(train, n_items)
    history = Sequences.from_lists([rng.integers(1, n_items, size=6)])
    state = model.advance(model.initial_state(), history.items)
    got = model.item_index(IndexConfig(ef_construction=200)).search(
        state[-1].numpy(), 10, seen=history, ef=n_items
    )
    want = model.recommend(history, 10)
    assert np.array_equal(got.items, want.items)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-5)


def test_ivf_scanning_every_cell_is_exact() -> None:
    rng = np.random.default_rng(3)
    n_items, d = 3001, 12
    weight = rng.normal(size=(n_items, d)).astype(np.float32)
    bias = rng.normal(size=n_items).astype(np.float32)
    states = rng.normal(size=(8, d)).astype(np.float32)
    index = ApproximateTopK(weight, bias, IndexConfig(kind="ivf", nlist=16, nprobe=2))
    got = index.search(states, 10, ef=16)  # nprobe = every cell: an exhaustive scan
    want = top_k(_exact(weight, bias, states), 10)
    assert np.array_equal(got.items, want.items)
    few = index.search(states, 10)  # 2 of 16 cells: approximate, still valid distinct items
    for row in few.items:
        valid = row[row > 0]
        assert len(set(valid.tolist())) == len(valid) and (valid < n_items).all()
