"""Per-user prediction jobs: ``shopseq predict <task>`` (and the demo, benchmarks, service).

:func:`predict_users` reads the store's prepared events and, for one task:

1. places the snapshots (``sequences.labels.plan_snapshots``): rolling training cut-offs, a later
   validation cut-off and the latest test cut-off, each one label span apart;
2. builds the examples in the store (features before each cut-off, labels after it; for session
   intent, prefix examples of the sessions in each window);
3. fits LightGBM (calibrated on validation) and the task's baselines, and evaluates them on the
   test snapshot (``users.train.train_task``);
4. scores every owner as of the data's end with the model chosen on validation, with the top
   TreeSHAP reasons of the highest scores (for ``clv`` also BG/NBD + Gamma-Gamma CLV with
   bootstrap intervals);
5. writes the run directory: ``config.json``, ``metrics.json`` and ``leaderboard.json`` (what the
   report reads), ``model/`` (LightGBM), ``sequence/<name>/`` (each sequence model asked for),
   ``scored.parquet`` and ``scored.csv``.

With ``models`` naming sequence models (``gru``, ``sasrec``: the next-item encoders with per-user
heads, ``users.sequence``), each example also gets its events before the cut-off, read in the
store, and those models are fitted and ranked beside LightGBM and the baselines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shopseq.artifacts import atomic_path, atomic_write_json
from shopseq.errors import InputError
from shopseq.prepare import PREPARED_TABLE
from shopseq.runs.rundir import RunDir
from shopseq.runs.sequence_encoders import SEQUENCE_ENCODERS
from shopseq.schema import SESSION_ID, USER_ID
from shopseq.sequences import (
    CUTOFF,
    FeatureConfig,
    LabelConfig,
    SessionIntentConfig,
    SnapshotConfig,
    SnapshotPlan,
    event_time_range,
    plan_snapshots,
    session_intent_examples,
    user_examples,
    user_features,
    user_snapshots,
)
from shopseq.store import open_store
from shopseq.users.baselines import FeatureRule
from shopseq.users.clv import BGNBD, GammaGamma
from shopseq.users.evaluation import EvaluationConfig, UserLeaderboard
from shopseq.users.reasons import describe_feature, reason_sentences
from shopseq.users.sequence import SEQUENCE_MODELS, SequenceConfig, SequenceModel, event_windows
from shopseq.users.summary import customer_summary
from shopseq.users.tasks import ACTION_NAMES, TASKS, Examples, TaskSpec, examples_from_table
from shopseq.users.train import GBM_NAME, TrainedTask, default_gbm_config, train_task
from shopseq.users.value import ClvConfig, clv_intervals, customer_lifetime_value

__all__ = [
    "PredictConfig",
    "PredictResult",
    "build_task_examples",
    "predict_users",
    "report_artifact",
]

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    """The default log: say nothing."""


def _known_task(name: str) -> str:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return name


TaskName = Annotated[str, AfterValidator(_known_task)]


def _known_models(names: tuple[str, ...]) -> tuple[str, ...]:
    known = (GBM_NAME, *SEQUENCE_MODELS)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(known)}")
    if GBM_NAME not in names:
        raise ValueError(
            f"{GBM_NAME} is always fitted (its features give the reasons); name it with the "
            f"sequence models, e.g. {GBM_NAME},gru"
        )
    return tuple(dict.fromkeys(names))


ModelNames = Annotated[tuple[str, ...], AfterValidator(_known_models)]


class PredictConfig(BaseModel):
    """``predict_users``: one per-user task, trained, evaluated and scored from the store.

    Attributes:
        task: ``next-action``, ``next-time``, ``purchase``, ``churn``, ``clv`` or
            ``session-intent``.
        labels: Label horizons and which owners count.
        snapshots: Rolling training cut-offs and the test cut-off.
        features: Feature windows.
        sessions: Prefix lengths of session intent.
        evaluation: Bootstrap, threshold and lift share of the leaderboard.
        clv: Horizon, period and discount of the CLV column (task ``clv``).
        n_estimators: LightGBM rounds.
        gbm_leaves: Binary tasks: leaves per tree tried, the best on the validation snapshot
            kept (ties: the first; one value: that size, no search).
        calibration: Binary tasks: ``isotonic``, ``platt`` or ``none`` (fitted on validation).
        models: Models fitted beside the baselines: ``lightgbm`` (always) and any of the
            sequence models ``gru`` and ``sasrec``.
        sequence: Hyper-parameters of the sequence models (``encoder``, ``seed``, ``threads``
            and the horizon are set per model from this job).
        threads: LightGBM, torch and DuckDB threads.
        seed: Seed of LightGBM, the sequence models and the bootstrap.
        top_reasons: Reasons per scored owner.
        max_reasons: Reasons are computed for this many highest-scored owners at most.
        out: The run directory (replaced as a whole).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: TaskName
    labels: LabelConfig = LabelConfig()
    snapshots: SnapshotConfig = SnapshotConfig()
    features: FeatureConfig = FeatureConfig()
    sessions: SessionIntentConfig = SessionIntentConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    clv: ClvConfig = ClvConfig()
    n_estimators: int = Field(default=300, ge=1)
    gbm_leaves: tuple[Annotated[int, Field(ge=2)], ...] = Field(default=(31, 7, 3), min_length=1)
    calibration: Literal["isotonic", "platt", "none"] = "isotonic"
    models: ModelNames = (GBM_NAME,)
    sequence: SequenceConfig = SequenceConfig()
    threads: int = Field(default=1, ge=1)
    seed: int = Field(default=0, ge=0)
    top_reasons: int = Field(default=3, ge=1, le=10)
    max_reasons: int = Field(default=10_000, ge=0)
    out: Path


@dataclass(frozen=True, slots=True)
class PredictResult:
    """What a predict job did.

    Attributes:
        run: The run directory written.
        task: The task.
        plan: The snapshot cut-offs.
        leaderboard: Test results beside the baselines.
        scored: The scored table (also in ``scored.parquet``).
        counts: Examples per snapshot.
        seconds: Wall time per stage.
    """

    run: RunDir
    task: TaskSpec
    plan: SnapshotPlan
    leaderboard: UserLeaderboard
    scored: pa.Table
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)


def _in_key_order(table: pa.Table) -> pa.Table:
    """Rows sorted by their keys.

    The engine returns rows in any order, and LightGBM's row sampling (so every trained number)
    depends on the order it is given: unsorted, the same command gave session-intent ROC-AUC
    0.517 and 0.527 on REES46 in two processes.
    """
    keys = [c for c in (CUTOFF, USER_ID, "k", SESSION_ID) if c in table.column_names]
    return table.sort_by([(c, "ascending") for c in keys])


def build_task_examples(
    events: ibis.Table, config: PredictConfig, plan: SnapshotPlan
) -> tuple[Examples, Examples, Examples]:
    """Training, validation and test examples of the task (computed in the store).

    Args:
        events: Prepared events.
        config: The job.
        plan: The cut-offs.

    Returns:
        ``(train, valid, test)``; validation and test use the training feature columns.

    Raises:
        InputError: If a snapshot has no examples.
    """
    task = TASKS[config.task]
    if task.grain == "session":
        tables = [
            session_intent_examples(events, config.sessions, end=plan.valid),
            session_intent_examples(events, config.sessions, start=plan.valid, end=plan.test),
            session_intent_examples(events, config.sessions, start=plan.test),
        ]
    else:
        tables = [
            user_snapshots(events, plan.train, config.labels, config.features),
            user_examples(events, plan.valid, config.labels, config.features),
            user_examples(events, plan.test, config.labels, config.features),
        ]
    arrow = [_in_key_order(t.to_pyarrow()) for t in tables]
    for name, table in zip(("training", "validation", "test"), arrow, strict=True):
        if table.num_rows == 0:
            raise InputError(
                f"the {name} snapshot of {task.name} has no examples (cut-offs "
                f"{[str(c) for c in plan.cutoffs]}): the data is too short or too sparse for "
                "these horizons"
            )
    train = examples_from_table(arrow[0], task)
    valid = examples_from_table(arrow[1], task, feature_names=train.feature_names)
    test = examples_from_table(arrow[2], task, feature_names=train.feature_names)
    return train, valid, test


def _sequence_configs(config: PredictConfig) -> dict[str, SequenceConfig]:
    """Each sequence model's config: the job's template with its encoder, seed and threads."""
    horizon = (
        config.labels.next_event_horizon.total_seconds() if config.task == "next-time" else None
    )
    return {
        name: config.sequence.model_copy(
            update={
                "encoder": name,
                "seed": config.seed,
                "threads": config.threads,
                "horizon_seconds": horizon,
            }
        )
        for name in config.models
        if name in SEQUENCE_MODELS
    }


def _with_windows(events: ibis.Table, examples: Examples, config: PredictConfig) -> Examples:
    """Attach the events before each example's cut-off (what the sequence models read)."""
    grain = TASKS[config.task].grain
    return examples.with_windows(
        event_windows(events, examples.keys, grain, config.sequence.max_len)
    )


def _score_table(
    trained: TrainedTask, examples: Examples, config: PredictConfig
) -> tuple[pa.Table, np.ndarray]:
    """Score with the model chosen on validation; reasons for the highest scores."""
    task = trained.task
    chosen = trained.leaderboard.chosen
    predicted = trained.model(chosen).predict(examples)
    columns: dict[str, Any] = {
        name: examples.keys.column(name) for name in examples.keys.schema.names
    }
    if task.kind == "multiclass":
        label = predicted.argmax(axis=1)
        columns["prediction"] = pa.array([ACTION_NAMES[i] for i in label])
        score = predicted[np.arange(len(label)), label]
        for i, action in enumerate(ACTION_NAMES):
            columns[f"p_{action}"] = pa.array(predicted[:, i])
    else:
        score = predicted
    columns["score"] = pa.array(np.asarray(score, dtype=np.float64))
    columns["model"] = pa.array([chosen] * len(examples))
    # Reasons for the top scores only: TreeSHAP costs ~ms per row per hundred trees.
    order = np.argsort(-score, kind="stable")
    top = order[: min(config.max_reasons, len(order))]
    reasons: list[str | None] = [None] * len(examples)
    if len(top):
        subset = examples.subset(top)
        if chosen == GBM_NAME:
            unit = {"next-time": " s", "clv": " (log)"}.get(task.name, "")
            sentences = reason_sentences(
                subset,
                trained.gbm.contributions(subset),
                top=config.top_reasons,
                short=config.features.short_window,
                long=config.features.long_window,
                unit=unit,
            )
        elif chosen in trained.sequence_models:
            # Honest about what it can say: it read raw events, not the named features.
            n_read = (subset.windows.action > 0).sum(axis=1) if subset.windows else None
            sentences = [
                [
                    f"scored by the {chosen} sequence model from the last "
                    f"{int(n_read[i]) if n_read is not None else '?'} events before the cut-off "
                    "(no per-feature reasons: it reads events, not the named features)"
                ]
                for i in range(len(top))
            ]
        else:
            sentences = [_baseline_reason(trained, chosen, subset, i) for i in range(len(top))]
        for row, text in zip(top, sentences, strict=True):
            reasons[row] = "; ".join(text)
    columns["reasons"] = pa.array(reasons, pa.string())
    return pa.table(columns), score


def _baseline_reason(trained: TrainedTask, name: str, examples: Examples, row: int) -> list[str]:
    """A baseline says what it looked at; a one-feature rule, the value of its feature."""
    model = trained.baselines[name]
    if isinstance(model, FeatureRule):
        value = float(examples.column(model.feature)[row])
        return [f"scored by the {name} baseline: {describe_feature(model.feature, value)}"]
    return [f"scored by the {name} baseline (chosen on validation over LightGBM)"]


def _current_examples(
    events: ibis.Table,
    config: PredictConfig,
    plan: SnapshotPlan,
    trained: TrainedTask,
    test: Examples,
) -> Examples:
    """Who is scored: every owner as of the data's end; for session intent, the test prefixes."""
    if trained.task.grain == "session":
        return test
    table = _in_key_order(user_features(events, plan.data_end, config.features).to_pyarrow())
    current = examples_from_table(
        table, trained.task, feature_names=trained.gbm.feature_names_, unlabelled=True
    )
    if trained.leaderboard.chosen in trained.sequence_models:
        current = _with_windows(events, current, config)
    return current


def _add_clv(
    events: ibis.Table, scored: pa.Table, config: PredictConfig, plan: SnapshotPlan
) -> pa.Table:
    """BG/NBD + Gamma-Gamma CLV as of the data's end, with bootstrap intervals, per buyer."""
    summary = customer_summary(events, plan.data_end)
    transactions = BGNBD().fit(summary)
    spend = GammaGamma().fit(summary)
    clv = customer_lifetime_value(transactions, spend, summary, config.clv)
    low, high = clv_intervals(
        transactions, spend, summary, config.clv, n_resamples=100, seed=config.seed
    )
    alive = transactions.probability_alive(summary)
    extra = pa.table(
        {
            "_clv_user": summary.customer_ids,
            "clv": clv,
            "clv_low": low,
            "clv_high": high,
            "p_alive": alive,
        }
    )
    joined = scored.join(extra, keys=USER_ID, right_keys="_clv_user", join_type="left outer")
    return joined


def _finite(values: list[Any]) -> list[Any]:
    """JSON-safe numbers: NaN becomes null (a gap in a chart)."""
    return [None if isinstance(v, float) and not np.isfinite(v) else v for v in values]


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) and np.isfinite(value) else value


def report_artifact(
    result_task: TaskSpec, board: UserLeaderboard, scored: pa.Table
) -> dict[str, Any]:
    """The run's ``leaderboard.json``: the report's generic shape (docs/report.md) plus the board.

    Tables: the leaderboard beside the baselines and the 20 highest scores with their reasons.
    Charts (binary tasks): the calibration curve and the gains chart of the chosen model and the
    best baseline; spend: mean predicted and actual spend by decile.

    Args:
        result_task: The task.
        board: The leaderboard.
        scored: The scored table, highest score first.

    Returns:
        The JSON object.
    """
    rows = []
    for row in board.rows:
        versus = row.get("vs_best_baseline")
        rows.append(
            {
                "model": row["model"] + (" (baseline)" if row["baseline"] else ""),
                "chosen on validation": "yes" if row["model"] == board.chosen else "",
                **{name: _round(value) for name, value in row["test"].items()},
                f"{board.primary} 95% CI": f"{row['ci'][0]:.3f} - {row['ci'][1]:.3f}",
                f"vs {board.best_baseline}": ""
                if versus is None
                else f"{versus['diff']:+.3f} (p = {versus['p_value']:.2g})",
            }
        )
    keys = [k for k in ("user_id", "session_id", "k") if k in scored.schema.names]
    extra = [k for k in ("prediction", "clv", "clv_low", "clv_high") if k in scored.schema.names]
    top = [
        {**{k: r[k] for k in keys}, "score": _round(r["score"]),
         **{k: _round(r[k]) for k in extra}, "reasons": r["reasons"]}
        for r in scored.slice(0, 20).to_pylist()
    ]  # fmt: skip
    charts: list[dict[str, Any]] = []
    shown = [m for m in dict.fromkeys([board.chosen, GBM_NAME, board.best_baseline])]
    if result_task.kind == "binary":
        n_bins = len(board.curves[shown[0]]["reliability"]["counts"])
        centres = [(i + 0.5) / n_bins for i in range(n_bins)]
        charts.append(
            {
                "title": "Calibration on the test snapshot (observed rate per predicted bin)",
                "x": centres,
                "x_title": "predicted probability (bin centre)",
                "y_title": "observed rate",
                "series": [
                    {"name": "perfect", "y": centres},
                    *(
                        {"name": m, "y": _finite(board.curves[m]["reliability"]["observed_rate"])}
                        for m in shown
                    ),
                ],
            }
        )
        gains = board.curves[shown[0]]["gains"]
        charts.append(
            {
                "title": "Gains: share of positives reached when targeting the top share",
                "x": gains["fraction"],
                "x_title": "share targeted (highest scores first)",
                "y_title": "share of positives reached",
                "series": [
                    {"name": "random", "y": gains["fraction"]},
                    *({"name": m, "y": board.curves[m]["gains"]["captured"]} for m in shown),
                ],
            }
        )
    elif result_task.name == "clv":
        deciles = board.curves[shown[0]]["deciles"]
        charts.append(
            {
                "title": f"Spend by decile of the prediction ({shown[0]})",
                "kind": "bar",
                "x": [f"D{i + 1}" for i in range(len(deciles["mean_actual"]))],
                "series": [
                    {"name": "mean predicted", "y": deciles["mean_predicted"]},
                    {"name": "mean actual", "y": deciles["mean_actual"]},
                ],
            }
        )
    return {
        "title": f"Per-user prediction: {result_task.name}",
        "description": (
            f"{result_task.question} Test snapshot of {board.n_test:,} examples, later than every "
            f"training snapshot; baselines beside the model; the model used for scoring "
            f"({board.chosen}) was chosen on validation by {board.primary}."
            + "".join(
                f" Baseline {n} left out: {why}." for n, why in board.skipped_baselines.items()
            )
        ),
        "tables": [
            {"title": "Leaderboard (test snapshot)", "rows": rows},
            {"title": "Highest scores now, with their reasons", "rows": top},
        ],
        "charts": charts,
        "leaderboard": board.to_dict(),
    }


def _write_scored(run: RunDir, table: pa.Table) -> None:
    with atomic_path(run.path / "scored.parquet") as tmp:
        pq.write_table(table, tmp)
    with atomic_path(run.path / "scored.csv") as tmp:
        pacsv.write_csv(table, tmp)


def predict_users(config: PredictConfig, store_path: Path, log: Log = _quiet) -> PredictResult:
    """Train, evaluate and score one per-user task from the store; write the run directory.

    Args:
        config: The job.
        store_path: The DuckDB store (prepared).
        log: Where progress lines go.

    Returns:
        What was done, with the leaderboard and the scored table.
    """
    task = TASKS[config.task]
    seconds: dict[str, float] = {}
    with open_store(store_path, read_only=True, threads=config.threads) as store:
        events = store.table(PREPARED_TABLE)
        first, last = event_time_range(events)
        plan = plan_snapshots(first, last, config.labels, config.snapshots)
        log(
            f"cut-offs: train {', '.join(str(c) for c in plan.train)}; valid {plan.valid}; "
            f"test {plan.test} (label span {plan.span})"
        )
        started = time.perf_counter()
        train, valid, test = build_task_examples(events, config, plan)
        sequence = _sequence_configs(config)
        if sequence:
            train, valid, test = (_with_windows(events, e, config) for e in (train, valid, test))
        seconds["examples"] = time.perf_counter() - started
        log(f"examples: {len(train):,} train, {len(valid):,} valid, {len(test):,} test")
        started = time.perf_counter()
        gbm = default_gbm_config(task, threads=config.threads, seed=config.seed)
        update: dict[str, Any] = {"n_estimators": config.n_estimators}
        if task.kind == "binary":
            update["calibration"] = config.calibration
        gbm = gbm.model_copy(update=update)
        trained = train_task(
            task,
            train,
            valid,
            test,
            config.labels,
            gbm=gbm,
            evaluation=config.evaluation,
            sequence={
                name: SequenceModel(task, c, SEQUENCE_ENCODERS[name])
                for name, c in sequence.items()
            },
            gbm_leaves=config.gbm_leaves,
        )
        seconds["train_and_evaluate"] = time.perf_counter() - started
        started = time.perf_counter()
        current = _current_examples(events, config, plan, trained, test)
        scored, _ = _score_table(trained, current, config)
        if task.name == "clv":
            scored = _add_clv(events, scored, config, plan)
        scored = scored.sort_by([("score", "descending")])
        seconds["score"] = time.perf_counter() - started
    counts = {"train": len(train), "valid": len(valid), "test": len(test), "scored": len(current)}
    board = trained.leaderboard
    with RunDir.create(config.out, "predict") as run:
        atomic_write_json(run.config, {"kind": "predict", **config.model_dump(mode="json")})
        metrics = {
            "task": task.name,
            "question": task.question,
            "plan": {
                "train": plan.train,
                "valid": plan.valid,
                "test": plan.test,
                "span_seconds": plan.span.total_seconds(),
                "data_start": plan.data_start,
                "data_end": plan.data_end,
            },
            "counts": counts,
            "seconds": seconds,
            "leaderboard": board.to_dict(),
            "feature_importance": trained.gbm.feature_importance(),
            # Leaves per tree -> validation ROC-AUC of each LightGBM tried (binary tasks).
            "gbm_search": {str(k): v for k, v in trained.gbm_search.items()},
            "gbm_leaves": trained.gbm.config.num_leaves,
            "sequence_models": {
                name: {
                    "config": m.config.model_dump(mode="json"),
                    "train_loss_per_epoch": m.losses_,
                }
                for name, m in trained.sequence_models.items()
            },
        }
        atomic_write_json(run.metrics, metrics)
        atomic_write_json(run.path / "leaderboard.json", report_artifact(task, board, scored))
        trained.gbm.save(run.model)
        for name, model in trained.sequence_models.items():
            model.save(run.path / "sequence" / name)
        _write_scored(run, scored)
    final = RunDir(Path(config.out))
    return PredictResult(final, task, plan, board, scored, counts, seconds)
