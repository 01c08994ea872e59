"""Customer-base models fitted by maximum likelihood: BG/NBD, Pareto/NBD, Gamma-Gamma, and CLV.

* :class:`BGNBD` (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): purchases
  are Poisson while alive; after each purchase the customer drops out with probability ``p``.
* :class:`ParetoNBD` (Schmittlein, Morrison & Colombo 1987; likelihood as in Fader & Hardie's
  2005 note): Poisson purchases, exponential lifetime.
* :class:`GammaGamma` (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie's 2013 note): the
  mean value of a customer's repeat transactions.

Customer lifetime value from these models is in :mod:`shopseq.users.value`.

Written with SciPy because ``lifetimes`` is archived and breaks on current pandas (STACK.md).
The likelihoods are vectorised over customers; identical ``(x, t_x, T)`` rows are fitted once with
a count as weight, which also makes a bootstrap resample a reweighting instead of a new data set.
Parameters are optimised on the log scale (they are all positive) with L-BFGS-B. ``update`` refits
from the last parameters (a warm start), so new transactions do not need a fit from scratch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1
from threadpoolctl import threadpool_limits

from shopseq.artifacts import atomic_dir, atomic_write_json, read_json
from shopseq.errors import ArtifactError, InputError, check_is_fitted
from shopseq.users.summary import CustomerSummary

__all__ = ["BGNBD", "CustomerModelConfig", "GammaGamma", "ParetoNBD", "TransactionModel"]

_MODEL_FILE = "model.json"
# Objective value for a parameter vector where the likelihood is not finite (rejects the step).
_INVALID = 1e12


class CustomerModelConfig(BaseModel):
    """How a customer-base model is fitted.

    Attributes:
        penalizer: L2 penalty on the parameters (0: plain maximum likelihood, as published).
        max_iter: Iterations of the optimiser at most.
        tol: Relative tolerance on the mean log-likelihood per customer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    penalizer: float = Field(default=0.0, ge=0.0)
    max_iter: int = Field(default=1000, ge=1)
    tol: float = Field(default=1e-12, gt=0.0)


class _MaximumLikelihood:
    """Fit, warm-start update, bootstrap and persistence shared by the three models."""

    param_names: ClassVar[tuple[str, ...]]
    initial: ClassVar[tuple[float, ...]]

    def __init__(self, config: CustomerModelConfig | None = None) -> None:
        self.config = config or CustomerModelConfig()
        self.params_: np.ndarray | None = None
        self.log_likelihood_: float | None = None
        self.n_customers_: int | None = None
        self.n_iter_: int | None = None
        self.converged_: bool | None = None

    # Each model: the data columns it fits on, and the log-likelihood of each row.
    def _data(self, summary: CustomerSummary) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _loglik(params: np.ndarray, data: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def params(self) -> dict[str, float]:
        """Fitted parameters by name."""
        check_is_fitted(self, "params_")
        assert self.params_ is not None  # for mypy: checked above
        return dict(zip(self.param_names, self.params_.tolist(), strict=True))

    def fit(self, summary: CustomerSummary, *, init: np.ndarray | None = None) -> Self:
        """Fit the parameters by maximum likelihood.

        Args:
            summary: Customers (see :mod:`shopseq.users.summary`).
            init: Starting parameters (default: the model's generic start).

        Returns:
            The fitted model.

        Raises:
            InputError: If there are no customers to fit on.
        """
        data = self._data(summary)
        if len(data) == 0:
            raise InputError(f"{type(self).__name__} needs customers to fit on; got none")
        rows, weights = np.unique(data, axis=0, return_counts=True)
        start = np.asarray(self.initial if init is None else init, dtype=np.float64)
        params, ll, n_iter, converged = self._optimise(rows, weights.astype(np.float64), start)
        self.params_, self.log_likelihood_ = params, ll
        self.n_customers_, self.n_iter_, self.converged_ = len(data), n_iter, converged
        return self

    def update(self, summary: CustomerSummary) -> Self:
        """Refit on an updated summary, starting from the current parameters (a warm start).

        Args:
            summary: The customers with their new transactions.

        Returns:
            The refitted model.
        """
        check_is_fitted(self, "params_")
        return self.fit(summary, init=self.params_)

    def _optimise(
        self, rows: np.ndarray, weights: np.ndarray, start: np.ndarray
    ) -> tuple[np.ndarray, float, int, bool]:
        total = weights.sum()
        penalizer = self.config.penalizer

        def objective(log_params: np.ndarray) -> float:
            with np.errstate(all="ignore"):
                params = np.exp(log_params)
                ll = float(weights @ self._loglik(params, rows))
            if not np.isfinite(ll):
                return _INVALID
            return float(-ll / total + penalizer * float(params @ params))

        # One BLAS thread: L-BFGS-B's BLAS calls on 3-4-long vectors cost ~6 ms each with
        # OpenBLAS threads on a busy 2-core machine (CDNOW BG/NBD fit measured 0.41 s -> 0.03 s).
        with threadpool_limits(1):
            result = minimize(
                objective,
                np.log(start),
                method="L-BFGS-B",
                # Parameters in [e^-15, e^15]: wide enough for any data, and no overflow.
                bounds=[(-15.0, 15.0)] * len(start),
                options={"maxiter": self.config.max_iter, "ftol": self.config.tol, "gtol": 1e-9},
            )
        params = np.exp(result.x)
        with np.errstate(all="ignore"):
            ll = float(weights @ self._loglik(params, rows))
        return params, ll, int(result.nit), bool(result.success)

    def bootstrap(
        self, summary: CustomerSummary, n_resamples: int = 200, *, seed: int = 0
    ) -> np.ndarray:
        """Parameters refitted on customers resampled with replacement (warm-started).

        Args:
            summary: The customers the model was fitted on.
            n_resamples: Resamples.
            seed: Seed of the resampling.

        Returns:
            (n_resamples, n_params) parameter draws.

        Raises:
            InputError: If ``n_resamples`` is below 1.
        """
        check_is_fitted(self, "params_")
        assert self.params_ is not None
        if n_resamples < 1:
            raise InputError(f"The 'n_resamples' parameter must be >= 1. Got {n_resamples}.")
        data = self._data(summary)
        rows, inverse = np.unique(data, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        rng = np.random.default_rng(seed)
        draws = np.empty((n_resamples, len(self.param_names)))
        for i in range(n_resamples):  # a loop over resamples; each is a reweighted fit
            pick = rng.integers(0, len(data), len(data))
            weights = np.bincount(inverse[pick], minlength=len(rows)).astype(np.float64)
            draws[i] = self._optimise(rows, weights, self.params_)[0]
        return draws

    def save(self, directory: Path) -> None:
        """Write ``model.json`` (parameters, fit facts, config) into ``directory``, atomically.

        Args:
            directory: Destination (replaced as a whole).
        """
        check_is_fitted(self, "params_")
        with atomic_dir(Path(directory)) as tmp:
            atomic_write_json(
                tmp / _MODEL_FILE,
                {
                    "model": type(self).__name__,
                    "config": self.config.model_dump(mode="json"),
                    "params": self.params,
                    "log_likelihood": self.log_likelihood_,
                    "n_customers": self.n_customers_,
                    "n_iter": self.n_iter_,
                    "converged": self.converged_,
                },
            )

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild a model written by :meth:`save`.

        Args:
            directory: The model directory.

        Returns:
            The fitted model.

        Raises:
            ArtifactError: If the file is missing or holds another model.
        """
        path = Path(directory) / _MODEL_FILE
        try:
            meta: dict[str, Any] = read_json(path)
        except (OSError, ValueError) as err:
            raise ArtifactError(f"cannot load {cls.__name__} from {directory}: {err}") from err
        if meta.get("model") != cls.__name__:
            raise ArtifactError(f"{path} holds a {meta.get('model')!r} model, not {cls.__name__}")
        model = cls(CustomerModelConfig(**meta["config"]))
        model.params_ = np.array([meta["params"][name] for name in cls.param_names])
        model.log_likelihood_ = meta["log_likelihood"]
        model.n_customers_, model.n_iter_ = meta["n_customers"], meta["n_iter"]
        model.converged_ = meta["converged"]
        return model

    def _fitted(self) -> np.ndarray:
        check_is_fitted(self, "params_")
        assert self.params_ is not None
        return self.params_


def _rfm(summary: CustomerSummary) -> np.ndarray:
    return np.column_stack([summary.frequency, summary.recency, summary.age])


class TransactionModel(_MaximumLikelihood):
    """What BG/NBD and Pareto/NBD both answer, with any parameter vector (for the bootstrap)."""

    def _data(self, summary: CustomerSummary) -> np.ndarray:
        return _rfm(summary)

    @staticmethod
    def alive(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
        """P(alive at ``age``) given the history."""
        raise NotImplementedError

    @staticmethod
    def expected(
        params: np.ndarray, t: float, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
    ) -> np.ndarray:
        """Expected transactions in ``(age, age + t]`` given the history."""
        raise NotImplementedError

    def probability_alive(self, summary: CustomerSummary) -> np.ndarray:
        """P(alive) now (at the end of observation) for each customer.

        Args:
            summary: Customers.

        Returns:
            (n,) probabilities.
        """
        return self.alive(self._fitted(), summary.frequency, summary.recency, summary.age)

    def expected_purchases(self, t: float, summary: CustomerSummary) -> np.ndarray:
        """Expected transactions in the next ``t`` units for each customer.

        Args:
            t: Horizon in units.
            summary: Customers.

        Returns:
            (n,) expected counts.
        """
        return self.expected(self._fitted(), t, summary.frequency, summary.recency, summary.age)


class BGNBD(TransactionModel):
    """BG/NBD: parameters ``r, alpha`` (purchase rates) and ``a, b`` (drop-out probabilities)."""

    param_names = ("r", "alpha", "a", "b")
    initial = (1.0, 1.0, 1.0, 1.0)

    @staticmethod
    def _loglik(params: np.ndarray, data: np.ndarray) -> np.ndarray:
        r, alpha, a, b = params
        x, t_x, age = data[:, 0], data[:, 1], data[:, 2]
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
        alive = -(r + x) * np.log(alpha + age)
        dropped = np.where(
            x > 0,
            np.log(a) - np.log(np.where(x > 0, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
        out: np.ndarray = common + np.logaddexp(alive, dropped)
        return out

    @staticmethod
    def _odds_dead(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
    ) -> np.ndarray:
        r, alpha, a, b = params
        safe = np.where(x > 0, b + x - 1, 1.0)
        odds = a / safe * np.exp((r + x) * (np.log(alpha + age) - np.log(alpha + t_x)))
        return np.where(x > 0, odds, 0.0)

    @staticmethod
    def alive(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
        """P(alive at ``age``) given the history (FHL 2005, eq. in the appendix)."""
        out: np.ndarray = 1.0 / (1.0 + BGNBD._odds_dead(params, x, t_x, age))
        return out

    @staticmethod
    def expected(
        params: np.ndarray, t: float, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
    ) -> np.ndarray:
        """Expected transactions in ``(age, age + t]`` (FHL 2005, eq. 10)."""
        r, alpha, a, b = params
        z = t / (alpha + age + t)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1)
        body = 1.0 - np.exp((r + x) * np.log((alpha + age) / (alpha + age + t))) * hyp
        out: np.ndarray = head * body / (1.0 + BGNBD._odds_dead(params, x, t_x, age))
        return out

    def expected_purchases_new(self, t: float) -> float:
        """Expected transactions of a new customer in their first ``t`` units (FHL 2005, eq. 7).

        Args:
            t: Horizon in units.

        Returns:
            The expected count.
        """
        r, alpha, a, b = self._fitted()
        hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp))

    def probability_alive_ahead(self, t: float, summary: CustomerSummary) -> np.ndarray:
        """P(alive ``t`` units after the end of observation), given the history.

        Alive now, a customer with rate ``lambda`` and drop-out ``p`` is still alive after ``t``
        with ``E[(1 - p)^N(t)] = exp(-lambda p t)``; integrating over the posterior (``lambda``
        Gamma(r + x, alpha + T), ``p`` Beta(a, b + x)) gives ``2F1(r + x, a; a + b + x;
        -t / (alpha + T))``.

        Args:
            t: Units ahead.
            summary: Customers.

        Returns:
            (n,) probabilities.
        """
        params = self._fitted()
        r, alpha, a, b = params
        x, age = summary.frequency, summary.age
        stay = hyp2f1(r + x, a, a + b + x, -t / (alpha + age))
        out: np.ndarray = self.probability_alive(summary) * stay
        return out


class ParetoNBD(TransactionModel):
    """Pareto/NBD: parameters ``r, alpha`` (purchase rates) and ``s, beta`` (drop-out rates)."""

    param_names = ("r", "alpha", "s", "beta")
    initial = (1.0, 1.0, 1.0, 1.0)

    @staticmethod
    def _log_a0(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Log of A0 in Fader & Hardie's note (the integral over the unseen drop-out time)."""
        r, alpha, s, beta = params
        rsx = r + s + x
        if alpha >= beta:
            big, second = alpha, s + 1
        else:
            big, second = beta, r + x
        lag = np.abs(alpha - beta)
        first = np.log(hyp2f1(rsx, second, rsx + 1, lag / (big + t_x))) - rsx * np.log(big + t_x)
        last = np.log(hyp2f1(rsx, second, rsx + 1, lag / (big + age))) - rsx * np.log(big + age)
        # log(exp(first) - exp(last)); first >= last since t_x <= T (-inf where t_x == T).
        with np.errstate(divide="ignore"):
            out: np.ndarray = first + np.log1p(-np.exp(np.minimum(last - first, 0.0)))
        return out

    @staticmethod
    def _loglik(params: np.ndarray, data: np.ndarray) -> np.ndarray:
        r, alpha, s, beta = params
        x, t_x, age = data[:, 0], data[:, 1], data[:, 2]
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
        dead = np.log(s / (r + s + x)) + ParetoNBD._log_a0(params, x, t_x, age)
        # Where t_x == T the drop-out term vanishes (A0 = 0).
        dead = np.where(t_x < age, dead, -np.inf)
        out: np.ndarray = head + np.logaddexp(alive, dead)
        return out

    @staticmethod
    def alive(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
        """P(alive at ``age``) given the history."""
        r, alpha, s, beta = params
        log_odds = (
            np.log(s / (r + s + x))
            + (r + x) * np.log(alpha + age)
            + s * np.log(beta + age)
            + ParetoNBD._log_a0(params, x, t_x, age)
        )
        log_odds = np.where(t_x < age, log_odds, -np.inf)
        out: np.ndarray = 1.0 / (1.0 + np.exp(log_odds))
        return out

    @staticmethod
    def expected(
        params: np.ndarray, t: float, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
    ) -> np.ndarray:
        """Expected transactions in ``(age, age + t]`` given the history."""
        r, alpha, s, beta = params
        rate = (r + x) * (beta + age) / ((alpha + age) * (s - 1))
        decay = 1.0 - ((beta + age) / (beta + age + t)) ** (s - 1)
        out: np.ndarray = ParetoNBD.alive(params, x, t_x, age) * rate * decay
        return out

    def expected_purchases_new(self, t: float) -> float:
        """Expected transactions of a new customer in their first ``t`` units.

        Args:
            t: Horizon in units.

        Returns:
            The expected count.
        """
        r, alpha, s, beta = self._fitted()
        return float(r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1)))

    def probability_alive_ahead(self, t: float, summary: CustomerSummary) -> np.ndarray:
        """P(alive ``t`` units after the end of observation), given the history.

        The posterior drop-out rate of a live customer is Gamma(s, beta + T), so surviving ``t``
        more has probability ``((beta + T) / (beta + T + t))^s``.

        Args:
            t: Units ahead.
            summary: Customers.

        Returns:
            (n,) probabilities.
        """
        s, beta = self._fitted()[2:]
        age = summary.age
        out: np.ndarray = self.probability_alive(summary) * ((beta + age) / (beta + age + t)) ** s
        return out


class GammaGamma(_MaximumLikelihood):
    """Gamma-Gamma spend: parameters ``p, q, gamma``; fitted on customers with repeat purchases."""

    param_names = ("p", "q", "gamma")
    initial = (1.0, 1.0, 1.0)

    def _data(self, summary: CustomerSummary) -> np.ndarray:
        repeat = (summary.frequency > 0) & (summary.monetary > 0)
        return np.column_stack([summary.frequency[repeat], summary.monetary[repeat]])

    @staticmethod
    def _loglik(params: np.ndarray, data: np.ndarray) -> np.ndarray:
        p, q, gamma = params
        x, m = data[:, 0], data[:, 1]
        px = p * x
        out: np.ndarray = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(gamma + m * x)
        )
        return out

    @staticmethod
    def mean_spend(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """E[spend per transaction | x, m_x]; the population mean where ``x = 0``."""
        p, q, gamma = params
        out: np.ndarray = p * (gamma + m * x) / (p * x + q - 1)
        return out

    def expected_spend(self, summary: CustomerSummary) -> np.ndarray:
        """Expected value of each customer's future transactions.

        Args:
            summary: Customers (those without repeat purchases get the population mean).

        Returns:
            (n,) expected spend per transaction.
        """
        return self.mean_spend(self._fitted(), summary.frequency, summary.monetary)
