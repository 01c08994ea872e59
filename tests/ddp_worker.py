"""A toy fit for the data-parallel tests: run by torchrun (one process per rank) or in-process.

A linear score over a small embedding (gradients travel densely in the flat buffer), a large
sparse embedding (sent by gloo's sparse all-reduce) and a dense weight, trained with plain SGD on
17 examples in order. With per-rank batches of 4 over interleaved shards, the union of the ranks'
batches of a step is the single process's batch of 8 (the last step has one example, on rank 0
only), so two processes must end at the single process's weights.

Usage under torchrun: ``ddp_worker.py OUT_DIR``; writes ``OUT_DIR/rank<r>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shopseq.distributed import process_group
from shopseq.runtime import DistributedConfig, TorchRuntime
from shopseq.training import TrainingConfig, seeded_torch, train

N_EXAMPLES = 17
SMALL_ROWS, LARGE_ROWS, DIM = 7, 10_001, 100  # LARGE: 1,000,100 values, above the dense limit
# Validation score after epoch e: best after epoch 2, so patience 1 stops after epoch 3.
SCORES = {1: 0.3, 2: 0.8, 3: 0.5, 4: 0.1}


class ToyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.small = nn.Embedding(SMALL_ROWS, DIM, sparse=True)
        self.large = nn.Embedding(LARGE_ROWS, DIM, sparse=True)
        self.w = nn.Parameter(torch.randn(DIM))


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(7)
    small = torch.from_numpy(rng.integers(0, SMALL_ROWS, N_EXAMPLES))
    large = torch.from_numpy(rng.integers(0, LARGE_ROWS, N_EXAMPLES))
    x = torch.from_numpy(rng.normal(size=(N_EXAMPLES, DIM)).astype(np.float32))
    y = torch.from_numpy(rng.normal(size=N_EXAMPLES).astype(np.float32))
    return small, large, x, y


class ToyTask:
    """Examples ``indices`` in order, ``batch_size`` at a time (the rng is not used)."""

    def __init__(self, net: ToyNet, indices: np.ndarray, batch_size: int) -> None:
        self.net, self.indices, self.batch_size = net, indices, batch_size
        self.small, self.large, self.x, self.y = data()
        self.n_sequences = len(indices)

    def n_batches(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def batches(self, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        for lo in range(0, len(self.indices), self.batch_size):
            yield torch.from_numpy(self.indices[lo : lo + self.batch_size])

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        emb = self.net.small(self.small[batch]) + self.net.large(self.large[batch])  # (B, DIM)
        pred = ((emb + self.net.w) * self.x[batch]).sum(-1)  # (B,)
        return ((pred - self.y[batch]) ** 2).mean(), len(batch)


def fit(runtime: TorchRuntime, batch_size: int, validate: bool) -> tuple[ToyNet, dict]:
    """Fit the toy net on this process's shard; return it and the report as a dict."""
    with seeded_torch(0, 1):
        net = ToyNet()
        task = ToyTask(net, runtime.shard(N_EXAMPLES), batch_size)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05)

        epochs = iter(SCORES)

        def score() -> float:
            if not runtime.is_main:
                raise AssertionError("only rank 0 validates")
            return SCORES[next(epochs)]

        report = train(
            task,
            net,
            optimizer,
            TrainingConfig(n_epochs=4, patience=1, seed=0),
            runtime,
            validate=score if validate else None,
            name="toy",
        )
    return net, report.to_json()


def weights(net: ToyNet) -> dict[str, list[float]]:
    return {k: v.flatten()[:2000].tolist() for k, v in net.state_dict().items()} | {
        "large_rows": net.large.weight[data()[1]].flatten().tolist()
    }


def main(out: Path) -> None:
    distributed = DistributedConfig(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        master_addr=os.environ["MASTER_ADDR"],
        master_port=int(os.environ["MASTER_PORT"]),
        backend="gloo",
    )
    runtime = TorchRuntime(distributed=distributed, checkpoint=out / f"best{distributed.rank}.pt")
    with process_group(runtime):
        net, report = fit(runtime, batch_size=4, validate=True)
    (out / f"rank{distributed.rank}.json").write_text(
        json.dumps({"weights": weights(net), "report": report})
    )
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
