"""Where and how a torch model runs: threads, device, progress, checkpoint, time budget.

Kept apart from the hyper-parameters (``training.TrainingConfig`` and the model configs) so one
config trains the same model on 1 thread, 2 threads or another device, and so front ends can
build a runtime without importing torch (this module does not).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    import torch

__all__ = ["TorchRuntime"]

# Device strings torch accepts for the backends shopseq can use; checked here without torch.
_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps|xpu(:\d+)?")


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
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    threads: int = Field(default=1, ge=1)
    device: str = "cpu"
    progress: bool = False
    checkpoint: Path | None = None
    max_train_seconds: float | None = Field(default=None, gt=0)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not _DEVICE.fullmatch(value):
            raise ValueError(
                f"must be a torch device such as 'cpu', 'cuda', 'cuda:1' or 'mps'; got {value!r}"
            )
        return value

    @property
    def torch_device(self) -> torch.device:
        """The device as a ``torch.device`` (imports torch)."""
        import torch

        return torch.device(self.device)
