"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A causal Transformer encoder over the last ``max_len`` items with learned positions; the output at
each position scores every item through the shared item embedding matrix.

Training objective (``loss``):

* ``ce`` (default): full-softmax cross-entropy over the whole catalogue at every position.
  Klenitskiy & Vasilev (RecSys 2023) show it lifts SASRec above BERT4Rec (Beauty HR@10 0.0533 vs
  0.0246 with the original objective).
* ``sampled_ce``: softmax over the positive and ``n_negatives`` uniformly drawn items shared by the
  whole batch; far cheaper on large catalogues, close to ``ce`` when ``n_negatives`` is in the
  thousands (gSASRec, Petrov & Macdonald 2023). Accidental hits are masked.
* ``bce``: the paper's binary cross-entropy with one uniform negative per position, for comparison.

Sequences are left-padded (0) windows of ``max_len + 1`` items (``sliding_windows``); the input is
the window without its last item, the target the window shifted by one. Unknown items (-1) become
padding. Positions count from the start of the padded window, as in the original TF code, so the
most recent item always has position ``max_len - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal, Self

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("SASRec needs PyTorch: pip install 'shopseq[torch]'") from exc
from pydantic import Field

from shopseq.errors import InputError
from shopseq.nextitem.neural import (
    ItemMatrix,
    NeuralNextItemConfig,
    TorchNextItemModel,
    early_stopping,
)
from shopseq.sequences import EvalCases, Sequences, sliding_windows
from shopseq.training import seeded_torch
from shopseq.training import train as run_training

__all__ = ["SASRec", "SASRecConfig", "SASRecNet"]


class SASRecConfig(NeuralNextItemConfig):
    """SASRec hyperparameters (plus the shared training loop's).

    Attributes:
        max_len: Items of history the encoder sees.
        hidden_size: Embedding and model width.
        n_blocks: Transformer blocks.
        n_heads: Attention heads (must divide ``hidden_size``).
        dropout: Dropout on embeddings, attention weights and feed-forward outputs.
        pre_ln: Layer norm before each sub-layer (plus a final one); ``False``: after (original).
        loss: ``ce``, ``sampled_ce`` or ``bce`` (see the module docstring).
        n_negatives: Shared negatives per batch for ``sampled_ce``.
        bucket_by_length: Batch windows of similar length together and cut each batch to its
            longest window (most windows are far shorter than ``max_len``; 3-5x fewer positions).
        weight_decay: AdamW weight decay.
        score_batch: Histories encoded at once when scoring.
    """

    max_len: int = Field(default=50, ge=1)
    hidden_size: int = Field(default=64, ge=1)
    n_blocks: int = Field(default=2, ge=1)
    n_heads: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.2, ge=0, lt=1)
    pre_ln: bool = True
    loss: Literal["ce", "sampled_ce", "bce"] = "ce"
    n_negatives: int = Field(default=2048, ge=1)
    bucket_by_length: bool = True
    weight_decay: float = Field(default=0.0, ge=0)
    score_batch: int = Field(default=512, ge=1)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where a position sees itself and earlier non-padding positions."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attend; ``mask`` (B, 1, T, T) is True where a query may see a key."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # 3 x (B, T, d)
        q = q.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, h, T, d/h)
        k = k.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, h, T, d/h)
        v = v.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, h, T, d/h)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, h, T, d/h)
        y = y.transpose(1, 2).contiguous().view(b, t, d)  # (B, T, d)
        out: torch.Tensor = self.proj(y)
        return out


class Block(nn.Module):
    """Attention then a position-wise feed-forward layer, each with a residual and a layer norm."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.pre_ln = config.pre_ln
        self.ln_1 = nn.LayerNorm(d, eps=1e-8)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(d, eps=1e-8)
        # The paper's "point-wise feed-forward" (two d x d layers, ReLU).
        self.ffn = nn.Sequential(
            nn.Linear(d, d), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(d, d)
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Apply the block to (B, T, d)."""
        if not self.training:
            return self._infer(x, mask)
        if self.pre_ln:
            x = x + self.drop(self.attn(self.ln_1(x), mask))  # (B, T, d)
            x = x + self.drop(self.ffn(self.ln_2(x)))  # (B, T, d)
        else:
            x = self.ln_1(x + self.drop(self.attn(x, mask)))  # (B, T, d)
            x = self.ln_2(x + self.drop(self.ffn(x)))  # (B, T, d)
        return x

    def _infer(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Eval mode: the same operations without the dropouts, which are the identity there but
        # cost a module call each; one history's answer is a few dozen tiny ops, so the calls
        # are a measurable part of it (benchmarks/neural_latency.py).
        first, relu, _, second = self.ffn
        if self.pre_ln:
            x = x + self.attn(self.ln_1(x), mask)  # (B, T, d)
            out: torch.Tensor = x + second(relu(first(self.ln_2(x))))  # (B, T, d)
            return out
        x = self.ln_1(x + self.attn(x, mask))  # (B, T, d)
        post: torch.Tensor = self.ln_2(x + second(relu(first(x))))  # (B, T, d)
        return post


class SASRecNet(nn.Module):
    """Item + position embeddings, causal blocks; item embeddings also score the output."""

    def __init__(self, n_items: int, config: SASRecConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.item_emb = nn.Embedding(n_items, d, padding_idx=0)
        self.pos_emb = nn.Embedding(config.max_len, d)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_blocks)])
        self.ln_f = nn.LayerNorm(d, eps=1e-8) if config.pre_ln else nn.Identity()
        self.scale = math.sqrt(d)
        self.max_len = config.max_len
        for name, param in self.named_parameters():
            if param.dim() >= 2:  # Xavier init as the reference implementations
                nn.init.xavier_normal_(param)
            elif name.endswith("bias"):
                nn.init.zeros_(param)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, items: torch.Tensor, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """Encode left-padded item windows (B, T) into one state per position (B, T, d).

        ``inputs`` (B, T, d), when given, replaces the scaled item embeddings (the per-user
        sequence models feed their own event vectors); ``items > 0`` still marks the events.
        """
        t = items.shape[1]
        valid = items > 0  # (B, T)
        # Windows are right-aligned: a window cut to its last t columns keeps its positions.
        positions = torch.arange(self.max_len - t, self.max_len, device=items.device)  # (T,)
        embedded = self.item_emb(items) * self.scale if inputs is None else inputs  # (B, T, d)
        x = embedded + self.pos_emb(positions)  # (B, T, d)
        causal = torch.ones(t, t, dtype=torch.bool, device=items.device).tril()  # (T, T)
        if not self.training and bool(valid.all()):
            # Every position holds an event (one history cut to its used width, as scoring
            # does): the padding mask keeps everything and dropout is the identity, so these
            # are the arithmetic of the general path below without its no-op operations.
            full = causal.expand(items.shape[0], 1, t, t)  # (B, 1, T, T)
            for block in self.blocks:
                x = block(x, full)  # (B, T, d)
            dense: torch.Tensor = self.ln_f(x)
            return dense
        x = self.drop(x) * valid.unsqueeze(-1)  # (B, T, d) padding stays zero
        eye = torch.eye(t, dtype=torch.bool, device=items.device)  # (T, T)
        # A query sees earlier non-padding keys and always itself (no all-masked row -> no NaN).
        mask = (causal & (valid.unsqueeze(1) | eye)).unsqueeze(1)  # (B, 1, T, T)
        for block in self.blocks:
            x = block(x, mask) * valid.unsqueeze(-1)  # (B, T, d)
        out: torch.Tensor = self.ln_f(x)
        return out

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Score every item: (N, d) states -> (N, n_items) logits."""
        return states @ self.item_emb.weight.T  # (N, n_items)


@torch.inference_mode()
def _score(
    net: SASRecNet, histories: Sequences, n_items: int, config: SASRecConfig, items: ItemMatrix
) -> np.ndarray:
    """Encode each history's last ``max_len`` items; (n, n_items) scores, padding -inf.

    ``items`` is ``net.item_emb.weight`` in the layout of the scoring product.
    """
    out = np.empty((len(histories), n_items), dtype=np.float32)
    padded = histories.to_padded(config.max_len)  # (n, max_len), -1 -> 0
    device = net.item_emb.weight.device
    for start in range(0, len(histories), config.score_batch):
        chunk = padded[start : start + config.score_batch]  # (B, max_len)
        used = np.flatnonzero(chunk.any(axis=0))  # columns holding an item in some row
        width = config.max_len - int(used[0]) if len(used) else 1
        window = torch.from_numpy(chunk[:, -width:].astype(np.int64)).to(device)  # (B, width)
        last = net(window)[:, -1, :]  # (B, d) state after the most recent item
        items.scores_into(out[start : start + len(chunk)], last)
    out[:, 0] = -np.inf
    return out


class _SASRecTask:
    """One epoch of SASRec training for the shared loop."""

    def __init__(self, net: SASRecNet, windows: np.ndarray, n_items: int, config: SASRecConfig):
        self.net = net
        self.windows = torch.from_numpy(windows.astype(np.int64))  # (W, max_len + 1)
        # Span from the first item to the end (an unknown item inside a window is padding).
        self.lengths = windows.shape[1] - np.argmax(windows > 0, axis=1)  # (W,)
        self.n_items = n_items
        self.config = config
        self.n_sequences = len(windows)
        self.device = net.item_emb.weight.device

    def n_batches(self) -> int:
        return -(-self.n_sequences // self.config.batch_size)

    def batches(self, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        size = self.config.batch_size
        order = rng.permutation(self.n_sequences)
        if self.config.bucket_by_length:
            # Sort within shuffled pools of 64 batches by length, then shuffle the batches:
            # random batches, little padding (the usual bucketing iterator).
            pool = 64 * size
            for lo in range(0, len(order), pool):
                chunk = order[lo : lo + pool]
                order[lo : lo + pool] = chunk[np.argsort(self.lengths[chunk], kind="stable")]
        starts = np.arange(0, self.n_sequences, size)
        for start in rng.permutation(starts) if self.config.bucket_by_length else starts:
            chosen = order[start : start + size]
            width = int(self.lengths[chosen].max())
            rows = self.windows[torch.from_numpy(chosen), -width:]  # (B, width <= max_len + 1)
            negatives: torch.Tensor
            if self.config.loss == "sampled_ce":
                negatives = torch.from_numpy(
                    rng.integers(1, self.n_items, size=self.config.n_negatives)
                )  # (n_neg,) shared by the batch
            elif self.config.loss == "bce":
                negatives = torch.from_numpy(
                    rng.integers(1, self.n_items, size=(len(rows), rows.shape[1] - 1))
                )  # (B, width - 1) one per position
            else:
                negatives = torch.empty(0, dtype=torch.int64)
            yield rows.to(self.device), negatives.to(self.device)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
        rows, negatives = batch
        inputs, targets = rows[:, :-1], rows[:, 1:]  # (B, T), (B, T)
        states = self.net(inputs)  # (B, T, d)
        # Only positions with both an input and a target count (left padding has neither).
        active = (targets > 0) & (inputs > 0)  # (B, T)
        h = states[active]  # (N, d)
        y = targets[active]  # (N,)
        weight = self.net.item_emb.weight  # (n_items, d)
        if self.config.loss == "ce":
            logits = h @ weight[1:].T  # (N, n_items - 1): padding is never a class
            loss = F.cross_entropy(logits, y - 1)
        elif self.config.loss == "sampled_ce":
            pos = (h * weight[y]).sum(-1, keepdim=True)  # (N, 1)
            neg = h @ weight[negatives].T  # (N, n_neg)
            neg = neg.masked_fill(negatives.unsqueeze(0) == y.unsqueeze(1), float("-inf"))
            logits = torch.cat([pos, neg], dim=1)  # (N, 1 + n_neg), the positive is class 0
            loss = F.cross_entropy(logits, torch.zeros_like(y))
        else:
            neg_items = negatives[active]  # (N,)
            pos = (h * weight[y]).sum(-1)  # (N,)
            neg = (h * weight[neg_items]).sum(-1)  # (N,)
            loss = F.binary_cross_entropy_with_logits(
                pos, torch.ones_like(pos)
            ) + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
        return loss, len(y)


class SASRec(TorchNextItemModel[SASRecConfig, SASRecNet]):
    """SASRec next-item model (fit / score / recommend / save / load).

    Args:
        config: Hyperparameters (defaults: ``SASRecConfig()``); saved with the model.
        runtime: Threads, device, progress bar, checkpoint and time budget of fitting and
            scoring (defaults: ``TorchRuntime()``, 1 CPU thread); never saved.
    """

    config_class = SASRecConfig

    def fit(self, train: Sequences, n_items: int, valid: EvalCases | None = None) -> Self:
        """Train on ``train``; early-stop on ``valid`` NDCG@k when given.

        Args:
            train: Training sequences (item indices < ``n_items``).
            n_items: Vocabulary size, padding included.
            valid: Validation cases (their targets are never trained on).

        Returns:
            The fitted model.

        Raises:
            InputError: If ``n_items`` < 2 or an item index is out of range.
        """
        config = self.config
        if n_items < 2:
            raise InputError(f"The 'n_items' parameter of SASRec.fit must be >= 2. Got {n_items}.")
        if train.n_events and int(train.items.max()) >= n_items:
            raise InputError(
                f"SASRec.fit: item index {int(train.items.max())} is outside the "
                f"vocabulary of n_items={n_items}"
            )
        if config.hidden_size % config.n_heads:
            raise InputError(
                f"The 'n_heads' parameter of SASRecConfig must divide hidden_size="
                f"{config.hidden_size}. Got {config.n_heads}."
            )
        windows, _ = sliding_windows(train, config.max_len + 1, stride=config.max_len)
        windows = windows[(windows > 0).sum(axis=1) >= 2]  # a window needs one input->target pair
        with seeded_torch(config.seed, self.runtime.threads):
            net = self._new_net(n_items).to(self.runtime.torch_device)
            task = _SASRecTask(net, windows, n_items, config)
            optimizer = torch.optim.AdamW(
                net.parameters(), lr=config.lr, betas=(0.9, 0.98), weight_decay=config.weight_decay
            )
            validate = early_stopping(lambda h: self._score_net(net, h, n_items), valid, config)
            self.report_ = run_training(
                task, net, optimizer, config, self.runtime, validate=validate, name="SASRec"
            )
        self.net_, self.n_items_ = net, n_items
        return self

    def _new_net(self, n_items: int) -> SASRecNet:
        return SASRecNet(n_items, self.config)

    def _score_net(self, net: SASRecNet, histories: Sequences, n_items: int) -> np.ndarray:
        items = self._item_matrix(net.item_emb.weight)
        return _score(net, histories, n_items, self.config, items)
