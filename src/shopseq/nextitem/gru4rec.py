"""GRU4Rec: session-based recommendation with GRUs (Hidasi et al., ICLR 2016 and CIKM 2018).

Follows the authors' official PyTorch implementation (hidasib/GRU4Rec_PyTorch_Official):

* **Session-parallel mini-batches**: ``batch_size`` sequences run side by side, one event per step;
  when a sequence ends the next one takes its slot and that slot's hidden state is reset. Sequences
  start in time order. Gradients flow through one step (the hidden state is detached).
* **Output sampling**: each step scores its targets against the batch's own targets (shared in-batch
  negatives) plus ``n_sample`` extra items drawn with probability proportional to popularity^alpha.
* **Losses**: ``cross-entropy`` (softmax over those columns, optional logQ correction) or
  ``bpr-max`` (ELU on scores, softmax-weighted BPR against the negatives plus score regularisation).
* **Constrained embedding** (default): the input embedding of an item is its output vector ``Wy``.
* **Optimizer**: Adagrad with momentum on sparse embedding rows (``IndexedAdagradM``), or Adam.

Scoring runs the GRU over a history (most recent ``max_len`` events) and multiplies the final hidden
state with every item's output vector, plus the item bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, Self, cast

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("GRU4Rec needs PyTorch: pip install 'shopseq[torch]'") from exc
from pydantic import Field

from shopseq.errors import ConfigError, InputError
from shopseq.nextitem.approximate import ApproximateTopK, IndexConfig
from shopseq.nextitem.neural import (
    ItemMatrix,
    NeuralNextItemConfig,
    TorchNextItemModel,
    early_stopping,
)
from shopseq.sequences import EvalCases, Sequences
from shopseq.training import seeded_torch, torch_threads
from shopseq.training import train as run_training

__all__ = ["GRU4Rec", "GRU4RecConfig", "GRU4RecNet", "GRUState", "IndexedAdagradM"]

#: The hidden state of every GRU layer after a history: one (1, units) tensor per layer.
GRUState = tuple[torch.Tensor, ...]

_SAMPLE_CACHE = 1_000_000  # negative samples drawn per refill (the official code caches 10 M)


class GRU4RecConfig(NeuralNextItemConfig):
    """GRU4Rec hyperparameters, named as in the official code (plus the shared loop's).

    Attributes:
        layers: Hidden units of each GRU layer.
        loss: ``cross-entropy`` or ``bpr-max``.
        batch_size: Parallel sequences per step.
        lr: Learning rate.
        momentum: Momentum of the Adagrad optimizer.
        optimizer: ``adagrad`` (the authors' Adagrad with momentum) or ``adam``.
        dropout_p_embed: Dropout on the input embedding.
        dropout_p_hidden: Dropout on each GRU layer's output.
        n_sample: Extra negatives per step, shared by the batch.
        sample_alpha: Negatives drawn with probability ~ popularity^alpha.
        embedding: Size of a separate input embedding (used when not ``constrained_embedding``).
        constrained_embedding: Input embedding = output vectors ``Wy``.
        bpreg: Score regularisation of ``bpr-max``.
        elu_param: ELU alpha applied to scores by ``bpr-max`` (0: none).
        logq: Strength of the logQ correction of ``cross-entropy`` (0: none).
        max_len: Most recent events of a history the GRU runs over when scoring.
        score_batch: Histories scored at once.
    """

    layers: tuple[int, ...] = (100,)
    loss: Literal["cross-entropy", "bpr-max"] = "cross-entropy"
    n_epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.0, ge=0)
    optimizer: Literal["adagrad", "adam"] = "adagrad"
    dropout_p_embed: float = Field(default=0.0, ge=0, lt=1)
    dropout_p_hidden: float = Field(default=0.0, ge=0, lt=1)
    n_sample: int = Field(default=2048, ge=0)
    sample_alpha: float = Field(default=0.5, ge=0)
    embedding: int = Field(default=0, ge=0)
    constrained_embedding: bool = True
    bpreg: float = Field(default=1.0, ge=0)
    elu_param: float = Field(default=0.5, ge=0)
    logq: float = Field(default=0.0, ge=0)
    max_len: int = Field(default=200, ge=1)
    score_batch: int = Field(default=512, ge=1)


class IndexedAdagradM(torch.optim.Optimizer):
    """Adagrad with momentum that updates only the rows present in a sparse gradient.

    Hand-written because ``torch.optim.Adagrad`` has no momentum and the official GRU4Rec trains
    with this exact rule (its best parameters use momentum); the sparse branch touches only the
    sampled items' rows, which is what keeps a step cheap on a large catalogue.
    """

    def __init__(
        self, params: Iterable[nn.Parameter], lr: float, momentum: float = 0.0, eps: float = 1e-6
    ):
        super().__init__(params, {"lr": lr, "momentum": momentum, "eps": eps})
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["acc"] = torch.zeros_like(p)
                if momentum > 0:
                    self.state[p]["mom"] = torch.zeros_like(p)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        """Apply one update from the current gradients."""
        for group in self.param_groups:
            lr, momentum, eps = group["lr"], group["momentum"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                grad = p.grad
                if grad.is_sparse:
                    grad = grad.coalesce()  # the update is non-linear: indices must be unique
                    rows, values = grad.indices()[0], grad.values()
                    acc = state["acc"][rows] + values.pow(2)
                    state["acc"].index_copy_(0, rows, acc)
                    update = values / acc.add_(eps).sqrt_().mul_(-1 / lr)
                    if momentum > 0:
                        update = state["mom"][rows].mul_(momentum).add_(update)
                        state["mom"].index_copy_(0, rows, update)
                    p.index_add_(0, rows, update)
                else:
                    state["acc"].add_(grad.pow(2))
                    denom = state["acc"].add(eps).sqrt_()
                    if momentum > 0:
                        state["mom"].mul_(momentum).addcdiv_(grad, denom, value=-lr)
                        p.add_(state["mom"])
                    else:
                        p.addcdiv_(grad, denom, value=-lr)


def _init_uniform(tensor: torch.Tensor, dim1_scale: int = 1) -> None:
    # The official init: U(-s, s), s = sqrt(6 / (rows + cols / dim1_scale)).
    sigma = math.sqrt(6.0 / (tensor.size(0) + tensor.size(1) / dim1_scale))
    with torch.no_grad():
        tensor.uniform_(-sigma, sigma)


class GRU4RecNet(nn.Module):
    """Input embedding -> stacked GRU cells -> scores against the output vectors ``Wy`` + ``By``."""

    def __init__(self, n_items: int, config: GRU4RecConfig) -> None:
        super().__init__()
        sparse = config.optimizer == "adagrad"  # Adam needs dense gradients
        self.constrained = config.constrained_embedding
        self.layers = config.layers
        n_input = config.layers[-1] if self.constrained else config.embedding
        self.E = None if self.constrained else nn.Embedding(n_items, n_input, sparse=sparse)
        self.drop_embed = nn.Dropout(config.dropout_p_embed)
        sizes = (n_input, *config.layers)
        cells = [nn.GRUCell(sizes[i], sizes[i + 1]) for i in range(len(config.layers))]
        self.cells = nn.ModuleList(cells)
        self.drop_hidden = nn.Dropout(config.dropout_p_hidden)
        self.Wy = nn.Embedding(n_items, config.layers[-1], sparse=sparse)
        self.By = nn.Embedding(n_items, 1, sparse=sparse)
        if self.E is not None:
            _init_uniform(self.E.weight)
        for cell in cells:
            _init_uniform(cell.weight_ih, dim1_scale=3)
            _init_uniform(cell.weight_hh, dim1_scale=3)
            nn.init.zeros_(cell.bias_ih)
            nn.init.zeros_(cell.bias_hh)
        _init_uniform(self.Wy.weight)
        nn.init.zeros_(self.By.weight)

    def init_hidden(self, batch: int) -> list[torch.Tensor]:
        """Zero hidden state of every layer: a list of (batch, units)."""
        device = self.Wy.weight.device
        return [torch.zeros(batch, size, device=device) for size in self.layers]

    def step(self, items: torch.Tensor, hidden: list[torch.Tensor]) -> list[torch.Tensor]:
        """Advance every layer by one event (B,); return the new hidden states [(B, units)]."""
        x = self.Wy(items) if self.E is None else self.E(items)  # (B, n_input)
        x = self.drop_embed(x)
        new: list[torch.Tensor] = []
        for cell, h in zip(self.cells, hidden, strict=True):
            x = self.drop_hidden(cell(x, h))  # (B, units)
            new.append(x)
        return new

    def final_state(self, items: torch.Tensor, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """Last layer's state after time-major histories (T, B); item 0 leaves a row's state as is.

        ``inputs`` (T, B, n_input), when given, replaces the item embeddings (the per-user
        sequence models feed their own event vectors); ``items > 0`` still marks the events.

        The arithmetic of :meth:`step` event by event (a padding event keeps the row's state),
        with the per-event overhead cut: the input vectors are gathered once, the cells run as
        the ``torch.gru_cell`` call ``nn.GRUCell`` makes, dropout (identity in eval mode) is
        applied only in training mode, and the padding mask only at steps that hold padding.
        Not ``nn.GRU``: it computes the input products of all steps as one matrix product, which
        rounds differently from the cells the model was trained with.
        """
        valid = items > 0  # (T, B)
        has_padding = (~valid).any(dim=1).tolist()  # per step: does some row hold padding
        table = self.Wy.weight if self.E is None else self.E.weight
        if inputs is None:
            inputs = F.embedding(items, table)  # (T, B, n_input), what self.Wy / self.E return
        cells = cast(list[nn.GRUCell], list(self.cells))
        weights = [(c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh) for c in cells]
        hidden = self.init_hidden(items.shape[1])  # [(B, units)]
        for t in range(len(items)):
            x = self.drop_embed(inputs[t]) if self.training else inputs[t]  # (B, n_input)
            new = []
            for (w_ih, w_hh, b_ih, b_hh), h in zip(weights, hidden, strict=True):
                x = torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)  # (B, units)
                x = self.drop_hidden(x) if self.training else x
                new.append(x)
            if has_padding[t]:
                keep = valid[t].unsqueeze(1)  # (B, 1)
                new = [torch.where(keep, n, h) for n, h in zip(new, hidden, strict=True)]
            hidden = new
        return hidden[-1]

    def score_items(self, out: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        """Scores of ``items`` (S,) for final states (B, d): (B, S); all items when ``None``."""
        if items is None:
            return out @ self.Wy.weight.T + self.By.weight.T  # (B, n_items)
        scores: torch.Tensor = out @ self.Wy(items).T + self.By(items).T  # (B, S)
        return scores


def _session_parallel(
    offsets: np.ndarray, order: np.ndarray, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """The official session-parallel schedule over sequences of >= 2 events.

    Yields ``(positions, finished, kept)``: ``positions`` (B,) are the input events of a step
    (targets follow each at +1); ``finished`` marks slots whose sequence just ended (reset their
    hidden state) and ``kept`` the slots still in use once sequences run out (``None``: no change).
    """
    n = len(order)
    iters = np.arange(min(batch_size, n))
    next_seq = len(iters)
    start, end = offsets[order[iters]], offsets[order[iters] + 1]
    while len(iters):
        min_len = int((end - start).min())
        for i in range(min_len - 1):
            yield start + i, None, None
        start = start + min_len - 1
        finished = end - start <= 1
        n_finished = int(finished.sum())
        iters[finished] = next_seq + np.arange(n_finished)
        next_seq += n_finished
        kept = iters < n
        refill = finished & kept
        start[refill], end[refill] = (
            offsets[order[iters[refill]]],
            offsets[order[iters[refill]] + 1],
        )
        iters, start, end = iters[kept], start[kept], end[kept]
        yield np.zeros(0, np.int64), finished, kept


@torch.inference_mode()
def _score(
    net: GRU4RecNet,
    histories: Sequences,
    n_items: int,
    config: GRU4RecConfig,
    items: ItemMatrix,
) -> np.ndarray:
    """Run the GRU over each history; (n, n_items) scores of its final state, padding -inf.

    ``items`` is ``net.Wy.weight`` (+ ``net.By.weight``) in the layout of the scoring product.
    """
    out = np.empty((len(histories), n_items), dtype=np.float32)
    padded = histories.to_padded(config.max_len)  # (n, T) left-padded, unknown -> 0
    device = net.Wy.weight.device
    for start in range(0, len(histories), config.score_batch):
        chunk = padded[start : start + config.score_batch]  # (B, T)
        present = np.flatnonzero(chunk.any(axis=0))
        first = int(present[0]) if len(present) else chunk.shape[1]  # skip all-padding steps
        steps = np.ascontiguousarray(chunk[:, first:].T, dtype=np.int64)  # (T', B) time-major
        state = net.final_state(torch.from_numpy(steps).to(device))  # (B, units)
        items.scores_into(out[start : start + len(chunk)], state)
    out[:, 0] = -np.inf
    return out


@torch.inference_mode()
def _advance(net: GRU4RecNet, state: GRUState, items: np.ndarray) -> GRUState:
    """The state after ``items`` (1-D indices) follow ``state``: one cell step per known item.

    The arithmetic of :meth:`GRU4RecNet.final_state` for one history (batch 1): the same input
    rows, the same ``torch.gru_cell`` calls, and an unknown (<= 0) item leaves the state as it is
    (``final_state`` computes that step and keeps the old state, which is the same numbers).
    """
    known = items[items > 0]
    if len(known) == 0:
        return state
    table = net.Wy.weight if net.E is None else net.E.weight
    inputs = F.embedding(torch.from_numpy(known.astype(np.int64)).to(table.device), table)
    cells = cast(list[nn.GRUCell], list(net.cells))
    weights = [(c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh) for c in cells]
    hidden = list(state)
    for t in range(len(known)):
        x = inputs[t : t + 1]  # (1, n_input)
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
            x = torch.gru_cell(x, hidden[layer], w_ih, w_hh, b_ih, b_hh)  # (1, units)
            hidden[layer] = x
    return tuple(hidden)


class _GRU4RecTask:
    """One epoch of session-parallel training for the shared loop."""

    def __init__(self, net: GRU4RecNet, train: Sequences, n_items: int, config: GRU4RecConfig):
        self.net, self.n_items, self.config = net, n_items, config
        known_event = train.items > 0
        if not known_event.all():  # unknown items (-1) carry no signal: drop them
            owner_of_event = np.repeat(np.arange(len(train)), train.lengths)
            kept = np.bincount(owner_of_event[known_event], minlength=len(train))
            train = Sequences(
                owner=train.owner,
                offsets=np.concatenate([[0], np.cumsum(kept)]).astype(np.int64),
                items=train.items[known_event],
                actions=train.actions[known_event],
                ts=train.ts[known_event],
                categories=train.categories[known_event],
            )
        lengths = train.lengths
        usable = np.flatnonzero(lengths >= 2)
        # Sequences start in time order (ties keep their order), as in the official iterator.
        self.order = usable[np.argsort(train.ts[train.offsets[usable]], kind="stable")]
        self.offsets = train.offsets
        self.device = net.Wy.weight.device
        self.items = torch.from_numpy(train.items.astype(np.int64)).to(self.device)
        self.n_sequences = len(usable)
        self.n_events = int((lengths[usable] - 1).sum())
        pop = np.bincount(train.items, minlength=n_items).astype(np.float64)
        weights = pop**config.sample_alpha * (pop > 0)
        self.cdf = np.cumsum(weights) / max(weights.sum(), 1e-12)
        self.cdf[-1] = 1.0
        counts = torch.from_numpy(np.maximum(pop, 1.0)).float()
        self.log_p0 = torch.log(counts).to(self.device)  # logQ (counts)
        self.hidden: list[torch.Tensor] = []

    def n_batches(self) -> int:
        return -(-self.n_events // self.config.batch_size)

    def batches(self, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n_sample = self.config.n_sample
        per_refill = max(1, _SAMPLE_CACHE // max(n_sample, 1))
        cache, used = np.zeros((0, n_sample), np.int64), 0
        self.hidden = self.net.init_hidden(min(self.config.batch_size, self.n_sequences))
        for positions, finished, kept in _session_parallel(
            self.offsets, self.order, self.config.batch_size
        ):
            if finished is not None and kept is not None:
                with torch.no_grad():
                    mask = torch.from_numpy(finished).to(self.device)
                    keep = torch.from_numpy(kept).to(self.device)
                    self.hidden = [h.masked_fill(mask.unsqueeze(1), 0.0)[keep] for h in self.hidden]
                continue
            idx = torch.from_numpy(positions).to(self.device)
            if used == len(cache):
                cache = np.searchsorted(self.cdf, rng.random((per_refill, n_sample)), side="right")
                used = 0
            sample = torch.from_numpy(cache[used]).to(self.device)  # (n_sample,) shared negatives
            used += 1
            yield torch.stack([self.items[idx], self.items[idx + 1]]), sample

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
        (inputs, targets), sample = batch
        self.hidden = self.net.step(inputs, [h.detach() for h in self.hidden])
        columns = torch.cat([targets, sample])  # (B + S,): in-batch targets, then samples
        scores = self.net.score_items(self.hidden[-1], columns)  # (B, B + S); target i is column i
        b = len(targets)
        if self.config.loss == "cross-entropy":
            if self.config.logq > 0:
                scores = scores - self.config.logq * torch.cat(
                    [self.log_p0[targets], self.config.sample_alpha * self.log_p0[sample]]
                )
            loss = F.cross_entropy(scores, torch.arange(b, device=self.device), reduction="sum")
        else:
            loss = self._bpr_max(scores)
        return loss / self.config.batch_size, b

    def _bpr_max(self, scores: torch.Tensor) -> torch.Tensor:
        if self.config.elu_param > 0:
            scores = F.elu(scores, self.config.elu_param)
        b = scores.shape[0]
        not_target = torch.ones_like(scores)
        diagonal = torch.arange(b, device=scores.device)
        not_target[diagonal, diagonal] = 0.0  # (B, B + S) the positive is no negative
        masked = scores * not_target
        e = torch.exp(masked - masked.max(dim=1, keepdim=True)[0]) * not_target
        weights = e / e.sum(dim=1, keepdim=True)  # (B, B + S) softmax over negatives
        target = scores.diagonal().unsqueeze(1)  # (B, 1)
        ranking = -torch.log(torch.sum(torch.sigmoid(target - scores) * weights, dim=1) + 1e-24)
        return torch.sum(ranking + self.config.bpreg * torch.sum(scores**2 * weights, dim=1))


class GRU4Rec(TorchNextItemModel[GRU4RecConfig, GRU4RecNet]):
    """GRU4Rec next-item model (fit / score / recommend / save / load).

    Args:
        config: Hyperparameters (defaults: ``GRU4RecConfig()``); saved with the model.
        runtime: Threads, device, progress bar, checkpoint and time budget of fitting and
            scoring (defaults: ``TorchRuntime()``, 1 CPU thread); never saved.
    """

    config_class = GRU4RecConfig

    def fit(self, train: Sequences, n_items: int, valid: EvalCases | None = None) -> Self:
        """Train session-parallel on ``train``; early-stop on ``valid`` NDCG@k when given.

        Args:
            train: Training sequences (sessions or users; item indices < ``n_items``).
            n_items: Vocabulary size, padding included.
            valid: Validation cases (their targets are never trained on).

        Returns:
            The fitted model.

        Raises:
            InputError: If ``n_items`` < 2, an item index is out of range or no sequence has two
                events.
            ConfigError: If neither ``constrained_embedding`` nor ``embedding`` > 0 is set.
        """
        config = self.config
        if not config.constrained_embedding and config.embedding == 0:
            raise ConfigError(
                "GRU4RecConfig: the one-hot input layer is not implemented; set "
                "constrained_embedding=True or embedding > 0"
            )
        if n_items < 2:
            raise InputError(f"The 'n_items' parameter of GRU4Rec.fit must be >= 2. Got {n_items}.")
        if train.n_events and int(train.items.max()) >= n_items:
            raise InputError(
                f"GRU4Rec.fit: item index {int(train.items.max())} is outside the vocabulary of "
                f"n_items={n_items}"
            )
        if not np.any(train.lengths >= 2):
            raise InputError(
                f"GRU4Rec.fit: none of the {len(train)} training sequences has 2 events; "
                "nothing to learn a next item from"
            )
        with seeded_torch(config.seed, self.runtime.threads):
            net = self._new_net(n_items).to(self.runtime.torch_device)
            task = _GRU4RecTask(net, train, n_items, config)
            optimizer: torch.optim.Optimizer
            if config.optimizer == "adagrad":
                optimizer = IndexedAdagradM(net.parameters(), config.lr, config.momentum)
            else:
                optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
            validate = early_stopping(lambda h: self._score_net(net, h, n_items), valid, config)
            self.report_ = run_training(
                task, net, optimizer, config, self.runtime, validate=validate, name="GRU4Rec"
            )
        self.net_, self.n_items_ = net, n_items
        return self

    def initial_state(self) -> GRUState:
        """The hidden state before any event (zeros), the start of :meth:`advance`."""
        net, _ = self._fitted()
        return tuple(h for h in net.init_hidden(1))

    def advance(self, state: GRUState, items: np.ndarray) -> GRUState:
        """The hidden state after ``items`` follow the history ``state`` summarises.

        The incremental path of single-history scoring: a history's state is kept, and each new
        event costs one cell step instead of a run over the whole history.
        ``score_state(advance(initial_state(), h))`` equals ``score(h)`` for one history ``h``
        bit for bit while ``h`` fits in ``max_len`` events; past that ``score`` reads only the
        last ``max_len`` events, so the caller must start again from the cut history (a GRU step
        cannot be undone).

        Args:
            state: A state from :meth:`initial_state` or :meth:`advance` of this fitted model.
            items: The new events' item indices, oldest first (-1 or 0: unknown, no step).

        Returns:
            The new state (``state`` itself is not changed).
        """
        net, _ = self._fitted()
        with torch_threads(self.runtime.threads):
            return _advance(net, state, np.asarray(items))

    def score_state(self, state: GRUState) -> np.ndarray:
        """Every item's score after the history ``state`` summarises, as :meth:`score` gives it.

        Args:
            state: A state from :meth:`advance`.

        Returns:
            (1, n_items) float32 scores; column 0 (padding) is -inf.
        """
        net, n_items = self._fitted()
        out = np.empty((1, n_items), dtype=np.float32)
        with torch_threads(self.runtime.threads), torch.inference_mode():
            self._item_matrix(net.Wy.weight, net.By.weight).scores_into(out, state[-1])
        out[:, 0] = -np.inf
        return out

    def item_index(self, config: IndexConfig | None = None) -> ApproximateTopK:
        """An approximate top-k index of the output vectors and their bias (past ~1 M items).

        Search it with ``state[-1]`` of a state from :meth:`advance`; exact stays the default.

        Args:
            config: Index parameters (default: ``IndexConfig()``).

        Returns:
            The index (rebuild it after the weights change).
        """
        net, _ = self._fitted()
        weight = net.Wy.weight.detach().cpu().numpy()
        bias = net.By.weight.detach().cpu().numpy()
        return ApproximateTopK(weight, bias, config)

    def _new_net(self, n_items: int) -> GRU4RecNet:
        return GRU4RecNet(n_items, self.config)

    def _score_net(self, net: GRU4RecNet, histories: Sequences, n_items: int) -> np.ndarray:
        items = self._item_matrix(net.Wy.weight, net.By.weight)
        return _score(net, histories, n_items, self.config, items)
