"""Every forecaster: the contract, and recovery of a known trend + weekly seasonality."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from shopseq.errors import InputError, NotFittedError
from shopseq.forecast.base import Forecaster
from shopseq.forecast.gbm import LightGBMForecaster, LightGBMForecasterConfig
from shopseq.forecast.intermittent import IntermittentConfig, IntermittentModel
from shopseq.forecast.local import MovingAverage, SeasonalNaive, StatsModel, StatsModelConfig
from shopseq.forecast.mlp import MLPForecaster, MLPForecasterConfig
from shopseq.forecast.series import Freq, Panel

H = 14
FACTORIES: dict[str, Callable[[], Forecaster]] = {
    "seasonal_naive": SeasonalNaive,
    "moving_average": MovingAverage,
    "auto_ets": lambda: StatsModel(StatsModelConfig(kind="auto_ets")),
    "auto_theta": lambda: StatsModel(StatsModelConfig(kind="auto_theta")),
    "auto_ces": lambda: StatsModel(StatsModelConfig(kind="auto_ces")),
    "auto_arima": lambda: StatsModel(StatsModelConfig(kind="auto_arima")),
    "lightgbm": lambda: LightGBMForecaster(LightGBMForecasterConfig(horizon=H, n_estimators=80)),
    "mlp": lambda: MLPForecaster(MLPForecasterConfig(horizon=H, n_epochs=40)),
    **{
        kind: (lambda kind=kind: IntermittentModel(IntermittentConfig(kind=kind)))
        for kind in ("croston", "croston_sba", "tsb", "adida", "imapa")
    },
}


def _truth(n_series: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free trend + weekly seasonality, and the same with small Gaussian noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    level = rng.uniform(50, 200, n_series)[:, None]
    slope = rng.uniform(0.5, 1.5, n_series)[:, None]
    amp = rng.uniform(10, 25, n_series)[:, None]
    phase = rng.integers(0, 7, n_series)[:, None]
    clean = level + slope * t + amp * np.sin(2 * np.pi * (t + phase) / 7)
    return clean, clean + rng.normal(0, 1.0, clean.shape)


def _panel(y: np.ndarray) -> Panel:
    ds = (np.datetime64("2024-01-01") + np.arange(y.shape[1])).astype("datetime64[us]")
    ids = tuple(f"s{i}" for i in range(len(y)))
    return Panel(ids, ds, y, np.zeros_like(y, dtype=bool), Freq.DAY)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_contract(name: str) -> None:
    _, noisy = _truth(5, 120)
    model = FACTORIES[name]()
    with pytest.raises(NotFittedError):
        model.predict(H)
    panel = _panel(noisy)
    fc = model.fit(panel).predict(H, (95, 80))
    assert fc.ids == panel.ids and fc.mean.shape == (5, H)
    np.testing.assert_array_equal(fc.ds, panel.future_ds(H))
    assert sorted(fc.lower) == [80, 95]
    assert np.all(fc.lower[95] <= fc.lower[80] + 1e-9) and np.all(fc.lower[80] <= fc.mean + 1e-9)
    assert np.all(fc.mean <= fc.upper[80] + 1e-9) and np.all(fc.upper[80] <= fc.upper[95] + 1e-9)
    assert np.isfinite(fc.mean).all()
    # Refitting on other data replaces the state.
    again = model.fit(_panel(noisy[:2])).predict(H)
    assert again.mean.shape == (2, H)


@pytest.mark.parametrize(
    "name", ["auto_ets", "auto_theta", "auto_ces", "auto_arima", "lightgbm", "mlp"]
)
def test_recovers_trend_and_weekly_seasonality_well_below_naive(name: str) -> None:
    global_model = name in ("lightgbm", "mlp")  # these learn across series: give them more
    clean, noisy = _truth(12 if global_model else 5, 140 + H, seed=1)
    panel = _panel(noisy[:, :140])
    future = clean[:, 140:]
    fc = FACTORIES[name]().fit(panel).predict(H)
    naive = SeasonalNaive().fit(panel).predict(H)
    error = np.mean(np.abs(fc.mean - future))
    baseline = np.mean(np.abs(naive.mean - future))
    # The Theta method extrapolates half the fitted linear trend by design (Hyndman &
    # Billah 2003), so on a pure linear trend it is held to a weaker bar.
    assert error < (0.75 if name == "auto_theta" else 0.5) * baseline, (name, error, baseline)


@pytest.mark.parametrize("name", ["seasonal_naive", "auto_theta", "lightgbm"])
def test_interval_coverage_is_near_nominal_on_simulated_data(name: str) -> None:
    # Stationary weekly pattern + N(0, 5) noise: every model's interval should be honest.
    rng = np.random.default_rng(2)
    n, length = 60, 112 + H
    t = np.arange(length)
    pattern = rng.uniform(50, 150, (n, 1)) + 20 * np.sin(
        2 * np.pi * (t + rng.integers(0, 7, (n, 1))) / 7
    )
    y = pattern + rng.normal(0, 5.0, (n, length))
    fc = FACTORIES[name]().fit(_panel(y[:, :112])).predict(H)
    actual = y[:, 112:]
    for level, slack in ((80, 0.1), (95, 0.06)):
        inside = np.mean((actual >= fc.lower[level]) & (actual <= fc.upper[level]))
        assert level / 100 - slack <= inside <= min(1.0, level / 100 + slack), (level, inside)


def test_forecasts_of_counts_are_never_negative() -> None:
    y = np.tile([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0], 10)[None, :]
    fc = MovingAverage().fit(_panel(y)).predict(H)
    assert (fc.lower[95] >= 0).all() and (fc.mean >= 0).all()


def test_global_models_refuse_horizons_beyond_their_calibration() -> None:
    _, noisy = _truth(4, 120)
    model = LightGBMForecaster(LightGBMForecasterConfig(horizon=7, n_estimators=10))
    model.fit(_panel(noisy))
    with pytest.raises(InputError, match=r"'horizon' parameter of predict must be <= 7"):
        model.predict(14)


def test_short_history_is_an_input_error_naming_the_need() -> None:
    _, noisy = _truth(2, 40)
    with pytest.raises(InputError, match=r"needs more than 43 periods"):
        LightGBMForecaster().fit(_panel(noisy))


def test_auto_arima_update_keeps_parameters_and_moves_the_origin() -> None:
    _, noisy = _truth(2, 140)
    model = StatsModel(StatsModelConfig(kind="auto_arima"))
    model.fit(_panel(noisy[:, :126]))
    fitted = model.models_
    fc = model.update(_panel(noisy)).predict(H)
    assert model.models_ is fitted  # no refit
    np.testing.assert_array_equal(fc.ds, _panel(noisy).future_ds(H))


def test_event_regressor_lets_arima_and_lightgbm_learn_a_promotion() -> None:
    from datetime import date, timedelta

    rng = np.random.default_rng(3)
    n, length = 6, 180
    y = 100 + rng.normal(0, 2, (n, length))
    start = date(2024, 1, 1)
    promo = tuple(start + timedelta(days=d) for d in (30, 31, 80, 81, 130, 131, 181))
    for d in (30, 31, 80, 81, 130, 131):
        y[:, d] += 60
    panel = _panel(y)
    for model in (
        StatsModel(StatsModelConfig(kind="auto_arima", event_dates=promo)),
        LightGBMForecaster(LightGBMForecasterConfig(horizon=7, event_dates=promo)),
    ):
        fc = model.fit(panel).predict(7)
        lift = fc.mean[:, 1] - fc.mean[:, [0, 2, 3, 4, 5, 6]].mean(axis=1)  # day 181 is a promo
        assert np.all(lift > 30), (type(model).__name__, lift)


def test_mlp_trains_on_the_shared_loop_and_leaves_torch_state_alone() -> None:
    import torch

    from shopseq.runtime import TorchRuntime

    _, noisy = _truth(4, 90)
    before_threads = torch.get_num_threads()
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    model = MLPForecaster(MLPForecasterConfig(horizon=H, n_epochs=3), TorchRuntime(threads=1))
    model.fit(_panel(noisy))
    assert torch.get_num_threads() == before_threads  # the runtime's 1 thread was restored
    assert torch.equal(torch.rand(2), expected)  # the caller's random stream is untouched
    assert [r.epoch for r in model.report_.epochs] == [1, 2, 3]  # the loop's per-epoch records
    assert model.report_.epochs[0].threads == 1
    again = MLPForecaster(MLPForecasterConfig(horizon=H, n_epochs=3)).fit(_panel(noisy))
    np.testing.assert_array_equal(again.predict(H).mean, model.predict(H).mean)  # seeded


def _sparse(n_series: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Intermittent demand: a sale on ~20 % of days, 1-6 units; and its true mean per day."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.1, 0.3, (n_series, 1))
    size = rng.uniform(1.0, 5.0, (n_series, 1))
    sale = rng.random((n_series, length)) < p
    y = np.where(sale, 1 + rng.poisson(size - 1, (n_series, length)), 0).astype(float)
    return y, np.repeat(p * size, H, axis=1)


@pytest.mark.parametrize("kind", ["croston", "croston_sba", "tsb", "adida", "imapa"])
def test_intermittent_models_forecast_the_rate_and_cover_it(kind: str) -> None:
    y, rate = _sparse(40, 140 + H, seed=4)
    panel = _panel(y[:, :140])
    model = IntermittentModel(IntermittentConfig(kind=kind))
    assert model.scope == "intermittent"
    fc = model.fit(panel).predict(H)
    naive = SeasonalNaive().fit(panel).predict(H)
    # Closer to the true daily rate than repeating last week, which is mostly zeros and spikes.
    assert np.mean(np.abs(fc.mean - rate)) < 0.5 * np.mean(np.abs(naive.mean - rate))
    assert (fc.lower[95] >= 0).all()  # counts: clipped at zero
    future = y[:, 140:]
    inside = np.mean((future >= fc.lower[95]) & (future <= fc.upper[95]))
    assert 0.88 <= inside <= 1.0, inside


def test_closed_periods_are_forecast_as_exactly_zero_with_no_width() -> None:
    from shopseq.forecast.calendar import Closures

    _, noisy = _truth(3, 126)
    saturdays = (np.arange(126) % 7) == 5  # 2024-01-01 is a Monday
    y = np.where(saturdays[None, :], 0.0, noisy)
    panel = Panel(
        tuple(f"s{i}" for i in range(3)),
        _panel(y).ds,
        y,
        np.zeros_like(y, dtype=bool),
        Freq.DAY,
        Closures(weekdays=(5,)),
    )
    future_saturday = (np.arange(126, 126 + H) % 7) == 5
    for name in ("seasonal_naive", "auto_theta", "lightgbm", "croston"):
        fc = FACTORIES[name]().fit(panel).predict(H)
        assert fc.closed is not None and fc.closed.tolist() == future_saturday.tolist()
        for values in (fc.mean, fc.lower[80], fc.upper[95]):
            assert np.all(values[:, future_saturday] == 0.0), name
        # Open days are forecast from the open days' level, not dragged down by the zeros.
        assert np.all(fc.mean[:, ~future_saturday] > 0.5 * noisy[:, -7:].mean()), name
