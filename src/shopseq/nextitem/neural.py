"""What the neural next-item models (GRU4Rec, SASRec) share on top of the one training loop.

Their configs extend :class:`NeuralNextItemConfig` (the loop's hyper-parameters plus how
validation ranks), :func:`early_stopping` turns validation cases into the callback the loop calls
after every epoch (full-ranking NDCG@k, ties pessimistic, as the test leaderboard ranks), and the
estimators extend :class:`TorchNextItemModel` (fitted state, scoring on the runtime's threads,
save and load), so each model file holds only its network, its epoch and its ``fit``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Generic, Self, TypeVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from shopseq.artifacts import atomic_dir
from shopseq.errors import NotFittedError, check_is_fitted
from shopseq.nextitem.base import ScoringModel
from shopseq.nextitem.evaluation import sample_cases, validation_ndcg
from shopseq.runtime import TorchRuntime
from shopseq.sequences import EvalCases, Sequences
from shopseq.training import (
    TrainingConfig,
    TrainingReport,
    load_torch_model,
    save_torch_model,
    torch_threads,
)

__all__ = ["ItemMatrix", "NeuralNextItemConfig", "TorchNextItemModel", "early_stopping"]


class NeuralNextItemConfig(TrainingConfig):
    """Training-loop hyper-parameters plus how the neural next-item models validate.

    Attributes:
        max_len: Most recent events of a history the model reads (training and scoring).
        valid_k: Cut-off of the validation NDCG.
        valid_sample: Validate on a seeded sample of this many cases (``None``: all of them).
        valid_exclude_seen: Rank validation targets with the history's items removed.
    """

    max_len: int = Field(default=50, ge=1)
    valid_k: int = Field(default=10, ge=1)
    valid_sample: int | None = Field(default=None, ge=1)
    valid_exclude_seen: bool = True


def early_stopping(
    score: Callable[[Sequences], np.ndarray],
    valid: EvalCases | None,
    config: NeuralNextItemConfig,
) -> Callable[[], float] | None:
    """The training loop's validation callback: NDCG@k of ``score`` on ``valid``.

    Args:
        score: The model's scoring function (called in eval mode by the loop).
        valid: Validation cases (``None`` or empty: no early stopping).
        config: The model's config (``valid_*``, ``seed``; validation histories are cut to
            ``max_len``, as the model reads them).

    Returns:
        The callback, or ``None`` without validation cases.
    """
    if valid is None or len(valid) == 0:
        return None
    # A fixed seeded sample: every epoch is compared on the same cases.
    cases = sample_cases(valid, config.valid_sample, config.seed)

    def validate() -> float:
        return validation_ndcg(
            score,
            cases,
            k=config.valid_k,
            max_len=config.max_len,
            exclude_seen=config.valid_exclude_seen,
        )

    return validate


class ItemMatrix:
    """The output item vectors in the layout the scoring product wants, built once per weights.

    ``states @ items.T`` with ``items`` (n_items, d) row-major reads the matrix transposed; over
    100 k items that product costs 2-4x the same product against a contiguous (d, n_items) copy
    (measured in ``benchmarks/neural_latency.py``), and it is most of a single history's answer.
    The copy is float32, made once, and rebuilt only when the weights change: :meth:`current`
    compares the source tensors' storage and in-place version counters (an optimiser step or
    ``load_state_dict`` bumps them), so scoring during and after training never reads stale
    weights. The price is one more copy of the matrix in memory (25.6 MB at 100 k items x 64).

    Args:
        weight: (n_items, d) output vectors, one row per item.
        bias: (n_items, 1) or (n_items,) per-item bias (``None``: none).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        self._key = _version_key(weight, bias)
        with torch.no_grad():
            self.items_t = weight.detach().T.to(torch.float32).contiguous()  # (d, n_items)
            self.bias = (
                None if bias is None else bias.detach().reshape(1, -1).to(torch.float32).clone()
            )  # (1, n_items)

    def current(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> bool:
        """Whether this copy still holds ``weight`` and ``bias`` as they are now."""
        return self._key == _version_key(weight, bias)

    def scores_into(self, out: np.ndarray, states: torch.Tensor) -> None:
        """Write ``states @ items.T (+ bias)`` into ``out`` without a (B, n_items) temporary.

        On the CPU the product is written straight into ``out``'s memory (a single history's
        answer over 100 k items otherwise allocates, faults in and copies two 400 kB arrays).

        Args:
            out: (B, n_items) float32, C-contiguous; overwritten.
            states: (B, d) final states.
        """
        if states.device.type == "cpu":
            target = torch.from_numpy(out)  # (B, n_items) shares out's memory
            torch.mm(states, self.items_t, out=target)
            if self.bias is not None:
                target.add_(self.bias)
            return
        scores = states @ self.items_t  # (B, n_items)
        if self.bias is not None:
            scores = scores + self.bias
        out[...] = scores.cpu().numpy()


def _version_key(*tensors: torch.Tensor | None) -> tuple[tuple[int, int, str] | None, ...]:
    # Storage address + in-place version: a new tensor or any in-place write changes the key.
    return tuple(None if t is None else (t.data_ptr(), t._version, str(t.device)) for t in tensors)


ConfigT = TypeVar("ConfigT", bound=NeuralNextItemConfig)
NetT = TypeVar("NetT", bound=nn.Module)


class TorchNextItemModel(ScoringModel, Generic[ConfigT, NetT]):
    """Base of the torch next-item estimators: fitted state, scoring, save and load.

    A subclass sets ``config_class``, implements ``fit`` (ending with ``net_``, ``n_items_`` and
    ``report_`` set), :meth:`_new_net` and :meth:`_score_net`.

    Args:
        config: Hyperparameters (default: ``config_class()``); saved with the model.
        runtime: Threads, device, progress bar, checkpoint and time budget of fitting and
            scoring (default: ``TorchRuntime()``, 1 CPU thread); never saved.
    """

    config_class: ClassVar[type[NeuralNextItemConfig]]

    def __init__(self, config: ConfigT | None = None, runtime: TorchRuntime | None = None) -> None:
        self.config: ConfigT = config or self.config_class()  # type: ignore[assignment]
        self.runtime = runtime or TorchRuntime()
        self.net_: NetT | None = None
        self.n_items_: int | None = None
        self.report_: TrainingReport | None = None
        self._items: ItemMatrix | None = None  # derived from net_'s weights, rebuilt on change

    @abstractmethod
    def _new_net(self, n_items: int) -> NetT:
        """An untrained network for ``n_items`` items (padding included)."""

    @abstractmethod
    def _score_net(self, net: NetT, histories: Sequences, n_items: int) -> np.ndarray:
        """Score every item after each history with ``net`` (eval mode, no grad)."""

    def _item_matrix(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> ItemMatrix:
        """The scoring layout of ``weight`` (+ ``bias``), rebuilt only when they changed."""
        items = self._items
        if items is None or not items.current(weight, bias):
            items = self._items = ItemMatrix(weight, bias)
        return items

    @property
    def max_history(self) -> int:
        """Most recent events of a history the model reads (``config.max_len``)."""
        return self.config.max_len

    def _fitted(self) -> tuple[NetT, int]:
        check_is_fitted(self, "net_")
        if self.net_ is None or self.n_items_ is None:  # unreachable after check_is_fitted
            raise NotFittedError(f"{type(self).__name__} is not fitted yet")
        return self.net_, self.n_items_

    def score(self, histories: Sequences) -> np.ndarray:
        """Score every item after each history (its most recent ``max_len`` events).

        Args:
            histories: The histories.

        Returns:
            (n_histories, n_items) float32 scores; column 0 (padding) is -inf.
        """
        net, n_items = self._fitted()
        # Scoring is deterministic (eval mode, no sampling): no seeding, only the thread count.
        with torch_threads(self.runtime.threads):
            return self._score_net(net, histories, n_items)

    def save(self, directory: Path) -> None:
        """Write ``config.json``, ``weights.pt`` and ``metrics.json`` atomically.

        Args:
            directory: Model directory (replaced as a whole).
        """
        net, n_items = self._fitted()
        with atomic_dir(Path(directory)) as tmp:
            save_torch_model(tmp, self.config, n_items, net, self.report_)

    @classmethod
    def load(cls, directory: Path, runtime: TorchRuntime | None = None) -> Self:
        """Rebuild a model written by :meth:`save`.

        Args:
            directory: Model directory.
            runtime: Where to score (default: ``TorchRuntime()``).

        Returns:
            The fitted model.
        """
        runtime = runtime or TorchRuntime()
        fields, n_items, state = load_torch_model(Path(directory), runtime.torch_device)
        model = cls(cls.config_class.model_validate(fields), runtime)  # type: ignore[arg-type]
        net = model._new_net(n_items).to(runtime.torch_device)
        net.load_state_dict(state)
        net.eval()
        model.net_, model.n_items_ = net, n_items
        return model
