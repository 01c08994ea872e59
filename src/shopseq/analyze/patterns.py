"""Frequent sequential patterns (PrefixSpan with a maximum gap) over sessions.

A pattern ``a > b > c`` is *contained* in a session when the session has events with tokens
``a``, ``b``, ``c`` in that order and each is at most ``max_gap`` steps after the previous one
(``max_gap=1``: consecutive; ``None``: any distance). Its support is the number (and share) of
sessions containing it. Tokens are items, categories, actions or ``action:category``;
consecutive repeats of a token are collapsed first when ``collapse_repeats`` is set.

Sampling: mining runs on at most ``max_sequences`` sessions, chosen in the store by a seeded hash
of the session id (a uniform, reproducible sample); supports are shares of the sample, and the
result says how many sessions were mined out of how many.

Hand-written PrefixSpan: the PyPI ``prefixspan`` package (0.5.2, last release 2018) is
unmaintained and has no gap constraint; this NumPy version projects by end positions instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ibis
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopseq.analyze.ordered import EVENT_POS, has_session_order
from shopseq.analyze.result import Result, event_order
from shopseq.schema import ACTION, CATEGORY_ID, ITEM_ID, SESSION_ID

__all__ = ["Pattern", "PatternConfig", "PatternsResult", "mine_patterns", "prefixspan"]

IntArray = npt.NDArray[np.int64]
UNKNOWN = "unknown"


class PatternConfig(BaseModel):
    """What to mine.

    Attributes:
        token: What one step of a sequence is.
        min_support: Minimum share of sessions that contain a pattern.
        min_sessions: ...and at least this many sessions (keeps one-offs of small data out).
        max_gap: Maximum steps between consecutive pattern elements (``None``: unlimited).
        min_length: Shortest pattern reported.
        max_length: Longest pattern mined.
        top_k: Most frequent patterns reported.
        collapse_repeats: Merge consecutive equal tokens of a session into one step.
        max_sequences: Sessions mined at most (a seeded uniform sample beyond that).
        seed: Seed of the sample.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: Literal["item", "category", "action", "action_category"] = "item"
    min_support: float = Field(default=0.001, gt=0.0, le=1.0)
    min_sessions: int = Field(default=5, ge=1)
    max_gap: int | None = Field(default=3, ge=1)
    min_length: int = Field(default=2, ge=1)
    max_length: int = Field(default=4, ge=1, le=20)
    top_k: int = Field(default=25, ge=1)
    collapse_repeats: bool = True
    max_sequences: int = Field(default=200_000, ge=1)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _lengths(self) -> PatternConfig:
        if self.min_length > self.max_length:
            raise ValueError(
                f"min_length ({self.min_length}) must not exceed max_length ({self.max_length})"
            )
        return self


@dataclass(frozen=True, slots=True)
class Pattern(Result):
    """A frequent sequential pattern.

    Attributes:
        tokens: The pattern's steps in order.
        n: Sessions (of those mined) that contain it.
        support: ``n`` / sessions mined.
    """

    tokens: tuple[str, ...]
    n: int
    support: float


@dataclass(frozen=True, slots=True)
class PatternsResult(Result):
    """The most frequent patterns.

    Attributes:
        token: What a step is.
        n_sequences: Sessions mined.
        n_sequences_total: Sessions in the data.
        min_support_count: Sessions a pattern needed: ``ceil(min_support * n_sequences)``, at
            least ``min_sessions``.
        n_frequent: Frequent patterns found within the length limits (before ``top_k``).
        patterns: Most frequent first.
    """

    token: str
    n_sequences: int
    n_sequences_total: int
    min_support_count: int
    n_frequent: int
    patterns: tuple[Pattern, ...]

    @property
    def sampled(self) -> bool:
        """Whether mining ran on a sample of the sessions."""
        return self.n_sequences < self.n_sequences_total


def _ranges(starts: IntArray, stops: IntArray) -> IntArray:
    """Concatenate ``arange(start, stop)`` for every pair, vectorised."""
    lengths = np.maximum(stops - starts, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(total, dtype=np.int64)


def prefixspan(
    tokens: IntArray,
    offsets: IntArray,
    min_count: int,
    max_gap: int | None,
    max_length: int,
) -> list[tuple[tuple[int, ...], int]]:
    """Mine every frequent sequential pattern of up to ``max_length`` tokens.

    Args:
        tokens: All sequences' token codes, concatenated (CSR values).
        offsets: Sequence boundaries, ``len(sequences) + 1`` entries starting at 0.
        min_count: Minimum number of sequences containing a pattern.
        max_gap: Maximum distance between consecutive matched positions (``None``: any).
        max_length: Longest pattern.

    Returns:
        ``(pattern codes, support count)`` for every frequent pattern, length 1 included.
    """
    n_tokens = int(tokens.max()) + 1 if len(tokens) else 0
    seq_of = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    seq_stop = offsets[1:][seq_of]  # exclusive end of each position's sequence
    found: list[tuple[tuple[int, ...], int]] = []

    def frequent(positions: IntArray) -> dict[int, IntArray]:
        # Support of each token at ``positions``: distinct (sequence, token) pairs.
        pairs = np.unique(seq_of[positions] * n_tokens + tokens[positions])
        counts = np.bincount(pairs % n_tokens, minlength=n_tokens)
        keep = np.flatnonzero(counts >= min_count)
        if len(keep) == 0:
            return {}
        hit = tokens[positions]
        return {int(t): np.unique(positions[hit == t]) for t in keep}

    def grow(pattern: tuple[int, ...], ends: IntArray) -> None:
        found.append((pattern, len(np.unique(seq_of[ends]))))
        if len(pattern) >= max_length:
            return
        if max_gap is None:
            # Any later position extends: the earliest end of each sequence covers the others.
            first = np.unique(seq_of[ends], return_index=True)[1]
            starts = ends[first] + 1
            candidates = _ranges(starts, seq_stop[ends[first]])
        else:
            starts = ends + 1
            candidates = np.unique(_ranges(starts, np.minimum(ends + 1 + max_gap, seq_stop[ends])))
        for token, new_ends in frequent(candidates).items():
            grow((*pattern, token), new_ends)

    for token, ends in frequent(np.arange(len(tokens), dtype=np.int64)).items():
        grow((token,), ends)
    return found


def _token(events: ibis.Table, token: str) -> ibis.StringValue:
    category = events[CATEGORY_ID].fill_null(UNKNOWN)
    if token == "item":
        return events[ITEM_ID]
    if token == "category":
        return category
    if token == "action":
        return events[ACTION]
    return events[ACTION].concat(":", category)


def _sample_sequences(events: ibis.Table, config: PatternConfig) -> tuple[pa.Array, IntArray, int]:
    """Fetch the sampled sessions' tokens in order; return (tokens, offsets, sessions total)."""
    if has_session_order(events):
        # The shared ordered table (analyze/ordered.py): a session's first event names it once,
        # and positions order its events.
        sessions = events.filter(events[EVENT_POS] == 0).select(_s=events[SESSION_ID])
    else:
        sessions = events.select(_s=events[SESSION_ID]).distinct()
    ranked = sessions.mutate(_h=(sessions._s.concat(f"#{config.seed}")).hash())
    n_total = int(sessions.count().execute())
    chosen = ranked.order_by(["_h", "_s"]).limit(config.max_sequences).select("_s")
    picked = events.semi_join(chosen, events[SESSION_ID] == chosen._s)
    keys = [picked[EVENT_POS]] if has_session_order(events) else event_order(picked)
    rows = picked.select(
        _s=picked[SESSION_ID],
        _tok=_token(picked, config.token),
        **{f"_k{i}": key for i, key in enumerate(keys)},
    ).order_by(["_s", *(f"_k{i}" for i in range(len(keys)))])
    data = rows.to_pyarrow()
    session = data.column("_s").combine_chunks()
    tok = data.column("_tok").combine_chunks()
    n = len(session)
    if n == 0:
        return tok, np.zeros(1, np.int64), n_total
    new_session = np.ones(n, bool)
    new_session[1:] = pc.not_equal(session[1:], session[:-1]).to_numpy(zero_copy_only=False)
    if config.collapse_repeats:
        repeat = np.zeros(n, bool)
        repeat[1:] = pc.equal(tok[1:], tok[:-1]).to_numpy(zero_copy_only=False)
        keep = ~(repeat & ~new_session)
        tok = tok.filter(pa.array(keep))
        new_session = new_session[keep]
    offsets = np.append(np.flatnonzero(new_session), len(new_session)).astype(np.int64)
    return tok, offsets, n_total


def mine_patterns(events: ibis.Table, config: PatternConfig) -> PatternsResult:
    """Mine the most frequent sequential patterns of sessions.

    Args:
        events: Prepared events (``store.table("events_prepared")``), or them in
            :func:`~shopseq.analyze.ordered.session_order` (the same result, sooner).
        config: Token, support, gap, lengths, sample size.

    Returns:
        The ``top_k`` most frequent patterns within the length limits.
    """
    tok, offsets, n_total = _sample_sequences(events, config)
    n_sequences = len(offsets) - 1
    min_count = max(config.min_sessions, int(np.ceil(config.min_support * n_sequences)))
    encoded = pc.dictionary_encode(tok)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = encoded.dictionary.to_pylist()
    found = prefixspan(codes, offsets, min_count, config.max_gap, config.max_length)
    kept = [(p, n) for p, n in found if len(p) >= config.min_length]
    labelled = sorted(
        ((tuple(str(names[c]) for c in p), n) for p, n in kept), key=lambda pn: (-pn[1], pn[0])
    )
    return PatternsResult(
        token=config.token,
        n_sequences=n_sequences,
        n_sequences_total=n_total,
        min_support_count=min_count,
        n_frequent=len(kept),
        patterns=tuple(
            Pattern(tokens=t, n=n, support=n / n_sequences) for t, n in labelled[: config.top_k]
        ),
    )
