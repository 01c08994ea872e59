"""Hidden intent states: a categorical HMM over each session's action sequence.

Each event becomes one symbol (``analyze/hmm.py``). With ``alphabet="action"`` the symbol is the
action; with ``"action_context"`` (default) a view is split by how its item relates to the session
so far: ``view (new)``, ``view (same category)`` (a new item in the previous event's category:
comparing alternatives) and ``view (revisit)`` (an item already seen in the session).

The HMM is fitted by EM with ``n_init`` seeded restarts per number of states (best
log-likelihood kept). The number of states is chosen among ``min_states..max_states`` by BIC on
the fitting sessions, or by the log-likelihood of a held-out 20 % of sessions
(``selection="heldout"``; the winner is then refitted on all of them). States are ordered by how
deep into the funnel their emissions are (browsing first, buying last) and named from the
deepest symbol they emit with probability >= 0.1 at >= 1.5 times its overall share:
``purchase`` -> "buying", ``cart`` -> "ready to buy", ``favorite`` -> "saving for later",
``remove_from_cart`` -> "reconsidering", ``view (revisit)`` -> "revisiting", ``view (same
category)`` -> "comparing", ``view (new)`` / ``search`` -> "just browsing" / "searching"; a
state matching none is named after its most likely symbol when that has probability >= 0.5, else
"mixed". States sharing a name are told apart by their mean dwell.

Every session is decoded (Viterbi, ``hmmlearn``). The result holds the transition and emission
matrices, a per-state profile with a state-by-conversion table (sessions that reach a state and
how many of them purchase; occupancy of converting and non-converting sessions) and the most
frequent decoded paths. :func:`session_state_features` turns any events (e.g. everything before
a cut-off) into one row per session of state occupancy, last state and its posterior, for
purchase-intent models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import ibis
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from shopseq.analyze.hmm import (
    VIEW_NEW,
    VIEW_REVISIT,
    VIEW_SAME,
    HMMParameters,
    IntentStateModel,
    SymbolSequences,
    baum_welch,
    distinct_rows,
    encode_symbols,
    log_likelihoods,
)
from shopseq.analyze.result import Result
from shopseq.analyze.transitions import TransitionMatrix
from shopseq.errors import InputError
from shopseq.schema import Action

__all__ = [
    "IntentStateModel",
    "StateCandidate",
    "StatePath",
    "StateProfile",
    "StatesConfig",
    "StatesResult",
    "SymbolSequences",
    "encode_symbols",
    "fit_state_model",
    "intent_states",
    "session_state_features",
]

# Symbol -> (funnel depth, state name). Depth orders the states and picks the name.
_SYMBOLS: dict[str, tuple[float, str]] = {
    Action.VIEW.value: (0.0, "just browsing"),
    VIEW_NEW: (0.0, "just browsing"),
    Action.SEARCH.value: (0.1, "searching"),
    VIEW_SAME: (1.0, "comparing"),
    VIEW_REVISIT: (1.5, "revisiting"),
    Action.REMOVE_FROM_CART.value: (2.0, "reconsidering"),
    Action.FAVORITE.value: (2.5, "saving for later"),
    Action.CART.value: (3.0, "ready to buy"),
    Action.PURCHASE.value: (4.0, "buying"),
    Action.RETURN.value: (4.5, "returning"),
}
_MIN_EMISSION, _MIN_LIFT = 0.1, 1.5


class StatesConfig(BaseModel):
    """How to fit the intent states.

    Attributes:
        by: One sequence per ``session`` or per ``user``.
        alphabet: ``action`` or ``action_context`` (views split by new / same category / revisit).
        min_states: Fewest states tried.
        max_states: Most states tried.
        selection: ``bic`` (lowest BIC on the fitting sessions) or ``heldout`` (highest
            log-likelihood of 20 % held-out sessions).
        n_init: EM restarts per number of states (best log-likelihood kept).
        n_iter: Maximum EM iterations per restart.
        tol: EM stops when the log-likelihood per event improves by less than this.
        max_fit_sessions: Sessions the HMM is fitted on at most (a seeded sample; all are
            decoded).
        max_fit_events: Events of each session the fit sees at most (its first ones; bounds
            EM's (distinct sessions, length, states) arrays for long user histories).
        top_paths: Most frequent decoded state paths reported.
        seed: Seed of the sample, the held-out split and the EM initialisations.
        threads: BLAS threads for EM and decoding (their matrix products are tiny: 1 is
            fastest, and on a busy 2-core machine several times faster; the result is the same).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    by: Literal["session", "user"] = "session"
    alphabet: Literal["action", "action_context"] = "action_context"
    min_states: int = Field(default=2, ge=1)
    max_states: int = Field(default=6, ge=1, le=12)
    selection: Literal["bic", "heldout"] = "bic"
    n_init: int = Field(default=3, ge=1)
    n_iter: int = Field(default=300, ge=1)
    tol: float = Field(default=1e-6, gt=0)
    max_fit_sessions: int = Field(default=200_000, ge=10)
    max_fit_events: int = Field(default=200, ge=2)
    top_paths: int = Field(default=10, ge=0)
    seed: int = 0
    threads: int = Field(default=1, ge=1)


@dataclass(frozen=True, slots=True)
class StateCandidate(Result):
    """One number of states tried.

    Attributes:
        n_states: States.
        log_likelihood: On the fitting sessions.
        bic: Bayesian information criterion on the fitting sessions (lower is better).
        heldout_log_likelihood_per_event: On held-out sessions (``selection="heldout"`` only).
    """

    n_states: int
    log_likelihood: float
    bic: float
    heldout_log_likelihood_per_event: float | None


@dataclass(frozen=True, slots=True)
class StateProfile(Result):
    """One state: what it emits and how it relates to conversion.

    Attributes:
        state: State number (0 = least deep into the funnel).
        name: Name from its emission profile.
        top_symbols: Its most likely symbols with their probabilities.
        share_of_events: Share of all events decoded in this state.
        mean_dwell_events: Expected consecutive events in it (``1 / (1 - a_ii)``).
        n_sessions: Sessions that visit it.
        n_converting: Of those, sessions with a purchase.
        conversion_rate: ``n_converting / n_sessions``.
        occupancy_converting: Mean share of a converting session's events in this state.
        occupancy_other: The same for sessions without a purchase.
        last_state_converting: Share of converting sessions whose last event is in it.
        last_state_other: The same for sessions without a purchase.
    """

    state: int
    name: str
    top_symbols: tuple[tuple[str, float], ...]
    share_of_events: float
    mean_dwell_events: float
    n_sessions: int
    n_converting: int
    conversion_rate: float
    occupancy_converting: float
    occupancy_other: float
    last_state_converting: float
    last_state_other: float


@dataclass(frozen=True, slots=True)
class StatePath(Result):
    """A decoded path with repeated states collapsed.

    Attributes:
        path: State names in order.
        n: Sessions.
        share: Share of sessions.
        conversion_rate: Share of them with a purchase.
    """

    path: tuple[str, ...]
    n: int
    share: float
    conversion_rate: float


@dataclass(frozen=True, slots=True)
class StatesResult(Result):
    """Hidden intent states of the sessions.

    Attributes:
        by: ``session`` or ``user``.
        n_sessions: Sequences decoded.
        n_events: Events decoded.
        n_fit_sessions: Sequences the HMM was fitted on.
        conversion_rate: Share of sequences with a purchase.
        selection: How the number of states was chosen.
        candidates: Every number of states tried.
        model: The chosen model.
        states: Profile of each state.
        start: Share of sequences starting in each state (the HMM's start probabilities).
        transitions: State -> state (HMM probabilities; counts from the decoded paths).
        emissions: State -> symbol (probabilities; counts from the decoded paths).
        paths: Most frequent decoded paths.
        assignments: ``session_id, converted, n_events, states`` (the decoded path) per
            sequence (not in ``to_dict``).
    """

    by: str
    n_sessions: int
    n_events: int
    n_fit_sessions: int
    conversion_rate: float
    selection: str
    candidates: tuple[StateCandidate, ...]
    model: IntentStateModel
    states: tuple[StateProfile, ...]
    start: tuple[float, ...]
    transitions: TransitionMatrix
    emissions: TransitionMatrix
    paths: tuple[StatePath, ...]
    assignments: pa.Table = field(metadata={"json": False})


def _depth(symbol: str) -> float:
    return _SYMBOLS.get(symbol, (0.0, symbol))[0]


def _name_states(
    emissions: np.ndarray, transmat: np.ndarray, overall: np.ndarray, symbols: tuple[str, ...]
) -> tuple[str, ...]:
    """Name each state from the deepest symbol it emits clearly more than overall."""
    by_depth = sorted(range(len(symbols)), key=lambda j: -_depth(symbols[j]))
    names = []
    for row in emissions:
        chosen = next(
            (
                j
                for j in by_depth
                if row[j] >= _MIN_EMISSION and row[j] >= _MIN_LIFT * max(overall[j], 1e-12)
            ),
            None,
        )
        if chosen is None and row.max() >= 0.5:  # nothing deep stands out: its main symbol
            chosen = int(np.argmax(row))
        names.append(
            "mixed" if chosen is None else _SYMBOLS.get(symbols[chosen], (0.0, symbols[chosen]))[1]
        )
    dwell = 1.0 / np.maximum(1.0 - np.diag(transmat), 1e-9)
    out = []
    for i, name in enumerate(names):
        if names.count(name) == 1:
            out.append(name)
            continue
        label = f"{name} (~{dwell[i]:.0f} event{'s' if round(dwell[i]) != 1 else ''})"
        out.append(label)
    # Equal dwell labels too: number them.
    return tuple(
        f"{n} {out[:i].count(n) + 1}" if out.count(n) > 1 else n for i, n in enumerate(out)
    )


def _to_model(
    p: HMMParameters, overall: np.ndarray, symbols: tuple[str, ...], alphabet: str
) -> IntentStateModel:
    """Order states by funnel depth, name them, and freeze the parameters."""
    depth = p.emissionprob @ np.array([_depth(s) for s in symbols])
    order = np.argsort(depth, kind="stable")
    emissions = p.emissionprob[order]
    transmat = p.transmat[np.ix_(order, order)]

    def freeze(matrix: np.ndarray) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(float(v) for v in row) for row in matrix)

    return IntentStateModel(
        symbols=symbols,
        alphabet=alphabet,
        names=_name_states(emissions, transmat, overall, symbols),
        startprob=tuple(float(v) for v in p.startprob[order]),
        transmat=freeze(transmat),
        emissionprob=freeze(emissions),
    )


def _blas_threads(threads: int) -> Any:
    """A context limiting BLAS to ``threads`` threads (``threadpoolctl``, scikit-learn's)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as err:  # an optional extra: say how to get it
        raise ImportError("intent states need hmmlearn: pip install 'shopseq[analyze]'") from err
    return threadpool_limits(threads, user_api="blas")


def _fit_best(
    distinct: SymbolSequences, counts: np.ndarray, k: int, config: StatesConfig
) -> tuple[HMMParameters, float]:
    best: tuple[HMMParameters, float] | None = None
    for restart in range(config.n_init):
        rng = np.random.default_rng([config.seed, k, restart])
        p, log_likelihood, _ = baum_welch(distinct, counts, k, rng, config.n_iter, config.tol)
        if best is None or log_likelihood > best[1]:
            best = (p, log_likelihood)
    assert best is not None  # n_init >= 1
    return best


def _n_parameters(k: int, n_symbols: int) -> int:
    return (k - 1) + k * (k - 1) + k * (n_symbols - 1)


def fit_state_model(
    sequences: SymbolSequences, config: StatesConfig, alphabet: str = "custom"
) -> tuple[IntentStateModel, tuple[StateCandidate, ...]]:
    """Fit HMMs with ``min_states..max_states`` states and keep the one chosen by ``selection``.

    Args:
        sequences: Observations.
        config: Candidates, selection, EM settings.
        alphabet: Recorded in the model (how the symbols were made).

    Returns:
        The chosen model and every candidate's scores.

    Raises:
        InputError: If there are too few events or the state range is empty.
    """
    if config.min_states > config.max_states:
        raise InputError(
            f"min_states ({config.min_states}) must not exceed max_states ({config.max_states})"
        )
    if sequences.symbols.size < 10 * config.max_states or len(sequences.names) < 2:
        raise InputError(
            f"intent states need at least {10 * config.max_states} events over 2 or more symbols; "
            f"got {sequences.symbols.size} events over symbols {list(sequences.names)}"
        )
    rng = np.random.default_rng(config.seed)
    if len(sequences) > config.max_fit_sessions:
        keep = rng.choice(len(sequences), config.max_fit_sessions, replace=False)
        sequences = sequences.subset(np.sort(keep))
    sequences = sequences.head(config.max_fit_events)
    fit_on, heldout = sequences, None
    if config.selection == "heldout":
        mask = rng.random(len(sequences)) < 0.2
        fit_on = sequences.subset(np.flatnonzero(~mask))
        heldout = sequences.subset(np.flatnonzero(mask))
    distinct, _, counts = fit_on.distinct()
    n_events, n_symbols = fit_on.symbols.size, len(sequences.names)
    candidates, fitted = [], {}
    for k in range(config.min_states, config.max_states + 1):
        p, log_likelihood = _fit_best(distinct, counts, k, config)
        bic = -2.0 * log_likelihood + _n_parameters(k, n_symbols) * np.log(n_events)
        held = None
        if heldout is not None and heldout.symbols.size:
            held = float(log_likelihoods(heldout, p).sum() / heldout.symbols.size)
        candidates.append(StateCandidate(k, log_likelihood, float(bic), held))
        fitted[k] = p
    if heldout is not None:
        best = max(candidates, key=lambda c: c.heldout_log_likelihood_per_event or -np.inf)
        all_distinct, _, all_counts = sequences.distinct()
        chosen, _ = _fit_best(all_distinct, all_counts, best.n_states, config)
    else:
        best = min(candidates, key=lambda c: c.bic)
        chosen = fitted[best.n_states]
    overall = np.bincount(sequences.symbols, minlength=n_symbols) / sequences.symbols.size
    return _to_model(chosen, overall, sequences.names, alphabet), tuple(candidates)


# ------------------------------------------------------------------------------ analysis


def _profiles(
    model: IntentStateModel, sequences: SymbolSequences, states: np.ndarray
) -> tuple[StateProfile, ...]:
    k, n = model.n_states, len(sequences)
    seq = np.repeat(np.arange(n), sequences.lengths)
    per_session = _pair_counts(seq, states, n, k).astype(np.float64)
    occupancy = per_session / np.maximum(sequences.lengths, 1)[:, None]
    visits = per_session > 0
    last = states[sequences.offsets[1:] - 1] if states.size else np.zeros(0, np.int64)
    conv = sequences.converted
    emissions = np.asarray(model.emissionprob)
    out = []
    for s in range(k):
        n_visit = int(visits[:, s].sum())
        n_conv = int((visits[:, s] & conv).sum())
        stay = model.transmat[s][s]
        order = np.argsort(-emissions[s], kind="stable")[:3]
        out.append(
            StateProfile(
                state=s,
                name=model.names[s],
                top_symbols=tuple((model.symbols[j], float(emissions[s, j])) for j in order),
                share_of_events=float((states == s).mean()) if states.size else 0.0,
                mean_dwell_events=float(1.0 / (1.0 - stay)) if stay < 1 else float("inf"),
                n_sessions=n_visit,
                n_converting=n_conv,
                conversion_rate=n_conv / n_visit if n_visit else 0.0,
                occupancy_converting=float(occupancy[conv, s].mean()) if conv.any() else 0.0,
                occupancy_other=float(occupancy[~conv, s].mean()) if (~conv).any() else 0.0,
                last_state_converting=float((last[conv] == s).mean()) if conv.any() else 0.0,
                last_state_other=float((last[~conv] == s).mean()) if (~conv).any() else 0.0,
            )
        )
    return tuple(out)


def _count_matrix(
    rows: tuple[str, ...], columns: tuple[str, ...], counts: np.ndarray, probs: np.ndarray
) -> TransitionMatrix:
    return TransitionMatrix(
        rows=rows,
        columns=columns,
        counts=tuple(tuple(int(v) for v in row) for row in counts),
        probabilities=tuple(tuple(float(v) for v in row) for row in probs),
    )


def _paths(
    model: IntentStateModel, sequences: SymbolSequences, states: np.ndarray, top: int
) -> tuple[StatePath, ...]:
    """The ``top`` most frequent collapsed state paths (ties: smaller path first).

    Vectorised: each session's collapsed path is one CSR row, numbered by
    :func:`~shopseq.analyze.hmm.distinct_rows` and counted with ``bincount`` (a Python loop
    over 1.8 M sessions before).
    """
    n = len(sequences)
    if n == 0 or top == 0 or states.size == 0:
        return ()
    seq = np.repeat(np.arange(n), sequences.lengths)
    keep = np.ones(states.size, dtype=bool)
    keep[1:] = (states[1:] != states[:-1]) | (seq[1:] != seq[:-1])
    lengths = np.bincount(seq[keep], minlength=n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    collapsed = states[keep]
    code = distinct_rows(offsets, collapsed)
    n_paths = int(code.max()) + 1
    count = np.bincount(code, minlength=n_paths)
    bought = np.bincount(code, weights=sequences.converted.astype(np.float64), minlength=n_paths)
    first = np.zeros(n_paths, dtype=np.int64)  # a session holding each path
    first[code[::-1]] = np.arange(n)[::-1]

    def path(c: int) -> tuple[int, ...]:
        i = first[c]
        return tuple(int(v) for v in collapsed[offsets[i] : offsets[i + 1]])

    # Only paths counted at least as often as the top-th can rank; ties sorted by path.
    floor = np.sort(count)[::-1][min(top, n_paths) - 1]
    candidates = [(-int(count[c]), path(int(c)), int(c)) for c in np.flatnonzero(count >= floor)]
    ranked = sorted(candidates)[:top]
    return tuple(
        StatePath(tuple(model.names[s] for s in p), -neg, -neg / n, float(bought[c]) / -neg)
        for neg, p, c in ranked
    )


def _pair_counts(rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int) -> np.ndarray:
    """(n_rows, n_columns) int64 counts of the (row, column) pairs.

    ``bincount`` rather than ``np.add.at``: one pass in C.
    """
    flat = rows.astype(np.int64) * n_columns + columns.astype(np.int64)
    return np.bincount(flat, minlength=n_rows * n_columns).reshape(n_rows, n_columns)


def intent_states(events: ibis.Table, config: StatesConfig) -> StatesResult:
    """Fit the intent-state HMM and decode every session.

    Args:
        events: Prepared events (``store.table("events_prepared")``).
        config: Alphabet, candidates, selection.

    Returns:
        States, their transition and emission matrices, conversion table and decoded paths.
    """
    sequences = encode_symbols(events, config.by, config.alphabet)
    with _blas_threads(config.threads):
        model, candidates = fit_state_model(sequences, config, config.alphabet)
        states, _ = model.decode(sequences, posteriors=False)
    k, names = model.n_states, model.names
    seq = np.repeat(np.arange(len(sequences)), sequences.lengths)
    same = seq[1:] == seq[:-1]
    moves = _pair_counts(states[:-1][same], states[1:][same], k, k)
    emitted = _pair_counts(states, sequences.symbols, k, len(model.symbols))
    starts = sequences.offsets[:-1]
    assignments = pa.table(
        {
            "session_id": sequences.owner_ids,
            "converted": pa.array(sequences.converted),
            "n_events": pa.array(sequences.lengths),
            "states": pa.ListArray.from_arrays(
                pa.array(sequences.offsets.astype(np.int32)), pa.array(states.astype(np.int8))
            ),
        }
    )
    return StatesResult(
        by=config.by,
        n_sessions=len(sequences),
        n_events=int(sequences.symbols.size),
        n_fit_sessions=min(len(sequences), config.max_fit_sessions),
        conversion_rate=float(sequences.converted.mean()) if len(sequences) else 0.0,
        selection=config.selection,
        candidates=candidates,
        model=model,
        states=_profiles(model, sequences, states),
        start=tuple(float(v) for v in np.bincount(states[starts], minlength=k) / len(starts)),
        transitions=_count_matrix(names, names, moves, np.asarray(model.transmat)),
        emissions=_count_matrix(names, model.symbols, emitted, np.asarray(model.emissionprob)),
        paths=_paths(model, sequences, states, config.top_paths),
        assignments=assignments,
    )


def session_state_features(
    events: ibis.Table, model: IntentStateModel, by: str = "session"
) -> pa.Table:
    """One row per session of intent-state features, for purchase-intent models.

    Only the given events are used (pass the events before a cut-off for features), so a
    session's features never see its later events.

    Args:
        events: Prepared events (or a filtered table of them).
        model: A fitted model (``intent_states(...).model`` or :func:`fit_state_model`).
        by: ``session`` or ``user`` (the owner column of the rows).

    Returns:
        Columns ``session_id`` (or ``user_id``), ``n_events``, ``last_state`` (Viterbi state
        of the last event), ``state_share_<i>`` (share of events decoded in state ``i``) and
        ``state_prob_<i>`` (posterior of state ``i`` at the last event), ``i`` in state order
        (``model.names[i]``).
    """
    raw = encode_symbols(events, by, model.alphabet)
    # Re-express the symbols in the model's alphabet (a prefix may lack some symbols).
    lookup = {name: i for i, name in enumerate(model.symbols)}
    missing = [s for s in raw.names if s not in lookup]
    if missing:
        raise InputError(f"events hold symbols {missing} the model was not fitted on")
    remap = np.array([lookup[s] for s in raw.names], dtype=np.int64)
    sequences = SymbolSequences(
        raw.owner_ids,
        raw.offsets,
        remap[raw.symbols] if raw.symbols.size else raw.symbols,
        model.symbols,
        raw.converted,
    )
    states, posteriors = model.decode(sequences)
    assert posteriors is not None  # asked for
    k, n = model.n_states, len(sequences)
    seq = np.repeat(np.arange(n), sequences.lengths)
    counts = _pair_counts(seq, states, n, k).astype(np.float64)
    shares = counts / np.maximum(sequences.lengths, 1)[:, None]
    owner = "session_id" if by == "session" else "user_id"
    columns: dict[str, Any] = {
        owner: sequences.owner_ids,
        "n_events": pa.array(sequences.lengths),
        "last_state": pa.array(states[sequences.offsets[1:] - 1] if n else np.zeros(0, np.int64)),
    }
    for i in range(k):
        columns[f"state_share_{i}"] = pa.array(shares[:, i])
    for i in range(k):
        columns[f"state_prob_{i}"] = pa.array(posteriors[:, i])
    return pa.table(columns)
