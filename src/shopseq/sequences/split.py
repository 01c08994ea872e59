"""Temporal splits: the only place where test data is defined.

Two protocols, both leak-free by construction:

* **leave-last-out**: per owner, the last event is the test target, the one before it the
  validation target, the rest trains. Owners with fewer than 3 events only train.
* **time cut**: events before ``valid_cut`` train, events in ``[valid_cut, cut)`` are validation
  targets, events at or after ``cut`` are test targets.

Every event ends up exactly once as a training event, a validation target or a test target. The item
vocabulary is built from the events before the test targets only (``train_full``); test targets the
vocabulary does not know are cold-start items, encoded -1 and counted, never dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from shopseq.artifacts import atomic_dir, atomic_write_json
from shopseq.errors import InputError
from shopseq.schema import epoch_micros
from shopseq.sequences.build import EventArrays, Sequences, build_sequences
from shopseq.sequences.vocab import UNKNOWN_INDEX, Vocabulary

__all__ = ["EvalCases", "Split", "SplitReport", "leave_last_out", "time_cut"]


@dataclass(frozen=True, slots=True)
class EvalCases:
    """Next-item cases: predict ``targets[j]`` from sequence ``seq_index[j]`` before it.

    Attributes:
        sequences: Full sequences (all events of the owners, encoded with the train vocabulary).
        seq_index: (n_cases,) sequence of each case.
        position: (n_cases,) position of the target within its sequence; the history is every
            event before it.
        targets: (n_cases,) int32 target item index (-1: cold-start item, a guaranteed miss).
    """

    sequences: Sequences
    seq_index: np.ndarray
    position: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    def histories(self, max_len: int | None = None, cases: np.ndarray | None = None) -> Sequences:
        """Return the history of each case (events before its target), most recent ``max_len``.

        Args:
            max_len: Keep at most this many most recent events per history.
            cases: Case numbers to return (default all), e.g. a batch.

        Returns:
            One sequence per case.
        """
        chosen = np.arange(len(self)) if cases is None else np.asarray(cases)
        return self.sequences.prefixes(self.seq_index[chosen], self.position[chosen], max_len)

    def subset(self, cases: np.ndarray) -> EvalCases:
        """Keep some cases (e.g. a sample for a quick validation).

        Args:
            cases: Case numbers.

        Returns:
            The selected cases over the same sequences.
        """
        return EvalCases(
            self.sequences, self.seq_index[cases], self.position[cases], self.targets[cases]
        )


@dataclass(frozen=True, slots=True)
class SplitReport:
    """What the split did, cold starts included.

    Attributes:
        protocol: ``leave_last_out`` or ``time_cut``.
        n_events: Events split.
        n_train_events: Events in ``train``.
        n_train_full_events: Events in ``train_full``.
        n_valid_cases: Validation targets.
        n_test_cases: Test targets.
        n_items: Items in the vocabulary.
        owners_too_short: Owners with too few events to evaluate (leave-last-out: < 3).
        test_cold_start_items: Test targets whose item was never seen before the test.
        test_cold_start_owners: Test cases whose owner had no event before the test.
        valid_cold_start_items: Validation targets unknown to the vocabulary.
        cut: The test cut (time cut only).
        valid_cut: The validation cut (time cut only).
    """

    protocol: str
    n_events: int
    n_train_events: int
    n_train_full_events: int
    n_valid_cases: int
    n_test_cases: int
    n_items: int
    owners_too_short: int
    test_cold_start_items: int
    test_cold_start_owners: int
    valid_cold_start_items: int
    cut: datetime | None = None
    valid_cut: datetime | None = None


@dataclass(frozen=True, slots=True)
class Split:
    """Train / validation / test, with the vocabularies built from the training side.

    Attributes:
        train: Training sequences for model selection (no validation or test target in them).
        train_full: Training sequences plus validation targets (for the refit after selection).
        valid: Validation cases.
        test: Test cases.
        item_vocab: Items seen in ``train_full``.
        category_vocab: Categories seen in ``train_full``.
        owner_vocab: Owners (users or sessions) of all events.
        report: Counts.
    """

    train: Sequences
    train_full: Sequences
    valid: EvalCases
    test: EvalCases
    item_vocab: Vocabulary
    category_vocab: Vocabulary
    owner_vocab: Vocabulary
    report: SplitReport

    def save(self, directory: Path) -> None:
        """Write the split as plain files (``.npz`` arrays, Parquet vocabularies, JSON report).

        The directory is replaced atomically as a whole.

        Args:
            directory: Destination directory.
        """
        with atomic_dir(directory) as tmp:
            self.train.save(tmp / "train.npz")
            self.train_full.save(tmp / "train_full.npz")
            self.test.sequences.save(tmp / "full.npz")
            for name, cases in (("valid", self.valid), ("test", self.test)):
                with (tmp / f"{name}_cases.npz").open("wb") as handle:
                    np.savez(
                        handle,
                        seq_index=cases.seq_index,
                        position=cases.position,
                        targets=cases.targets,
                    )
            for vocab in (self.item_vocab, self.category_vocab, self.owner_vocab):
                vocab.save(tmp / f"vocab_{vocab.name}.parquet")
            atomic_write_json(tmp / "split_report.json", asdict(self.report))


def _positions(offsets: np.ndarray) -> np.ndarray:
    lengths = np.diff(offsets)
    positions: np.ndarray = np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], lengths)
    return positions


def _split(
    events: EventArrays,
    train_mask: np.ndarray,
    valid_mask: np.ndarray,
    test_mask: np.ndarray,
    *,
    protocol: str,
    owners_too_short: int = 0,
    cut: datetime | None = None,
    valid_cut: datetime | None = None,
) -> Split:
    """Build the split from three disjoint event masks (the one place both protocols share)."""
    full_mask = train_mask | valid_mask
    before_test = events.take(full_mask)
    item_vocab = Vocabulary.from_values("item", before_test.item_ids)
    category_vocab = Vocabulary.from_values("category", before_test.category_ids)
    owner_vocab = Vocabulary.from_values("owner", events.owner_ids)
    full = build_sequences(events, item_vocab, category_vocab, owner_vocab)
    train = build_sequences(events.take(train_mask), item_vocab, category_vocab, owner_vocab)
    train_full = build_sequences(before_test, item_vocab, category_vocab, owner_vocab)
    seq_of_event = np.repeat(np.arange(len(full)), full.lengths)
    position = _positions(full.offsets)

    def cases(mask: np.ndarray) -> EvalCases:
        return EvalCases(full, seq_of_event[mask], position[mask], full.items[mask])

    valid, test = cases(valid_mask), cases(test_mask)
    report = SplitReport(
        protocol=protocol,
        n_events=len(events),
        n_train_events=train.n_events,
        n_train_full_events=train_full.n_events,
        n_valid_cases=len(valid),
        n_test_cases=len(test),
        n_items=len(item_vocab.ids),
        owners_too_short=owners_too_short,
        test_cold_start_items=int(np.count_nonzero(test.targets == UNKNOWN_INDEX)),
        test_cold_start_owners=_cold_owners(test, full_mask),
        valid_cold_start_items=int(np.count_nonzero(valid.targets == UNKNOWN_INDEX)),
        cut=cut,
        valid_cut=valid_cut,
    )
    return Split(train, train_full, valid, test, item_vocab, category_vocab, owner_vocab, report)


def _cold_owners(test: EvalCases, before_test_mask: np.ndarray) -> int:
    """Test cases whose owner has no event before the test period."""
    full = test.sequences
    seq_of_event = np.repeat(np.arange(len(full)), full.lengths)
    has_history = np.bincount(seq_of_event[before_test_mask], minlength=len(full)) > 0
    return int(np.count_nonzero(~has_history[test.seq_index]))


def leave_last_out(events: EventArrays) -> Split:
    """Split each owner's sequence: last event tests, the one before validates, the rest trains.

    Args:
        events: Sorted events (from :func:`fetch_events`).

    Returns:
        The split.
    """
    offsets = events.boundaries()
    lengths = np.diff(offsets)
    evaluable = np.repeat(lengths >= 3, lengths)
    from_end = np.repeat(offsets[1:], lengths) - np.arange(len(events))  # 1 = last event
    test_mask = evaluable & (from_end == 1)
    valid_mask = evaluable & (from_end == 2)
    train_mask = ~(test_mask | valid_mask)
    return _split(
        events,
        train_mask,
        valid_mask,
        test_mask,
        protocol="leave_last_out",
        owners_too_short=int(np.count_nonzero(lengths < 3)),
    )


def time_cut(events: EventArrays, cut: datetime, valid_cut: datetime | None = None) -> Split:
    """Split globally in time: train before ``valid_cut``, validate until ``cut``, test after.

    Args:
        events: Sorted events (from :func:`fetch_events`).
        cut: Start of the test period (naive datetimes are UTC).
        valid_cut: Start of the validation period (default: no validation cases).

    Returns:
        The split.

    Raises:
        InputError: If ``valid_cut`` is after ``cut``.
    """
    cut_s = epoch_micros(cut) // 1_000_000
    valid_s = cut_s if valid_cut is None else epoch_micros(valid_cut) // 1_000_000
    if valid_s > cut_s:
        raise InputError(f"valid_cut {valid_cut} must not be after cut {cut}")
    train_mask = events.ts < valid_s
    valid_mask = (events.ts >= valid_s) & (events.ts < cut_s)
    test_mask = events.ts >= cut_s
    return _split(
        events, train_mask, valid_mask, test_mask, protocol="time_cut", cut=cut, valid_cut=valid_cut
    )
