"""The one torch training loop: best epoch kept, checkpoints, time budget, runtime state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from shopseq.artifacts import read_json
from shopseq.errors import ShopseqError
from shopseq.runtime import TorchRuntime
from shopseq.training import TrainingConfig, seeded_torch, train

# Validation score after epoch e (1-based): best after epoch 2.
SCORE_AFTER_EPOCH = {1: 0.2, 2: 0.9, 3: 0.5, 4: 0.1, 5: 0.0}


class _CountingTask:
    """Every step adds 1 to the net's only weight."""

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


def _net() -> nn.Module:
    net = nn.Module()
    net.w = nn.Parameter(torch.zeros(1))
    return net


def _validate(net: nn.Module):
    def validate() -> float:
        assert not net.training and not torch.is_grad_enabled()  # eval mode, no autograd
        return SCORE_AFTER_EPOCH[round(float(net.w))]

    return validate


def test_train_keeps_best_epoch_and_stops_after_patience(tmp_path: Path) -> None:
    net = _net()
    checkpoint = tmp_path / "best.pt"
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    report = train(
        _CountingTask(net),
        net,
        optimizer,
        TrainingConfig(n_epochs=5, patience=2),
        TorchRuntime(checkpoint=checkpoint),
        validate=_validate(net),
        name="t",
    )

    assert [r.epoch for r in report.epochs] == [1, 2, 3, 4]
    assert report.stopped_early
    assert report.best_epoch == 2
    assert report.best_valid_score == pytest.approx(0.9)
    assert [r.valid_score for r in report.epochs] == pytest.approx([0.2, 0.9, 0.5, 0.1])
    assert float(net.w.detach()) == 2.0  # the weights of epoch 2, not of the last epoch (4)
    assert float(torch.load(checkpoint, weights_only=True)["w"]) == 2.0
    logged = read_json(tmp_path / "best.pt.epochs.json")
    assert [e["valid_score"] for e in logged] == [r.valid_score for r in report.epochs]
    assert all(
        r.threads == torch.get_num_threads() and r.sequences_per_s > 0 for r in report.epochs
    )


def test_train_without_validation_keeps_last_epoch() -> None:
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    report = train(
        _CountingTask(net),
        net,
        optimizer,
        TrainingConfig(n_epochs=3),
        TorchRuntime(),
        validate=None,
        name="t",
    )
    assert report.best_epoch == 3 and not report.stopped_early
    assert report.best_valid_score is None
    assert float(net.w.detach()) == 3.0


def test_train_stops_at_the_time_budget_after_a_whole_epoch() -> None:
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    report = train(
        _CountingTask(net),
        net,
        optimizer,
        TrainingConfig(n_epochs=5, patience=None),
        TorchRuntime(max_train_seconds=1e-9),
        validate=_validate(net),
        name="t",
    )
    assert [r.epoch for r in report.epochs] == [1] and report.stopped_early


def test_train_rejects_nan_loss() -> None:
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    task = _CountingTask(net, loss_value=float("nan"))
    with pytest.raises(ShopseqError, match=r"training loss became nan in epoch 1; lower the"):
        train(task, net, optimizer, TrainingConfig(), TorchRuntime(), validate=None, name="t")


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


def test_runtime_rejects_an_unknown_device() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must be a torch device such as 'cpu'"):
        TorchRuntime(device="gpu0")
    assert TorchRuntime(device="cuda:1").device == "cuda:1"
