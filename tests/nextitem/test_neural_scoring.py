"""The fast scoring paths of SASRec and GRU4Rec give the scores of the plain ones.

The reference functions below are the scoring code as it was before the latency work (module
calls step by step, a fresh (B, n_items) product copied into the output): the optimised paths must
reproduce them exactly for one history, and for batches to float32 rounding (``BATCH_TOL``), on
fixed fitted models. Both multiply the
final states by the item matrix in one layout, a contiguous (d, n_items) copy: the product against
the row-major (n_items, d) matrix read transposed sums the same d terms in another order, so it
agrees only to float32 rounding, which ``test_item_layout_changes_scores_only_by_rounding`` bounds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopseq.metrics.ranking import top_k
from shopseq.nextitem.gru4rec import GRU4Rec, GRU4RecConfig, GRU4RecNet
from shopseq.nextitem.neural import ItemMatrix, TorchNextItemModel
from shopseq.nextitem.sasrec import SASRec, SASRecConfig, SASRecNet
from shopseq.runtime import TorchRuntime
from shopseq.sequences import Sequences

N_ITEMS = 3001
# A batch's kernels are chosen by its shape, and the fast path batches histories differently from
# the reference; on some CPUs (this machine's AMD EPYC with torch 2.13's CPU build) that rounds a
# few scores apart by an ulp or two (measured at most 1.2e-7 on scores of about 0.3), on others it
# is bit for bit. One history is compared exactly.
BATCH_TOL = {"rtol": 1e-6, "atol": 1e-6}


@torch.no_grad()
def reference_sasrec_scores(net: SASRecNet, histories: Sequences, config: SASRecConfig):
    out = np.empty((len(histories), N_ITEMS), dtype=np.float32)
    padded = histories.to_padded(config.max_len)
    for start in range(0, len(histories), config.score_batch):
        items = torch.from_numpy(padded[start : start + config.score_batch].astype(np.int64))
        used = (items > 0).any(dim=0).nonzero()
        width = config.max_len - int(used[0]) if len(used) else 1
        last = net(items[:, -width:])[:, -1, :]
        out[start : start + len(items)] = (last @ net.item_emb.weight.T.contiguous()).numpy()
    out[:, 0] = -np.inf
    return out


@torch.no_grad()
def reference_gru4rec_scores(net: GRU4RecNet, histories: Sequences, config: GRU4RecConfig):
    out = np.empty((len(histories), N_ITEMS), dtype=np.float32)
    padded = histories.to_padded(config.max_len)
    for start in range(0, len(histories), config.score_batch):
        items = torch.from_numpy(padded[start : start + config.score_batch].astype(np.int64))
        hidden = net.init_hidden(len(items))
        present = (items > 0).any(dim=0).nonzero()
        first = int(present[0]) if len(present) else items.shape[1]
        for t in range(first, items.shape[1]):
            valid = (items[:, t] > 0).unsqueeze(1)
            new = net.step(items[:, t], hidden)
            hidden = [torch.where(valid, n, h) for n, h in zip(new, hidden, strict=True)]
        scores = hidden[-1] @ net.Wy.weight.T.contiguous() + net.By.weight.T
        out[start : start + len(items)] = scores.numpy()
    out[:, 0] = -np.inf
    return out


def _histories(seed: int = 1) -> Sequences:
    """Histories of every awkward kind: empty, one item, unknown items, longer than max_len."""
    rng = np.random.default_rng(seed)
    lists: list[list[int]] = [[], [5], [-1], [-1, 7, -1], list(range(1, 80))]
    for length in rng.integers(1, 70, size=40):
        seq = rng.integers(1, N_ITEMS, size=length)
        seq[rng.random(length) < 0.1] = -1  # unknown items inside a history
        lists.append(seq.tolist())
    return Sequences.from_lists(lists)


def _train(seed: int = 0) -> Sequences:
    rng = np.random.default_rng(seed)
    return Sequences.from_lists([rng.integers(1, N_ITEMS, size=12) for _ in range(200)])


MODELS = [
    ("sasrec", lambda: SASRec(SASRecConfig(max_len=30, n_epochs=1, score_batch=16, seed=3))),
    (
        "sasrec-post-ln-2-heads",
        lambda: SASRec(
            SASRecConfig(
                max_len=30, n_epochs=1, pre_ln=False, n_heads=2, hidden_size=32, score_batch=7
            )
        ),
    ),
    ("gru4rec", lambda: GRU4Rec(GRU4RecConfig(n_epochs=1, max_len=40, score_batch=16))),
    (
        "gru4rec-2-layers-embedding",
        lambda: GRU4Rec(
            GRU4RecConfig(
                n_epochs=1,
                layers=(48, 24),
                constrained_embedding=False,
                embedding=16,
                optimizer="adam",
                score_batch=9,
            )
        ),
    ),
]


@pytest.fixture(scope="module", params=MODELS, ids=[name for name, _ in MODELS])
def fitted(request: pytest.FixtureRequest) -> TorchNextItemModel:
    return request.param[1]().fit(_train(), N_ITEMS)


def _reference(model: TorchNextItemModel, histories: Sequences) -> np.ndarray:
    # At the model's thread count: a product split over 2 threads rounds the last items apart.
    previous = torch.get_num_threads()
    torch.set_num_threads(model.runtime.threads)
    try:
        if isinstance(model, SASRec):
            return reference_sasrec_scores(model.net_, histories, model.config)
        return reference_gru4rec_scores(model.net_, histories, model.config)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_scores_identical_to_reference(fitted, threads: int) -> None:
    histories = _histories()
    model = type(fitted)(fitted.config, TorchRuntime(threads=threads))
    model.net_, model.n_items_ = fitted.net_, fitted.n_items_
    got = model.score(histories)
    want = _reference(model, histories)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, **BATCH_TOL)


def test_single_history_scores_and_recommendations_identical(fitted) -> None:
    histories = _histories(seed=2)
    for i in range(len(histories)):
        one = histories.subset(np.array([i]))
        want = _reference(fitted, one)
        np.testing.assert_array_equal(fitted.score(one), want)
        got = fitted.recommend(one, 10)
        expected = top_k(want, 10, seen=one)
        np.testing.assert_array_equal(got.items, expected.items)
        np.testing.assert_array_equal(got.scores, expected.scores)


def test_scoring_leaves_the_caller_thread_count(fitted) -> None:
    previous = torch.get_num_threads()
    fitted.score(_histories())
    assert torch.get_num_threads() == previous


def test_item_layout_changes_scores_only_by_rounding(fitted) -> None:
    # Against the plain product (row-major matrix read transposed) for the same states: a d-term
    # float32 dot product summed in another order differs by at most about d * 2**-24 *
    # sum_j |s_j w_j| (Higham's bound); the bias is added the same way in both.
    net = fitted.net_
    if isinstance(fitted, SASRec):
        weight, bias = net.item_emb.weight, None
    else:
        weight, bias = net.Wy.weight, net.By.weight
    items = ItemMatrix(weight, bias)
    generator = torch.Generator().manual_seed(5)
    for rows in (1, 1, 2, 64):  # one history and batches: the kernels differ by batch size
        states = torch.randn(rows, weight.shape[1], generator=generator)
        got = np.empty((rows, N_ITEMS), dtype=np.float32)
        items.scores_into(got, states)
        with torch.no_grad():
            plain = states @ weight.T + (0 if bias is None else bias.T)
            bound = weight.shape[1] * 2.0**-24 * (states.abs() @ weight.abs().T)
        error = np.abs(got - plain.numpy())
        assert (error <= bound.numpy()).all()
        assert np.abs(got).max() > 0.01  # real scores, not zeros


def test_item_matrix_follows_weight_changes(fitted) -> None:
    histories = _histories(seed=4)
    model = type(fitted)(fitted.config)
    model.net_ = type(fitted.net_)(N_ITEMS, fitted.config)
    model.net_.load_state_dict(fitted.net_.state_dict())
    model.net_.eval()
    model.n_items_ = N_ITEMS
    before = model.score(histories)
    np.testing.assert_array_equal(before, fitted.score(histories))
    table = model.net_.item_emb.weight if isinstance(model, SASRec) else model.net_.Wy.weight
    with torch.no_grad():
        table[7].mul_(-3.0)  # an in-place write, as an optimiser step makes
    after = model.score(histories)
    assert not np.array_equal(after[:, 7], before[:, 7])
    np.testing.assert_allclose(after, _reference(model, histories), **BATCH_TOL)
    model.net_.load_state_dict(fitted.net_.state_dict())  # back to the fitted weights
    np.testing.assert_array_equal(model.score(histories), before)


@pytest.mark.parametrize("layers", [(24,), (20, 16)])
def test_gru4rec_incremental_state_gives_the_scores_of_the_full_run(layers: tuple[int, ...]):
    model = GRU4Rec(GRU4RecConfig(layers=layers, max_len=80, n_epochs=1, n_sample=64, seed=2))
    model.fit(_train(), N_ITEMS)
    histories = _histories()
    rng = np.random.default_rng(5)
    for i in range(len(histories)):
        history = histories.items[histories.offsets[i] : histories.offsets[i + 1]]
        state = model.initial_state()
        cut = 0
        while cut < len(history):  # events arrive in chunks of 1-4, as a service receives them
            step = int(rng.integers(1, 5))
            state = model.advance(state, history[cut : cut + step])
            cut += step
        one = histories.subset(np.array([i]))
        assert np.array_equal(model.score_state(state), model.score(one)), f"history {i}"
    before = model.initial_state()
    model.advance(before, np.array([3, 4]))
    assert all(torch.equal(h, torch.zeros_like(h)) for h in before)  # advance copies


@pytest.mark.parametrize("pre_ln", [True, False])
def test_sasrec_eval_path_without_padding_is_the_general_arithmetic(pre_ln: bool) -> None:
    # A window with an event at every position takes SASRecNet's eval-only path (no dropout
    # calls, no padding mask); the general path, reached in training mode with dropout 0, does
    # the same arithmetic with those no-op operations, so the states must be bit for bit equal.
    config = SASRecConfig(max_len=30, n_heads=2, hidden_size=32, dropout=0.0, pre_ln=pre_ln)
    torch.manual_seed(0)
    net = SASRecNet(N_ITEMS, config)
    rng = np.random.default_rng(0)
    windows = torch.from_numpy(rng.integers(1, N_ITEMS, size=(3, 30)))  # no padding
    with torch.no_grad():
        fast = net.eval()(windows)
        general = net.train()(windows)
        padded = net.eval()(torch.cat([torch.zeros(3, 1, dtype=windows.dtype), windows[:, 1:]], 1))
    torch.testing.assert_close(fast, general, rtol=0, atol=0)
    assert not torch.equal(padded[:, -1], fast[:, -1])  # the windows differ: so do the states
