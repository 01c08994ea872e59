"""The per-user tasks and their examples as model inputs (a float matrix, labels, keys).

A task names its label column, its kind (binary, multiclass, regression) and its grain (one row
per owner and cut-off, or per session prefix). :func:`examples_from_table` turns the table that
``sequences.labels`` builds into :class:`Examples`: every feature column as float32 (nulls become
NaN, which LightGBM treats as missing), the categorical ``last_action`` as its action code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shopseq.errors import InputError
from shopseq.schema import ACTION_CODES, SESSION_ID, USER_ID, Action
from shopseq.sequences import (
    CATEGORICAL_FEATURES,
    CUTOFF,
    LABEL_COLUMNS,
    SESSION_LABEL_COLUMNS,
)
from shopseq.sequences.labels import (
    CHURN,
    NEXT_ACTION,
    NEXT_EVENT_OBSERVED,
    NEXT_EVENT_SECONDS,
    PURCHASE,
    SESSION_PURCHASE,
    SPEND,
)

if TYPE_CHECKING:
    from shopseq.users.sequence import EventWindows

__all__ = ["ACTION_NAMES", "TASKS", "Examples", "TaskSpec", "examples_from_table", "task_spec"]

#: Action names in code order (class ``i`` of the next-action task is ``ACTION_NAMES[i]``).
ACTION_NAMES: tuple[str, ...] = tuple(a.value for a in Action)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One per-user prediction task.

    Attributes:
        name: As the CLI spells it (``purchase``, ``next-action``, ...).
        label: The label column.
        kind: ``binary``, ``multiclass`` or ``regression``.
        grain: ``user`` (one example per owner and cut-off) or ``session`` (per session prefix).
        question: The question in plain words (for reports).
    """

    name: str
    label: str
    kind: Literal["binary", "multiclass", "regression"]
    grain: Literal["user", "session"]
    question: str


#: Task name -> spec (a plain dict literal).
TASKS: dict[str, TaskSpec] = {
    "next-action": TaskSpec(
        "next-action", NEXT_ACTION, "multiclass", "user", "What will this shopper do next?"
    ),
    "next-time": TaskSpec(
        "next-time",
        NEXT_EVENT_SECONDS,
        "regression",
        "user",
        "When will this shopper be back (seconds, capped at the horizon)?",
    ),
    "purchase": TaskSpec(
        "purchase", PURCHASE, "binary", "user", "Will this shopper buy within the horizon?"
    ),
    "churn": TaskSpec(
        "churn", CHURN, "binary", "user", "Will this shopper be inactive for the whole horizon?"
    ),
    "clv": TaskSpec("clv", SPEND, "regression", "user", "How much will this shopper spend?"),
    "session-intent": TaskSpec(
        "session-intent",
        SESSION_PURCHASE,
        "binary",
        "session",
        "Will this session end in a purchase?",
    ),
}


def task_spec(name: str) -> TaskSpec:
    """The spec of a task.

    Args:
        name: Task name.

    Returns:
        Its spec.

    Raises:
        InputError: For an unknown task.
    """
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name]


@dataclass(frozen=True, slots=True)
class Examples:
    """Examples of one task as arrays.

    Attributes:
        keys: Identifying columns (``user_id``, ``cutoff``; plus ``session_id`` and ``k``).
        features: (n, n_features) float32; NaN is missing.
        feature_names: Column name of each feature.
        y: (n,) labels: 0/1 (binary), action code (multiclass), float (regression).
        observed: (n,) bool: the label was observed (``next-time``: False where censored at
            the horizon; True elsewhere).
        windows: The events before each cut-off, for the sequence models
            (``users.sequence.event_windows``; ``None`` until attached with :meth:`with_windows`).
    """

    keys: pa.Table
    features: np.ndarray
    feature_names: tuple[str, ...]
    y: np.ndarray
    observed: np.ndarray
    windows: EventWindows | None = None

    def __len__(self) -> int:
        return len(self.y)

    def column(self, name: str) -> np.ndarray:
        """One feature column.

        Args:
            name: Feature name.

        Returns:
            (n,) float values.

        Raises:
            InputError: If the examples have no such feature.
        """
        if name not in self.feature_names:
            raise InputError(f"no feature {name!r}; the examples have {list(self.feature_names)}")
        out: np.ndarray = self.features[:, self.feature_names.index(name)]
        return out

    def subset(self, mask: np.ndarray) -> Examples:
        """Keep some rows.

        Args:
            mask: Boolean mask or positions.

        Returns:
            The selected examples.
        """
        index = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        return Examples(
            self.keys.take(pa.array(index, pa.int64())),
            self.features[index],
            self.feature_names,
            self.y[index],
            self.observed[index],
            None if self.windows is None else self.windows.take(index),
        )

    def with_windows(self, windows: EventWindows) -> Examples:
        """The same examples with the sequence models' event windows attached.

        Args:
            windows: One row per example, in example order.

        Returns:
            The examples with ``windows``.

        Raises:
            InputError: If the row counts differ.
        """
        if len(windows) != len(self):
            raise InputError(f"{len(windows)} event windows for {len(self)} examples")
        return replace(self, windows=windows)


def _action_codes(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    codes = {a.value: float(c) for a, c in ACTION_CODES.items()}
    text = pc.fill_null(values.cast(pa.string()), "")
    encoded = pc.dictionary_encode(text).combine_chunks()
    lookup = np.array([codes.get(v, np.nan) for v in encoded.dictionary.to_pylist()], np.float64)
    if len(lookup) == 0:
        return np.zeros(0)
    out: np.ndarray = lookup[encoded.indices.to_numpy(zero_copy_only=False)]
    return out


def _float_values(column: pa.ChunkedArray) -> np.ndarray:
    """The column as float64 (nulls NaN); may be a read-only view of Arrow's buffer."""
    if pa.types.is_boolean(column.type):
        column = column.cast(pa.int8())
    out: np.ndarray = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return out


def _to_float(column: pa.ChunkedArray) -> np.ndarray:
    return _float_values(column).astype(np.float64)  # a writable copy


def examples_from_table(
    table: pa.Table,
    task: TaskSpec,
    *,
    feature_names: tuple[str, ...] | None = None,
    unlabelled: bool = False,
) -> Examples:
    """Turn an examples table (features + labels) into arrays for one task.

    For ``next-action`` only rows whose next event was observed are kept (the label is null
    elsewhere); every other task keeps every row (``next-time`` keeps censored rows, flagged).

    Args:
        table: From ``user_examples`` / ``user_snapshots`` / ``session_intent_examples``.
        task: The task.
        feature_names: Feature columns in this order (default: every column that is not a key or
            label, in table order); give the training columns when building test examples.
        unlabelled: Features only (scoring owners now, whose future is unknown): ``y`` is NaN
            and every row is kept.

    Returns:
        The examples.

    Raises:
        InputError: If the table lacks the task's label or a requested feature.
    """
    if task.label not in table.schema.names and not unlabelled:
        raise InputError(
            f"the examples have no {task.label!r} column (task {task.name}); they have "
            f"{table.schema.names}"
        )
    if task.name == "next-action" and not unlabelled:
        table = table.filter(pc.is_valid(table.column(NEXT_ACTION)))
    key_names = [c for c in (USER_ID, SESSION_ID, CUTOFF, "k") if c in table.schema.names]
    excluded = {*key_names, *LABEL_COLUMNS, *SESSION_LABEL_COLUMNS} - {"k"}
    if feature_names is None:
        feature_names = tuple(c for c in table.schema.names if c not in excluded)
    missing = [c for c in feature_names if c not in table.schema.names]
    if missing:
        raise InputError(f"the examples lack the feature columns {missing}")
    # Filled column by column into one C-ordered float32 matrix, the layout LightGBM reads in
    # place (stacking float64 columns first cost a second full-size copy).
    features = np.empty((table.num_rows, len(feature_names)), np.float32)
    for j, name in enumerate(feature_names):
        column = table.column(name)
        if name in CATEGORICAL_FEATURES or pa.types.is_string(column.type):
            features[:, j] = _action_codes(column)
        else:
            features[:, j] = _float_values(column)
    if unlabelled:
        y = np.full(table.num_rows, np.nan)
        observed = np.zeros(table.num_rows, bool)
        return Examples(table.select(key_names), features, tuple(feature_names), y, observed)
    label = table.column(task.label)
    y = _action_codes(label).astype(np.int64) if task.kind == "multiclass" else _to_float(label)
    observed = (
        _to_float(table.column(NEXT_EVENT_OBSERVED)).astype(bool)
        if task.name == "next-time"
        else np.ones(table.num_rows, bool)
    )
    return Examples(table.select(key_names), features, tuple(feature_names), y, observed)
