"""Per-user predictions from ``shopseq predict`` runs, indexed by user for answering one at a time.

A predict run (``runs/predict.py``) scores every owner as of the data's end and writes
``scored.parquet``: the model's score (a probability, an action with its class probabilities, a
duration or an amount), the model that produced it and the top reasons. :class:`ScoredUsers` loads
that table once and answers "what does this run say about this user" with a dictionary look-up:
the service (``GET /v1/users/{id}/predictions``) keeps one per task and swaps them on reload.

The scores are those of the run: they describe the user as of ``as_of`` (the run's data end).
Events that arrived later count from the next ``shopseq predict`` run; the answer says when its
features stop, so a caller can tell how fresh it is.

Session intent is not served here: its scored table holds the test sessions' prefixes, which
describe past sessions, not the shopper now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq

from shopseq.errors import ArtifactError
from shopseq.runs.rundir import RunDir
from shopseq.schema import USER_ID
from shopseq.users.tasks import ACTION_NAMES, TASKS, TaskSpec

__all__ = ["REASON_SEPARATOR", "ScoredUsers", "UserPrediction", "load_scored_runs"]

#: How ``runs/predict.py`` joins the reasons of one row in ``scored.parquet``.
REASON_SEPARATOR = "; "
#: Columns ``predict clv`` adds beside the score (BG/NBD + Gamma-Gamma, with intervals).
_VALUE_COLUMNS = ("clv", "clv_low", "clv_high", "p_alive")
_PROBABILITY_COLUMNS = tuple(f"p_{action}" for action in ACTION_NAMES)


@dataclass(frozen=True, slots=True)
class UserPrediction:
    """What one predict run says about one user.

    Attributes:
        task: The task (``purchase``, ``churn``, ``clv``, ``next-action``, ``next-time``).
        question: The task's question in plain words.
        kind: ``binary`` (score is a probability), ``multiclass`` (``prediction`` is the action,
            ``probabilities`` every action's) or ``regression`` (seconds or money).
        score: The score (for multiclass, the probability of ``prediction``).
        prediction: The predicted action (multiclass only).
        probabilities: Action -> probability (multiclass only).
        values: Extra values of the run (``clv`` with its interval and ``p_alive``); ``None``
            where the run has none for this user.
        reasons: The largest contributions to the score as sentences (empty when the run kept
            reasons only for higher scores).
        model: The model that scored (chosen on validation; may be a baseline).
        as_of: The moment the features stop (the run's data end).
        run_version: ``<directory>@<created_at>#<manifest digest>`` of the run.
    """

    task: str
    question: str
    kind: Literal["binary", "multiclass", "regression"]
    score: float | None
    prediction: str | None
    probabilities: dict[str, float] | None
    values: dict[str, float | None]
    reasons: list[str]
    model: str
    as_of: datetime
    run_version: str


def _finite(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities (no estimate) become ``None``."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class ScoredUsers:
    """One predict run's scored table, indexed by user id.

    Args:
        run: The opened predict run.
        task: Its task.
        columns: The scored table's columns as Python lists.
        as_of: The run's data end.

    Use :meth:`load`.
    """

    def __init__(
        self, run: RunDir, task: TaskSpec, columns: dict[str, list[Any]], as_of: datetime
    ) -> None:
        self.run = run
        self.task = task
        self.as_of = as_of
        self.version = run.version()
        self._columns = columns
        # One row per user: predict scores every owner once, as of the data end.
        self._rows = {user: row for row, user in enumerate(columns[USER_ID])}

    @classmethod
    def load(cls, path: Path) -> ScoredUsers:
        """Load a predict run for answering per user.

        Args:
            path: The run directory (``shopseq predict <task> --out DIR``).

        Returns:
            The indexed scores.

        Raises:
            ArtifactError: If the directory is not a complete predict run of a user-grain task,
                or its scored table lacks the columns written by ``shopseq predict``.
        """
        run = RunDir.open(Path(path), "predict")
        name = run.read_config().get("task")
        if name not in TASKS:
            raise ArtifactError(
                f"{run.config}: unknown task {name!r}; write the run with shopseq predict"
            )
        task = TASKS[name]
        if task.grain != "user":
            raise ArtifactError(
                f"{run.path}: a {task.name} run scores past sessions' prefixes, not shoppers now; "
                "serve a user task (purchase, churn, clv, next-action, next-time)"
            )
        scored = run.path / "scored.parquet"
        if not scored.is_file():
            raise ArtifactError(f"{run.path}: no scored.parquet; run shopseq predict again")
        table = pq.read_table(scored)
        needed = {USER_ID, "score", "model", "reasons"}
        if task.kind == "multiclass":
            needed |= {"prediction", *_PROBABILITY_COLUMNS}
        missing = sorted(needed - set(table.schema.names))
        if missing:
            raise ArtifactError(
                f"{scored}: columns {missing} are missing; run shopseq predict again"
            )
        wanted = [c for c in table.schema.names if c in needed or c in _VALUE_COLUMNS]
        columns = {name: table.column(name).to_pylist() for name in wanted}
        data_end = run.read_metrics().get("plan", {}).get("data_end")
        try:
            as_of = datetime.fromisoformat(str(data_end))
        except ValueError as err:
            raise ArtifactError(f"{run.metrics}: no plan.data_end ({data_end!r})") from err
        return cls(run, task, columns, as_of)

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, user: str) -> UserPrediction | None:
        """What the run says about a user.

        Args:
            user: The user id as the run knows it (the pseudonym when ingest pseudonymised).

        Returns:
            The prediction, or ``None`` when the run did not score this user.
        """
        row = self._rows.get(user)
        if row is None:
            return None
        c = self._columns
        probabilities = None
        prediction = None
        if self.task.kind == "multiclass":
            prediction = str(c["prediction"][row])
            probabilities = {a: float(c[f"p_{a}"][row]) for a in ACTION_NAMES}
        reasons = c["reasons"][row]
        return UserPrediction(
            task=self.task.name,
            question=self.task.question,
            kind=self.task.kind,
            score=_finite(c["score"][row]),
            prediction=prediction,
            probabilities=probabilities,
            values={name: _finite(c[name][row]) for name in _VALUE_COLUMNS if name in c},
            reasons=reasons.split(REASON_SEPARATOR) if reasons else [],
            model=str(c["model"][row]),
            as_of=self.as_of,
            run_version=self.version,
        )


def load_scored_runs(paths: Sequence[Path]) -> tuple[ScoredUsers, ...]:
    """Load several predict runs, one per task.

    Args:
        paths: Predict run directories.

    Returns:
        The loaded runs, in the order given.

    Raises:
        ArtifactError: If one cannot be loaded, or two are of the same task.
    """
    loaded = tuple(ScoredUsers.load(Path(p)) for p in paths)
    seen: dict[str, Path] = {}
    for scores in loaded:
        if scores.task.name in seen:
            raise ArtifactError(
                f"{scores.run.path} and {seen[scores.task.name]} are both {scores.task.name} runs; "
                "give one run per task"
            )
        seen[scores.task.name] = scores.run.path
    return loaded
