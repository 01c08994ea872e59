"""Readers for published next-item benchmark files that are splits, not event logs.

Each reader returns a :class:`~shopseq.sequences.Split` laid out as the papers that made the files
evaluated them, so results are comparable with their tables:

* :func:`read_user_item_pairs`: SASRec / BERT4Rec ``user item`` lines in time order, and
  :func:`read_user_sequence_lines`: S3-Rec ``user item item ...`` lines. Leave-one-out per user:
  the last item tests, the second-to-last validates (users with < 3 items only train).
* :func:`read_gce_gnn`: the GCE-GNN / SR-GNN Diginetica files (plain-text conversions): training
  sessions, and test cases "prefix -> next item" (every prefix of every test session).
* :func:`read_session_rec`: session-rec / GRU4Rec prepared ``SessionId ItemId Time`` files
  (``train_full``, ``test`` and optionally ``train_tr`` / ``train_valid``): every position but the
  first of each test session is a case.

The files carry no timestamps (or only within sessions), so ``ts`` is the event's global order in
the file; item ids are taken as strings and encoded with a vocabulary built from training events.
Parsing is done by Arrow (``split_pattern`` + list offsets), not a Python loop over lines.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from shopseq.errors import InputError, SchemaMismatchError
from shopseq.sequences.build import EventArrays, Sequences
from shopseq.sequences.split import EvalCases, Split, SplitReport, leave_last_out
from shopseq.sequences.vocab import UNKNOWN_INDEX, Vocabulary

__all__ = ["read_gce_gnn", "read_session_rec", "read_user_item_pairs", "read_user_sequence_lines"]


def _read_columns(path: Path, names: list[str], delimiter: str, header: bool) -> pa.Table:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=None if header else names, autogenerate_column_names=False
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), include_columns=names
            ),
        )
    except (pa.ArrowInvalid, KeyError) as err:
        raise SchemaMismatchError(path, detail=f"cannot read as {names}: {err}") from err


def _read_lines(path: Path, *, keyed: bool) -> tuple[pa.Array, pa.Array | None]:
    """Read whole lines as text; with ``keyed``, a tab-separated key column comes first."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    names = ["key", "line"] if keyed else ["line"]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter="\t" if keyed else "\x1f", quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
        )
    except pa.ArrowInvalid as err:
        raise SchemaMismatchError(path, detail=f"cannot read as {names}: {err}") from err
    text = pc.utf8_trim_whitespace(table.column("line").combine_chunks())
    return text, table.column("key").combine_chunks() if keyed else None


def _tokens(text: pa.Array) -> pa.ListArray:
    """Split each line on spaces (Arrow kernel: no Python loop over lines)."""
    return pc.split_pattern(text, " ") if len(text) else pa.array([], pa.list_(pa.string()))


def _sequences(
    tokens: pa.ListArray, vocab: Vocabulary, ts_start: int = 0
) -> tuple[Sequences, pa.Array]:
    """Encode lists of item ids; ts is the running event number from ``ts_start``."""
    offsets = tokens.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0]
    flat = tokens.flatten()
    n = len(flat)
    sequences = Sequences(
        owner=np.arange(len(tokens), dtype=np.int64),
        offsets=offsets,
        items=vocab.encode(flat),
        actions=np.zeros(n, np.int8),
        ts=np.arange(ts_start, ts_start + n, dtype=np.int64),
        categories=np.zeros(n, np.int32),
    )
    return sequences, flat


def _every_position(sequences: Sequences, first: int = 1) -> EvalCases:
    """Cases for every position ``>= first`` of every sequence (history = events before it)."""
    lengths = sequences.lengths
    seq_index = np.repeat(np.arange(len(sequences)), lengths)
    position = np.arange(sequences.n_events) - np.repeat(sequences.offsets[:-1], lengths)
    keep = position >= first
    return EvalCases(sequences, seq_index[keep], position[keep], sequences.items[keep])


def _report(
    protocol: str,
    train: Sequences,
    train_full: Sequences,
    valid: EvalCases,
    test: EvalCases,
    vocab: Vocabulary,
) -> SplitReport:
    return SplitReport(
        protocol=protocol,
        n_events=train_full.n_events + len(test),
        n_train_events=train.n_events,
        n_train_full_events=train_full.n_events,
        n_valid_cases=len(valid),
        n_test_cases=len(test),
        n_items=len(vocab.ids),
        owners_too_short=0,
        test_cold_start_items=int(np.count_nonzero(test.targets == UNKNOWN_INDEX)),
        test_cold_start_owners=0,
        valid_cold_start_items=int(np.count_nonzero(valid.targets == UNKNOWN_INDEX)),
    )


def _leave_one_out(users: pa.Array, items: pa.Array) -> Split:
    """Stable-sort events by user (numeric when possible) and split leave-last-out.

    As in the papers, the catalogue is every item of the file: an item seen only as a
    validation or test target is appended to the vocabulary (it gets an index no model was
    trained on) instead of being a cold-start miss.
    """
    numeric = pc.cast(users, pa.int64(), safe=False) if _all_digits(users) else users
    order = pc.sort_indices(
        pa.table({"u": numeric, "i": pa.array(np.arange(len(users)))}),
        sort_keys=[("u", "ascending"), ("i", "ascending")],
    )
    n = len(users)
    events = EventArrays(
        owner_ids=users.take(order),
        item_ids=items.take(order),
        category_ids=pa.nulls(n, pa.string()),
        actions=np.zeros(n, np.int8),
        ts=np.asarray(order.to_numpy(), dtype=np.int64),  # file order stands in for time
    )
    split = leave_last_out(events)
    full = split.test.sequences  # valid and test share the full sequences, in event order
    unknown = full.items == UNKNOWN_INDEX
    if not unknown.any():
        return split
    missing = pc.unique(events.item_ids.filter(pa.array(unknown)))
    vocab = Vocabulary("item", pa.concat_arrays([split.item_vocab.ids, missing.cast(pa.string())]))
    full.items[unknown] = vocab.encode(events.item_ids.filter(pa.array(unknown)))
    valid = EvalCases(
        full, split.valid.seq_index, split.valid.position, full.items[_at(split.valid)]
    )
    test = EvalCases(full, split.test.seq_index, split.test.position, full.items[_at(split.test)])
    report = replace(
        split.report,
        n_items=len(vocab.ids),
        test_cold_start_items=int(np.count_nonzero(test.targets == UNKNOWN_INDEX)),
        valid_cold_start_items=int(np.count_nonzero(valid.targets == UNKNOWN_INDEX)),
    )
    return replace(split, valid=valid, test=test, item_vocab=vocab, report=report)


def _at(cases: EvalCases) -> np.ndarray:
    """Event index of each case's target within its full sequences."""
    at: np.ndarray = cases.sequences.offsets[cases.seq_index] + cases.position
    return at


def _all_digits(values: pa.Array) -> bool:
    return bool(pc.all(pc.utf8_is_digit(values)).as_py()) if len(values) else False


def read_user_item_pairs(path: Path) -> Split:
    """Read a SASRec / BERT4Rec ``user item`` file (one action per line, time order per user).

    Args:
        path: The file.

    Returns:
        Leave-one-out split (validation = second-to-last item, test = last item).
    """
    table = _read_columns(Path(path), ["user", "item"], " ", header=False)
    return _leave_one_out(
        table.column("user").combine_chunks(), table.column("item").combine_chunks()
    )


def read_user_sequence_lines(path: Path) -> Split:
    """Read an S3-Rec ``user item item ...`` file (one user per line, items in time order).

    Args:
        path: The file.

    Returns:
        Leave-one-out split (validation = second-to-last item, test = last item).
    """
    tokens = _tokens(_read_lines(Path(path), keyed=False)[0])
    lengths = pc.list_value_length(tokens).to_numpy()
    if np.any(lengths < 2):
        raise SchemaMismatchError(path, detail="a line has no item after the user id")
    users = pc.list_element(tokens, 0)
    items = pc.list_slice(tokens, 1).flatten()
    return _leave_one_out(
        pa.array(np.repeat(users.to_numpy(zero_copy_only=False), lengths - 1)), items
    )


def read_gce_gnn(train_sessions: Path, test_cases: Path, *, valid_fraction: float = 0.05) -> Split:
    """Read GCE-GNN's Diginetica files (``all_train_seq.sessions.txt``, ``test.target_prefix.tsv``).

    The last ``valid_fraction`` of the training sessions (file order = time order) are held out
    of ``train`` and give the validation cases (every prefix -> next item); ``train_full`` holds
    all training sessions. Test cases are the file's (prefix -> target) pairs, in order.

    Args:
        train_sessions: One training session per line, item ids separated by spaces.
        test_cases: ``target<TAB>prefix items`` per line.
        valid_fraction: Share of training sessions held out for validation.

    Returns:
        The split (owners are session numbers; no categories).

    Raises:
        InputError: If ``valid_fraction`` is not in [0, 1).
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise InputError(f"valid_fraction must be in [0, 1); got {valid_fraction}")
    train_tokens = _tokens(_read_lines(Path(train_sessions), keyed=False)[0])
    vocab = Vocabulary.from_values("item", train_tokens.flatten())
    train_full, _ = _sequences(train_tokens, vocab)
    n_train = len(train_full) - round(valid_fraction * len(train_full))
    train = train_full.subset(np.arange(n_train))
    valid = _every_position(train_full.subset(np.arange(n_train, len(train_full))))
    prefixes, targets = _read_lines(Path(test_cases), keyed=True)
    # Each test sequence is prefix + target, so the target sits at position len(prefix).
    joined = pc.utf8_trim_whitespace(pc.binary_join_element_wise(prefixes, targets, " "))
    test_seqs, _ = _sequences(_tokens(joined), vocab, train_full.n_events)
    position = test_seqs.lengths - 1
    test = EvalCases(
        test_seqs, np.arange(len(test_seqs)), position, test_seqs.items[test_seqs.offsets[1:] - 1]
    )
    owners = Vocabulary("session", pa.array([str(i) for i in range(len(train_full))]))
    return Split(
        train=train,
        train_full=train_full,
        valid=valid,
        test=test,
        item_vocab=vocab,
        category_vocab=Vocabulary("category", pa.array([], pa.string())),
        owner_vocab=owners,
        report=_report("gce_gnn_prefixes", train, train_full, valid, test, vocab),
    )


def _read_session_rec_file(path: Path) -> tuple[pa.ListArray, np.ndarray]:
    table = _read_columns(Path(path), ["SessionId", "ItemId", "Time"], "\t", header=True)
    times = pc.cast(table.column("Time"), pa.float64())
    sessions = pc.cast(table.column("SessionId"), pa.int64())
    order = pc.sort_indices(
        pa.table({"s": sessions, "t": times, "i": pa.array(np.arange(table.num_rows))}),
        sort_keys=[("s", "ascending"), ("t", "ascending"), ("i", "ascending")],
    )
    s = sessions.take(order).to_numpy()
    items = table.column("ItemId").combine_chunks().take(order)
    starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]])) if len(s) else np.zeros(0)
    offsets = np.concatenate([starts, [len(s)]]).astype(np.int32)
    ts = np.asarray(times.take(order).to_numpy(), dtype=np.float64).astype(np.int64)
    return pa.ListArray.from_arrays(pa.array(offsets), items), ts


def read_session_rec(
    train_full: Path, test: Path, *, train_tr: Path | None = None, train_valid: Path | None = None
) -> Split:
    """Read session-rec prepared files (``*_train_full.txt``, ``*_test.txt``, optionally tr/valid).

    Args:
        train_full: All training sessions.
        test: Test sessions; every position but the first is a case.
        train_tr: Training part of the validation re-split (default: ``train_full``).
        train_valid: Validation sessions (default: none).

    Returns:
        The split; ``ts`` are the files' Unix seconds.
    """
    full_tokens, full_ts = _read_session_rec_file(train_full)
    vocab = Vocabulary.from_values("item", full_tokens.flatten())

    def encode(tokens: pa.ListArray, ts: np.ndarray) -> Sequences:
        seqs, _ = _sequences(tokens, vocab)
        return Sequences(seqs.owner, seqs.offsets, seqs.items, seqs.actions, ts, seqs.categories)

    full = encode(full_tokens, full_ts)
    train = encode(*_read_session_rec_file(train_tr)) if train_tr is not None else full
    if train_valid is not None:
        valid = _every_position(encode(*_read_session_rec_file(train_valid)))
    else:
        valid = _every_position(full.subset(np.zeros(0, np.int64)))
    test_cases = _every_position(encode(*_read_session_rec_file(test)))
    owners = Vocabulary("session", pa.array([str(i) for i in range(len(full))]))
    return Split(
        train=train,
        train_full=full,
        valid=valid,
        test=test_cases,
        item_vocab=vocab,
        category_vocab=Vocabulary("category", pa.array([], pa.string())),
        owner_vocab=owners,
        report=_report("session_rec_files", train, full, valid, test_cases, vocab),
    )
