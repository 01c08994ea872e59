"""Rolling-origin backtest with fake forecasters: cut-offs, no future data, selection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import pytest

from shopseq.errors import InputError
from shopseq.forecast.backtest import (
    ENSEMBLE,
    SELECTED,
    BacktestConfig,
    backtest,
    choose_per_series,
    cutoffs,
    interval_factors,
)
from shopseq.forecast.base import Forecast, Forecaster, UpdatableForecaster
from shopseq.forecast.series import Freq, Panel


def _panel(n_series: int = 3, n_periods: int = 60) -> Panel:
    t = np.arange(n_periods, dtype=float)
    y = np.vstack([t + 100 * i for i in range(n_series)])
    ds = (np.datetime64("2024-01-01") + np.arange(n_periods)).astype("datetime64[us]")
    return Panel(tuple(f"s{i}" for i in range(n_series)), ds, y, np.zeros_like(y, bool), Freq.DAY)


class Shift:
    """Forecasts last value + offset; records what it saw."""

    def __init__(self, offset: float, width: float = 1.0) -> None:
        self.offset, self.width = offset, width
        self.seen: list[np.datetime64] = []
        self.n_fit = 0

    def fit(self, panel: Panel) -> Self:
        self.panel_ = panel
        self.seen.append(panel.ds[-1])
        self.n_fit += 1
        return self

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        last = self.panel_.y[:, -1:]
        mean = last + self.offset + np.arange(1, horizon + 1)[None, :]
        w = {lv: np.full_like(mean, self.width) for lv in levels}
        return Forecast(
            self.panel_.ids,
            self.panel_.future_ds(horizon),
            mean,
            {lv: mean - v for lv, v in w.items()},
            {lv: mean + v for lv, v in w.items()},
        )


class UpdatableShift(Shift):
    def update(self, panel: Panel) -> Self:
        self.panel_ = panel
        self.seen.append(panel.ds[-1])
        return self


def test_cutoffs_tile_the_end_of_the_series() -> None:
    cuts = cutoffs(60, 7, BacktestConfig(horizon=7, n_folds=3))
    assert cuts.tolist() == [39, 46, 53]
    cuts = cutoffs(60, 7, BacktestConfig(horizon=7, n_folds=3, step=2))
    assert cuts.tolist() == [49, 51, 53]


def test_too_short_series_name_what_is_needed() -> None:
    with pytest.raises(InputError, match=r"series of 30 periods are too short .* need >= 56"):
        cutoffs(30, 7, BacktestConfig(horizon=14, n_folds=3))


def test_a_long_history_gets_the_most_folds_a_short_one_fewer() -> None:
    config = BacktestConfig(horizon=14)  # up to 6 folds, at least 3
    assert cutoffs(373, 7, config).tolist() == [289, 303, 317, 331, 345, 359]
    # 138 days: 6 folds would leave 54 < 8 weeks at the first cut-off; 5 leave 68.
    assert cutoffs(138, 7, config).tolist() == [68, 82, 96, 110, 124]
    # 70 days: no count above 3 leaves 8 weeks, and 3 leave the 2 weeks min_train asks for.
    assert cutoffs(70, 7, config).tolist() == [28, 42, 56]


def test_fewer_folds_keep_the_history_the_most_demanding_model_needs() -> None:
    config = BacktestConfig(horizon=14)
    # 151 days: 6 folds leave 67, enough for a model needing 63; one needing 70 gets 5 folds.
    assert len(cutoffs(151, 7, config, min_history=63)) == 6
    assert cutoffs(151, 7, config, min_history=70).tolist() == [81, 95, 109, 123, 137]
    # No count leaves 500: the most folds that fit (the model will be skipped by the caller).
    assert len(cutoffs(151, 7, config, min_history=500)) == 6


def test_hourly_logs_of_a_few_days_keep_the_fewest_folds() -> None:
    # 208 hours, horizon 24: 8 daily seasons (192 hours) never fit before a 4th fold.
    assert cutoffs(208, 24, BacktestConfig(horizon=24)).tolist() == [136, 160, 184]
    roomy = BacktestConfig(horizon=24, min_train_more_folds=48)
    assert len(cutoffs(208, 24, roomy)) == 6


def test_an_explicit_fold_count_at_or_below_the_minimum_is_exact() -> None:
    assert len(cutoffs(373, 7, BacktestConfig(horizon=14, n_folds=3))) == 3
    assert len(cutoffs(373, 7, BacktestConfig(horizon=14, n_folds=2))) == 2
    with pytest.raises(InputError, match=r"too short for 3 folds"):
        cutoffs(55, 7, BacktestConfig(horizon=14))


def test_folds_never_see_the_periods_they_forecast() -> None:
    panel = _panel()
    model = Shift(0.0)
    config = BacktestConfig(horizon=7, n_folds=3)
    result = backtest(panel, {"shift": model}, config)
    cuts = cutoffs(panel.n_periods, 7, config)
    for f, cut in enumerate(cuts):
        assert model.seen[f] == panel.ds[cut - 1]  # the model saw up to the cut-off
        fc = result.forecasts["shift"][f]
        assert fc is not None and fc.ds[0] == panel.ds[cut]  # and forecast from the next period
        assert fc.ds[0] > model.seen[f]
    np.testing.assert_array_equal(result.cutoff_ds, panel.ds[cuts - 1])


def test_perfect_model_scores_zero_and_beats_the_baseline() -> None:
    panel = _panel()
    result = backtest(
        panel, {"seasonal_naive": Shift(5.0), "exact": Shift(0.0)}, BacktestConfig(horizon=7)
    )
    board = {row["model"]: row for row in result.leaderboard().iter_rows(named=True)}
    assert board["exact"]["mase"] == 0.0
    assert board["exact"]["beats_baseline"] == 1.0
    assert board["exact"]["coverage-80"] == 1.0
    assert board["seasonal_naive"]["coverage-80"] == 0.0  # always 5 off, width 1
    # Nested selection: no choice at fold 0, then the exact model everywhere.
    assert result.forecasts[SELECTED][0] is None
    assert board[SELECTED]["mase"] == 0.0 and board[SELECTED]["folds"] == "2,3"
    assert ENSEMBLE in board
    scores = result.scores()
    assert set(scores["model"].unique()) == {"seasonal_naive", "exact", SELECTED, ENSEMBLE}


def test_interval_recalibration_widens_too_narrow_and_narrows_too_wide_intervals() -> None:
    panel = _panel()
    result = backtest(panel, {"off": Shift(2.0, width=1.0)}, BacktestConfig(horizon=7))
    factors = interval_factors(result, "off")
    assert factors[80] == pytest.approx(2.0)  # errors are exactly 2 half-widths
    wide = backtest(panel, {"wide": Shift(0.5, width=10.0)}, BacktestConfig(horizon=7))
    assert interval_factors(wide, "wide")[80] == pytest.approx(0.05)  # 0.5 off, half-width 10


def test_no_refit_models_are_fitted_once_then_updated() -> None:
    panel = _panel()
    model = UpdatableShift(0.0)
    assert isinstance(model, UpdatableForecaster) and isinstance(model, Forecaster)
    config = BacktestConfig(horizon=7, n_folds=3, no_refit=frozenset({"u"}))
    backtest(panel, {"u": model}, config)
    assert model.n_fit == 1 and len(model.seen) == 3


def test_gap_periods_are_not_scored() -> None:
    panel = _panel(1)
    gap = panel.gap.copy()
    gap[0, -7:] = True
    y = panel.y.copy()
    y[0, -7:] = np.nan
    result = backtest(
        Panel(panel.ids, panel.ds, y, gap, Freq.DAY), {"m": Shift(0.0)}, BacktestConfig(horizon=7)
    )
    assert np.isnan(result.metric("mase", "m")[-1, 0])
    assert np.isfinite(result.metric("mase", "m")[0, 0])


def test_a_series_gapped_in_every_test_window_does_not_break_the_leaderboard() -> None:
    panel = _panel(2)
    y, gap = panel.y.copy(), panel.gap.copy()
    y[1, 39:], gap[1, 39:] = np.nan, True
    result = backtest(
        Panel(panel.ids, panel.ds, y, gap, Freq.DAY),
        {"seasonal_naive": Shift(1.0), "exact": Shift(0.0)},
        BacktestConfig(horizon=7),
    )
    board = {row["model"]: row for row in result.leaderboard().iter_rows(named=True)}
    assert board["exact"]["mase"] == 0.0  # series 0 only; series 1 has nothing to score
    assert np.isnan(result.per_series("mase")["exact"][1])


class Scripted:
    """Forecasts the truth plus a per-fold offset (fold = how many times it was fitted)."""

    def __init__(self, offsets: Sequence[float], truth: np.ndarray, scope: str = "any") -> None:
        self.offsets, self.truth, self.scope = list(offsets), truth, scope
        self.fold = -1

    def fit(self, panel: Panel) -> Self:
        self.panel_ = panel
        self.fold += 1
        return self

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        t = self.panel_.n_periods
        mean = self.truth[:, t : t + horizon] + self.offsets[self.fold % len(self.offsets)]
        return Forecast(
            self.panel_.ids,
            self.panel_.future_ds(horizon),
            mean,
            {lv: mean - 1.0 for lv in levels},
            {lv: mean + 1.0 for lv in levels},
        )


def test_every_leaderboard_row_is_scored_on_the_same_folds() -> None:
    panel = _panel(1)
    # 'lucky' is perfect on the first fold only; seasonal_naive is 1 off everywhere.
    models = {
        "seasonal_naive": Scripted([1.0, 1.0, 1.0], panel.y),
        "lucky": Scripted([0.0, 4.0, 4.0], panel.y),
    }
    result = backtest(panel, models, BacktestConfig(horizon=7))
    assert result.common_folds().tolist() == [1, 2]  # derived rows have no first fold
    like = {r["model"]: r for r in result.leaderboard().iter_rows(named=True)}
    own = {r["model"]: r for r in result.leaderboard(like_for_like=False).iter_rows(named=True)}
    scale = result.scale[1:, 0].mean()  # the scale of the folds scored
    assert like["lucky"]["mase"] == pytest.approx(4.0 / scale, rel=1e-9)
    assert like["lucky"]["folds"] == like[SELECTED]["folds"] == "2,3"
    # Scored on its own three folds, the lucky first fold would flatter it.
    assert own["lucky"]["folds"] == "1,2,3" and own["lucky"]["mase"] < like["lucky"]["mase"]


def test_closed_periods_are_neither_scored_nor_in_the_mase_scale() -> None:
    from shopseq.forecast.calendar import Closures

    base = _panel(1, 63)  # 2024-01-01 is a Monday
    y = base.y.copy()
    sundays = (np.arange(63) % 7) == 6
    y[0, sundays] = 0.0
    panel = Panel(base.ids, base.ds, y, base.gap, Freq.DAY, Closures(weekdays=(6,)))
    truth = np.where(sundays[None, :], 1000.0, y)  # wrong only on the closed days
    result = backtest(panel, {"m": Scripted([0.0], truth)}, BacktestConfig(horizon=7))
    assert np.all(result.metric("mase", "m") == 0.0)
    assert not result.mask[:, 0, :][:, sundays[result.cutoffs[0] : result.cutoffs[0] + 7]].any()
    # The scale is the mean weekly difference of open days: exactly 7 for this linear trend.
    np.testing.assert_allclose(result.scale, 7.0)


def test_intermittent_models_are_candidates_only_for_intermittent_series() -> None:
    n = 70
    y = np.vstack([np.full(n, 5.0), np.where(np.arange(n) % 4 == 0, 3.0, 0.0)])
    ds = (np.datetime64("2024-01-01") + np.arange(n)).astype("datetime64[us]")
    panel = Panel(("dense", "sparse"), ds, y, np.zeros_like(y, bool), Freq.DAY)
    models = {
        "seasonal_naive": Scripted([1.0], y),
        "croston_like": Scripted([0.0], y, scope="intermittent"),  # perfect everywhere
    }
    result = backtest(panel, models, BacktestConfig(horizon=7))
    assert result.intermittent[:, 0].tolist() == [False] * 3
    assert result.intermittent[:, 1].tolist() == [True] * 3
    chosen = choose_per_series(result)[:, 0].tolist()
    assert chosen == [0, 1]  # seasonal naive for the dense series despite its worse score
    ensemble_choice = choose_per_series(result, k=2)
    assert ensemble_choice[0].tolist() == [0, 0]  # one candidate: repeated, never the other


class NeedsHistory(Shift):
    def min_periods(self, season_length: int) -> int:
        return 70


def test_backtest_chooses_the_fold_count_that_keeps_every_model() -> None:
    panel = _panel(n_periods=151)
    models = {"seasonal_naive": Shift(1.0), "long": NeedsHistory(0.0)}
    result = backtest(panel, models, BacktestConfig(horizon=14))
    assert result.cutoffs.tolist() == [81, 95, 109, 123, 137]
    assert min(models["long"].seen) == panel.ds[80]  # its first fit saw 81 periods
    assert result.common_folds().tolist() == [1, 2, 3, 4]
