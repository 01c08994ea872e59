"""The one PyTorch training loop, shared by every net (GRU4Rec, SASRec, the MLP forecaster).

A model describes one epoch as a :class:`TrainingTask` (its batches and the loss of a batch);
:func:`train` runs the epochs with the model's hyper-parameters (:class:`TrainingConfig`) on a
separate :class:`TorchRuntime` (threads, device, progress bar, checkpoint, time budget): early
stopping on a validation callback (higher is better; the next-item models pass full-ranking
NDCG@k), the best ``state_dict`` kept and checkpointed atomically, and one :class:`EpochRecord`
per epoch (loss, validation score, seconds, examples/s, threads).

Hyper-parameters decide what is learned and are saved with a model; the runtime only decides where
and how fast, so the same config trains the same model on 1 thread, 2 threads or another device.

Randomness: ``config.seed`` seeds a ``np.random.Generator`` handed to the task (batch order,
negative samples) and, inside :func:`seeded_torch`, torch's CPU generator for weight init and
dropout. The global torch state (generator and thread count) is restored when a fit returns, so
fitting a model never changes the caller's state.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("shopseq's neural models need PyTorch: pip install 'shopseq[torch]'") from exc
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shopseq.artifacts import atomic_path, atomic_write_json, read_json
from shopseq.distributed import ReplicaSync, broadcast_floats, sum_ints
from shopseq.errors import ArtifactError, ShopseqError
from shopseq.runtime import TorchRuntime

__all__ = [
    "EpochRecord",
    "TrainingConfig",
    "TrainingReport",
    "TrainingTask",
    "load_torch_model",
    "save_torch_model",
    "seeded_torch",
    "torch_threads",
    "train",
]


class TrainingConfig(BaseModel):
    """Hyper-parameters of the shared training loop; each neural model's config extends it.

    Attributes:
        n_epochs: Maximum epochs.
        batch_size: Examples (sequences, parallel sessions, windows) per step.
        lr: Learning rate.
        patience: Stop after this many epochs without a better validation score (``None``:
            never; without a validation callback every epoch runs).
        seed: Seeds every random choice of the fit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=128, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    patience: int | None = Field(default=5, ge=1)
    seed: int = 0


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """What one epoch did.

    Attributes:
        epoch: 1-based epoch number.
        loss: Mean training loss over the epoch's steps (weighted by targets).
        valid_score: Validation score after the epoch (``None`` without a validation callback).
        seconds: Wall-clock seconds of the training pass (validation excluded).
        valid_seconds: Wall-clock seconds of the validation pass.
        n_sequences: Training examples (sequences, windows) the epoch went through (summed over
            the processes of a data-parallel fit, as are ``loss`` and ``n_targets``).
        n_targets: Targets the loss covered.
        sequences_per_s: ``n_sequences / seconds``.
        targets_per_s: ``n_targets / seconds``.
        threads: Torch intra-op threads used (per process).
        processes: Processes that trained together (data-parallel replicas).
    """

    epoch: int
    loss: float
    valid_score: float | None
    seconds: float
    valid_seconds: float
    n_sequences: int
    n_targets: int
    sequences_per_s: float
    targets_per_s: float
    threads: int
    processes: int = 1


@dataclass(frozen=True, slots=True)
class TrainingReport:
    """The whole fit: per-epoch records and which epoch's weights were kept.

    Attributes:
        epochs: One record per epoch run.
        best_epoch: Epoch whose weights the model holds (the last one without validation).
        best_valid_score: Its validation score (``None`` without validation).
        stopped_early: Whether patience or the time budget ended the fit before ``n_epochs``.
        seconds: Wall-clock seconds of the whole fit (validation included).
    """

    epochs: tuple[EpochRecord, ...]
    best_epoch: int
    best_valid_score: float | None
    stopped_early: bool
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (for ``metrics.json``)."""
        return asdict(self)


class TrainingTask(Protocol):
    """One model's view of an epoch, as the loop needs it."""

    n_sequences: int

    def batches(self, rng: np.random.Generator) -> Iterable[Any]:
        """Yield the batches of one epoch (order and negatives drawn from ``rng``)."""
        ...

    def n_batches(self) -> int | None:
        """Batches per epoch for the progress bar (``None`` if unknown in advance)."""
        ...

    def loss(self, batch: Any) -> tuple[torch.Tensor, int]:
        """Return the batch's loss (to minimise) and how many targets it covers."""
        ...


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run a block with ``threads`` torch intra-op threads, then restore the caller's count.

    Args:
        threads: ``torch.set_num_threads`` inside the block.

    Yields:
        Nothing.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def seeded_torch(seed: int, threads: int) -> Iterator[None]:
    """Run a block with torch seeded and ``threads`` intra-op threads, then restore both.

    Args:
        seed: Seed of the block's weight init, dropout and any torch sampling.
        threads: ``torch.set_num_threads`` inside the block.

    Yields:
        Nothing; the block runs seeded.
    """
    # fork_rng restores the caller's generator afterwards: no global state leaks out of a fit.
    with torch_threads(threads), torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # CPU only (torch.manual_seed also seeds CUDA)
        yield


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        transient=True,
        disable=not enabled,
    )


def train(
    task: TrainingTask,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainingConfig,
    runtime: TorchRuntime,
    *,
    validate: Callable[[], float] | None,
    name: str,
) -> TrainingReport:
    """Fit ``net`` epoch by epoch; keep the weights of the best validation epoch.

    Call inside :func:`seeded_torch` (the models do) so init, dropout and sampling are reproducible.

    With ``runtime.distributed`` (inside ``distributed.process_group``), this process is one
    replica: ``task`` holds its shard, gradients are averaged over the processes every step
    (``distributed.ReplicaSync``), only rank 0 validates, checkpoints and shows progress, and
    every process keeps the same best epoch. Losses and counts in the report are over all
    processes.

    Args:
        task: The model's batches and loss (this process's shard when distributed).
        net: The network (its ``state_dict`` is what is kept and checkpointed).
        optimizer: The optimizer over ``net``'s parameters.
        config: Hyper-parameters of the loop.
        runtime: Threads (already set by the caller's :func:`seeded_torch`), progress bar,
            checkpoint, time budget and processes.
        validate: Called in eval mode under ``torch.no_grad`` after every epoch; returns the
            validation score, higher is better (``None``: train ``n_epochs``, keep the last).
            Called on rank 0 only.
        name: Model name shown in the progress bar and in errors.

    Returns:
        The per-epoch records and the kept epoch.

    Raises:
        ShopseqError: If the loss becomes NaN or infinite (lower the learning rate).
    """
    rank = 0 if runtime.distributed is None else runtime.distributed.rank
    parallel = runtime.world_size > 1
    # One process draws from the seed alone (as it always has); replicas draw apart.
    rng = np.random.default_rng([config.seed, rank] if parallel else config.seed)
    sync = ReplicaSync(net, runtime) if parallel else None
    n_sequences = sum_ints([task.n_sequences], runtime)[0]
    main = runtime.is_main
    records: list[EpochRecord] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_score: float | None = None
    best_epoch = 0
    since_best = 0
    stopped_early = False
    started = time.perf_counter()
    threads = torch.get_num_threads()
    # Replicas share their init but not their dropout: each draws from its own stream.
    with torch.random.fork_rng(devices=[], enabled=parallel):
        if parallel:
            torch.default_generator.manual_seed(config.seed * 1_000_003 + rank)
        for epoch in range(1, config.n_epochs + 1):
            net.train()
            t0 = time.perf_counter()
            loss_sum, n_targets = _epoch(
                task, optimizer, rng, sync, runtime.progress and main, f"{name} epoch {epoch}"
            )
            mean_loss = loss_sum / max(n_targets, 1)
            if not math.isfinite(mean_loss):
                raise ShopseqError(
                    f"{name}: the training loss became {mean_loss} in epoch {epoch}; "
                    f"lower the learning rate (lr={config.lr})"
                )
            seconds = time.perf_counter() - t0
            net.eval()
            score: float | None = None
            t1 = time.perf_counter()
            if validate is not None and main:
                with torch.no_grad():
                    score = validate()
            out_of_time = (
                runtime.max_train_seconds is not None
                and time.perf_counter() - started >= runtime.max_train_seconds
            )
            if parallel:  # rank 0 decides; every process keeps the same epoch and stops with it
                shared = broadcast_floats(
                    [math.nan if score is None else score, float(out_of_time)], runtime
                )
                score = None if validate is None else shared[0]
                out_of_time = shared[1] > 0
            records.append(
                EpochRecord(
                    epoch=epoch,
                    loss=mean_loss,
                    valid_score=score,
                    seconds=seconds,
                    valid_seconds=time.perf_counter() - t1,
                    n_sequences=n_sequences,
                    n_targets=n_targets,
                    sequences_per_s=n_sequences / max(seconds, 1e-9),
                    targets_per_s=n_targets / max(seconds, 1e-9),
                    threads=threads,
                    processes=runtime.world_size,
                )
            )
            improved = score is None or best_score is None or score > best_score
            if improved:
                best_score, best_epoch, since_best = score, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
                if runtime.checkpoint is not None and main:
                    with atomic_path(runtime.checkpoint) as tmp:
                        torch.save(best_state, tmp)
            else:
                since_best += 1
            if runtime.checkpoint is not None and main:
                log = runtime.checkpoint.with_name(runtime.checkpoint.name + ".epochs.json")
                atomic_write_json(log, [asdict(r) for r in records])
            out_of_patience = config.patience is not None and since_best >= config.patience
            if (out_of_time or out_of_patience) and epoch < config.n_epochs:
                stopped_early = True
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return TrainingReport(
        epochs=tuple(records),
        best_epoch=best_epoch,
        best_valid_score=best_score,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - started,
    )


_END = object()


def _epoch(
    task: TrainingTask,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    sync: ReplicaSync | None,
    progress: bool,
    label: str,
) -> tuple[float, int]:
    """Run one epoch's steps; return (sum of loss x targets, targets), over all processes."""
    loss_sum, n_targets = 0.0, 0
    batches = iter(task.batches(rng))
    with _progress(progress) as bar:
        bar_task = bar.add_task(label, total=task.n_batches(), loss=0.0)
        while True:
            batch = next(batches, _END)
            if batch is _END and sync is None:
                break
            optimizer.zero_grad(set_to_none=True)
            step_loss, step_targets = 0.0, 0
            if batch is not _END:
                loss, n = task.loss(batch)
                loss.backward()  # type: ignore[no-untyped-call]
                step_loss, step_targets = float(loss.detach()) * n, n
            if sync is not None:
                totals = sync.reduce(step_loss, step_targets, batch is not _END)
                if totals is None:  # no process has a batch left
                    break
                step_loss, step_targets = totals.loss_sum, totals.n_targets
            # Every process steps, with or without a batch of its own: the replicas stay equal.
            optimizer.step()
            if not math.isfinite(step_loss):
                return step_loss, max(step_targets, 1)
            loss_sum += step_loss
            n_targets += step_targets
            bar.update(bar_task, advance=1, loss=loss_sum / max(n_targets, 1))
    return loss_sum, n_targets


def save_torch_model(
    directory: Path, config: BaseModel, n_items: int, net: nn.Module, report: TrainingReport | None
) -> None:
    """Write ``config.json`` (with ``n_items``), ``weights.pt`` (a state_dict) and ``metrics.json``.

    Args:
        directory: A directory being filled (e.g. from ``artifacts.atomic_dir``).
        config: The model's config.
        n_items: Vocabulary size the network was built for.
        net: The fitted network.
        report: The training report (written to ``metrics.json`` when given).
    """
    atomic_write_json(
        directory / "config.json", {"config": config.model_dump(mode="json"), "n_items": n_items}
    )
    with atomic_path(directory / "weights.pt") as tmp:
        torch.save(net.state_dict(), tmp)
    if report is not None:
        atomic_write_json(directory / "metrics.json", report.to_json())


def load_torch_model(
    directory: Path, device: torch.device
) -> tuple[dict[str, Any], int, dict[str, torch.Tensor]]:
    """Read what :func:`save_torch_model` wrote (weights with ``weights_only=True``: no pickle).

    Args:
        directory: The model directory.
        device: Where to put the weights.

    Returns:
        ``(config fields, n_items, state_dict)``.

    Raises:
        ArtifactError: If a file is missing.
    """
    for name in ("config.json", "weights.pt"):
        if not (directory / name).is_file():
            raise ArtifactError(f"{directory}: missing {name}; is this a saved model directory?")
    meta = read_json(directory / "config.json")
    state = torch.load(directory / "weights.pt", map_location=device, weights_only=True)
    return dict(meta["config"]), int(meta["n_items"]), state
