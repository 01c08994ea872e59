"""The shared torch training loop: early stopping keeps the best epoch's weights, checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from shopseq.artifacts import read_json
from shopseq.errors import ShopseqError
from shopseq.sequences import EvalCases, Sequences
from shopseq.training import TrainingConfig, seeded_torch, train

N_ITEMS = 12
# Rank of the validation target after epoch e (1-based): best after epoch 2.
RANK_AFTER_EPOCH = {1: 5, 2: 0, 3: 3, 4: 8, 5: 9}


class _CountingTask:
    """Every step adds 1 to the net's only weight; the score puts the target at a scheduled rank."""

    n_sequences = 1

    def __init__(self, net: nn.Module, loss_value: float = 1.0) -> None:
        self.net = net
        self.loss_value = loss_value

    def n_batches(self) -> int:
        return 1

    def batches(self, rng: np.random.Generator) -> Iterator[int]:
        yield 0

    def loss(self, batch: int) -> tuple[torch.Tensor, int]:
        return self.loss_value - self.net.w.sum(), 1

    def score(self, histories: Sequences) -> np.ndarray:
        rank = RANK_AFTER_EPOCH[round(float(self.net.w))]
        scores = np.zeros((len(histories), N_ITEMS), np.float32)
        scores[:, 2 : 2 + rank] = 1.0  # `rank` items above the target
        scores[:, 1] = 0.5
        return scores


def _valid() -> EvalCases:
    sequences = Sequences.from_lists([[11, 1]])
    return EvalCases(sequences, np.array([0]), np.array([1]), np.array([1], np.int32))


def _net() -> nn.Module:
    net = nn.Module()
    net.w = nn.Parameter(torch.zeros(1))
    return net


def test_train_keeps_best_epoch_and_stops_after_patience(tmp_path: Path) -> None:
    net = _net()
    checkpoint = tmp_path / "best.pt"
    config = TrainingConfig(
        n_epochs=5, patience=2, progress=False, valid_exclude_seen=False, checkpoint=checkpoint
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    report = train(_CountingTask(net), net, optimizer, config, _valid(), history_len=None, name="t")

    assert [r.epoch for r in report.epochs] == [1, 2, 3, 4]
    assert report.stopped_early
    assert report.best_epoch == 2
    assert report.best_valid_ndcg == pytest.approx(1.0)
    assert report.epochs[0].valid_ndcg == pytest.approx(1 / np.log2(7))
    assert float(net.w.detach()) == 2.0  # the weights of epoch 2, not of the last epoch (4)
    assert float(torch.load(checkpoint, weights_only=True)["w"]) == 2.0
    logged = read_json(tmp_path / "best.pt.epochs.json")
    assert [e["valid_ndcg"] for e in logged] == [r.valid_ndcg for r in report.epochs]
    assert all(
        r.threads == torch.get_num_threads() and r.sequences_per_s > 0 for r in report.epochs
    )


def test_train_without_validation_keeps_last_epoch() -> None:
    net = _net()
    config = TrainingConfig(n_epochs=3, progress=False)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    report = train(_CountingTask(net), net, optimizer, config, None, history_len=None, name="t")
    assert report.best_epoch == 3 and not report.stopped_early
    assert float(net.w.detach()) == 3.0


def test_train_rejects_nan_loss() -> None:
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    task = _CountingTask(net, loss_value=float("nan"))
    with pytest.raises(ShopseqError, match=r"training loss became nan in epoch 1; lower the"):
        train(
            task, net, optimizer, TrainingConfig(progress=False), None, history_len=None, name="t"
        )


def test_seeded_torch_restores_caller_state_and_threads() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    with seeded_torch(7, threads=1):
        inside = torch.rand(3)
        assert torch.get_num_threads() == 1
    with seeded_torch(7, threads=1):
        assert torch.equal(torch.rand(3), inside)
    assert torch.equal(torch.rand(3), expected)  # the caller's stream continued untouched
    assert torch.get_num_threads() == threads
