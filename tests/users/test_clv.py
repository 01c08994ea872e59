"""Customer-base models: published CDNOW values, planted parameters, identities, persistence."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy import integrate, stats

from shopseq.errors import ArtifactError, InputError, NotFittedError
from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
from shopseq.store import Store
from shopseq.users import (
    BGNBD,
    ClvConfig,
    CustomerSummary,
    GammaGamma,
    ParetoNBD,
    clv_intervals,
    customer_lifetime_value,
    customer_summary,
    summarize_transactions,
)

CALIBRATION_END = datetime(1997, 10, 1)  # 39 weeks: 1997-01-01 .. 1997-09-30


def _summary(x, t_x, age, m=None) -> CustomerSummary:
    x = np.asarray(x, float)
    return CustomerSummary(
        pa.array([str(i) for i in range(len(x))]),
        x,
        np.asarray(t_x, float),
        np.asarray(age, float),
        np.zeros(len(x)) if m is None else np.asarray(m, float),
        7.0,
    )


@pytest.fixture(scope="module")
def cdnow(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> CustomerSummary:
    from shopseq.store import open_store

    with open_store(tmp_path_factory.mktemp("cdnow") / "s.duckdb", threads=1) as store:
        config = IngestConfig(layout=BUILTIN_LAYOUTS["cdnow-sample"])
        ingest_files([shared_data / "cdnow" / "CDNOW_sample.txt"], config, store)
        return customer_summary(store.table("events"), CALIBRATION_END)


@pytest.mark.realdata
def test_cdnow_calibration_summary_has_the_published_counts(cdnow: CustomerSummary) -> None:
    assert len(cdnow) == 2357
    assert int((cdnow.frequency > 0).sum()) == 946
    assert cdnow.age.max() == pytest.approx(272 / 7)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("model", "published", "log_likelihood"),
    [
        (BGNBD, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
        (ParetoNBD, {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0),
        (GammaGamma, {"p": 6.25, "q": 3.74, "gamma": 15.44}, -4055.92),
    ],
)
def test_cdnow_fit_matches_the_published_parameters(
    cdnow: CustomerSummary, model, published: dict[str, float], log_likelihood: float
) -> None:
    fitted = model().fit(cdnow)
    assert fitted.converged_
    for name, value in published.items():  # 3 significant digits
        assert float(f"{fitted.params[name]:.3g}") == pytest.approx(float(f"{value:.3g}")), name
    assert fitted.log_likelihood_ == pytest.approx(log_likelihood, abs=0.1)


def test_summary_merges_same_day_purchases_and_skips_the_first_in_spend() -> None:
    ids = np.array(["a", "a", "a", "a", "b", "c"])
    day = np.array([10, 10, 17, 24, 12, 30])
    value = np.array([5.0, 5.0, 30.0, 50.0, 8.0, 99.0])
    summary = summarize_transactions(ids, day, value, last_day=24, unit_days=7.0)
    assert summary.customer_ids.to_pylist() == ["a", "b"]  # c bought after the end
    np.testing.assert_allclose(summary.frequency, [2, 0])
    np.testing.assert_allclose(summary.recency, [2, 0])
    np.testing.assert_allclose(summary.age, [2, 12 / 7])
    np.testing.assert_allclose(summary.monetary, [40.0, 0.0])  # (30 + 50) / 2
    with pytest.raises(InputError, match="one entry per row; got 6, 6 and 2"):
        summarize_transactions(ids, day, value[:2], last_day=24)


def test_store_summary_reads_purchases_before_the_cutoff(store: Store, data_dir: Path) -> None:
    config = IngestConfig(layout=BUILTIN_LAYOUTS["cdnow-sample"])
    ingest_files([data_dir / "layouts" / "cdnow-sample.txt"], config, store)
    summary = customer_summary(store.table("events"), datetime(1997, 1, 19))
    # Customer 0001 bought 1997-01-01 ($29.33) and 1997-01-18 ($29.73).
    assert summary.customer_ids.to_pylist() == ["0001"]
    assert (summary.frequency[0], summary.recency[0], summary.age[0]) == (1.0, 17 / 7, 17 / 7)
    assert summary.monetary[0] == pytest.approx(29.73)
    with pytest.raises(InputError, match="no purchase before 1996-01-01"):
        customer_summary(store.table("events"), datetime(1996, 1, 1))


def _simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, seed: int):
    """Customers of a BG/NBD world observed for 52 weeks from their first purchase."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1 / alpha, n)
    drop = rng.beta(a, b, n)
    age = np.full(n, 52.0)
    t, x, t_x = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():  # one purchase of every live customer per round
        t = t + rng.exponential(1 / np.maximum(rate, 1e-12))
        buys = alive & (t <= age)
        x[buys] += 1
        t_x[buys] = t[buys]
        alive = buys & (rng.random(n) >= drop)
    return _summary(x, t_x, age)


def test_bgnbd_recovers_planted_parameters() -> None:
    truth = {"r": 0.8, "alpha": 5.0, "a": 1.5, "b": 4.0}
    summary = _simulate_bgnbd(20_000, **truth, seed=1)
    fitted = BGNBD().fit(summary)
    for name, value in truth.items():
        assert fitted.params[name] == pytest.approx(value, rel=0.15), name


def test_new_customer_expectation_is_the_conditional_one_at_zero() -> None:
    summary = _simulate_bgnbd(3_000, 0.5, 4.0, 1.2, 3.0, seed=2)
    zero = _summary([0], [0], [0])
    for model in (BGNBD().fit(summary), ParetoNBD().fit(summary)):
        assert model.expected_purchases(10.0, zero)[0] == pytest.approx(
            model.expected_purchases_new(10.0)
        )
        now = model.probability_alive(summary)
        np.testing.assert_allclose(model.probability_alive_ahead(0.0, summary), now)
        later = model.probability_alive_ahead(20.0, summary)
        assert np.all(later <= now + 1e-12)
        more = model.expected_purchases(20.0, summary) - model.expected_purchases(5.0, summary)
        assert np.all(more >= -1e-9)


def test_bgnbd_alive_ahead_matches_numerical_integration() -> None:
    model = BGNBD()
    model.params_ = np.array([0.6, 3.0, 0.9, 2.5])
    r, alpha, a, b = model.params_
    summary = _summary([0, 3, 7], [0, 10, 30], [40, 40, 40])
    got = model.probability_alive_ahead(12.0, summary) / model.probability_alive(summary)
    for i, x in enumerate(summary.frequency):
        age = summary.age[i]
        # E_p[(1 + p t / (alpha + T))^-(r + x)] with p ~ Beta(a, b + x).
        want = integrate.quad(
            lambda p, x=x, age=age: (
                (1 + p * 12.0 / (alpha + age)) ** -(r + x) * stats.beta.pdf(p, a, b + x)
            ),
            0,
            1,
        )[0]
        assert got[i] == pytest.approx(want, rel=1e-6)


def test_bgnbd_probability_alive_is_one_without_repeat_purchases_and_falls_with_silence() -> None:
    model = BGNBD()
    model.params_ = np.array([0.25, 4.4, 0.8, 2.4])
    p = model.probability_alive(_summary([0, 2, 2, 2], [0, 10, 10, 10], [20, 12, 20, 30]))
    assert p[0] == 1.0
    assert p[1] > p[2] > p[3]


def test_update_warm_starts_from_the_last_fit() -> None:
    first = _simulate_bgnbd(4_000, 0.5, 4.0, 1.2, 3.0, seed=3)
    cold = BGNBD().fit(first)
    more = _simulate_bgnbd(4_400, 0.5, 4.0, 1.2, 3.0, seed=3)  # 10 % new customers
    warm = BGNBD().fit(first).update(more)
    scratch = BGNBD().fit(more)
    assert warm.n_iter_ < scratch.n_iter_
    np.testing.assert_allclose(warm.params_, scratch.params_, rtol=1e-3)
    assert cold.n_customers_ == 4_000 and warm.n_customers_ == 4_400


def test_bootstrap_intervals_cover_the_estimate_and_repeat_with_the_seed() -> None:
    summary = _simulate_bgnbd(2_000, 0.5, 4.0, 1.2, 3.0, seed=4)
    summary = CustomerSummary(
        summary.customer_ids,
        summary.frequency,
        summary.recency,
        summary.age,
        np.where(summary.frequency > 0, 20 + summary.frequency, 0.0),
        7.0,
    )
    model = BGNBD().fit(summary)
    draws = model.bootstrap(summary, 30, seed=0)
    low, high = np.quantile(draws, [0.025, 0.975], axis=0)
    assert np.all((low <= model.params_) & (model.params_ <= high))
    np.testing.assert_array_equal(draws, model.bootstrap(summary, 30, seed=0))
    spend = GammaGamma().fit(summary)
    clv = customer_lifetime_value(model, spend, summary)
    lo, hi = clv_intervals(model, spend, summary, n_resamples=20, chunk=700)
    assert np.all(lo <= hi)
    assert np.mean((lo <= clv) & (clv <= hi)) > 0.9


def test_clv_discounts_and_adds_up_the_periods() -> None:
    model = BGNBD()
    model.params_ = np.array([0.25, 4.4, 0.8, 2.4])
    spend = GammaGamma()
    spend.params_ = np.array([6.25, 3.74, 15.44])
    summary = _summary([0, 3], [0, 20], [30, 30], [0.0, 40.0])
    flat = ClvConfig(horizon_periods=1, period_days=70, discount_rate=0.0)
    expected = model.expected_purchases(10.0, summary) * spend.expected_spend(summary)
    np.testing.assert_allclose(customer_lifetime_value(model, spend, summary, flat), expected)
    monthly = ClvConfig(horizon_periods=12, discount_rate=0.0)
    discounted = ClvConfig(horizon_periods=12, discount_rate=0.02)
    undiscounted = customer_lifetime_value(model, spend, summary, monthly)
    assert np.all(customer_lifetime_value(model, spend, summary, discounted) < undiscounted)
    whole = model.expected_purchases(12 * 30 / 7, summary) * spend.expected_spend(summary)
    np.testing.assert_allclose(undiscounted, whole)


def test_gamma_gamma_shrinks_spend_toward_the_population_mean() -> None:
    spend = GammaGamma()
    spend.params_ = np.array([6.25, 3.74, 15.44])
    population = 6.25 * 15.44 / (3.74 - 1)
    got = spend.expected_spend(_summary([0, 1, 20], [0, 1, 1], [1, 1, 1], [0.0, 100.0, 100.0]))
    assert got[0] == pytest.approx(population)
    assert population < got[1] < got[2] < 100.0


def test_models_save_load_and_refuse_misuse(tmp_path: Path) -> None:
    summary = _simulate_bgnbd(1_000, 0.5, 4.0, 1.2, 3.0, seed=5)
    model = ParetoNBD().fit(summary)
    model.save(tmp_path / "pareto")
    loaded = ParetoNBD.load(tmp_path / "pareto")
    np.testing.assert_array_equal(
        loaded.probability_alive(summary), model.probability_alive(summary)
    )
    with pytest.raises(ArtifactError, match="holds a 'ParetoNBD' model, not BGNBD"):
        BGNBD.load(tmp_path / "pareto")
    with pytest.raises(ArtifactError, match="cannot load BGNBD"):
        BGNBD.load(tmp_path / "missing")
    with pytest.raises(NotFittedError, match="BGNBD is not fitted yet"):
        BGNBD().probability_alive(summary)
    with pytest.raises(InputError, match="GammaGamma needs customers to fit on; got none"):
        GammaGamma().fit(_summary([0, 0], [0, 0], [3, 4]))
