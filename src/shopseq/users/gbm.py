"""LightGBM on the per-user features, with calibrated probabilities and exact TreeSHAP reasons.

One estimator, :class:`GBM`, for the three kinds of task:

* **binary** (purchase, churn, session intent): ``objective=binary``; probabilities are then
  calibrated on a *later* validation snapshot (isotonic by default, Platt as an option), because
  boosted trees on rare positives are usually over-confident and the training snapshots are
  earlier in time than the ones scored;
* **multiclass** (next action): ``objective=multiclass`` over the six action codes (not
  calibrated: the log loss is reported raw);
* **regression** (time to next event, spend): L1 for the next-event delay (its target is capped at
  the horizon, so the capped value is fully observed and the median is what MAE rewards), Tweedie
  for spend (many zeros and a long right tail).

``contributions`` is LightGBM's exact TreeSHAP (``pred_contrib=True``): per row, one additive
contribution per feature plus the expected value, in raw-score units (log-odds for binary).
Saved as LightGBM's text model plus a JSON calibrator (no pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.artifacts import atomic_dir, atomic_write_json, read_json
from shopseq.errors import ArtifactError, InputError, check_is_fitted
from shopseq.users.tasks import ACTION_NAMES, Examples

__all__ = ["GBM", "GBMConfig"]

_MODEL = "model.txt"
_META = "gbm.json"


class GBMConfig(BaseModel):
    """Hyper-parameters of the LightGBM models.

    Attributes:
        kind: ``binary``, ``multiclass`` or ``regression``.
        objective: Regression objective: ``l1``, ``l2`` or ``tweedie``.
        n_estimators: Boosting rounds.
        learning_rate: Shrinkage.
        num_leaves: Leaves per tree.
        min_child_samples: Rows per leaf at least.
        subsample: Row sampling per round (bagging).
        colsample: Feature sampling per tree.
        reg_lambda: L2 regularisation.
        calibration: Binary: ``isotonic``, ``platt`` or ``none``. Regression: ``scale`` (multiply
            by total actual over total predicted on the validation snapshot; keeps the ranking)
            or ``none``.
        seed: Seed of the sampling.
        threads: LightGBM threads.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["binary", "multiclass", "regression"] = "binary"
    objective: Literal["l1", "l2", "tweedie"] = "l2"
    n_estimators: int = Field(default=300, ge=1)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=31, ge=2)
    min_child_samples: int = Field(default=50, ge=1)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample: float = Field(default=0.8, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    calibration: Literal["isotonic", "platt", "scale", "none"] = "isotonic"
    seed: int = Field(default=0, ge=0)
    threads: int = Field(default=1, ge=1)


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "The per-user models need LightGBM: pip install 'shopseq[models]'"
        ) from err
    return lightgbm


class GBM:
    """A LightGBM model of one per-user task (see the module docstring).

    Attributes:
        config: Hyper-parameters.
        booster_: The fitted LightGBM booster.
        feature_names_: Feature columns it was fitted on.
        calibration_: Binary: ``("isotonic", x, y)`` or ``("platt", a, b)`` or ``None``.
    """

    def __init__(self, config: GBMConfig | None = None) -> None:
        self.config = config or GBMConfig()
        self.booster_: Any = None
        self.feature_names_: tuple[str, ...] | None = None
        self.calibration_: tuple[str, list[float], list[float]] | None = None

    def _params(self) -> dict[str, Any]:
        c = self.config
        params: dict[str, Any] = {
            "learning_rate": c.learning_rate,
            "num_leaves": c.num_leaves,
            "min_child_samples": c.min_child_samples,
            "bagging_fraction": c.subsample,
            "bagging_freq": 1 if c.subsample < 1 else 0,
            "feature_fraction": c.colsample,
            "lambda_l2": c.reg_lambda,
            "seed": c.seed,
            "num_threads": c.threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        if c.kind == "binary":
            params["objective"] = "binary"
        elif c.kind == "multiclass":
            params.update(objective="multiclass", num_class=len(ACTION_NAMES))
        else:
            params["objective"] = {"l1": "regression_l1", "l2": "regression", "tweedie": "tweedie"}[
                c.objective
            ]
        return params

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Fit on the training snapshots; calibrate on ``valid`` (binary only).

        Args:
            train: Training examples.
            valid: Validation examples from a later cut-off (calibration; ignored otherwise).

        Returns:
            The fitted model.

        Raises:
            InputError: If there are no training examples, or a binary task has one class only.
        """
        if len(train) == 0:
            raise InputError("GBM needs training examples; got none")
        y = train.y
        if self.config.kind == "binary" and len(np.unique(y)) < 2:
            raise InputError(
                f"the binary training labels have one class only ({int(y[0])} for all "
                f"{len(y)} examples): widen the horizon or add training snapshots"
            )
        tweedie = self.config.kind == "regression" and self.config.objective == "tweedie"
        if tweedie and (np.any(y < 0) or not np.any(y > 0)):
            raise InputError(
                f"the Tweedie objective needs non-negative targets that are not all zero; got "
                f"{int(np.count_nonzero(y > 0))} positive of {len(y)} (no prices in the data?)"
            )
        lgb = _lightgbm()
        data = lgb.Dataset(
            train.features,
            label=y,
            feature_name=list(train.feature_names),
            free_raw_data=True,
            params={"verbosity": -1},
        )
        self.booster_ = lgb.train(self._params(), data, num_boost_round=self.config.n_estimators)
        self.feature_names_ = train.feature_names
        self.calibration_ = None
        usable = valid is not None and len(valid) > 0
        if self.config.kind == "binary" and self.config.calibration in ("isotonic", "platt"):
            if usable and valid is not None and len(np.unique(valid.y)) == 2:
                self.calibration_ = self._fit_calibration(self.raw(valid), valid.y)
        elif self.config.kind == "regression" and self.config.calibration == "scale" and usable:
            assert valid is not None
            predicted = float(np.sum(self.predict(valid)))
            if predicted > 0:
                self.calibration_ = ("scale", [float(np.sum(valid.y)) / predicted], [])
        return self

    def _fit_calibration(
        self, raw: np.ndarray, y: np.ndarray
    ) -> tuple[str, list[float], list[float]]:
        if self.config.calibration == "platt":
            from sklearn.linear_model import LogisticRegression

            platt = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y.astype(int))
            return ("platt", [float(platt.coef_[0, 0])], [float(platt.intercept_[0])])
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return ("isotonic", iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist())

    def _matrix(self, examples: Examples) -> np.ndarray:
        check_is_fitted(self, "booster_")
        if examples.feature_names != self.feature_names_:
            raise InputError(
                f"the examples' features differ from the model's: got {len(examples.feature_names)}"
                f" columns, the model was fitted on {len(self.feature_names_ or ())}; build them "
                "with the training feature names"
            )
        # LightGBM reads a C-contiguous float32/float64 matrix in place; anything else it copies.
        return np.ascontiguousarray(examples.features, dtype=np.float32)

    def _predict(self, matrix: np.ndarray, **kwargs: Any) -> np.ndarray:
        """LightGBM's predict on NumPy with the configured threads (not OpenMP's default).

        A loaded booster does not keep its training ``num_threads``, and OpenMP's default (every
        core) is slower than asked for on a shared machine.
        """
        out: np.ndarray = self.booster_.predict(matrix, num_threads=self.config.threads, **kwargs)
        return out

    def raw(self, examples: Examples) -> np.ndarray:
        """Raw scores (log-odds for binary; per-class margins for multiclass).

        Args:
            examples: Examples with the training features.

        Returns:
            (n,) or (n, n_classes).
        """
        matrix = self._matrix(examples)  # checks fitted first
        return self._predict(matrix, raw_score=True)

    def predict(self, examples: Examples) -> np.ndarray:
        """Calibrated probability (binary), class probabilities (multiclass), or values.

        Args:
            examples: Examples with the training features.

        Returns:
            (n,) or (n, n_classes) for multiclass.
        """
        if self.config.kind != "binary":
            matrix = self._matrix(examples)
            out = self._predict(matrix)
            if self.calibration_ is not None and self.calibration_[0] == "scale":
                out = out * self.calibration_[1][0]
            return out
        raw = self.raw(examples)
        if self.calibration_ is None:
            sigmoid: np.ndarray = 1.0 / (1.0 + np.exp(-raw))
            return sigmoid
        kind, first, second = self.calibration_
        if kind == "platt":
            platt: np.ndarray = 1.0 / (1.0 + np.exp(-(first[0] * raw + second[0])))
            return platt
        # Isotonic: linear interpolation between thresholds, clipped (IsotonicRegression.predict).
        isotonic: np.ndarray = np.interp(raw, np.asarray(first), np.asarray(second))
        return isotonic

    def contributions(self, examples: Examples, classes: np.ndarray | None = None) -> np.ndarray:
        """Exact TreeSHAP contributions in raw-score units.

        Args:
            examples: Examples with the training features.
            classes: Multiclass only: the class to explain per row (default the predicted one).

        Returns:
            (n, n_features + 1): one column per feature, the last is the expected value.
        """
        matrix = self._matrix(examples)
        contrib = np.asarray(self._predict(matrix, pred_contrib=True))
        if self.config.kind != "multiclass":
            return contrib
        width = len(self.feature_names_ or ()) + 1
        blocks = contrib.reshape(len(matrix), len(ACTION_NAMES), width)
        chosen = self.predict(examples).argmax(axis=1) if classes is None else classes
        out: np.ndarray = blocks[np.arange(len(matrix)), chosen]
        return out

    def feature_importance(self) -> dict[str, float]:
        """Total gain of each feature's splits.

        Returns:
            Feature name -> gain.
        """
        check_is_fitted(self, "booster_")
        gains = self.booster_.feature_importance(importance_type="gain")
        return dict(zip(self.feature_names_ or (), map(float, gains), strict=True))

    def save(self, directory: Path) -> None:
        """Write ``model.txt`` (LightGBM's text format) and ``gbm.json``, atomically.

        Args:
            directory: Destination (replaced as a whole).
        """
        check_is_fitted(self, "booster_")
        with atomic_dir(Path(directory)) as tmp:
            self.booster_.save_model(str(tmp / _MODEL))
            atomic_write_json(
                tmp / _META,
                {
                    "model": "GBM",
                    "config": self.config.model_dump(mode="json"),
                    "feature_names": list(self.feature_names_ or ()),
                    "calibration": list(self.calibration_) if self.calibration_ else None,
                },
            )

    @classmethod
    def load(cls, directory: Path) -> GBM:
        """Rebuild a model written by :meth:`save`.

        Args:
            directory: The model directory.

        Returns:
            The fitted model.

        Raises:
            ArtifactError: If files are missing or unreadable.
        """
        directory = Path(directory)
        if not (directory / _MODEL).is_file():
            raise ArtifactError(f"cannot load GBM from {directory}: no {_MODEL} there")
        try:
            meta = read_json(directory / _META)
            booster = _lightgbm().Booster(model_file=str(directory / _MODEL))
        except (OSError, ValueError) as err:
            raise ArtifactError(f"cannot load GBM from {directory}: {err}") from err
        model = cls(GBMConfig(**meta["config"]))
        model.booster_ = booster
        model.feature_names_ = tuple(meta["feature_names"])
        calibration = meta["calibration"]
        model.calibration_ = (
            (str(calibration[0]), list(calibration[1]), list(calibration[2]))
            if calibration
            else None
        )
        return model
