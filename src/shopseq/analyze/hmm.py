"""Categorical HMM machinery for intent states: symbols, a weighted Baum-Welch, decoding.

Decoding (Viterbi, posteriors) and scoring use ``hmmlearn``'s ``CategoricalHMM`` with the
fitted parameters. The EM fit is hand-written because ``hmmlearn`` fits one Python call per
sequence per EM step and takes no sequence weights: on the 2-hour Taobao slice (71k sessions)
one 2-state fit took 78 s, while sessions repeat heavily (1,165 distinct symbol sequences), so
EM over the distinct sequences weighted by their counts, vectorised across sequences (a loop
over positions only), gives the same maximum-likelihood updates in a fraction of a second.
``tests/analyze/test_states.py`` checks its log-likelihood against ``hmmlearn``'s score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shopseq.analyze.result import Result
from shopseq.errors import InputError
from shopseq.schema import ACTION_CODES, Action
from shopseq.sequences import SequenceConfig, fetch_events

__all__ = [
    "VIEW_NEW",
    "VIEW_REVISIT",
    "VIEW_SAME",
    "HMMParameters",
    "IntentStateModel",
    "SymbolSequences",
    "baum_welch",
    "encode_symbols",
    "log_likelihoods",
]

VIEW_NEW, VIEW_SAME, VIEW_REVISIT = "view (new)", "view (same category)", "view (revisit)"
_PURCHASE = ACTION_CODES[Action.PURCHASE]
# Floor on every probability after an M-step: keeps a new sequence (e.g. a prefix in the
# service) from getting probability 0 under a transition never seen in fitting.
_FLOOR = 1e-6


def _hmmlearn() -> Any:
    try:
        from hmmlearn import hmm
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("intent states need hmmlearn: pip install 'shopseq[analyze]'") from exc
    return hmm


@dataclass(frozen=True, slots=True)
class SymbolSequences:
    """Symbol sequences in CSR layout (``Sequences``' idea, for HMM observations).

    Attributes:
        owner_ids: (n,) session (or user) id of each sequence.
        offsets: (n + 1,) int64; sequence ``i`` is ``symbols[offsets[i]:offsets[i + 1]]``.
        symbols: (n_events,) int64 index into ``names``.
        names: The alphabet.
        converted: (n,) bool, the sequence holds a purchase.
    """

    owner_ids: pa.Array
    offsets: np.ndarray
    symbols: np.ndarray
    names: tuple[str, ...]
    converted: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """(n,) events per sequence."""
        return np.diff(self.offsets)

    def subset(self, indices: np.ndarray) -> SymbolSequences:
        """Keep some sequences (in the given order).

        Args:
            indices: Sequence numbers.

        Returns:
            The selected sequences.
        """
        lengths = self.lengths[indices]
        starts = self.offsets[indices]
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return SymbolSequences(
            owner_ids=self.owner_ids.take(pa.array(indices, pa.int64())),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            symbols=self.symbols[np.repeat(starts, lengths) + within],
            names=self.names,
            converted=self.converted[indices],
        )

    def head(self, max_len: int) -> SymbolSequences:
        """Keep each sequence's first ``max_len`` events.

        Args:
            max_len: Events kept per sequence.

        Returns:
            The shortened sequences.
        """
        lengths = np.minimum(self.lengths, max_len)
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return SymbolSequences(
            owner_ids=self.owner_ids,
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            symbols=self.symbols[np.repeat(self.offsets[:-1], lengths) + within],
            names=self.names,
            converted=self.converted,
        )

    def distinct(self) -> tuple[SymbolSequences, np.ndarray, np.ndarray]:
        """The distinct symbol sequences, which sequence is which, and how often each occurs.

        Returns:
            The distinct sequences (first occurrence's owner), the (n,) index of each
            sequence's distinct sequence, and the (n_distinct,) counts.
        """
        raw = self.symbols.astype(np.int8).tobytes()
        first: dict[bytes, int] = {}
        inverse = np.empty(len(self), dtype=np.int64)
        for i, (lo, hi) in enumerate(zip(self.offsets[:-1], self.offsets[1:], strict=True)):
            inverse[i] = first.setdefault(raw[lo:hi], len(first))
        representatives = np.zeros(len(first), dtype=np.int64)
        representatives[inverse[::-1]] = np.arange(len(self))[::-1]
        return self.subset(representatives), inverse, np.bincount(inverse, minlength=len(first))


def _context_symbols(events: Any, offsets: np.ndarray) -> np.ndarray:
    """Per event: 0 new item, 1 new item in the previous event's category, 2 item seen before."""
    n = len(events)
    seq = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets)).astype(np.int64)
    items = pc.dictionary_encode(events.item_ids).indices.to_numpy(zero_copy_only=False)
    key = seq * (int(items.max(initial=0)) + 1) + items
    _, first = np.unique(key, return_index=True)
    revisit = np.ones(n, dtype=bool)
    revisit[first] = False
    same = np.zeros(n, dtype=bool)
    if n > 1:
        categories = events.category_ids
        equal = pc.fill_null(pc.equal(categories[1:], categories[:-1]), False)
        same[1:] = equal.to_numpy(zero_copy_only=False) & (seq[1:] == seq[:-1])
    return np.where(revisit, 2, np.where(same, 1, 0))


def encode_symbols(events: ibis.Table, by: str, alphabet: str) -> SymbolSequences:
    """Read events and turn each session (or user) into HMM symbols.

    Args:
        events: Prepared events.
        by: ``session`` or ``user``.
        alphabet: ``action`` (the action) or ``action_context`` (views split into
            ``view (new)``, ``view (same category)`` and ``view (revisit)``).

    Returns:
        The symbol sequences; the alphabet holds the symbols that occur, in a fixed order.
    """
    arrays = fetch_events(events, SequenceConfig(by="session" if by == "session" else "user"))
    offsets = arrays.boundaries()
    codes = arrays.actions.astype(np.int64)
    full = [a.value for a in Action]
    raw = codes
    if alphabet == "action_context":
        context = _context_symbols(arrays, offsets)
        # A view becomes len(Action) + context; other actions keep their code.
        raw = np.where(codes == ACTION_CODES[Action.VIEW], len(full) + context, codes)
        full += [VIEW_NEW, VIEW_SAME, VIEW_REVISIT]
    present = np.flatnonzero(np.bincount(raw, minlength=len(full)))
    remap = np.full(len(full), -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    n = len(offsets) - 1
    seq = np.repeat(np.arange(n), np.diff(offsets))
    owners = arrays.owner_ids.take(pa.array(offsets[:-1])) if n else pa.array([], pa.string())
    return SymbolSequences(
        owner_ids=owners,
        offsets=offsets,
        symbols=remap[raw],
        names=tuple(full[i] for i in present),
        converted=np.bincount(seq[codes == _PURCHASE], minlength=n) > 0,
    )


# ------------------------------------------------------------------------------ EM


@dataclass(frozen=True, slots=True)
class HMMParameters:
    """Categorical HMM parameters.

    Attributes:
        startprob: (k,) initial state probabilities.
        transmat: (k, k) transition probabilities (row: from).
        emissionprob: (k, n_symbols) emission probabilities.
    """

    startprob: np.ndarray
    transmat: np.ndarray
    emissionprob: np.ndarray


def _padded(sequences: SymbolSequences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequences sorted by length (longest first) as a padded (m, T) array; the order used."""
    order = np.argsort(-sequences.lengths, kind="stable")
    lengths = sequences.lengths[order]
    width = int(lengths.max(initial=1))
    x = np.zeros((len(order), width), dtype=np.int64)
    rows = np.repeat(np.arange(len(order)), lengths)
    cols = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    starts = sequences.offsets[order]
    x[rows, cols] = sequences.symbols[np.repeat(starts, lengths) + cols]
    return x, lengths, order


def _forward(x: np.ndarray, lengths: np.ndarray, p: HMMParameters) -> tuple[np.ndarray, np.ndarray]:
    """Scaled forward pass; rows sorted by length so the live rows at step t are a prefix."""
    m, width = x.shape
    alpha = np.zeros((m, width, len(p.startprob)))  # (m, T, k)
    scale = np.ones((m, width))  # (m, T); 1 beyond a row's end, so log(scale) adds nothing
    live = np.searchsorted(-lengths, -np.arange(width), side="left")  # rows with length > t
    a = p.startprob[None, :] * p.emissionprob[:, x[:, 0]].T  # (m, k)
    for t in range(width):
        n = live[t]
        if t:
            a = (alpha[:n, t - 1] @ p.transmat) * p.emissionprob[:, x[:n, t]].T  # (n, k)
        total = a.sum(axis=1)
        scale[:n, t] = total
        alpha[:n, t] = a / total[:, None]
    return alpha, scale


def log_likelihoods(sequences: SymbolSequences, p: HMMParameters) -> np.ndarray:
    """Log-likelihood of each sequence under ``p``.

    Args:
        sequences: Observations.
        p: Parameters.

    Returns:
        (n,) log-likelihoods, in the sequences' order.
    """
    if not len(sequences):
        return np.zeros(0)
    x, lengths, order = _padded(sequences)
    _, scale = _forward(x, lengths, p)
    out = np.empty(len(order))
    out[order] = np.log(scale).sum(axis=1)
    return out


def _random_parameters(k: int, v: int, rng: np.random.Generator) -> HMMParameters:
    transmat = rng.dirichlet(np.ones(k), size=k) + 2.0 * np.eye(k)  # start sticky
    return HMMParameters(
        startprob=np.full(k, 1.0 / k),
        transmat=transmat / transmat.sum(axis=1, keepdims=True),
        emissionprob=rng.dirichlet(np.ones(v), size=k),
    )


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.maximum(matrix, 0.0) + _FLOOR
    normalised: np.ndarray = matrix / matrix.sum(axis=-1, keepdims=True)
    return normalised


def baum_welch(
    sequences: SymbolSequences,
    weights: np.ndarray,
    n_states: int,
    rng: np.random.Generator,
    n_iter: int,
    tol: float,
) -> tuple[HMMParameters, float, int]:
    """Maximum-likelihood EM for a categorical HMM over weighted sequences.

    Args:
        sequences: Observations (typically the distinct ones).
        weights: (n,) how many times each sequence occurs.
        n_states: Hidden states.
        rng: Source of the random initial parameters.
        n_iter: Maximum EM iterations.
        tol: Stop when the weighted log-likelihood per event improves by less than this.

    Returns:
        Parameters, the weighted log-likelihood of the data under them, iterations run.

    Raises:
        InputError: If there are no events.
    """
    if sequences.symbols.size == 0:
        raise InputError("cannot fit an HMM on sequences without events")
    x, lengths, order = _padded(sequences)
    w = np.asarray(weights, dtype=np.float64)[order]
    width = x.shape[1]
    k, v = n_states, len(sequences.names)
    n_events = float((w * lengths).sum())
    valid = np.arange(width)[None, :] < lengths[:, None]  # (m, T)
    p = _random_parameters(k, v, rng)
    previous, iterations = -np.inf, 0
    for iterations in range(1, n_iter + 1):  # noqa: B007 - the count is returned
        alpha, scale = _forward(x, lengths, p)
        log_likelihood = float((w * np.log(scale).sum(axis=1)).sum())
        beta = np.ones_like(alpha)  # (m, T, k)
        xi = np.zeros((k, k))
        for t in range(width - 2, -1, -1):
            n = int((lengths > t + 1).sum())
            if n == 0:
                continue
            emitted = p.emissionprob[:, x[:n, t + 1]].T * beta[:n, t + 1]  # (n, k)
            emitted /= scale[:n, t + 1][:, None]
            beta[:n, t] = emitted @ p.transmat.T
            xi += np.einsum("n,ni,nj->ij", w[:n], alpha[:n, t], emitted) * p.transmat
        gamma = alpha * beta * valid[:, :, None]  # (m, T, k), rows sum to 1 where valid
        weighted = gamma * w[:, None, None]
        emission = np.zeros((k, v))
        np.add.at(emission.T, x[valid], weighted[valid])
        p = HMMParameters(
            startprob=_normalise(weighted[:, 0].sum(axis=0)),
            transmat=_normalise(xi),
            emissionprob=_normalise(emission),
        )
        if log_likelihood - previous < tol * n_events:
            break
        previous = log_likelihood
    final = float((w * log_likelihoods(sequences, p)[order]).sum())
    return p, final, iterations


# ------------------------------------------------------------------------------ the model


@dataclass(frozen=True, slots=True)
class IntentStateModel(Result):
    """A fitted HMM over symbols (plain tuples: JSON-serialisable, no pickle).

    Attributes:
        symbols: The alphabet (emission columns).
        alphabet: How symbols were made (``action`` or ``action_context``).
        names: State names, in state order.
        startprob: (k,) initial state probabilities.
        transmat: (k, k) transition probabilities (row: from).
        emissionprob: (k, n_symbols) emission probabilities.
    """

    symbols: tuple[str, ...]
    alphabet: str
    names: tuple[str, ...]
    startprob: tuple[float, ...]
    transmat: tuple[tuple[float, ...], ...]
    emissionprob: tuple[tuple[float, ...], ...]

    @property
    def n_states(self) -> int:
        """Number of hidden states."""
        return len(self.names)

    @property
    def parameters(self) -> HMMParameters:
        """The parameters as arrays."""
        return HMMParameters(
            np.asarray(self.startprob), np.asarray(self.transmat), np.asarray(self.emissionprob)
        )

    def decode(self, sequences: SymbolSequences) -> tuple[np.ndarray, np.ndarray]:
        """Viterbi state of every event and the posterior at each sequence's last event.

        Each distinct sequence is decoded once by ``hmmlearn`` and the result shared.

        Args:
            sequences: Sequences over the same alphabet.

        Returns:
            (n_events,) int64 states and (n, k) posteriors at each sequence's last event
            (filtering: they use only that sequence's events up to there).

        Raises:
            InputError: If the alphabets differ.
        """
        if tuple(sequences.names) != self.symbols:
            raise InputError(
                f"sequences use symbols {list(sequences.names)} but the model was fitted on "
                f"{list(self.symbols)}"
            )
        k = self.n_states
        if sequences.symbols.size == 0:
            return np.zeros(0, np.int64), np.zeros((len(sequences), k))
        distinct, inverse, _ = sequences.distinct()
        model = _hmmlearn().CategoricalHMM(n_components=k, n_features=len(self.symbols))
        p = self.parameters
        model.startprob_, model.transmat_, model.emissionprob_ = (
            p.startprob,
            p.transmat,
            p.emissionprob,
        )
        x, lengths = distinct.symbols[:, None], distinct.lengths
        _, states = model.decode(x, lengths, algorithm="viterbi")
        last = model.predict_proba(x, lengths)[distinct.offsets[1:] - 1]  # (n_distinct, k)
        # Gather each sequence's path from its distinct sequence's path.
        counts = sequences.lengths
        within = np.arange(int(counts.sum())) - np.repeat(sequences.offsets[:-1], counts)
        source = np.repeat(distinct.offsets[:-1][inverse], counts) + within
        return states[source].astype(np.int64), last[inverse]
