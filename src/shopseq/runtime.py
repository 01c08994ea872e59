"""Where and how a torch model runs: threads, device, progress, checkpoint, time budget, processes.

Kept apart from the hyper-parameters (``training.TrainingConfig`` and the model configs) so one
config trains the same model on 1 thread, 2 threads, another device or several processes, and so
front ends can build a runtime without importing torch (this module does not).

A data-parallel fit (``torchrun --nproc-per-node N shopseq train ...``) gives every process a
:class:`DistributedConfig`; the CLI builds it from torchrun's environment (library code never
reads the environment) and ``distributed.process_group`` joins the group from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    import torch

__all__ = ["DistributedConfig", "TorchRuntime"]

# Device strings torch accepts for the backends shopseq can use; checked here without torch.
_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps|xpu(:\d+)?")


class DistributedConfig(BaseModel):
    """This process's place in a data-parallel fit (one replica of the net per process).

    Attributes:
        rank: This process's rank (0 validates, checkpoints and writes results).
        world_size: Processes in the fit.
        local_rank: Rank on this machine (picks ``cuda:<local_rank>`` with NCCL).
        master_addr: Host of rank 0's rendezvous store.
        master_port: Port of that store.
        backend: ``gloo`` (CPU), ``nccl`` (CUDA) or ``auto`` (``nccl`` on a CUDA device, else
            ``gloo``).
        timeout_seconds: How long a collective waits for the other processes (rank 0's
            validation pass runs while the others wait).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: int = Field(ge=0)
    world_size: int = Field(ge=1)
    local_rank: int = Field(default=0, ge=0)
    master_addr: str = "127.0.0.1"
    master_port: int = Field(default=29500, ge=1, le=65535)
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    timeout_seconds: float = Field(default=1800.0, gt=0)

    @model_validator(mode="after")
    def _rank_in_world(self) -> DistributedConfig:
        if self.rank >= self.world_size:
            raise ValueError(
                f"rank must be below world_size={self.world_size}; got rank={self.rank}"
            )
        return self

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0


class TorchRuntime(BaseModel):
    """Where and how a net trains and scores; never saved with a model.

    Attributes:
        threads: ``torch.set_num_threads`` while fitting and scoring (restored afterwards). The
            machines are shared: 2 threads can be slower than 1 when other processes are busy.
        device: Torch device (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
        progress: Show a Rich progress bar per epoch (off by default: library code does not
            print; the CLI turns it on).
        checkpoint: Write the best ``state_dict`` here (atomically) whenever it improves, and the
            epoch records so far beside it (``<checkpoint>.epochs.json``) after every epoch.
        max_train_seconds: Stop after the epoch that crosses this wall-clock budget (the fit then
            depends on the machine's speed; the training report says it stopped early).
        distributed: This process's place in a data-parallel fit (``None``: one process). Only
            rank 0 validates, checkpoints and shows progress; the caller gives each process its
            shard of the training data (:meth:`shard`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threads: int = Field(default=1, ge=1)
    device: str = "cpu"
    progress: bool = False
    checkpoint: Path | None = None
    max_train_seconds: float | None = Field(default=None, gt=0)
    distributed: DistributedConfig | None = None

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not _DEVICE.fullmatch(value):
            raise ValueError(
                f"must be a torch device such as 'cpu', 'cuda', 'cuda:1' or 'mps'; got {value!r}"
            )
        return value

    @property
    def world_size(self) -> int:
        """Processes training together (1 without ``distributed``)."""
        return 1 if self.distributed is None else self.distributed.world_size

    @property
    def is_main(self) -> bool:
        """Whether this process validates, checkpoints and writes (rank 0, or the only one)."""
        return self.distributed is None or self.distributed.is_main

    def shard(self, n: int) -> np.ndarray:
        """Indices of this process's share of ``n`` training sequences.

        Every ``world_size``-th sequence from ``rank`` on: interleaving keeps the shards alike
        (sequences are sorted by owner, not by length or time).

        Args:
            n: Number of sequences.

        Returns:
            Sorted int64 indices (all of them for one process).
        """
        if self.distributed is None:
            return np.arange(n, dtype=np.int64)
        return np.arange(self.distributed.rank, n, self.distributed.world_size, dtype=np.int64)

    @property
    def torch_device(self) -> torch.device:
        """The device as a ``torch.device`` (imports torch)."""
        import torch

        return torch.device(self.device)
