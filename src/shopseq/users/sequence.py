"""Sequence models of the per-user tasks: the next-item encoders with per-user heads.

The encoders are the next-item models' own networks, imported, not copied: ``gru`` runs
``nextitem.gru4rec.GRU4RecNet``'s cells and ``sasrec`` runs ``nextitem.sasrec.SASRecNet``'s causal
Transformer blocks, both fed through their ``inputs`` hook with an event vector instead of an item
embedding. ``users`` may not import ``nextitem`` (sibling stages in the import contract), so the
model takes its encoder as an argument (:data:`EncoderFactory`); ``runs.sequence_encoders`` holds
the two adapters. An event vector is the sum of an action-type embedding, an item embedding, a
category embedding (items and categories seen at least ``min_count`` times in the training windows;
the rest share one "rare" row) and a linear map of the log gap since the owner's previous event.
The encoder reads the owner's last ``max_len`` events *before the cut-off* (for session intent, the
session's first ``k`` events after the owner's earlier ones), built in the store by
:func:`event_windows`; the state after the most recent event, with the log time from that event to
the cut-off, goes to one head per task:

* **next action**: a softmax over the action types (cross-entropy);
* **time to next event**: a **log-normal** head, ``log T ~ Normal(mu, sigma)``, fitted by maximum
  likelihood with the right-censoring in the likelihood: an observed delay ``t`` adds
  ``log f(t)``, a row censored at the horizon ``c`` adds ``log S(c) = log(1 - Phi((log c - mu) /
  sigma))``, so a censored row pushes the distribution past the horizon instead of pretending the
  next event came at it. Log-normal rather than piecewise-exponential because return gaps span
  seconds (within a session) to weeks, which a normal on the log scale covers with two parameters
  and no bin edges to choose, and its median ``exp(mu)`` has a closed form: the prediction is the
  median capped at the horizon, the point MAE rewards for the capped delay the leaderboard scores;
* **binary** (purchase, churn, session intent at each prefix): a logistic head
  (cross-entropy), calibrated by isotonic regression on the later validation snapshot, as the
  LightGBM model is.

What they can explain: nothing per feature. They read raw events, not the named features, so the
scored table says which events the model read, not why it scored as it did (docs/predict.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from shopseq.artifacts import atomic_dir, atomic_write_json, read_json
from shopseq.errors import ArtifactError, ConfigError, InputError, check_is_fitted
from shopseq.schema import (
    ACTION,
    ACTION_CODES,
    CATEGORY_ID,
    ITEM_ID,
    SESSION_ID,
    SOURCE_FILE_ID,
    SOURCE_ROW,
    TS,
    USER_ID,
)
from shopseq.sequences import CUTOFF
from shopseq.users.tasks import ACTION_NAMES, Examples, TaskSpec

__all__ = [
    "SEQUENCE_MODELS",
    "EncoderFactory",
    "EventWindows",
    "SequenceConfig",
    "SequenceModel",
    "event_windows",
    "lognormal_nll",
]

#: Sequence model name (``shopseq predict --model``) -> the next-item encoder it reuses.
SEQUENCE_MODELS: dict[str, str] = {"gru": "GRU4RecNet", "sasrec": "SASRecNet"}

#: Builds an encoder module from the config: ``forward(events (B, T) int, 0 = padding,
#: left-padded; inputs (B, T, hidden_size)) -> (B, hidden_size)``, the state after the latest event.
EncoderFactory = Callable[["SequenceConfig"], Any]

_WEIGHTS = "weights.pt"
_META = "sequence.json"
_LOG_SCALE = 10.0  # log1p(seconds) / 10 keeps the gap inputs near [0, 1.5]


@dataclass(frozen=True, slots=True)
class EventWindows:
    """The events each example's model reads, right-aligned (the latest in the last column).

    Attributes:
        action: (n, L) int64: action code + 1; 0 is padding.
        item: (n, L) item ids as strings (``None`` in padding).
        category: (n, L) category ids as strings (``None`` in padding or without a category).
        gap: (n, L) float32: log1p(seconds since the owner's previous event) (0 for the first).
        elapsed: (n,) float32: log1p(seconds from the latest event read to the cut-off).
    """

    action: np.ndarray
    item: np.ndarray
    category: np.ndarray
    gap: np.ndarray
    elapsed: np.ndarray

    def __len__(self) -> int:
        return len(self.action)

    def take(self, index: np.ndarray) -> EventWindows:
        """Rows by position."""
        return EventWindows(
            self.action[index],
            self.item[index],
            self.category[index],
            self.gap[index],
            self.elapsed[index],
        )


def _epoch(column: ibis.TimestampValue) -> ibis.FloatingValue:
    return column.epoch_seconds().cast("float64")


def event_windows(
    events: ibis.Table, keys: pa.Table, grain: Literal["user", "session"], max_len: int
) -> EventWindows:
    """Read each example's events in the store: the last ``max_len`` before its cut-off.

    Owner examples (``user_id``, ``cutoff``) read the owner's events strictly before the cut-off;
    session-prefix examples (``user_id``, ``session_id``, ``k``, ``cutoff``) read the session's
    first ``k`` events (the ``k``-th is the moment of prediction, ``cutoff``) and the owner's
    events of other sessions strictly before the cut-off.

    Args:
        events: Prepared events.
        keys: The examples' keys (``Examples.keys``), in example order.
        grain: ``user`` or ``session``.
        max_len: Most recent events kept per example.

    Returns:
        The windows, one row per key row.
    """
    n = keys.num_rows
    order = [events[TS], events[SOURCE_FILE_ID], events[SOURCE_ROW]]
    history = ibis.window(group_by=events[USER_ID], order_by=order)
    base = events.mutate(
        _sec=_epoch(events[TS]),
        _gap=(_epoch(events[TS]) - _epoch(events[TS].lag().over(history))),
    )
    if grain == "session":
        within = ibis.window(
            group_by=[base[USER_ID], base[SESSION_ID]],
            order_by=[base[TS], base[SOURCE_FILE_ID], base[SOURCE_ROW]],
        )
        base = base.mutate(_pos=ibis.row_number().over(within))
        key = ibis.memtable(
            pa.table(
                {
                    "_row": pa.array(np.arange(n), pa.int64()),
                    "_key_user": keys.column(USER_ID),
                    "_key_session": keys.column(SESSION_ID),
                    "_key_k": keys.column("k").cast(pa.int64()),
                    "_key_cut": keys.column(CUTOFF),
                }
            )
        )
        same = base[SESSION_ID] == key._key_session
        joined = base.inner_join(
            key,
            (base[USER_ID] == key._key_user)
            & ((same & (base._pos < key._key_k)) | (~same & (base[TS] < key._key_cut))),
        )
    else:
        key = ibis.memtable(
            pa.table(
                {
                    "_row": pa.array(np.arange(n), pa.int64()),
                    "_key_user": keys.column(USER_ID),
                    "_key_cut": keys.column(CUTOFF),
                }
            )
        )
        joined = base.inner_join(key, (base[USER_ID] == key._key_user) & (base[TS] < key._key_cut))
    latest = ibis.window(
        group_by=joined._row,
        order_by=[ibis.desc(joined[TS]), ibis.desc(joined[SOURCE_FILE_ID]),
                  ibis.desc(joined[SOURCE_ROW])],
    )  # fmt: skip
    ranked = joined.mutate(_rank=ibis.row_number().over(latest))
    ranked = ranked.filter(ranked._rank < max_len)
    has_category = CATEGORY_ID in events.columns
    table = ranked.select(
        "_row",
        "_rank",
        "_sec",
        "_gap",
        ACTION,
        ITEM_ID,
        _cut=_epoch(ranked._key_cut),
        _category=ranked[CATEGORY_ID] if has_category else ibis.null().cast("string"),
    ).to_pyarrow()
    row = table.column("_row").to_numpy()
    col = max_len - 1 - table.column("_rank").to_numpy()
    action = np.zeros((n, max_len), np.int64)
    codes = {a.value: c + 1 for a, c in ACTION_CODES.items()}
    encoded = pc.dictionary_encode(table.column(ACTION).combine_chunks())
    lookup = np.array([codes.get(v, 0) for v in encoded.dictionary.to_pylist()], np.int64)
    action[row, col] = lookup[encoded.indices.to_numpy(zero_copy_only=False)] if len(row) else 0
    item = np.full((n, max_len), None, object)
    item[row, col] = np.asarray(table.column(ITEM_ID).to_pylist(), object)
    category = np.full((n, max_len), None, object)
    category[row, col] = np.asarray(table.column("_category").to_pylist(), object)
    gap = np.zeros((n, max_len), np.float32)
    gaps = np.nan_to_num(table.column("_gap").to_numpy(zero_copy_only=False), nan=0.0)
    gap[row, col] = np.log1p(np.maximum(gaps, 0.0))
    elapsed = np.zeros(n, np.float32)
    latest_rows = col == max_len - 1
    since = table.column("_cut").to_numpy() - table.column("_sec").to_numpy()
    elapsed[row[latest_rows]] = np.log1p(np.maximum(since[latest_rows], 0.0))
    return EventWindows(action, item, category, gap, elapsed)


class SequenceConfig(BaseModel):
    """Hyper-parameters of a per-user sequence model.

    Attributes:
        encoder: ``gru`` (GRU4Rec's cells) or ``sasrec`` (SASRec's Transformer blocks).
        max_len: Most recent events read per example.
        hidden_size: Event vector and encoder width.
        n_blocks: Transformer blocks (``sasrec``).
        dropout: Dropout of the SASRec blocks and of the head.
        min_count: Items and categories seen fewer times in training share one embedding row.
        max_vocab: Most frequent items (and categories) with their own row at most.
        n_epochs: Passes over the training examples.
        min_steps: Optimiser steps at least (more passes on small snapshots).
        batch_size: Examples per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        horizon_seconds: ``next-time``: the censoring horizon (predictions are capped at it).
        calibration: Binary tasks: ``isotonic`` on the validation snapshot, or ``none``.
        seed: Seed of the weights and the batch order.
        threads: Torch intra-op threads of fitting and scoring.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    encoder: Literal["gru", "sasrec"] = "gru"
    max_len: int = Field(default=50, ge=1)
    hidden_size: int = Field(default=32, ge=4)
    n_blocks: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    min_count: int = Field(default=5, ge=1)
    max_vocab: int = Field(default=20_000, ge=1)
    n_epochs: int = Field(default=4, ge=1)
    min_steps: int = Field(default=300, ge=0)
    batch_size: int = Field(default=256, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    horizon_seconds: float | None = Field(default=None, gt=0)
    calibration: Literal["isotonic", "none"] = "isotonic"
    seed: int = Field(default=0, ge=0)
    threads: int = Field(default=1, ge=1)


def _vocabulary(values: np.ndarray, config: SequenceConfig) -> list[str]:
    present = values[values != None]  # noqa: E711 - elementwise over an object array
    if len(present) == 0:
        return []
    counts = pc.value_counts(pa.array(present.astype(str)))
    names = counts.field("values").to_numpy(zero_copy_only=False)
    n = counts.field("counts").to_numpy()
    order = np.lexsort((names, -n))  # most frequent first, ties by name (deterministic)
    keep = order[n[order] >= config.min_count][: config.max_vocab]
    return [str(v) for v in names[keep]]


def _indices(values: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    """0 padding / missing, 1 rare, 2.. the vocabulary."""
    lookup = {v: i + 2 for i, v in enumerate(vocabulary)}
    flat = values.ravel()
    out = np.fromiter(
        (0 if v is None else lookup.get(str(v), 1) for v in flat), np.int64, len(flat)
    )
    return out.reshape(values.shape)


def lognormal_nll(mu: Any, log_sigma: Any, seconds: Any, observed: Any) -> Any:
    """Mean negative log-likelihood of right-censored log-normal delays (torch tensors).

    Observed rows add ``-log f(t)``, censored rows ``-log S(c)`` with ``c`` their censoring time.

    Args:
        mu: (n,) location of ``log T``.
        log_sigma: (n,) log of the scale of ``log T``.
        seconds: (n,) delays (observed) or censoring times (censored), > 0.
        observed: (n,) bool.

    Returns:
        A scalar tensor.
    """
    import torch

    sigma = log_sigma.exp()
    log_t = torch.log(seconds.clamp_min(1.0))
    z = (log_t - mu) / sigma
    log_pdf = -0.5 * z.pow(2) - log_sigma - log_t - 0.5 * math.log(2 * math.pi)
    # log(1 - Phi(z)) = log(0.5 erfc(z / sqrt 2)); special.log_ndtr(-z) is its stable form.
    log_survival = torch.special.log_ndtr(-z)
    return -torch.where(observed, log_pdf, log_survival).mean()


def _network(
    config: SequenceConfig, encoder: EncoderFactory, n_items: int, n_categories: int, n_out: int
) -> Any:
    import torch
    from torch import nn

    d = config.hidden_size

    class Net(nn.Module):
        """Event vectors -> a next-item encoder (via its ``inputs`` hook) -> the task head."""

        def __init__(self) -> None:
            super().__init__()
            self.action = nn.Embedding(len(ACTION_NAMES) + 1, d, padding_idx=0)
            self.item = nn.Embedding(n_items, d, padding_idx=0)
            self.category = nn.Embedding(n_categories, d, padding_idx=0)
            self.gap = nn.Linear(1, d)
            self.encoder = encoder(config)
            self.head = nn.Sequential(
                nn.Linear(d + 1, d), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(d, n_out)
            )

        def forward(
            self,
            action: torch.Tensor,
            item: torch.Tensor,
            category: torch.Tensor,
            gap: torch.Tensor,
            elapsed: torch.Tensor,
        ) -> torch.Tensor:
            valid = (action > 0).unsqueeze(-1)  # (B, T, 1)
            x = self.action(action) + self.item(item) + self.category(category)
            x = (x + self.gap(gap.unsqueeze(-1))) * valid  # (B, T, d)
            state = self.encoder(action, x)  # (B, d)
            out: torch.Tensor = self.head(torch.cat([state, elapsed.unsqueeze(-1)], dim=1))
            return out

    return Net()


class SequenceModel:
    """A next-item encoder with a per-user task head (see the module docstring).

    ``fit`` and ``predict`` take the same :class:`~shopseq.users.tasks.Examples` as LightGBM and
    the baselines; they read ``examples.windows`` (the events before each cut-off), never the
    feature matrix.

    Args:
        task: The task (next-action, next-time, purchase, churn or session-intent).
        config: Hyper-parameters.
        encoder: Builds the encoder (``runs.sequence_encoders.SEQUENCE_ENCODERS[name]``); needed
            to fit.
    """

    def __init__(
        self,
        task: TaskSpec,
        config: SequenceConfig | None = None,
        encoder: EncoderFactory | None = None,
    ) -> None:
        if task.name == "clv":
            raise InputError(
                "the sequence models predict next-action, next-time, purchase, churn and "
                "session-intent; clv has LightGBM and the customer-base models"
            )
        self.task = task
        self.config = config or SequenceConfig()
        self.encoder = encoder
        self.net_: Any = None
        self.items_: list[str] = []
        self.categories_: list[str] = []
        self.horizon_: float | None = None
        self.calibration_: tuple[list[float], list[float]] | None = None
        self.losses_: list[float] = []

    @property
    def _n_out(self) -> int:
        return {"multiclass": len(ACTION_NAMES), "regression": 2, "binary": 1}[self.task.kind]

    def _tensors(self, windows: EventWindows) -> tuple[Any, ...]:
        import torch

        return (
            torch.from_numpy(windows.action),
            torch.from_numpy(_indices(windows.item, self.items_)),
            torch.from_numpy(_indices(windows.category, self.categories_)),
            torch.from_numpy(windows.gap / _LOG_SCALE),
            torch.from_numpy(windows.elapsed / _LOG_SCALE),
        )

    @staticmethod
    def _windows(examples: Examples) -> EventWindows:
        if examples.windows is None:
            raise InputError(
                "the sequence models read the events before each cut-off: build the examples' "
                "windows with users.sequence.event_windows"
            )
        return examples.windows

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Fit the encoder and head on ``train``; calibrate binary heads on ``valid``.

        Args:
            train: Training examples with windows.
            valid: A later snapshot with windows (calibration of binary tasks).

        Returns:
            The fitted model.

        Raises:
            InputError: Without training examples or windows, or with one class only.
        """
        import torch

        from shopseq.training import seeded_torch

        windows = self._windows(train)
        if len(train) == 0:
            raise InputError("a sequence model needs training examples; got none")
        if self.task.kind == "binary" and len(np.unique(train.y)) < 2:
            raise InputError("the binary training labels have one class only")
        if self.encoder is None:
            raise ConfigError("a sequence model needs its encoder (runs.sequence_encoders)")
        c = self.config
        self.items_ = _vocabulary(windows.item, c)
        self.categories_ = _vocabulary(windows.category, c)
        if self.task.kind == "regression":
            self.horizon_ = c.horizon_seconds or float(np.max(train.y))
        inputs = self._tensors(windows)
        y = torch.from_numpy(np.asarray(train.y))
        observed = torch.from_numpy(np.asarray(train.observed, bool))
        rng = np.random.default_rng(c.seed)
        with seeded_torch(c.seed, c.threads):
            net = _network(
                c, self.encoder, len(self.items_) + 2, len(self.categories_) + 2, self._n_out
            )
            self._init_output(net, train)
            optimiser = torch.optim.Adam(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
            net.train()
            self.losses_ = []
            per_epoch = -(-len(train) // c.batch_size)
            for _ in range(max(c.n_epochs, -(-c.min_steps // per_epoch))):
                order = torch.from_numpy(rng.permutation(len(train)))
                total = 0.0
                for start in range(0, len(order), c.batch_size):
                    batch = order[start : start + c.batch_size]
                    out = net(*(t[batch] for t in inputs))
                    loss = self._loss(out, y[batch], observed[batch])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach()) * len(batch)
                self.losses_.append(total / len(train))
            net.eval()
        self.net_ = net
        self.calibration_ = None
        binary = self.task.kind == "binary" and c.calibration == "isotonic"
        if binary and valid is not None and len(valid) and len(np.unique(valid.y)) == 2:
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(self.raw(valid), valid.y)
            self.calibration_ = (iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist())
        return self

    def _init_output(self, net: Any, train: Examples) -> None:
        """Start the head at the constant predictor: base rate, class shares, log-delay moments.

        Without it the log-normal's location starts near 0 (one second) and a small snapshot's
        few hundred steps cannot move it to the ~10-12 of hours and days.
        """
        import torch

        last = net.head[-1]
        y = np.asarray(train.y, np.float64)
        if self.task.kind == "binary":
            rate = float(np.clip(y.mean(), 1e-4, 1 - 1e-4))
            bias = [math.log(rate / (1 - rate))]
        elif self.task.kind == "multiclass":
            counts = np.bincount(y.astype(np.int64), minlength=len(ACTION_NAMES)) + 1.0
            bias = np.log(counts / counts.sum()).tolist()
        else:
            logs = np.log(np.maximum(y[np.asarray(train.observed, bool)], 1.0))
            logs = logs if len(logs) else np.log(np.maximum(y, 1.0))
            bias = [float(logs.mean()), float(np.log(max(logs.std(), 0.1)))]
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.copy_(torch.tensor(bias, dtype=last.bias.dtype))

    def _loss(self, out: Any, y: Any, observed: Any) -> Any:
        import torch.nn.functional as F

        if self.task.kind == "multiclass":
            return F.cross_entropy(out, y.long())
        if self.task.kind == "binary":
            return F.binary_cross_entropy_with_logits(out[:, 0], y.float())
        return lognormal_nll(out[:, 0], out[:, 1].clamp(-5, 5), y.float(), observed)

    def raw(self, examples: Examples) -> np.ndarray:
        """The head's outputs: logits (binary (n,), multiclass (n, classes)); ``(mu, log sigma)``.

        Args:
            examples: Examples with windows.

        Returns:
            The raw outputs.
        """
        import torch

        from shopseq.training import torch_threads

        check_is_fitted(self, "net_")
        inputs = self._tensors(self._windows(examples))
        parts = []
        with torch_threads(self.config.threads), torch.inference_mode():
            for start in range(0, len(examples), 4096):
                parts.append(self.net_(*(t[start : start + 4096] for t in inputs)).numpy())
        out = np.concatenate(parts) if parts else np.zeros((0, self._n_out), np.float32)
        out = out.astype(np.float64)
        return out[:, 0] if self.task.kind == "binary" else out

    def predict(self, examples: Examples) -> np.ndarray:
        """Calibrated P(positive), class probabilities, or the capped median delay (seconds).

        Args:
            examples: Examples with windows.

        Returns:
            (n,) or (n, classes) for next action.
        """
        raw = self.raw(examples)
        if self.task.kind == "multiclass":
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
            return probabilities
        if self.task.kind == "regression":
            assert self.horizon_ is not None
            median: np.ndarray = np.minimum(np.exp(np.minimum(raw[:, 0], 50.0)), self.horizon_)
            return median
        if self.calibration_ is None:
            sigmoid: np.ndarray = 1.0 / (1.0 + np.exp(-raw))
            return sigmoid
        xs, ys = self.calibration_
        calibrated: np.ndarray = np.interp(raw, np.asarray(xs), np.asarray(ys))
        return calibrated

    def save(self, directory: Path) -> None:
        """Write ``weights.pt`` (state dict) and ``sequence.json`` atomically.

        Args:
            directory: Destination (replaced as a whole).
        """
        import torch

        check_is_fitted(self, "net_")
        with atomic_dir(Path(directory)) as tmp:
            torch.save(self.net_.state_dict(), tmp / _WEIGHTS)
            atomic_write_json(
                tmp / _META,
                {
                    "model": "SequenceModel",
                    "task": self.task.name,
                    "config": self.config.model_dump(mode="json"),
                    "items": self.items_,
                    "categories": self.categories_,
                    "horizon": self.horizon_,
                    "calibration": list(self.calibration_) if self.calibration_ else None,
                    "losses": self.losses_,
                },
            )

    @classmethod
    def load(cls, directory: Path, encoder: EncoderFactory) -> SequenceModel:
        """Rebuild a model written by :meth:`save`.

        Args:
            directory: The model directory.
            encoder: The encoder it was fitted with (``config.encoder`` names it).

        Returns:
            The fitted model.

        Raises:
            ArtifactError: If files are missing or unreadable.
        """
        import torch

        from shopseq.users.tasks import task_spec

        directory = Path(directory)
        if not (directory / _WEIGHTS).is_file():
            raise ArtifactError(f"cannot load a sequence model from {directory}: no {_WEIGHTS}")
        try:
            meta = read_json(directory / _META)
            state = torch.load(directory / _WEIGHTS, weights_only=True)
        except (OSError, ValueError, RuntimeError) as err:
            raise ArtifactError(f"cannot load a sequence model from {directory}: {err}") from err
        model = cls(task_spec(meta["task"]), SequenceConfig(**meta["config"]), encoder)
        model.items_, model.categories_ = list(meta["items"]), list(meta["categories"])
        model.horizon_ = meta["horizon"]
        model.calibration_ = (
            (list(meta["calibration"][0]), list(meta["calibration"][1]))
            if meta["calibration"]
            else None
        )
        model.losses_ = list(meta["losses"])
        net = _network(
            model.config, encoder, len(model.items_) + 2, len(model.categories_) + 2, model._n_out
        )
        net.load_state_dict(state)
        net.eval()
        model.net_ = net
        return model
