"""Ordered per-user or per-session sequences in a CSR layout, and their padded/windowed views.

This is the one place data leaves the table engine for NumPy: :func:`fetch_events` runs one sorted
query, and everything after it is array arithmetic (no Python loop over events).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from shopseq.errors import InputError
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
    Action,
)
from shopseq.sequences.vocab import Vocabulary

__all__ = [
    "EventArrays",
    "SequenceConfig",
    "Sequences",
    "build_sequences",
    "fetch_events",
    "sliding_windows",
]


class SequenceConfig(BaseModel):
    """Which events make a sequence.

    Attributes:
        by: One sequence per ``user`` or per ``session``.
        actions: Keep only these actions (``None``: all).
        collapse_repeats: Drop an event whose item equals the previous event's item in the same
            sequence (a view followed by a cart of the same item is one step of a path).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    by: Literal["user", "session"] = "user"
    actions: tuple[Action, ...] | None = None
    collapse_repeats: bool = False


@dataclass(frozen=True, slots=True)
class EventArrays:
    """Events sorted by (owner, ts, lineage), external ids not yet encoded.

    Attributes:
        owner_ids: User or session id per event.
        item_ids: Item id per event.
        category_ids: Category id per event (may hold nulls).
        actions: int8 action code per event (``schema.ACTION_CODES``).
        ts: int64 seconds since the epoch (UTC) per event.
    """

    owner_ids: pa.Array
    item_ids: pa.Array
    category_ids: pa.Array
    actions: np.ndarray
    ts: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)

    def take(self, mask: np.ndarray) -> EventArrays:
        """Keep the events where ``mask`` is true (order preserved).

        Args:
            mask: Boolean mask over events.

        Returns:
            The selected events.
        """
        arrow_mask = pa.array(mask)
        return EventArrays(
            owner_ids=pc.filter(self.owner_ids, arrow_mask),
            item_ids=pc.filter(self.item_ids, arrow_mask),
            category_ids=pc.filter(self.category_ids, arrow_mask),
            actions=self.actions[mask],
            ts=self.ts[mask],
        )

    def boundaries(self) -> np.ndarray:
        """Return CSR offsets of the owners' runs (events are sorted by owner).

        Returns:
            int64 offsets of length n_owners + 1.
        """
        n = len(self)
        if n == 0:
            return np.zeros(1, dtype=np.int64)
        changed = pc.not_equal(self.owner_ids[1:], self.owner_ids[:-1])
        starts = np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1
        return np.concatenate([[0], starts, [n]]).astype(np.int64)


@dataclass(frozen=True, slots=True)
class Sequences:
    """Many variable-length sequences in one CSR block (statsforecast's ``GroupedArray`` idea).

    Sequence ``i`` is events ``offsets[i]:offsets[i + 1]``. Item index 0 is padding and never
    appears here; -1 marks an item unknown to the vocabulary (cold start), which models must treat
    as "no information" (``to_padded`` maps it to padding).

    Attributes:
        owner: (n_sequences,) int64 owner index (user or session).
        offsets: (n_sequences + 1,) int64.
        items: (n_events,) int32 item index.
        actions: (n_events,) int8 action code.
        ts: (n_events,) int64 seconds since the epoch, UTC.
        categories: (n_events,) int32 category index (0 when the event has none, -1 unknown).
    """

    owner: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    actions: np.ndarray
    ts: np.ndarray
    categories: np.ndarray

    def __len__(self) -> int:
        return len(self.owner)

    @property
    def n_events(self) -> int:
        """Total events over all sequences."""
        return int(self.offsets[-1])

    @property
    def lengths(self) -> np.ndarray:
        """(n_sequences,) int64 length of each sequence."""
        return np.diff(self.offsets)

    def items_of(self, index: int) -> np.ndarray:
        """Return the item indices of one sequence (a view, not a copy).

        Args:
            index: Sequence number.

        Returns:
            int32 items in time order.
        """
        return self.items[self.offsets[index] : self.offsets[index + 1]]

    @classmethod
    def from_lists(
        cls,
        item_lists: list[list[int]] | list[np.ndarray],
        *,
        owner: np.ndarray | None = None,
        actions: list[list[int]] | None = None,
    ) -> Sequences:
        """Build sequences from lists of item indices (benchmark files, tests, the service).

        Args:
            item_lists: One list of item indices per sequence.
            owner: Owner index per sequence (default 0..n-1).
            actions: Action codes per event (default all ``view``).

        Returns:
            The sequences; timestamps are the position within each sequence.
        """
        lengths = np.array([len(x) for x in item_lists], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        n = int(offsets[-1])
        items = (
            np.concatenate([np.asarray(x, dtype=np.int32) for x in item_lists])
            if n
            else np.zeros(0, np.int32)
        )
        acts = (
            np.concatenate([np.asarray(a, dtype=np.int8) for a in actions])
            if actions is not None and n
            else np.zeros(n, np.int8)
        )
        ts = np.arange(n, dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        return cls(
            owner=np.arange(len(item_lists), dtype=np.int64) if owner is None else owner,
            offsets=offsets,
            items=items,
            actions=acts,
            ts=ts,
            categories=np.zeros(n, np.int32),
        )

    def subset(self, indices: np.ndarray) -> Sequences:
        """Select sequences by number, in the given order.

        Args:
            indices: Sequence numbers.

        Returns:
            The selected sequences.
        """
        indices = np.asarray(indices, dtype=np.int64)
        starts, ends = self.offsets[indices], self.offsets[indices + 1]
        return self._gather(indices, starts, ends)

    def prefixes(self, indices: np.ndarray, ends: np.ndarray, max_len: int | None) -> Sequences:
        """Cut sequence ``indices[j]`` to its events before position ``ends[j]`` (last ``max_len``).

        Args:
            indices: Sequence numbers.
            ends: Exclusive end position within each sequence.
            max_len: Keep at most this many most recent events (``None``: all).

        Returns:
            The prefixes, one per index.
        """
        indices = np.asarray(indices, dtype=np.int64)
        stops = self.offsets[indices] + np.asarray(ends, dtype=np.int64)
        starts = self.offsets[indices]
        if max_len is not None:
            starts = np.maximum(starts, stops - max_len)
        return self._gather(indices, starts, stops)

    def _gather(self, indices: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> Sequences:
        lengths = stops - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # Event positions of every selected run, built without a Python loop.
        positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return Sequences(
            owner=self.owner[indices],
            offsets=offsets,
            items=self.items[positions],
            actions=self.actions[positions],
            ts=self.ts[positions],
            categories=self.categories[positions],
        )

    def time_gaps(self) -> np.ndarray:
        """Seconds since the previous event of the same sequence (0 for each first event).

        Returns:
            (n_events,) int64.
        """
        gaps = np.diff(self.ts, prepend=self.ts[:1]) if self.n_events else np.zeros(0, np.int64)
        gaps[self.offsets[:-1][self.lengths > 0]] = 0
        return gaps.astype(np.int64)

    def to_padded(self, max_len: int, *, field: str = "items") -> np.ndarray:
        """Left-pad (or truncate to the most recent) each sequence to ``max_len``.

        Args:
            max_len: Output width.
            field: ``items``, ``actions``, ``categories`` or ``ts``.

        Returns:
            (n_sequences, max_len) array; padding is 0 and unknown items (-1) become 0.
        """
        if max_len < 1:
            raise InputError(f"max_len must be >= 1; got {max_len}")
        values = getattr(self, field)
        out = np.zeros((len(self), max_len), dtype=values.dtype)
        lengths = np.minimum(self.lengths, max_len)
        rows = np.repeat(np.arange(len(self)), lengths)
        cols = (
            max_len
            - np.repeat(lengths, lengths)
            + (np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths))
        )
        source = np.repeat(self.offsets[1:] - lengths, lengths) + (
            np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        )
        out[rows, cols] = values[source]
        if field == "items":
            out[out < 0] = 0
        return out


def sliding_windows(
    sequences: Sequences, window: int, stride: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut every sequence into windows of ``window`` items, newest window first per sequence.

    Windows end at the sequence's last event and then every ``stride`` events earlier; a window
    reaching past the start is left-padded with 0. A sequence shorter than ``window`` gives one
    padded window.

    Args:
        sequences: The sequences.
        window: Items per window.
        stride: Step between window ends (default ``window``: no overlap).

    Returns:
        ``(windows, sequence_index)``: (n_windows, window) int32 items and the sequence of each.
    """
    step = stride or window
    if window < 1 or step < 1:
        raise InputError(f"window and stride must be >= 1; got {window} and {step}")
    lengths = sequences.lengths
    n_windows = np.where(lengths > 0, np.maximum(1, -(-(lengths - window) // step) + 1), 0)
    n_windows = np.where(lengths <= window, np.minimum(lengths, 1), n_windows)
    seq_index = np.repeat(np.arange(len(sequences)), n_windows)
    k = np.arange(int(n_windows.sum())) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    ends = lengths[seq_index] - k * step
    prefixes = sequences.prefixes(seq_index, ends, window)
    return prefixes.to_padded(window), seq_index


def fetch_events(events: ibis.Table, config: SequenceConfig) -> EventArrays:
    """Read events sorted by owner, time and lineage into arrays.

    Args:
        events: Prepared events (with ``session_id`` when ``by='session'``).
        config: Which events and owner.

    Returns:
        The sorted event arrays.
    """
    owner = USER_ID if config.by == "user" else SESSION_ID
    table = events
    if config.actions is not None:
        table = table.filter(table[ACTION].isin([a.value for a in config.actions]))
    table = table.select(
        _owner=table[owner],
        _item=table[ITEM_ID],
        _category=table[CATEGORY_ID],
        _action=table[ACTION],
        # ibis types epoch_seconds as int32, but DuckDB returns a double for sub-second
        # timestamps (Diginetica's date + ms offsets): floor it and keep 64 bits (2038-safe).
        _ts=table[TS].epoch_seconds().floor().cast("int64"),
        _f=table[SOURCE_FILE_ID],
        _r=table[SOURCE_ROW],
    ).order_by(["_owner", "_ts", "_f", "_r"])
    data = table.to_pyarrow()
    codes = {a.value: c for a, c in ACTION_CODES.items()}
    action_dict = pc.dictionary_encode(data.column("_action")).combine_chunks()
    lookup = np.array([codes[v] for v in action_dict.dictionary.to_pylist()], dtype=np.int8)
    arrays = EventArrays(
        owner_ids=data.column("_owner").combine_chunks().cast(pa.string()),
        item_ids=data.column("_item").combine_chunks().cast(pa.string()),
        category_ids=data.column("_category").combine_chunks().cast(pa.string()),
        actions=lookup[action_dict.indices.to_numpy(zero_copy_only=False)]
        if len(lookup)
        else np.zeros(0, np.int8),
        ts=data.column("_ts").to_numpy().astype(np.int64),
    )
    if config.collapse_repeats and len(arrays) > 1:
        same_owner = pc.equal(arrays.owner_ids[1:], arrays.owner_ids[:-1])
        same_item = pc.equal(arrays.item_ids[1:], arrays.item_ids[:-1])
        repeat = pc.and_(same_owner, same_item).to_numpy(zero_copy_only=False)
        arrays = arrays.take(np.concatenate([[True], ~repeat]))
    return arrays


def build_sequences(
    events: EventArrays,
    item_vocab: Vocabulary,
    category_vocab: Vocabulary,
    owner_vocab: Vocabulary,
) -> Sequences:
    """Encode sorted events into CSR sequences, one per owner.

    Args:
        events: Sorted events.
        item_vocab: Item vocabulary (unknown items become -1).
        category_vocab: Category vocabulary (missing categories become 0, unknown -1).
        owner_vocab: Owner vocabulary.

    Returns:
        The sequences.
    """
    offsets = events.boundaries()
    categories = category_vocab.encode(events.category_ids)
    categories[np.asarray(pc.is_null(events.category_ids).to_numpy(zero_copy_only=False))] = 0
    first_owner = (
        events.owner_ids.take(pa.array(offsets[:-1])) if len(events) else pa.array([], pa.string())
    )
    return Sequences(
        owner=owner_vocab.encode(first_owner).astype(np.int64),
        offsets=offsets,
        items=item_vocab.encode(events.item_ids),
        actions=events.actions,
        ts=events.ts,
        categories=categories,
    )
