"""Hidden intent states: recovery of planted states, EM against hmmlearn, symbols, features."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hmmlearn.hmm import CategoricalHMM
from scipy.optimize import linear_sum_assignment

from shopseq.analyze.hmm import (
    HMMParameters,
    SymbolSequences,
    _normalise,
    _Packed,
    _row_sums,
    baum_welch,
    log_likelihoods,
    random_parameters,
)
from shopseq.analyze.states import (
    StatesConfig,
    encode_symbols,
    fit_state_model,
    intent_states,
    session_state_features,
)
from shopseq.errors import InputError

SYMBOLS = ("view (new)", "view (same category)", "cart", "purchase")
# Planted: browsing (new views), comparing (same-category views), buying (cart, purchase).
START = np.array([0.8, 0.2, 0.0])
TRANSMAT = np.array([[0.85, 0.12, 0.03], [0.10, 0.80, 0.10], [0.05, 0.05, 0.90]])
EMISSIONS = np.array([[0.92, 0.06, 0.02, 0.00], [0.08, 0.88, 0.04, 0.00], [0.05, 0.05, 0.55, 0.35]])


def sample_planted(n: int, seed: int) -> tuple[SymbolSequences, np.ndarray]:
    """Sessions of 4-20 events drawn from the planted HMM, with their true states."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 21, n)
    symbols, states = [], []
    for length in lengths:
        s = rng.choice(3, p=START)
        for _ in range(length):
            states.append(s)
            symbols.append(rng.choice(4, p=EMISSIONS[s]))
            s = rng.choice(3, p=TRANSMAT[s])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    symbols_arr = np.array(symbols, dtype=np.int64)
    seq = np.repeat(np.arange(n), lengths)
    sequences = SymbolSequences(
        owner_ids=pa.array([f"s{i}" for i in range(n)]),
        offsets=offsets,
        symbols=symbols_arr,
        names=SYMBOLS,
        converted=np.bincount(seq[symbols_arr == 3], minlength=n) > 0,
    )
    return sequences, np.array(states)


def test_recovers_planted_states_and_their_number() -> None:
    sequences, truth = sample_planted(800, seed=0)
    config = StatesConfig(min_states=2, max_states=4, n_init=2)
    model, candidates = fit_state_model(sequences, config)
    assert [c.n_states for c in candidates] == [2, 3, 4]
    assert model.n_states == 3  # BIC picks the planted number
    decoded, _ = model.decode(sequences)
    confusion = np.zeros((3, 3))
    np.add.at(confusion, (truth, decoded), 1)
    rows, cols = linear_sum_assignment(-confusion)
    accuracy = confusion[rows, cols].sum() / len(truth)
    assert accuracy >= 0.9
    # Ordered by funnel depth and named from the emissions.
    assert model.names == ("just browsing", "comparing", "buying")
    np.testing.assert_allclose(np.asarray(model.transmat), TRANSMAT, atol=0.05)


def test_heldout_selection_also_finds_the_planted_number() -> None:
    sequences, _ = sample_planted(1000, seed=1)
    config = StatesConfig(min_states=2, max_states=4, selection="heldout", n_init=1)
    model, candidates = fit_state_model(sequences, config)
    held = [c.heldout_log_likelihood_per_event for c in candidates]
    assert model.n_states == 3
    assert held[1] == max(held)  # type: ignore[type-var]


def test_em_log_likelihood_matches_hmmlearn_and_weights_equal_repeats() -> None:
    sequences, _ = sample_planted(200, seed=2)
    distinct, _, counts = sequences.distinct()
    rng = np.random.default_rng(0)
    p, log_likelihood, _ = baum_welch(distinct, counts, 3, rng, 50, 1e-8)
    hmm = CategoricalHMM(n_components=3, n_features=4)
    hmm.startprob_, hmm.transmat_, hmm.emissionprob_ = p.startprob, p.transmat, p.emissionprob
    reference = hmm.score(sequences.symbols[:, None], sequences.lengths)
    assert log_likelihood == pytest.approx(reference, rel=1e-9)
    # Weighting a sequence by 2 is the same as giving it twice.
    twice = sequences.subset(np.repeat(np.arange(5), 2))
    once = sequences.subset(np.arange(5))
    a, ll_a, _ = baum_welch(twice, np.ones(10), 2, np.random.default_rng(3), 20, 1e-12)
    b, ll_b, _ = baum_welch(once, np.full(5, 2.0), 2, np.random.default_rng(3), 20, 1e-12)
    np.testing.assert_allclose(a.transmat, b.transmat, rtol=1e-9)
    assert ll_a == pytest.approx(ll_b, rel=1e-12)


def test_log_likelihood_of_a_single_event_is_its_marginal_probability() -> None:
    p = HMMParameters(
        startprob=np.array([0.25, 0.75]),
        transmat=np.array([[0.5, 0.5], [0.5, 0.5]]),
        emissionprob=np.array([[0.4, 0.6], [0.8, 0.2]]),
    )
    one = SymbolSequences(
        pa.array(["a"]), np.array([0, 1]), np.array([1]), ("x", "y"), np.zeros(1, bool)
    )
    assert log_likelihoods(one, p)[0] == pytest.approx(np.log(0.25 * 0.6 + 0.75 * 0.2))


ROWS = [
    # session s1: new view, same-category view, revisit, cart, purchase
    ("u1", "s1", "a", "view", 0, "c1", 1.0),
    ("u1", "s1", "b", "view", 10, "c1", 1.0),
    ("u1", "s1", "a", "view", 20, "c1", 1.0),
    ("u1", "s1", "a", "cart", 30, "c1", 1.0),
    ("u1", "s1", "a", "purchase", 40, "c1", 1.0),
    # session s2: new view, view in another category, view without a category
    ("u2", "s2", "x", "view", 0, "c1", 1.0),
    ("u2", "s2", "y", "view", 5, "c2", 1.0),
    ("u2", "s2", "z", "view", 9, None, 1.0),
]


def test_encode_symbols_splits_views_by_context(make_events: Any) -> None:
    events = make_events(ROWS)
    sequences = encode_symbols(events, "session", "action_context")
    assert sequences.names == (
        "cart",
        "purchase",
        "view (new)",
        "view (same category)",
        "view (revisit)",
    )
    names = [sequences.names[s] for s in sequences.symbols]
    assert names[:5] == ["view (new)", "view (same category)", "view (revisit)", "cart", "purchase"]
    assert names[5:] == ["view (new)", "view (new)", "view (new)"]
    assert sequences.converted.tolist() == [True, False]
    plain = encode_symbols(events, "session", "action")
    assert plain.names == ("view", "cart", "purchase")


def _planted_log(n_sessions: int, seed: int) -> list[tuple[str, str, str, str, float, str, float]]:
    """Browsing sessions (new items, one look back) and buying sessions (cart, purchase)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_sessions):
        t = i * 10_000.0
        buyer = i % 4 == 0
        for j in range(int(rng.integers(3, 7))):
            rows.append((f"u{i}", f"s{i}", f"i{i}-{j}", "view", t + j, f"c{j}", 5.0))
        if buyer:
            rows.append((f"u{i}", f"s{i}", f"i{i}-0", "cart", t + 20, "c0", 5.0))
            rows.append((f"u{i}", f"s{i}", f"i{i}-0", "purchase", t + 30, "c0", 5.0))
        else:  # a browser looks back at the first item before leaving
            rows.append((f"u{i}", f"s{i}", f"i{i}-0", "view", t + 20, "c0", 5.0))
    return rows


def test_intent_states_tables_and_conversion(make_events: Any) -> None:
    events = make_events(_planted_log(200, seed=0))
    result = intent_states(events, StatesConfig(min_states=2, max_states=2))
    assert result.n_sessions == 200
    assert result.conversion_rate == pytest.approx(0.25)
    buying = result.states[-1]
    assert buying.name in {"buying", "ready to buy"}
    assert buying.n_converting == buying.n_sessions == 50  # only buyers reach it
    assert buying.last_state_converting == 1.0
    assert result.states[0].name == "just browsing"
    assert result.states[0].n_sessions == 200  # every session starts there
    assert sum(p.n for p in result.paths) == 200
    assert result.assignments.num_rows == 200
    assert sum(result.assignments.column("n_events").to_pylist()) == result.n_events
    data = result.to_dict()
    assert "assignments" not in data
    assert data["model"]["names"] == list(result.model.names)
    assert len(result.transitions.probabilities) == result.model.n_states


def test_session_state_features_use_only_the_given_events(make_events: Any) -> None:
    rows = _planted_log(200, seed=1)
    events = make_events(rows)
    model = intent_states(events, StatesConfig(min_states=2, max_states=2)).model
    # Prefixes without the purchase: the buyer's session ends in a cart, still distinct.
    prefix = events.filter(events.action != "purchase")
    features = session_state_features(prefix, model)
    assert features.num_rows == 200
    k = model.n_states
    shares = np.column_stack([features.column(f"state_share_{i}").to_numpy() for i in range(k)])
    probs = np.column_stack([features.column(f"state_prob_{i}").to_numpy() for i in range(k)])
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    table = features.to_pydict()
    last = dict(zip(table["session_id"], table["last_state"], strict=True))
    assert last["s0"] == k - 1  # ended in a cart: the buying state
    assert last["s1"] == 0
    n_events = dict(zip(table["session_id"], table["n_events"], strict=True))
    assert n_events["s0"] == sum(1 for r in rows if r[1] == "s0") - 1


def test_features_reject_symbols_the_model_never_saw(make_events: Any) -> None:
    events = make_events(_planted_log(100, seed=2))
    browse_only = events.filter(events.action == "view")
    model = intent_states(browse_only, StatesConfig(min_states=2, max_states=2)).model
    with pytest.raises(InputError, match=r"symbols \['cart', 'purchase'\] the model was not"):
        session_state_features(events, model)


def test_too_few_events_and_empty_state_range_are_input_errors() -> None:
    sequences, _ = sample_planted(3, seed=0)
    with pytest.raises(InputError, match="intent states need at least 60 events"):
        fit_state_model(sequences, StatesConfig())
    with pytest.raises(InputError, match=r"min_states \(4\) must not exceed max_states \(3\)"):
        fit_state_model(sequences, StatesConfig(min_states=4, max_states=3))


def _distinct_by_loop(sequences: SymbolSequences) -> tuple[np.ndarray, np.ndarray]:
    """The Python loop ``SymbolSequences.distinct`` ran before (the reference)."""
    raw = sequences.symbols.astype(np.int8).tobytes()
    first: dict[bytes, int] = {}
    inverse = np.empty(len(sequences), dtype=np.int64)
    for i, (lo, hi) in enumerate(zip(sequences.offsets[:-1], sequences.offsets[1:], strict=True)):
        inverse[i] = first.setdefault(raw[lo:hi], len(first))
    return inverse, np.bincount(inverse, minlength=len(first))


def test_distinct_sequences_equal_the_python_loop() -> None:
    sequences, _ = sample_planted(3000, seed=4)
    short = sequences.head(3)  # many repeats among short sequences
    for s in (sequences, short, short.subset(np.array([5, 1, 5, 0]))):
        distinct, inverse, counts = s.distinct()
        want_inverse, want_counts = _distinct_by_loop(s)
        np.testing.assert_array_equal(inverse, want_inverse)
        np.testing.assert_array_equal(counts, want_counts)
        # Each distinct sequence is its first occurrence.
        for j in range(len(distinct)):
            i = int(np.flatnonzero(inverse == j)[0])
            seq = s.symbols[s.offsets[i] : s.offsets[i + 1]]
            np.testing.assert_array_equal(
                distinct.symbols[distinct.offsets[j] : distinct.offsets[j + 1]], seq
            )
            assert distinct.owner_ids[j] == s.owner_ids[i]
    assert len(short.distinct()[0]) < len(short) // 10


def test_state_paths_and_counts_equal_a_loop_over_the_sessions(make_events: Any) -> None:
    rows = _planted_log(400, seed=2)
    events = make_events(rows)
    result = intent_states(events, StatesConfig(min_states=3, max_states=3, top_paths=4))
    paths = result.assignments.column("states").to_pylist()
    converted = result.assignments.column("converted").to_pylist()
    counts: dict[tuple[int, ...], list[int]] = {}
    moves = np.zeros((3, 3), np.int64)
    for path, bought in zip(paths, converted, strict=True):
        collapsed = tuple(s for i, s in enumerate(path) if i == 0 or s != path[i - 1])
        entry = counts.setdefault(collapsed, [0, 0])
        entry[0] += 1
        entry[1] += int(bought)
        for a, b in pairwise(path):
            moves[a, b] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))[:4]
    names = result.model.names
    want = [(tuple(names[s] for s in p), c, c / 400, b / c) for p, (c, b) in ranked]
    assert [(p.path, p.n, p.share, p.conversion_rate) for p in result.paths] == want
    assert np.array_equal(np.array(result.transitions.counts), moves)
    per_state = [sum(1 for p in paths if s in p) for s in range(3)]
    assert [s.n_sessions for s in result.states] == per_state


def test_viterbi_paths_equal_hmmlearns_decode() -> None:
    sequences, _ = sample_planted(600, seed=5)
    from shopseq.analyze.hmm import viterbi

    for k, seed in ((2, 0), (3, 1), (5, 2)):
        rng = np.random.default_rng(seed)
        p = HMMParameters(
            startprob=rng.dirichlet(np.ones(k)),
            transmat=rng.dirichlet(np.ones(k), size=k),
            emissionprob=rng.dirichlet(np.ones(len(SYMBOLS)), size=k),
        )
        model = CategoricalHMM(n_components=k, n_features=len(SYMBOLS))
        model.startprob_, model.transmat_, model.emissionprob_ = (
            p.startprob,
            p.transmat,
            p.emissionprob,
        )
        _, want = model.decode(sequences.symbols[:, None], sequences.lengths, algorithm="viterbi")
        np.testing.assert_array_equal(viterbi(sequences, p), want)


def _forward_before(packed: _Packed, p: HMMParameters) -> tuple[np.ndarray, ...]:
    """The forward pass as it was before the in-place rewrite (the reference)."""
    frame = np.ascontiguousarray(p.emissionprob.T)[packed.symbols]
    alpha, scale = np.empty_like(frame), np.empty(len(frame))
    a = p.startprob[None, :] * frame[packed.step(0)]
    for t in range(packed.width):
        here = packed.step(t)
        if t:
            before = int(packed.start[t - 1])
            a = (alpha[before : before + packed.live[t]] @ p.transmat) * frame[here]
        total = a.sum(axis=1)
        scale[here] = total
        alpha[here] = a / total[:, None]
    return alpha, scale, frame


def _baum_welch_before(sequences, weights, k, rng, n_iter, tol):
    """EM as it was before the in-place rewrite (the reference)."""
    packed = _Packed.of(sequences)
    w = np.asarray(weights, dtype=np.float64)[packed.order]
    w_events = w[packed.rows]
    v = len(sequences.names)
    n_events = float((w * packed.lengths).sum())
    p, previous, iterations = random_parameters(k, v, rng), -np.inf, 0
    for iterations in range(1, n_iter + 1):  # noqa: B007
        alpha, scale, frame = _forward_before(packed, p)
        log_likelihood = float(w_events @ np.log(scale))
        beta = np.empty_like(alpha)
        beta[packed.step(packed.width - 1)] = 1.0
        xi = np.zeros((k, k))
        for t in range(packed.width - 2, -1, -1):
            n, after = int(packed.live[t + 1]), packed.step(t + 1)
            here = int(packed.start[t])
            emitted = frame[after] * beta[after]
            emitted /= scale[after][:, None]
            beta[here : here + n] = emitted @ p.transmat.T
            beta[here + n : packed.start[t + 1]] = 1.0
            xi += (alpha[here : here + n] * w[:n, None]).T @ emitted
        weighted = alpha * beta * w_events[:, None]
        emission = np.stack(
            [np.bincount(packed.symbols, weighted[:, j], minlength=v) for j in range(k)]
        )
        p = HMMParameters(
            startprob=_normalise(weighted[packed.step(0)].sum(axis=0)),
            transmat=_normalise(xi * p.transmat),
            emissionprob=_normalise(emission),
        )
        if log_likelihood - previous < tol * n_events:
            break
        previous = log_likelihood
    return p, float((w * log_likelihoods(sequences, p)[packed.order]).sum()), iterations


def test_em_equals_the_loop_before_it_ran_in_place_bit_for_bit() -> None:
    sequences, _ = sample_planted(500, seed=4)
    distinct, _, counts = sequences.distinct()
    iterations = set()
    for k in (2, 3, 4, 6):
        for restart in range(2):
            seed = [0, k, restart]
            p, ll, n = baum_welch(distinct, counts, k, np.random.default_rng(seed), 300, 1e-6)
            q, ll_q, m = _baum_welch_before(
                distinct, counts, k, np.random.default_rng(seed), 300, 1e-6
            )
            assert (n, ll) == (m, ll_q)
            for a, b in zip(
                (p.startprob, p.transmat, p.emissionprob),
                (q.startprob, q.transmat, q.emissionprob),
                strict=True,
            ):
                np.testing.assert_array_equal(a, b)
            iterations.add(n)
    assert len(iterations) > 2  # fits of different lengths were compared


@pytest.mark.parametrize("n", [1, 2, 7, 9, 300, 5000])
def test_row_sums_equal_numpys_sum_bit_for_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    for k in range(1, 8):
        a = rng.random((n, k)) * rng.choice([1e-9, 1e-3, 1.0, 1e3], size=(n, k))
        np.testing.assert_array_equal(_row_sums(a), a.sum(axis=1))
