"""Baselines of the per-user tasks: every model is shown beside these, never alone.

Each has the per-user model protocol (``fit(train, valid=None) -> self``, ``predict(examples)``)
and reads the feature columns by name:

* binary: :class:`FeatureRule` (one feature, e.g. "inactive for N days" for churn or "carted in
  this session" for session intent, turned into a probability by isotonic regression on the
  training snapshots) and :class:`BGNBDRule` (BG/NBD fitted on the training snapshots' buyers:
  expected purchases in the horizon for purchase, 1 - P(alive at the horizon's end) for churn);
* next action: :class:`MostFrequentAction`, :class:`RepeatLastAction`, :class:`ActionMarkov`
  (first-order Markov chain over action types, add-one smoothed);
* next-event delay: :class:`MedianGap` (the user's median gap between events, capped at the
  horizon; optionally minus the time already elapsed since the last event);
* spend: :class:`PastSpendRate` (past spend per day times the horizon) and
  :class:`BGNBDSpend` (BG/NBD expected purchases times Gamma-Gamma mean spend).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol, Self

import numpy as np

from shopseq.errors import InputError, check_is_fitted
from shopseq.sequences import LabelConfig
from shopseq.users.clv import BGNBD, GammaGamma
from shopseq.users.summary import CustomerSummary
from shopseq.users.tasks import ACTION_NAMES, Examples, TaskSpec

__all__ = [
    "ActionMarkov",
    "BGNBDRule",
    "BGNBDSpend",
    "FeatureRule",
    "MedianGap",
    "MostFrequentAction",
    "PastSpendRate",
    "RepeatLastAction",
    "UserModel",
    "baselines_for",
]

_N_ACTIONS = len(ACTION_NAMES)
_DAY = 86_400.0


class UserModel(Protocol):
    """What every per-user model and baseline offers."""

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Fit on training examples (``valid``: a later snapshot, for calibration)."""
        ...

    def predict(self, examples: Examples) -> np.ndarray:
        """Probabilities (binary: (n,); multiclass: (n, classes)) or values (regression)."""
        ...


def _isotonic(score: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y)
    return iso.X_thresholds_, iso.y_thresholds_


class _IsotonicRule:
    """A score per example, mapped to P(positive) by the isotonic curve fitted in ``fit``."""

    curve_: tuple[np.ndarray, np.ndarray] | None

    def _score(self, examples: Examples) -> np.ndarray:
        raise NotImplementedError

    def predict(self, examples: Examples) -> np.ndarray:
        """P(positive) per example.

        Args:
            examples: Examples.

        Returns:
            (n,) probabilities.
        """
        check_is_fitted(self, "curve_")
        assert self.curve_ is not None
        out: np.ndarray = np.interp(self._score(examples), *self.curve_)
        return out


class FeatureRule(_IsotonicRule):
    """A one-feature rule, calibrated into a probability by isotonic regression.

    Args:
        feature: The feature column.
        increasing: Whether a larger value means "more likely positive".
        fill: Value used where the feature is missing.
    """

    def __init__(self, feature: str, *, increasing: bool = True, fill: float = 0.0) -> None:
        self.feature = feature
        self.increasing = increasing
        self.fill = fill
        self.curve_: tuple[np.ndarray, np.ndarray] | None = None

    def _score(self, examples: Examples) -> np.ndarray:
        values = np.nan_to_num(examples.column(self.feature).astype(np.float64), nan=self.fill)
        return values if self.increasing else -values

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Fit the isotonic map from the feature to the positive rate on ``train``.

        Args:
            train: Training examples.
            valid: Unused.

        Returns:
            The fitted rule.
        """
        self.curve_ = _isotonic(self._score(train), train.y)
        return self


def _summary(examples: Examples) -> tuple[CustomerSummary, np.ndarray]:
    """BG/NBD inputs (weeks) from the features; the mask of owners who have bought."""
    days = examples.column("n_purchase_days").astype(np.float64)
    buyer = np.nan_to_num(days) > 0
    x = np.where(buyer, days - 1, 0.0)
    t_x = np.nan_to_num(examples.column("purchase_span_days").astype(np.float64)) / 7
    age = np.nan_to_num(examples.column("first_purchase_age_days").astype(np.float64)) / 7
    spend = np.nan_to_num(examples.column("avg_purchase_day_value").astype(np.float64))
    ids = examples.keys.column(0).combine_chunks()
    return CustomerSummary(
        ids, x, np.minimum(t_x, age), age, np.where(x > 0, spend, 0.0), 7.0
    ), buyer


class BGNBDRule(_IsotonicRule):
    """BG/NBD as a baseline for purchase (expected purchases) or churn (1 - P(alive ahead)).

    Owners who never bought are outside the customer base; they get a sentinel score (lowest for
    purchase, highest for churn) and, like everyone, the isotonic map of the training snapshots.

    Args:
        target: ``purchase`` or ``churn``.
        horizon: The label's horizon.
    """

    def __init__(self, target: str, horizon: timedelta) -> None:
        if target not in ("purchase", "churn"):
            raise InputError(f"BGNBDRule target must be 'purchase' or 'churn'; got {target!r}")
        self.target = target
        self.weeks = horizon.total_seconds() / (7 * _DAY)
        self.model_: BGNBD | None = None
        self.curve_: tuple[np.ndarray, np.ndarray] | None = None

    def _score(self, examples: Examples) -> np.ndarray:
        assert self.model_ is not None
        summary, buyer = _summary(examples)
        # A fit on few buyers can give parameters where the closed forms are not finite; such
        # owners are scored like non-buyers rather than breaking the isotonic map.
        with np.errstate(all="ignore"):
            if self.target == "purchase":
                score = self.model_.expected_purchases(self.weeks, summary)
                return np.where(buyer & np.isfinite(score), score, -1.0)
            risk = 1.0 - self.model_.probability_alive_ahead(self.weeks, summary)
            return np.where(buyer & np.isfinite(risk), risk, 2.0)

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Fit BG/NBD on the buyers of the training snapshots, then the isotonic map.

        Args:
            train: Training examples.
            valid: Unused.

        Returns:
            The fitted baseline.

        Raises:
            InputError: If no training owner has bought.
        """
        summary, buyer = _summary(train)
        if not buyer.any():
            raise InputError("BG/NBD needs buyers in the training snapshots; found none")
        self.model_ = BGNBD().fit(summary.take(np.flatnonzero(buyer)))
        self.curve_ = _isotonic(self._score(train), train.y)
        return self


def _last_action(examples: Examples) -> np.ndarray:
    last = examples.column("last_action")
    return np.where(np.isfinite(last), last, 0).astype(np.int64)


class MostFrequentAction:
    """The training distribution of next actions, the same for everyone."""

    def __init__(self) -> None:
        self.prior_: np.ndarray | None = None

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Count next actions (add-one smoothed).

        Args:
            train: Training examples.
            valid: Unused.

        Returns:
            The fitted baseline.
        """
        counts = np.bincount(train.y, minlength=_N_ACTIONS)[:_N_ACTIONS] + 1.0
        self.prior_ = counts / counts.sum()
        return self

    def predict(self, examples: Examples) -> np.ndarray:
        """(n, n_actions) probabilities."""
        check_is_fitted(self, "prior_")
        assert self.prior_ is not None
        return np.tile(self.prior_, (len(examples), 1))


class RepeatLastAction:
    """The last action again, with the training rate of repeats; the rest by the prior."""

    def __init__(self) -> None:
        self.prior_: np.ndarray | None = None
        self.repeat_: float | None = None

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Estimate how often the next action repeats the last one.

        Args:
            train: Training examples.
            valid: Unused.

        Returns:
            The fitted baseline.
        """
        counts = np.bincount(train.y, minlength=_N_ACTIONS)[:_N_ACTIONS] + 1.0
        self.prior_ = counts / counts.sum()
        self.repeat_ = float((np.sum(train.y == _last_action(train)) + 1) / (len(train) + 2))
        return self

    def predict(self, examples: Examples) -> np.ndarray:
        """(n, n_actions) probabilities."""
        check_is_fitted(self, "repeat_")
        assert self.prior_ is not None and self.repeat_ is not None
        last = _last_action(examples)
        rows = np.arange(len(examples))
        out = np.tile(self.prior_, (len(examples), 1))
        out[rows, last] = 0.0
        out *= (1.0 - self.repeat_) / out.sum(axis=1, keepdims=True)
        out[rows, last] = self.repeat_
        return out


class ActionMarkov:
    """First-order Markov chain over action types: P(next action | last action)."""

    def __init__(self) -> None:
        self.transitions_: np.ndarray | None = None

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Count transitions last action -> next action (add-one smoothed).

        Args:
            train: Training examples.
            valid: Unused.

        Returns:
            The fitted baseline.
        """
        counts = np.ones((_N_ACTIONS, _N_ACTIONS))
        np.add.at(counts, (_last_action(train), train.y), 1.0)
        self.transitions_ = counts / counts.sum(axis=1, keepdims=True)
        return self

    def predict(self, examples: Examples) -> np.ndarray:
        """(n, n_actions) probabilities."""
        check_is_fitted(self, "transitions_")
        assert self.transitions_ is not None
        out: np.ndarray = self.transitions_[_last_action(examples)]
        return out


class MedianGap:
    """The user's median gap between events, capped at the horizon.

    Args:
        horizon: The next-event horizon (predictions are capped at it, as the target is).
        remaining: Subtract the time already elapsed since the user's last event.
    """

    def __init__(self, horizon: timedelta, *, remaining: bool = False) -> None:
        self.cap = horizon.total_seconds()
        self.remaining = remaining
        self.fallback_: float | None = None

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Learn the fallback for users without a gap: the training median of the target.

        Args:
            train: Training examples.
            valid: Unused.

        Returns:
            The fitted baseline.
        """
        self.fallback_ = float(np.median(train.y))
        return self

    def predict(self, examples: Examples) -> np.ndarray:
        """(n,) predicted seconds to the next event, in [0, horizon]."""
        check_is_fitted(self, "fallback_")
        assert self.fallback_ is not None
        gap = examples.column("median_gap_seconds").astype(np.float64)
        if self.remaining:
            gap = gap - examples.column("recency_days").astype(np.float64) * _DAY
        gap = np.where(np.isfinite(gap), gap, self.fallback_)
        return np.clip(gap, 0.0, self.cap)


class PastSpendRate:
    """Past spend per day of history, times the horizon in days.

    Args:
        horizon: The spend horizon.
    """

    def __init__(self, horizon: timedelta) -> None:
        self.days = horizon.total_seconds() / _DAY
        self.fitted_: bool | None = None

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Nothing to learn (kept for the protocol).

        Args:
            train: Training examples.
            valid: Unused.

        Returns:
            The baseline.
        """
        self.fitted_ = True
        return self

    def predict(self, examples: Examples) -> np.ndarray:
        """(n,) expected spend in the horizon."""
        check_is_fitted(self, "fitted_")
        spend = np.nan_to_num(examples.column("monetary").astype(np.float64))
        history = np.nan_to_num(
            examples.column("recency_days").astype(np.float64)
            + examples.column("tenure_days").astype(np.float64)
        )
        out: np.ndarray = spend / np.maximum(history, 1.0) * self.days
        return out


class BGNBDSpend:
    """BG/NBD expected purchases in the horizon times Gamma-Gamma mean spend (0 for non-buyers).

    Args:
        horizon: The spend horizon.
    """

    def __init__(self, horizon: timedelta) -> None:
        self.weeks = horizon.total_seconds() / (7 * _DAY)
        self.transactions_: BGNBD | None = None
        self.spend_: GammaGamma | None = None

    def fit(self, train: Examples, valid: Examples | None = None) -> Self:
        """Fit both models on the buyers of the training snapshots.

        Args:
            train: Training examples.
            valid: Unused.

        Returns:
            The fitted baseline.

        Raises:
            InputError: If there are no buyers, or none with repeat purchases.
        """
        summary, buyer = _summary(train)
        if not buyer.any():
            raise InputError("BG/NBD needs buyers in the training snapshots; found none")
        buyers = summary.take(np.flatnonzero(buyer))
        self.transactions_ = BGNBD().fit(buyers)
        self.spend_ = GammaGamma().fit(buyers)
        return self

    def predict(self, examples: Examples) -> np.ndarray:
        """(n,) expected spend in the horizon."""
        check_is_fitted(self, "spend_")
        assert self.transactions_ is not None and self.spend_ is not None
        summary, buyer = _summary(examples)
        with np.errstate(all="ignore"):
            value = self.transactions_.expected_purchases(
                self.weeks, summary
            ) * self.spend_.expected_spend(summary)
        return np.where(buyer & np.isfinite(value), value, 0.0)


def baselines_for(task: TaskSpec, labels: LabelConfig) -> dict[str, UserModel]:
    """The baselines of a task, unfitted, by name.

    Args:
        task: The task.
        labels: Its horizons.

    Returns:
        Name -> baseline (a plain dict literal per task).
    """
    if task.name == "purchase":
        return {
            "recent_purchases": FeatureRule("n_purchase_long"),
            "bgnbd_expected_purchases": BGNBDRule("purchase", labels.purchase_horizon),
        }
    if task.name == "churn":
        return {
            "inactive_days": FeatureRule("recency_days"),
            "bgnbd_p_alive": BGNBDRule("churn", labels.churn_horizon),
        }
    if task.name == "session-intent":
        return {
            "carted_in_session": FeatureRule("n_cart"),
            "bought_before": FeatureRule("user_prior_purchases"),
        }
    if task.name == "next-action":
        return {
            "most_frequent": MostFrequentAction(),
            "repeat_last": RepeatLastAction(),
            "markov": ActionMarkov(),
        }
    if task.name == "next-time":
        return {
            "median_gap": MedianGap(labels.next_event_horizon),
            "median_gap_remaining": MedianGap(labels.next_event_horizon, remaining=True),
        }
    return {
        "past_spend_rate": PastSpendRate(labels.spend_horizon),
        "bgnbd_gamma_gamma": BGNBDSpend(labels.spend_horizon),
    }
