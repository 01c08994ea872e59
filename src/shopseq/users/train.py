"""Train a task's LightGBM model and baselines, and evaluate them on the test snapshot.

:func:`train_task` is the library half of ``shopseq predict``: it takes examples already built
(``users.tasks.examples_from_table`` over the snapshots of ``sequences.labels``) and returns the
fitted models with their leaderboard. The runs layer builds the examples from the store and
writes the run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from shopseq.errors import InputError
from shopseq.metrics.classification import roc_auc
from shopseq.sequences import LabelConfig
from shopseq.users.baselines import UserModel, baselines_for
from shopseq.users.evaluation import EvaluationConfig, UserLeaderboard, evaluate_predictions
from shopseq.users.gbm import GBM, GBMConfig
from shopseq.users.sequence import SequenceModel
from shopseq.users.tasks import Examples, TaskSpec

__all__ = ["GBM_NAME", "TrainedTask", "default_gbm_config", "train_task"]

#: Name of the LightGBM model on leaderboards.
GBM_NAME = "lightgbm"


@dataclass(frozen=True, slots=True)
class TrainedTask:
    """A task's fitted models and their test leaderboard.

    Attributes:
        task: The task.
        gbm: The fitted LightGBM model.
        baselines: Name -> fitted baseline.
        leaderboard: Test results beside the baselines.
        test_predictions: Model -> predictions on the test snapshot.
        sequence_models: Name (``gru``, ``sasrec``) -> fitted sequence model.
        gbm_search: Leaves per tree -> validation ROC-AUC of each LightGBM tried (binary tasks
            with ``gbm_leaves``; empty otherwise).
    """

    task: TaskSpec
    gbm: GBM
    baselines: dict[str, UserModel]
    leaderboard: UserLeaderboard
    test_predictions: dict[str, np.ndarray]
    sequence_models: dict[str, SequenceModel] = field(default_factory=dict)
    gbm_search: dict[int, float] = field(default_factory=dict)

    def model(self, name: str) -> UserModel | GBM | SequenceModel:
        """A fitted model by leaderboard name.

        Args:
            name: ``lightgbm``, a sequence model's or a baseline's name.

        Returns:
            The model.
        """
        if name == GBM_NAME:
            return self.gbm
        if name in self.sequence_models:
            return self.sequence_models[name]
        return self.baselines[name]


def default_gbm_config(task: TaskSpec, *, threads: int = 1, seed: int = 0) -> GBMConfig:
    """The LightGBM settings of a task (kind and objective follow the task).

    Args:
        task: The task.
        threads: LightGBM threads.
        seed: Seed.

    Returns:
        The config.
    """
    if task.name == "next-time":
        return GBMConfig(
            kind="regression", objective="l1", calibration="none", threads=threads, seed=seed
        )
    if task.name == "clv":
        return GBMConfig(
            kind="regression", objective="tweedie", calibration="scale", threads=threads, seed=seed
        )
    return GBMConfig(kind=task.kind, threads=threads, seed=seed)


def train_task(
    task: TaskSpec,
    train: Examples,
    valid: Examples,
    test: Examples,
    labels: LabelConfig,
    *,
    gbm: GBMConfig | None = None,
    evaluation: EvaluationConfig | None = None,
    sequence: dict[str, SequenceModel] | None = None,
    gbm_leaves: Sequence[int] = (),
) -> TrainedTask:
    """Fit LightGBM (calibrated on ``valid``) and the baselines on ``train``; evaluate on ``test``.

    With ``sequence``, the named sequence models (``users.sequence``) are fitted too and ranked
    on the same leaderboard; their examples must carry event windows.

    Args:
        task: The task.
        train: Training snapshots.
        valid: The validation snapshot (calibration, model choice).
        test: The test snapshot.
        labels: The label horizons (the baselines need them).
        gbm: LightGBM settings (default :func:`default_gbm_config`).
        evaluation: Bootstrap and thresholds.
        sequence: Name -> unfitted sequence model (with its encoder) to fit beside LightGBM.
        gbm_leaves: For a binary task, leaves per tree to try (each with ``gbm``'s other
            settings); the one with the best ROC-AUC on ``valid`` is kept (:func:`_chosen_gbm`).
            One size (or a validation snapshot with one class): that size, nothing ranked.

    Returns:
        The fitted models and the leaderboard.

    Raises:
        InputError: If no baseline can be fitted (one that cannot, e.g. BG/NBD on a log without
            purchases, is left out and named on the leaderboard).
    """
    model, search = _chosen_gbm(gbm or default_gbm_config(task), train, valid, gbm_leaves)
    baselines: dict[str, UserModel] = {}
    skipped: dict[str, str] = {}
    for name, baseline in baselines_for(task, labels).items():
        try:
            baselines[name] = baseline.fit(train)
        except InputError as err:  # e.g. BG/NBD on a log without purchases
            skipped[name] = str(err)
    if not baselines:
        raise InputError(f"no baseline of {task.name} can be fitted on this data: {skipped}")
    sequence_models = {name: m.fit(train, valid) for name, m in (sequence or {}).items()}
    models: dict[str, UserModel | GBM | SequenceModel] = {
        GBM_NAME: model,
        **sequence_models,
        **baselines,
    }
    on_valid = {name: m.predict(valid) for name, m in models.items()}
    on_test = {name: m.predict(test) for name, m in models.items()}
    board = evaluate_predictions(
        task,
        valid,
        test,
        on_valid,
        on_test,
        set(baselines),
        evaluation or EvaluationConfig(),
        skipped_baselines=skipped,
    )
    return TrainedTask(task, model, baselines, board, on_test, sequence_models, search)


def _chosen_gbm(
    config: GBMConfig, train: Examples, valid: Examples, leaves: Sequence[int]
) -> tuple[GBM, dict[int, float]]:
    """LightGBM with the tree size that ranks the validation snapshot best (binary tasks).

    Big trees overfit when positives are few: on Diginetica's purchases (146 positives in
    24,941 training examples) 31 leaves gave a validation ROC-AUC of 0.686 and 3 leaves 0.738,
    the same 300 rounds. The sizes are tried on the training snapshots and ranked by the raw
    scores' ROC-AUC on the validation snapshot (before calibration, which is fitted on the same
    snapshot and would tie its steps); the test snapshot plays no part. The first size wins a tie.

    Returns:
        The chosen model and each size's validation ROC-AUC (empty when nothing was tried).
    """
    tried = list(dict.fromkeys(leaves))
    if config.kind != "binary" or len(tried) < 2 or len(np.unique(valid.y)) < 2:
        if config.kind == "binary" and tried:  # nothing to rank: the first size is used
            config = config.model_copy(update={"num_leaves": tried[0]})
        return GBM(config).fit(train, valid), {}
    search: dict[int, float] = {}
    best: tuple[float, GBM] | None = None
    for n_leaves in tried:
        model = GBM(config.model_copy(update={"num_leaves": n_leaves})).fit(train, valid)
        search[n_leaves] = roc_auc(valid.y, model.raw(valid))
        if best is None or search[n_leaves] > best[0]:
            best = (search[n_leaves], model)
    assert best is not None
    return best[1], search
