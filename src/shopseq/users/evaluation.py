"""Evaluate per-user models beside their baselines: metrics, intervals, a paired test, curves.

Protocol (docs/predict.md): models train on the training snapshots, the LightGBM model calibrates
on the validation snapshot, the best baseline and the chosen model are picked on validation only,
and every number of the leaderboard is measured once on the test snapshot (later than all others).

* binary: ROC-AUC (primary), PR-AUC, log loss, Brier, ECE, F1 at a threshold, lift in the top
  share; a reliability curve and a gains curve per model; session intent also per prefix length;
* next action: macro-F1 (primary), accuracy, log loss;
* next-event delay: MAE (primary) and median absolute error of ``min(delay, horizon)``. The
  target is capped at the horizon, which makes it fully observed: a censored row's true capped
  delay is exactly the horizon. MAE over the observed rows only is reported beside it;
* spend: Spearman rank correlation (primary), MAE, and calibration: total predicted over total
  actual and the mean of each by decile of the prediction.

The primary metric gets a bootstrap interval, and the best model is compared with the best baseline
by a paired bootstrap on the same test cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.errors import InputError
from shopseq.metrics.classification import (
    accuracy,
    binary_metrics,
    bootstrap_metric,
    gains_curve,
    macro_f1,
    mean_absolute_error,
    median_absolute_error,
    multiclass_log_loss,
    paired_bootstrap,
    reliability_curve,
    roc_auc,
    spearman,
)
from shopseq.users.tasks import Examples, TaskSpec

__all__ = ["EvaluationConfig", "UserLeaderboard", "evaluate_predictions", "primary_metric"]


class EvaluationConfig(BaseModel):
    """How the test snapshot is scored.

    Attributes:
        n_resamples: Bootstrap resamples of the intervals and the paired test.
        threshold: Probability threshold of F1.
        lift_fraction: Share of owners targeted for the lift.
        n_bins: Bins of the reliability curve and ECE.
        seed: Seed of the bootstrap.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_resamples: int = Field(default=200, ge=10)
    threshold: float = Field(default=0.5, gt=0, lt=1)
    lift_fraction: float = Field(default=0.1, gt=0, le=1)
    n_bins: int = Field(default=10, ge=2)
    seed: int = Field(default=0, ge=0)


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return mean_absolute_error(y, p)


def _macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    return macro_f1(y, p.argmax(axis=1))


def primary_metric(task: TaskSpec) -> tuple[str, Callable[[np.ndarray, np.ndarray], float], bool]:
    """The metric that ranks models of a task.

    Args:
        task: The task.

    Returns:
        ``(name, metric(y, predicted), higher_is_better)``.
    """
    if task.kind == "binary":
        return "roc_auc", roc_auc, True
    if task.kind == "multiclass":
        return "macro_f1", _macro_f1, True
    if task.name == "clv":
        return "spearman", spearman, True
    return "mae", _mae, False


def _metrics(
    task: TaskSpec, examples: Examples, predicted: np.ndarray, config: EvaluationConfig
) -> dict[str, float]:
    y = examples.y
    if task.kind == "binary":
        return binary_metrics(
            y, predicted, threshold=config.threshold, fraction=config.lift_fraction
        )
    if task.kind == "multiclass":
        label = predicted.argmax(axis=1)
        return {
            "macro_f1": macro_f1(y, label),
            "accuracy": accuracy(y, label),
            "log_loss": multiclass_log_loss(y, predicted),
        }
    if task.name == "clv":
        total = float(np.sum(y))
        return {
            "spearman": spearman(y, predicted),
            "mae": mean_absolute_error(y, predicted),
            "predicted_over_actual": float(np.sum(predicted) / total) if total > 0 else np.nan,
            "mean_actual": float(np.mean(y)),
            "mean_predicted": float(np.mean(predicted)),
        }
    observed = examples.observed
    return {
        "mae": mean_absolute_error(y, predicted),
        "median_ae": median_absolute_error(y, predicted),
        "mae_observed": mean_absolute_error(y[observed], predicted[observed])
        if observed.any()
        else np.nan,
        "censored_share": float(1 - observed.mean()),
    }


def _curves(
    task: TaskSpec, examples: Examples, predicted: np.ndarray, config: EvaluationConfig
) -> dict[str, Any]:
    if task.kind == "binary":
        curve = reliability_curve(examples.y, predicted, config.n_bins)
        fractions, captured = gains_curve(examples.y, predicted)
        return {
            "reliability": {
                "mean_predicted": curve.mean_predicted.tolist(),
                "observed_rate": curve.observed_rate.tolist(),
                "counts": curve.counts.tolist(),
            },
            "gains": {"fraction": fractions.tolist(), "captured": captured.tolist()},
        }
    if task.name == "clv":
        order = np.argsort(predicted, kind="stable")
        deciles = np.array_split(order, 10)
        return {
            "deciles": {
                "mean_predicted": [float(predicted[d].mean()) for d in deciles if len(d)],
                "mean_actual": [float(examples.y[d].mean()) for d in deciles if len(d)],
            }
        }
    return {}


@dataclass(frozen=True, slots=True)
class UserLeaderboard:
    """Test-snapshot results of a task's models beside its baselines.

    Attributes:
        task: Task name.
        primary: The ranking metric.
        higher_is_better: Its direction.
        rows: One dict per model: ``model``, ``baseline``, ``valid`` (primary on validation),
            ``test`` (every metric), ``ci`` (primary), and for non-baselines ``vs_best_baseline``.
        best_baseline: The baseline best on validation.
        chosen: The model best on validation (what ``predict`` scores with).
        n_valid: Validation examples.
        n_test: Test examples.
        curves: Model -> reliability / gains / decile curves on test.
        per_position: Session intent: model -> prefix length -> metrics.
        skipped_baselines: Baselines that could not be fitted on this data, with why.
    """

    task: str
    primary: str
    higher_is_better: bool
    rows: list[dict[str, Any]]
    best_baseline: str
    chosen: str
    n_valid: int
    n_test: int
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_position: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    skipped_baselines: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (what the report reads)."""
        return {
            "task": self.task,
            "primary": self.primary,
            "higher_is_better": self.higher_is_better,
            "best_baseline": self.best_baseline,
            "chosen": self.chosen,
            "n_valid": self.n_valid,
            "n_test": self.n_test,
            "rows": self.rows,
            "skipped_baselines": self.skipped_baselines,
            "curves": self.curves,
            "per_position": {
                m: {str(k): v for k, v in p.items()} for m, p in self.per_position.items()
            },
        }


def _best(scores: dict[str, float], higher: bool) -> str:
    finite = {m: s for m, s in scores.items() if np.isfinite(s)}
    if not finite:
        return next(iter(scores))
    return max(finite, key=finite.__getitem__) if higher else min(finite, key=finite.__getitem__)


def evaluate_predictions(
    task: TaskSpec,
    valid: Examples,
    test: Examples,
    valid_predictions: dict[str, np.ndarray],
    test_predictions: dict[str, np.ndarray],
    baselines: set[str],
    config: EvaluationConfig | None = None,
    *,
    skipped_baselines: dict[str, str] | None = None,
) -> UserLeaderboard:
    """Score every model's test predictions beside the baselines.

    Args:
        task: The task.
        valid: Validation examples (model choice).
        test: Test examples (every reported number).
        valid_predictions: Model -> predictions on ``valid``.
        test_predictions: Model -> predictions on ``test`` (same models).
        baselines: Which of the models are baselines.
        config: Bootstrap and thresholds.
        skipped_baselines: Baselines left out because they could not be fitted, with why.

    Returns:
        The leaderboard.

    Raises:
        InputError: Without baselines (a model is never shown alone), or without test examples.
    """
    config = config or EvaluationConfig()
    if not baselines & test_predictions.keys():
        raise InputError(
            f"the {task.name} leaderboard needs its baselines beside the models; got only "
            f"{sorted(test_predictions)}"
        )
    if len(test) == 0:
        raise InputError(f"no test examples for {task.name}: the test snapshot is empty")
    name, metric, higher = primary_metric(task)
    on_valid = {
        m: metric(valid.y, p) if len(valid) else float("nan") for m, p in valid_predictions.items()
    }
    best_baseline = _best({m: s for m, s in on_valid.items() if m in baselines}, higher)
    chosen = _best(on_valid, higher)
    rows = []
    for model, predicted in test_predictions.items():
        row: dict[str, Any] = {
            "model": model,
            "baseline": model in baselines,
            "valid": on_valid.get(model, float("nan")),
            "test": _metrics(task, test, predicted, config),
            "ci": bootstrap_metric(
                metric, test.y, predicted, n_resamples=config.n_resamples, seed=config.seed
            ),
        }
        if model not in baselines:
            row["vs_best_baseline"] = paired_bootstrap(
                metric,
                test.y,
                predicted,
                test_predictions[best_baseline],
                n_resamples=config.n_resamples,
                seed=config.seed,
            )
        rows.append(row)
    curves = {m: _curves(task, test, p, config) for m, p in test_predictions.items()}
    per_position: dict[str, dict[int, dict[str, float]]] = {}
    if task.grain == "session" and "k" in test.keys.schema.names:
        positions = test.keys.column("k").to_numpy()
        for model, predicted in test_predictions.items():
            per_position[model] = {
                int(k): _metrics(
                    task, test.subset(positions == k), predicted[positions == k], config
                )
                for k in np.unique(positions)
            }
    return UserLeaderboard(
        task.name,
        name,
        higher,
        rows,
        best_baseline,
        chosen,
        len(valid),
        len(test),
        curves,
        per_position,
        dict(skipped_baselines or {}),
    )
