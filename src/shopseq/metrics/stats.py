"""Uncertainty of ranking metrics: bootstrap intervals and a paired test between two models.

Both work on per-case metric values (``ranking.metric_per_case``), so any metric at any cut-off
gets an interval, and two models are compared case by case on the very same cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from shopseq.errors import InputError

__all__ = ["PairedTest", "bootstrap_ci", "paired_test"]

# Resample weights are drawn in chunks of this many resamples: one (n_cases, chunk) matrix.
_CHUNK_CELLS = 1 << 23


def _resample_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``values`` (m, n) over ``n_resamples`` bootstrap resamples -> (m, n_resamples)."""
    m, n = values.shape
    chunk = max(1, min(n_resamples, _CHUNK_CELLS // max(n, 1)))
    out = np.empty((m, n_resamples))
    for lo in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - lo)
        # Case multiplicities of each resample; a matrix product then gives every mean at once
        # (much faster than gathering m x n values per resample).
        weights = np.stack(
            [np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(size)], axis=1
        )
        out[:, lo : lo + size] = values @ weights / n
    return out


def bootstrap_ci(
    values: np.ndarray, n_resamples: int = 1000, *, level: float = 0.95, seed: int = 0
) -> np.ndarray:
    """Percentile bootstrap interval of the mean, for one or several per-case value arrays.

    Args:
        values: (n,) or (m, n) per-case values (resampled jointly over cases).
        n_resamples: Bootstrap resamples.
        level: Coverage of the interval.
        seed: Seed of the generator.

    Returns:
        (2,) or (m, 2) lower and upper bounds.

    Raises:
        InputError: If there are no cases or no resamples.
    """
    array = np.asarray(values, dtype=np.float64)
    matrix = array[None, :] if array.ndim == 1 else array
    if matrix.shape[1] == 0 or n_resamples < 1:
        raise InputError(
            f"bootstrap needs cases and resamples; got {matrix.shape[1]} cases and "
            f"{n_resamples} resamples"
        )
    means = _resample_means(matrix, n_resamples, np.random.default_rng(seed))
    alpha = (1.0 - level) / 2.0
    bounds: np.ndarray = np.quantile(means, [alpha, 1.0 - alpha], axis=1).T
    return bounds[0] if array.ndim == 1 else bounds


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Model A against model B on the same cases.

    Attributes:
        mean_a: Mean metric of A.
        mean_b: Mean metric of B.
        diff: ``mean_a - mean_b``.
        ci_low: Lower bound of the 95 % paired-bootstrap interval of ``diff``.
        ci_high: Upper bound.
        p_value: Two-sided p-value of "no difference".
        method: ``permutation`` (paired sign-flip) or ``wilcoxon`` (scipy signed-rank).
        n_cases: Cases compared.
    """

    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    n_cases: int


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    method: Literal["permutation", "wilcoxon"] = "permutation",
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedTest:
    """Test whether two models differ on a metric, case by case.

    ``permutation`` is a paired sign-flip randomisation test: under the null hypothesis each
    per-case difference is as likely positive as negative, so the observed mean difference is
    compared with the means after flipping random signs (p = (1 + #|perm| >= |obs|) / (1 + R)).
    ``wilcoxon`` uses :func:`scipy.stats.wilcoxon` on the non-zero differences. Either way the
    interval of the difference is a paired percentile bootstrap.

    Args:
        a: (n,) per-case metric of model A.
        b: (n,) per-case metric of model B on the same cases.
        method: ``permutation`` or ``wilcoxon``.
        n_resamples: Resamples of the permutation test and the bootstrap.
        seed: Seed.

    Returns:
        The comparison.

    Raises:
        InputError: If the arrays differ in length or are empty, or the method is unknown.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise InputError(
            f"paired_test needs two equally long non-empty case arrays; got {a.shape} and {b.shape}"
        )
    diff = a - b
    observed = float(diff.mean())
    low, high = bootstrap_ci(diff, n_resamples, seed=seed)
    if method == "permutation":
        p_value = _sign_flip_p(diff, observed, n_resamples, np.random.default_rng(seed + 1))
    elif method == "wilcoxon":
        nonzero = diff[diff != 0]
        if len(nonzero) == 0:
            p_value = 1.0
        else:
            from scipy.stats import wilcoxon  # scipy is only needed for this option

            p_value = float(wilcoxon(nonzero).pvalue)
    else:
        raise InputError(f"unknown paired test {method!r}; expected 'permutation' or 'wilcoxon'")
    return PairedTest(
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        diff=observed,
        ci_low=float(low),
        ci_high=float(high),
        p_value=p_value,
        method=method,
        n_cases=len(a),
    )


def _sign_flip_p(
    diff: np.ndarray, observed: float, n_resamples: int, rng: np.random.Generator
) -> float:
    n = len(diff)
    chunk = max(1, min(n_resamples, _CHUNK_CELLS // n))
    extreme = 0
    for lo in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - lo)
        signs = rng.integers(0, 2, size=(n, size), dtype=np.int8) * 2 - 1
        means = diff @ signs / n
        extreme += int(np.count_nonzero(np.abs(means) >= abs(observed) - 1e-12))
    return (1 + extreme) / (1 + n_resamples)
