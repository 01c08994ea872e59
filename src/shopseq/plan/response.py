"""Response curves: what extra spend buys, per target, fitted from a spend history.

The form is the one marketing-mix models use (Jin, Wang, Sun, Chan & Koehler 2017, "Bayesian
methods for media mix modeling with carryover and shape effects"):

* **carry-over** (geometric adstock): spend keeps acting after the day it is placed,
  ``a[t] = x[t] + decay * a[t - 1]``;
* **saturation** (Hill curve): each extra unit buys less,
  ``hill(a) = a^shape / (a^shape + half^shape)`` (``half``: the adstock at half saturation);
* **outcome** per period: ``orders[t] ~ NegBin(mean = base[t] + beta * hill(a[t]), dispersion)``
  with a log-linear baseline ``base[t] = exp(level + trend * t / T + weekday effect)``, so
  ``beta`` is the most extra orders per period spend can buy.

Fitted per target by maximum a posteriori with SciPy (L-BFGS-B, several starts) under weak priors
that keep the curve identifiable when the history never saturates; uncertainty is the Laplace
approximation (the inverse Hessian of the negative log posterior at the optimum, by central
differences), on an unconstrained scale (logs and a logit), so every interval respects its
parameter's range. Hand-written because the libraries that fit these models (PyMC-Marketing,
LightweightMMM) need Python >= 3.12 or JAX (../shared/STACK.md); the model is 13 parameters.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shopseq.errors import InputError

__all__ = [
    "ResponseCurve",
    "ResponseFitConfig",
    "SpendHistory",
    "adstock",
    "fit_response",
    "hill",
    "read_spend_history",
    "steady_kernel",
]

#: The curve's parameters, in the order of ``ResponseCurve.theta`` (natural scale names).
CURVE_PARAMS = ("beta", "decay", "half", "shape")


def adstock(spend: np.ndarray, decay: float, initial: float = 0.0) -> np.ndarray:
    """Geometric carry-over: ``a[t] = spend[t] + decay * a[t - 1]`` (``a[-1] = initial``).

    Args:
        spend: ``(T,)`` spend per period.
        decay: Share carried to the next period, in [0, 1).
        initial: Adstock before the first period.

    Returns:
        ``(T,)`` adstock.
    """
    from scipy.signal import lfilter  # the recursion as an IIR filter: ~100x a Python loop

    x = np.asarray(spend, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    out, _ = lfilter([1.0], [1.0, -decay], x, zi=[decay * initial])
    return np.asarray(out)


def hill(a: np.ndarray, half: float, shape: float) -> np.ndarray:
    """Saturation in [0, 1): ``a^shape / (a^shape + half^shape)``.

    Args:
        a: Adstock (>= 0).
        half: Adstock at half saturation (> 0).
        shape: Steepness (> 0; above 1 the curve is S-shaped).

    Returns:
        Same shape as ``a``.
    """
    ratio = np.power(np.maximum(a, 0.0) / half, shape)
    return np.asarray(ratio / (1.0 + ratio))


@dataclass(frozen=True, slots=True)
class SpendHistory:
    """Spend per target and day.

    Attributes:
        targets: Target names, sorted.
        days: ``(n_days,)`` consecutive days (datetime64[D]) from the first to the last given.
        spend: ``(n_targets, n_days)`` spend (0 where not given).
        source: The file it came from.
    """

    targets: tuple[str, ...]
    days: np.ndarray
    spend: np.ndarray
    source: str = ""

    def on(self, target: str, days: np.ndarray) -> np.ndarray:
        """Spend of one target on the given days (0 outside the history).

        Args:
            target: A target name.
            days: Days (datetime64).

        Returns:
            ``(len(days),)`` spend.
        """
        out = np.zeros(len(days))
        index = self.targets.index(target)
        pos = (np.asarray(days).astype("datetime64[D]") - self.days[0]).astype(np.int64)
        ok = (pos >= 0) & (pos < len(self.days))
        out[ok] = self.spend[index, pos[ok]]
        return out


def read_spend_history(path: Path) -> SpendHistory:
    """Read a spend history CSV with the columns ``date``, ``target``, ``spend``.

    Several rows for one target and day add up; days without a row are zero spend.

    Args:
        path: The CSV file.

    Returns:
        The history.

    Raises:
        InputError: For a missing column or a bad value, naming the file, line and column.
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the spend history: {err}") from err
    reader = csv.DictReader(text.splitlines())
    found = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in ("date", "target", "spend") if c not in found]
    if missing:
        raise InputError(
            f"{path}: missing required columns {missing}; found {found}; expected a header "
            "'date,target,spend'"
        )
    rows: list[tuple[date, str, float]] = []
    for line, raw in enumerate(reader, start=2):  # line 1 is the header
        record = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        try:
            day = date.fromisoformat(record["date"])
        except ValueError:
            raise InputError(
                f"{path}:{line}: column 'date': {record['date']!r} is not a date; expected "
                "YYYY-MM-DD"
            ) from None
        try:
            amount = float(record["spend"])
        except ValueError:
            amount = float("nan")
        if not np.isfinite(amount) or amount < 0:
            raise InputError(
                f"{path}:{line}: column 'spend': {record['spend']!r} is not a non-negative number"
            )
        if not record["target"]:
            raise InputError(f"{path}:{line}: column 'target': empty; expected a target name")
        rows.append((day, record["target"], amount))
    if not rows:
        raise InputError(f"{path}: no spend rows after the header")
    targets = tuple(sorted({r[1] for r in rows}))
    first = np.datetime64(min(r[0] for r in rows), "D")
    last = np.datetime64(max(r[0] for r in rows), "D")
    days = np.arange(first, last + np.timedelta64(1, "D"))
    spend = np.zeros((len(targets), len(days)))
    index = {t: i for i, t in enumerate(targets)}
    for day, target, value in rows:
        spend[index[target], int((np.datetime64(day, "D") - first).astype(np.int64))] += value
    return SpendHistory(targets, days, spend, str(path))


class ResponseFitConfig(BaseModel):
    """How response curves are fitted.

    Attributes:
        level: Interval level (per cent) of the parameters and of the uplift.
        n_starts: Optimiser starts (different carry-over and shape guesses); the best is kept.
        n_draws: Parameter draws from the Laplace approximation for uplift ranges.
        seed: Seed of those draws.
        min_periods: Fewest days with an outcome to fit a curve on.
        threads: BLAS threads while fitting (small matrices: more threads only contend).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: int = Field(default=95, gt=0, lt=100)
    n_starts: int = Field(default=4, ge=1)
    n_draws: int = Field(default=400, ge=20)
    seed: int = 0
    min_periods: int = Field(default=56, ge=14)
    threads: int = Field(default=1, ge=1)


@dataclass(frozen=True, slots=True)
class ResponseCurve:
    """A fitted response of one target's orders to spend.

    Attributes:
        target: Target name.
        beta: Most extra orders per period (at full saturation).
        decay: Carry-over share per period.
        half: Adstock at half saturation (in spend units per period).
        shape: Hill steepness.
        intervals: Parameter -> (low, high) at ``level``.
        level: Interval level.
        theta: Unconstrained curve parameters (log beta, logit decay, log half, log shape).
        cov: ``(4, 4)`` Laplace covariance of ``theta``.
        n_periods: Days fitted.
        identified: Whether the Hessian was positive definite (else intervals are a floor).
        mean_spend: Mean daily spend in the history (for the reason lines).
        baseline: Mean baseline orders per day over the history (no spend at all).
        notes: What to know before trusting the curve.
    """

    target: str
    beta: float
    decay: float
    half: float
    shape: float
    intervals: dict[str, tuple[float, float]]
    level: int
    theta: np.ndarray
    cov: np.ndarray
    n_periods: int
    identified: bool = True
    mean_spend: float = 0.0
    baseline: float = 0.0
    notes: tuple[str, ...] = field(default=())

    def uplift(self, spend: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
        """Extra orders per period of a plan that repeats (the steady state; vs no spend).

        A plan is valued as one period of a plan that recurs: the carry-over into its first
        days comes from its own last days (:func:`steady_kernel`). Valuing it instead as if
        spend stopped after it makes its last days look unsaturated, and an allocator then
        piles money on them.

        Args:
            spend: ``(H,)`` spend per planned period (acting on that period).
            theta: Unconstrained parameters to use (``None``: the fitted ones).

        Returns:
            ``(H,)`` extra orders.
        """
        beta, decay, half, shape = _natural(self.theta if theta is None else theta)
        x = np.asarray(spend, dtype=np.float64)
        return np.asarray(beta * hill(steady_kernel(decay, len(x)) @ x, half, shape))

    def draws(self, n: int, seed: int) -> np.ndarray:
        """Parameter draws from the Laplace approximation.

        Args:
            n: Draws.
            seed: Seed.

        Returns:
            ``(n, 4)`` unconstrained parameters.
        """
        rng = np.random.default_rng(seed)
        return rng.multivariate_normal(self.theta, self.cov, size=n, method="eigh")


def steady_kernel(decay: float, horizon: int) -> np.ndarray:
    """Adstock of a plan repeated forever: ``a = K @ spend`` with a circulant ``K``.

    ``K[t, u] = decay^((t - u) mod H) / (1 - decay^H)``: spend on period ``u`` acts on ``t``
    in this repetition and in every later one.

    Args:
        decay: Carry-over share per period.
        horizon: Periods in the plan.

    Returns:
        ``(horizon, horizon)`` kernel.
    """
    lag = (np.arange(horizon)[:, None] - np.arange(horizon)[None, :]) % horizon
    return np.asarray(decay**lag / (1.0 - decay**horizon))


def _natural(theta: np.ndarray) -> tuple[float, float, float, float]:
    log_beta, logit_decay, log_half, log_shape = (float(v) for v in theta[:4])
    return (
        float(np.exp(log_beta)),
        float(1.0 / (1.0 + np.exp(-logit_decay))),
        float(np.exp(log_half)),
        float(np.exp(log_shape)),
    )


def _design(days: np.ndarray) -> np.ndarray:
    """Baseline design: intercept, trend in [0, 1], weekday dummies (Monday is the reference)."""
    t = np.arange(len(days), dtype=np.float64)
    weekday = (np.asarray(days).astype("datetime64[D]").astype(np.int64) + 3) % 7
    columns = [np.ones(len(days)), t / max(len(days) - 1, 1)]
    columns += [(weekday == d).astype(np.float64) for d in range(1, 7)]
    return np.column_stack(columns)


class _Posterior:
    """Negative log posterior of one target's curve + baseline + dispersion."""

    def __init__(self, spend: np.ndarray, orders: np.ndarray, days: np.ndarray) -> None:
        from scipy.special import gammaln

        self.gammaln = gammaln
        self.spend = spend  # every day: spend on a day without an outcome still carries over
        self.ok = np.isfinite(orders)  # days whose outcome is scored
        self.y = orders[self.ok]
        self.x = _design(days)
        positive = spend[spend > 0]
        self.spend_scale = float(np.median(positive)) if positive.size else 1.0
        self.y_scale = float(np.mean(self.y)) + 1.0
        self.const = gammaln(self.y + 1.0)

    def mean(self, theta: np.ndarray) -> np.ndarray:
        beta, decay, half, shape = _natural(theta)
        base = np.exp(np.clip(self.x @ theta[4:12], -30, 30))
        return np.asarray(base + beta * hill(adstock(self.spend, decay), half, shape))

    def __call__(self, theta: np.ndarray) -> float:
        mu = np.maximum(self.mean(theta)[self.ok], 1e-9)
        phi = float(np.exp(np.clip(theta[12], -10, 15)))
        y, g = self.y, self.gammaln
        loglik = np.sum(
            g(y + phi) - g(phi) - self.const + phi * np.log(phi / (phi + mu))
            + y * np.log(mu / (phi + mu))
        )  # fmt: skip
        # Weak priors (normal on the unconstrained scale): identifiability, not information.
        log_beta, logit_decay, log_half, log_shape = theta[:4]
        prior = (
            ((log_beta - np.log(self.y_scale)) / 2.0) ** 2
            + (logit_decay / 1.5) ** 2
            + ((log_half - np.log(self.spend_scale)) / 1.5) ** 2
            + (log_shape / 0.75) ** 2
            + ((theta[12] - np.log(10.0)) / 3.0) ** 2
            + np.sum((theta[5:12] / 5.0) ** 2)
        ) / 2.0
        return float(-loglik + prior)


def fit_response(
    target: str,
    spend: np.ndarray,
    orders: np.ndarray,
    days: np.ndarray,
    config: ResponseFitConfig,
) -> ResponseCurve:
    """Fit one target's response curve by MAP, with Laplace intervals.

    Args:
        target: Target name.
        spend: ``(T,)`` spend per day.
        orders: ``(T,)`` orders per day (NaN days are left out).
        days: ``(T,)`` the days.
        config: Interval level, starts.

    Returns:
        The fitted curve.

    Raises:
        InputError: With too few days, or no spend at all.
    """
    from threadpoolctl import threadpool_limits

    # OpenBLAS threads spin on these tiny problems: 3x slower on a busy 2-core machine.
    with threadpool_limits(config.threads):
        return _fit_response(target, spend, orders, days, config)


def _fit_response(
    target: str,
    spend: np.ndarray,
    orders: np.ndarray,
    days: np.ndarray,
    config: ResponseFitConfig,
) -> ResponseCurve:
    from scipy.optimize import minimize
    from scipy.stats import norm

    ok = np.isfinite(orders)
    if ok.sum() < config.min_periods:
        raise InputError(
            f"target {target!r}: {int(ok.sum())} days with both spend history and orders; a "
            f"response curve needs at least {config.min_periods}"
        )
    if not np.any(spend > 0):
        raise InputError(f"target {target!r}: the spend history never spends on it")
    post = _Posterior(spend, orders, days)
    objective = post.__call__
    y_ok = post.y
    base0 = np.zeros(8)
    base0[0] = np.log(max(float(np.quantile(y_ok, 0.25)), 0.5))
    best = None
    starts = [(-1.0, 0.0), (0.5, 0.3), (1.5, 0.0), (0.0, 0.7)][: config.n_starts]
    for logit_decay, log_shape in starts:
        theta0 = np.concatenate(
            [
                [np.log(max(float(np.mean(y_ok)) * 0.5, 0.5)), logit_decay,
                 np.log(post.spend_scale * 2.0), log_shape],
                base0,
                [np.log(10.0)],
            ]
        )  # fmt: skip
        found = minimize(objective, theta0, method="L-BFGS-B")
        if best is None or found.fun < best.fun:
            best = found
    if best is None:  # unreachable: n_starts >= 1
        raise InputError("no optimiser start")
    theta = np.asarray(best.x, dtype=np.float64)
    hessian = _hessian(objective, theta)
    notes: list[str] = []
    identified = True
    try:
        cov = np.linalg.inv(hessian)
        eig = np.linalg.eigvalsh((cov + cov.T) / 2)
        if not np.all(eig > 0):
            raise np.linalg.LinAlgError("not positive definite")
    except np.linalg.LinAlgError:
        identified = False
        notes.append("the curve is not identified by this history (flat likelihood)")
        vals, vecs = np.linalg.eigh((hessian + hessian.T) / 2)
        cov = vecs @ np.diag(1.0 / np.maximum(vals, 1e-6)) @ vecs.T
    curve_cov = np.asarray(cov[:4, :4])
    z = float(norm.ppf(0.5 + config.level / 200.0))
    sd = np.sqrt(np.maximum(np.diag(curve_cov), 0.0))
    lo, hi = theta[:4] - z * sd, theta[:4] + z * sd
    lo_nat, hi_nat = _natural(lo), _natural(hi)
    intervals = {name: (lo_nat[i], hi_nat[i]) for i, name in enumerate(CURVE_PARAMS)}
    beta, decay, half, shape = _natural(theta)
    base = np.exp(np.clip(post.x @ theta[4:12], -30, 30))
    return ResponseCurve(
        target=target,
        beta=beta,
        decay=decay,
        half=half,
        shape=shape,
        intervals=intervals,
        level=config.level,
        theta=theta[:4].copy(),
        cov=curve_cov,
        n_periods=int(ok.sum()),
        identified=identified,
        mean_spend=float(np.mean(spend)),
        baseline=float(np.mean(base)),
        notes=tuple(notes),
    )


def _hessian(fun: Callable[[np.ndarray], float], theta: np.ndarray) -> np.ndarray:
    """Central-difference Hessian (the objective is smooth and has 13 parameters)."""
    n = len(theta)
    step = 1e-3 * np.maximum(np.abs(theta), 1.0)
    out = np.empty((n, n))
    f0 = fun(theta)
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.zeros(n), np.zeros(n)
            ei[i], ej[j] = step[i], step[j]
            if i == j:
                value = (fun(theta + ei) - 2 * f0 + fun(theta - ei)) / step[i] ** 2
            else:
                value = (
                    fun(theta + ei + ej) - fun(theta + ei - ej)
                    - fun(theta - ei + ej) + fun(theta - ei - ej)
                ) / (4 * step[i] * step[j])  # fmt: skip
            out[i, j] = out[j, i] = value
    return out


def curve_summary(curve: ResponseCurve) -> dict[str, object]:
    """JSON-ready description of a curve (parameters with their intervals).

    Args:
        curve: A fitted curve.

    Returns:
        Plain values.
    """
    return {
        "target": curve.target,
        "beta": curve.beta,
        "decay": curve.decay,
        "half": curve.half,
        "shape": curve.shape,
        "intervals": {k: list(v) for k, v in curve.intervals.items()},
        "level": curve.level,
        "n_periods": curve.n_periods,
        "identified": curve.identified,
        "mean_spend": curve.mean_spend,
        "baseline": curve.baseline,
        "notes": list(curve.notes),
    }
