"""Categorical HMM machinery for intent states: symbols, a weighted Baum-Welch, decoding.

Posteriors use ``hmmlearn``'s ``CategoricalHMM`` with the fitted parameters. The EM fit and
Viterbi decoding are hand-written because ``hmmlearn`` makes one Python call per sequence (per
EM step) and takes no sequence weights: on the 2-hour Taobao slice (71k sessions) one 2-state
fit took 78 s, while sessions repeat heavily (1,165 distinct symbol sequences), so EM over the
distinct sequences weighted by their counts, vectorised across sequences (a loop over positions
only, time-major so no padding is computed), gives the same maximum-likelihood updates in a
fraction of a second. ``tests/analyze/test_states.py`` checks the log-likelihood against
``hmmlearn``'s score and the Viterbi paths against its ``decode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shopseq.analyze.ordered import (
    EVENT_POS,
    PREV_CATEGORY,
    has_session_order,
    session_order,
)
from shopseq.analyze.result import Result
from shopseq.errors import InputError
from shopseq.schema import ACTION, ACTION_CODES, CATEGORY_ID, ITEM_ID, SESSION_ID, Action
from shopseq.sequences import SequenceConfig, fetch_events

__all__ = [
    "VIEW_NEW",
    "VIEW_REVISIT",
    "VIEW_SAME",
    "HMMParameters",
    "IntentStateModel",
    "SymbolSequences",
    "baum_welch",
    "distinct_rows",
    "encode_symbols",
    "log_likelihoods",
    "random_parameters",
    "viterbi",
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
        inverse = distinct_rows(self.offsets, self.symbols)
        n_distinct = int(inverse.max(initial=-1)) + 1
        representatives = np.zeros(n_distinct, dtype=np.int64)
        representatives[inverse[::-1]] = np.arange(len(self))[::-1]
        return self.subset(representatives), inverse, np.bincount(inverse, minlength=n_distinct)


def distinct_rows(offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Number the distinct CSR rows of small non-negative ints in order of first occurrence.

    Each row's bytes become one value of an Arrow binary array (no copy) and Arrow's hash
    dictionary numbers them: exact, and one C++ pass instead of a Python loop over the rows
    (1.8 M sessions of a 10 M-event log).

    Args:
        offsets: (n + 1,) row boundaries starting at 0.
        values: Row values, each in 0..127.

    Returns:
        (n,) int64 code of each row's distinct value (0 for the first one seen).
    """
    n = len(offsets) - 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    data = np.ascontiguousarray(values, dtype=np.int8)
    keys = pa.Array.from_buffers(
        pa.large_binary(),
        n,
        [None, pa.py_buffer(np.ascontiguousarray(offsets, dtype=np.int64)), pa.py_buffer(data)],
    )
    codes: np.ndarray = pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False)
    return codes.astype(np.int64)


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


def _session_symbols(events: ibis.Table, alphabet: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Each session's raw symbol codes, worked out in the engine; sessions by id.

    The symbol (``encode_symbols``' raw code: the action's code, or for a view with
    ``action_context`` ``len(Action)`` + 0 new item / 1 new item in the previous event's
    category / 2 item seen before in the session) comes from the session order
    (analyze/ordered.py), and one row per session with its codes in event order is fetched:
    1 byte per event instead of every event's session, item and category strings, which took
    most of the states section's fetch on 10 M events.

    A revisit is found inside that per-session aggregate: the view's item occurs earlier in
    the session's (position-sorted) item list. That costs less than a second window over
    (session, item) across every event (the 10 M-event report's order table took twice as
    long with it). The search grows with the square of a session's length, but DuckDB's list
    search is fast: one session of 200,000 events took 2.9 s (20,000: 0.05 s). The item list
    is its own aggregate: built inside the lambda it was rebuilt for every element (20,000
    events: 16 s).

    Returns:
        The session ids (sorted, as ``fetch_events`` sorts owners), the (n + 1,) CSR offsets
        and the (n_events,) int64 raw codes.
    """
    ordered = events if has_session_order(events) else session_order(events)
    action = ordered[ACTION]
    code = ibis.cases(
        *[(action == a.value, ibis.literal(c, "int8")) for a, c in ACTION_CODES.items()],
        else_=ibis.null("int8"),
    )
    fields: dict[str, ibis.Value] = {"p": ordered[EVENT_POS]}
    if alphabet == "action_context":
        same = (ordered[CATEGORY_ID] == ordered[PREV_CATEGORY]).fill_null(False)
        view = (len(Action) + same.cast("int8")).cast("int8")
        code = ibis.ifelse(action == Action.VIEW.value, view, code)
        fields["i"] = ordered[ITEM_ID]
    fields["c"] = code
    # One sorted list per session, then its codes: the lists are columns, so the lambda below
    # reads them instead of aggregating and sorting again for every element.
    aggregates: dict[str, ibis.Value] = {"_events": ibis.struct(fields).collect().sort()}
    if alphabet == "action_context":
        placed = ibis.struct({"p": ordered[EVENT_POS], "i": ordered[ITEM_ID]})
        aggregates["_items"] = placed.collect().sort().map(lambda e: e.i)
    per_session = ordered.group_by(_o=ordered[SESSION_ID]).aggregate(**aggregates)
    if alphabet == "action_context":
        revisit = ibis.literal(len(Action) + 2, "int8")
        items = per_session._items
        codes = per_session._events.map(
            lambda e, k: ibis.ifelse((e.c >= len(Action)) & (items.index(e.i) < k), revisit, e.c)
        )
    else:
        codes = per_session._events.map(lambda e: e.c)
    per_session = per_session.select("_o", _codes=codes).order_by("_o")
    data = per_session.to_pyarrow()
    if data.num_rows == 0:
        return pa.array([], pa.string()), np.zeros(1, np.int64), np.zeros(0, np.int64)
    lists = data.column("_codes").combine_chunks()
    offsets = np.asarray(lists.offsets.to_numpy(), dtype=np.int64)
    offsets = offsets - offsets[0]
    codes = lists.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    owners = data.column("_o").combine_chunks().cast(pa.string())
    return owners, offsets, codes


def encode_symbols(events: ibis.Table, by: str, alphabet: str) -> SymbolSequences:
    """Read events and turn each session (or user) into HMM symbols.

    Args:
        events: Prepared events, or them in :func:`~shopseq.analyze.ordered.session_order`.
        by: ``session`` or ``user``.
        alphabet: ``action`` (the action) or ``action_context`` (views split into
            ``view (new)``, ``view (same category)`` and ``view (revisit)``).

    Returns:
        The symbol sequences; the alphabet holds the symbols that occur, in a fixed order.
    """
    full = [a.value for a in Action]
    if alphabet == "action_context":
        full += [VIEW_NEW, VIEW_SAME, VIEW_REVISIT]
    if by == "session":
        owners, offsets, raw = _session_symbols(events, alphabet)
        codes = raw
    else:
        arrays = fetch_events(events, SequenceConfig(by="user"))
        offsets = arrays.boundaries()
        codes = arrays.actions.astype(np.int64)
        raw = codes
        if alphabet == "action_context":
            context = _context_symbols(arrays, offsets)
            # A view becomes len(Action) + context; other actions keep their code.
            raw = np.where(codes == ACTION_CODES[Action.VIEW], len(Action) + context, codes)
        n = len(offsets) - 1
        owners = arrays.owner_ids.take(pa.array(offsets[:-1])) if n else pa.array([], pa.string())
    present = np.flatnonzero(np.bincount(raw, minlength=len(full)))
    remap = np.full(len(full), -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    n = len(offsets) - 1
    seq = np.repeat(np.arange(n), np.diff(offsets))
    return SymbolSequences(
        owner_ids=owners,
        offsets=offsets,
        symbols=remap[raw],
        names=tuple(full[i] for i in present),
        # A purchase keeps its action code in both alphabets.
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


@dataclass(frozen=True, slots=True)
class _Packed:
    """Sequences laid out time-major for vectorised recursions over all of them at once.

    Sequences are sorted by length (longest first), so the sequences still running at step
    ``t`` are the first ``live[t]``; step ``t``'s events are ``start[t]:start[t + 1]`` of the
    flat arrays, in that order. Unlike a padded (sequences x longest) array, nothing is stored
    or computed for the positions past a sequence's end (4x fewer cells on the sessions of a
    generated log, where the longest of 2,455 distinct sequences had 46 events and the median 11).

    Attributes:
        order: (m,) sequence number of each sorted row.
        lengths: (m,) their lengths (non-increasing).
        live: (width,) rows longer than ``t``.
        start: (width + 1,) where step ``t`` begins in the flat arrays.
        rows: (n_events,) sorted row of each flat event.
        symbols: (n_events,) its symbol.
    """

    order: np.ndarray
    lengths: np.ndarray
    live: np.ndarray
    start: np.ndarray
    rows: np.ndarray
    symbols: np.ndarray

    @classmethod
    def of(cls, sequences: SymbolSequences) -> _Packed:
        order = np.argsort(-sequences.lengths, kind="stable")
        lengths = sequences.lengths[order]
        width = int(lengths.max(initial=0))
        live = np.searchsorted(-lengths, -np.arange(width), side="left")
        start = np.concatenate([[0], np.cumsum(live)]).astype(np.int64)
        rows = np.arange(int(start[-1])) - np.repeat(start[:-1], live)
        steps = np.repeat(np.arange(width), live)
        symbols = sequences.symbols[sequences.offsets[order][rows] + steps]
        return cls(order, lengths, live, start, rows, symbols)

    @property
    def width(self) -> int:
        return len(self.live)

    @property
    def bounds(self) -> list[int]:
        """``start`` as Python ints (slicing with NumPy scalars costs more per step)."""
        return [int(x) for x in self.start]

    @property
    def live_counts(self) -> list[int]:
        """``live`` as Python ints."""
        return [int(x) for x in self.live]

    def step(self, t: int) -> slice:
        """Step ``t``'s events in the flat arrays."""
        return slice(int(self.start[t]), int(self.start[t + 1]))


def _row_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=1)``, bit for bit, for the few columns (states) of the EM arrays.

    NumPy adds the columns of a C-ordered (n, k) array left to right, as this does; with
    k = 2..6 its reduction costs ~5x more per call than k - 1 column additions, and the EM
    calls it once per position per iteration (``tests/analyze/test_states.py`` checks the
    equality).
    """
    total = a[:, 0].copy()
    for j in range(1, a.shape[1]):
        total += a[:, j]
    return total


def _forward(packed: _Packed, p: HMMParameters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scaled forward pass over every sequence at once (a loop over positions only).

    Returns:
        The (n_events, k) scaled forward variables, the (n_events,) scales and the
        (n_events, k) emission probability of each event's symbol.
    """
    frame = np.ascontiguousarray(p.emissionprob.T)[packed.symbols]  # (n_events, k)
    alpha = np.empty_like(frame)
    scale = np.empty(len(frame))
    bounds, live = packed.bounds, packed.live_counts
    for t in range(packed.width):
        lo, hi = bounds[t], bounds[t + 1]
        a = alpha[lo:hi]  # written in place: the products as before, without temporaries
        if t:
            before = bounds[t - 1]
            np.matmul(alpha[before : before + live[t]], p.transmat, out=a)
            a *= frame[lo:hi]
        else:
            np.multiply(p.startprob[None, :], frame[lo:hi], out=a)
        total = _row_sums(a)
        scale[lo:hi] = total
        a /= total[:, None]
    return alpha, scale, frame


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
    packed = _Packed.of(sequences)
    _, scale, _ = _forward(packed, p)
    out = np.empty(len(packed.order))
    out[packed.order] = np.bincount(packed.rows, np.log(scale), minlength=len(packed.order))
    return out


def viterbi(sequences: SymbolSequences, p: HMMParameters) -> np.ndarray:
    """The most likely state of every event (Viterbi), all sequences at once.

    Hand-written because ``hmmlearn``'s ``decode`` makes one Python call per sequence (25,819
    distinct sessions of a 1 M-event log took 3 s; a 10 M-event log has several times more);
    this loops over positions only. Same recursion and tie-breaking as ``hmmlearn``: a state's
    score is the best predecessor's score plus the log transition, plus the log emission;
    between equally good predecessors the highest-numbered wins.
    ``tests/analyze/test_states.py`` checks the paths equal ``hmmlearn``'s.

    Args:
        sequences: Observations.
        p: Parameters.

    Returns:
        (n_events,) int64 states in the sequences' event order.
    """
    if sequences.symbols.size == 0:
        return np.zeros(0, np.int64)
    packed = _Packed.of(sequences)
    with np.errstate(divide="ignore"):  # a zero probability is a log of -inf, as in hmmlearn
        log_start, log_trans = np.log(p.startprob), np.log(p.transmat)
        log_frame = np.log(p.emissionprob).T[packed.symbols]  # (n_events, k)
    delta = np.empty_like(log_frame)
    back = np.zeros(log_frame.shape, dtype=np.int64)  # best predecessor of each (event, state)
    delta[packed.step(0)] = log_start[None, :] + log_frame[packed.step(0)]
    for t in range(1, packed.width):
        here, before = packed.step(t), int(packed.start[t - 1])
        scores = delta[before : before + packed.live[t], :, None] + log_trans[None]  # (n, i, j)
        # Ties (different paths with the same factors) go to the highest predecessor, as in
        # hmmlearn: argmax over the states reversed.
        best = (len(log_start) - 1) - scores[:, ::-1, :].argmax(axis=1)
        back[here] = best
        delta[here] = np.take_along_axis(scores, best[:, None, :], axis=1)[:, 0] + log_frame[here]
    states = np.empty(len(delta), dtype=np.int64)
    # Each sequence's last event takes its best state; earlier ones follow the pointers.
    m = len(packed.order)
    last = packed.start[packed.lengths - 1] + np.arange(m)
    states[last] = delta[last].argmax(axis=1)
    for t in range(packed.width - 2, -1, -1):
        n = int(packed.live[t + 1])
        at, nxt = int(packed.start[t]), int(packed.start[t + 1])
        states[at : at + n] = back[nxt : nxt + n][np.arange(n), states[nxt : nxt + n]]
    # Back to the sequences' own order: event j of sorted row r sits at start[j] + r.
    out = np.empty(len(states), dtype=np.int64)
    steps = np.repeat(np.arange(packed.width), packed.live)
    out[sequences.offsets[packed.order][packed.rows] + steps] = states
    return out


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

    The matrix products are tiny ((live sequences, k) x (k, k)): run it with one BLAS thread
    (``threadpoolctl``), as ``intent_states`` does; OpenBLAS's threads made each fit 2.6x
    costlier in CPU (and 2.9x in wall time) on a busy 2-core machine, for the same result.

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
    packed = _Packed.of(sequences)
    bounds, live = packed.bounds, packed.live_counts
    w = np.asarray(weights, dtype=np.float64)[packed.order]
    w_events = w[packed.rows]
    k, v = n_states, len(sequences.names)
    n_events = float((w * packed.lengths).sum())
    p = random_parameters(k, v, rng)
    previous, iterations = -np.inf, 0
    for iterations in range(1, n_iter + 1):  # noqa: B007 - the count is returned
        alpha, scale, frame = _forward(packed, p)
        log_likelihood = float(w_events @ np.log(scale))
        aw = alpha * w_events[:, None]  # row r of step t has weight w[r] = w_events[start + r]
        beta = np.empty_like(alpha)
        beta[bounds[packed.width - 1] : bounds[packed.width]] = 1.0
        xi = np.zeros((k, k))
        for t in range(packed.width - 2, -1, -1):
            n, lo, hi, here = live[t + 1], bounds[t + 1], bounds[t + 2], bounds[t]
            emitted = frame[lo:hi] * beta[lo:hi]  # (n, k)
            emitted /= scale[lo:hi][:, None]
            np.matmul(emitted, p.transmat.T, out=beta[here : here + n])
            beta[here + n : lo] = 1.0  # sequences ending at t
            # alpha * w for the rows of step t: the product once per iteration, not per step.
            xi += aw[here : here + n].T @ emitted
        weighted = alpha * beta * w_events[:, None]  # (n_events, k) weighted posteriors
        emission = np.stack(
            [np.bincount(packed.symbols, weighted[:, j], minlength=v) for j in range(k)]
        )
        p = HMMParameters(
            startprob=_normalise(weighted[bounds[0] : bounds[1]].sum(axis=0)),
            transmat=_normalise(xi * p.transmat),
            emissionprob=_normalise(emission),
        )
        if log_likelihood - previous < tol * n_events:
            break
        previous = log_likelihood
    final = float((w * log_likelihoods(sequences, p)[packed.order]).sum())
    return p, final, iterations


def random_parameters(k: int, v: int, rng: np.random.Generator) -> HMMParameters:
    """The random start of one EM fit (sticky transitions, Dirichlet emissions).

    Args:
        k: States.
        v: Symbols.
        rng: The fit's generator.

    Returns:
        Initial parameters.
    """
    transmat = rng.dirichlet(np.ones(k), size=k) + 2.0 * np.eye(k)  # start sticky
    return HMMParameters(
        startprob=np.full(k, 1.0 / k),
        transmat=transmat / transmat.sum(axis=1, keepdims=True),
        emissionprob=rng.dirichlet(np.ones(v), size=k),
    )


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

    def decode(
        self, sequences: SymbolSequences, posteriors: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Viterbi state of every event and the posterior at each sequence's last event.

        Each distinct sequence is decoded once by ``hmmlearn`` and the result shared.

        Args:
            sequences: Sequences over the same alphabet.
            posteriors: Also compute the posteriors (a forward-backward pass over every
                distinct sequence; ``False`` returns ``None`` for them).

        Returns:
            (n_events,) int64 states and (n, k) posteriors at each sequence's last event
            (filtering: they use only that sequence's events up to there), or ``None``.

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
            return np.zeros(0, np.int64), np.zeros((len(sequences), k)) if posteriors else None
        distinct, inverse, _ = sequences.distinct()
        p = self.parameters
        states = viterbi(distinct, p)
        last = None
        if posteriors:
            model = _hmmlearn().CategoricalHMM(n_components=k, n_features=len(self.symbols))
            model.startprob_, model.transmat_, model.emissionprob_ = (
                p.startprob,
                p.transmat,
                p.emissionprob,
            )
            x, lengths = distinct.symbols[:, None], distinct.lengths
            last = model.predict_proba(x, lengths)[distinct.offsets[1:] - 1][inverse]
        # Gather each sequence's path from its distinct sequence's path.
        counts = sequences.lengths
        within = np.arange(int(counts.sum())) - np.repeat(sequences.offsets[:-1], counts)
        source = np.repeat(distinct.offsets[:-1][inverse], counts) + within
        return states[source].astype(np.int64), last
