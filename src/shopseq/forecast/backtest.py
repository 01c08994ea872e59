"""Rolling-origin backtests of forecasters, per-series selection, ensembles and a leaderboard.

At each cut-off a model sees only ``panel.head(cutoff)`` -- the periods before the cut-off -- and
forecasts the next ``horizon`` periods, which are then scored (gap and closed periods excluded:
a gap's truth is unknown, a closed day's forecast is certain). Cut-offs are ``step`` periods
apart and the last one leaves exactly ``horizon`` periods for scoring.

Two derived rows are scored without peeking: at fold ``f`` the ``selected`` row uses, per series,
the model with the lowest mean MASE over folds ``< f``, and the ``ensemble`` row averages the
``ensemble_size`` best of them; both therefore have no forecast for the first fold. Their
intervals are the members' intervals recalibrated on folds ``< f`` (:func:`interval_factors`:
each model's half-widths are scaled, wider or narrower, so that its past errors fall inside as
often as nominal), so the coverage they report is what the final, calibrated forecast can expect.

Candidates per series: intermittent-demand models (``scope = "intermittent"``) are chosen only
for series that are intermittent in the history before the cut-off (``forecast.base.suits``).

The leaderboard is **like for like**: every row is scored on the same folds (those all rows
have, i.e. from the second fold on when derived rows are present), so no row is judged on easier
or harder weeks than another; ``BacktestResult.leaderboard(like_for_like=False)`` scores each
row on all of its own folds instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopseq.errors import InputError
from shopseq.forecast.base import (
    Forecast,
    Forecaster,
    UpdatableForecaster,
    check_levels,
    intermittent_series,
    min_periods,
    scope_of,
    suits,
)
from shopseq.forecast.series import Panel
from shopseq.metrics.forecasting import coverage, mase, mase_scale, rmse, smape

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "ENSEMBLE",
    "SELECTED",
    "BacktestConfig",
    "BacktestResult",
    "backtest",
    "calibrated_combination",
    "candidates",
    "choose_per_series",
    "combine",
    "cutoffs",
    "interval_factors",
    "model_cutoffs",
    "rescale_intervals",
]

SELECTED = "selected"
ENSEMBLE = "ensemble"


class BacktestConfig(BaseModel):
    """How to backtest.

    Attributes:
        horizon: Periods forecast at each cut-off.
        n_folds: Most cut-offs. A shorter history gets fewer (:func:`cutoffs`), down to
            ``min_folds``. More folds give the per-series choice more weeks to judge on: on the
            real daily logs, choosing on one or two 14-day folds picked models that lost on the
            next weeks (UCI Online Retail purchases before Christmas; docs/forecast.md).
        min_folds: Fewest cut-offs (a history too short for them is refused).
        min_train_more_folds: Fewest training periods at the first cut-off for any fold count
            above ``min_folds`` (``None``: 8 seasons). A fold whose models saw only a few
            seasons ranks them for short histories: on the hourly logs of a few days
            (docs/forecast.md), choosing on such early folds picked worse models than on the
            last ones alone, while on the daily logs (months of history) the extra folds helped.
        step: Periods between cut-offs (``None``: the horizon, so test windows tile).
        levels: Interval levels (per cent).
        no_refit: Models fitted at the first cut-off only and then updated with the new history
            keeping their parameters (when they support it; others are refitted anyway).
        min_train: Fewest training periods at the first cut-off (``None``: two seasons).
        ensemble_size: Models averaged per series in the ``ensemble`` row.
        baseline: The model others are compared with (share of series beaten).
        intermittent_adi: A series is intermittent (and intermittent-demand models become its
            candidates) when its average interval between non-zero periods exceeds this
            (Syntetos-Boylan's 1.32: about a quarter of the periods empty, or more).
        intermittent_window: Recent periods that classification looks at (``None``: 8 seasons).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon: int = Field(default=14, ge=1)
    n_folds: int = Field(default=6, ge=1)
    min_folds: int = Field(default=3, ge=1)
    min_train_more_folds: int | None = Field(default=None, ge=2)
    step: int | None = Field(default=None, ge=1)
    levels: tuple[int, ...] = (80, 95)
    no_refit: frozenset[str] = frozenset()
    min_train: int | None = Field(default=None, ge=2)
    ensemble_size: int = Field(default=3, ge=1)
    baseline: str = "seasonal_naive"
    intermittent_adi: float = Field(default=1.32, ge=1.0)
    intermittent_window: int | None = Field(default=None, ge=2)

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return check_levels(value)


def cutoffs(
    n_periods: int, season_length: int, config: BacktestConfig, *, min_history: int = 0
) -> np.ndarray:
    """Training lengths at each cut-off (fold ``f`` trains on periods ``[0, cutoffs[f])``).

    As many cut-offs as the history holds, from ``config.n_folds`` down to ``config.min_folds``
    (never more than ``n_folds``): the most folds whose first cut-off leaves ``min_history``
    periods (the longest history a model needs, so no model is dropped for more folds) and at
    least ``min_train`` (``min_train_more_folds`` for a count above ``min_folds``); when no fold
    count leaves ``min_history``, the most folds that leave those (the model that needs more is
    then skipped by the caller).

    Args:
        n_periods: Length of the panel.
        season_length: Seasonal period (sets the default ``min_train``).
        config: Horizon, folds and step.
        min_history: Periods the most demanding model needs at the first cut-off.

    Returns:
        ``(n_folds,)`` increasing training lengths.

    Raises:
        InputError: If the panel is too short for ``min_folds`` folds.
    """
    step = config.step or config.horizon
    last = n_periods - config.horizon
    min_train = config.min_train or 2 * season_length
    fewest = min(config.min_folds, config.n_folds)
    counts = range(config.n_folds, fewest - 1, -1)
    more_train = config.min_train_more_folds or 8 * season_length
    fits = [
        f for f in counts if last - step * (f - 1) >= (min_train if f <= fewest else more_train)
    ]
    if not fits:
        needed = min_train + config.horizon + step * (fewest - 1)
        raise InputError(
            f"series of {n_periods} periods are too short for {fewest} folds of horizon "
            f"{config.horizon} (step {step}) with at least {min_train} training periods; need "
            f">= {needed} periods: use fewer folds, a shorter horizon or an hourly frequency"
        )
    roomy = [f for f in fits if last - step * (f - 1) >= min_history]
    n_folds = roomy[0] if roomy else fits[0]
    return (last - step * np.arange(n_folds - 1, -1, -1)).astype(np.int64)


def model_cutoffs(
    panel: Panel, models: Mapping[str, Forecaster], config: BacktestConfig
) -> np.ndarray:
    """:func:`cutoffs` for ``panel`` that leave, where they can, every model's history.

    Args:
        panel: The series.
        models: The line-up (each model's :func:`~shopseq.forecast.base.min_periods`).
        config: Horizon, folds and step.

    Returns:
        The training lengths at each cut-off.
    """
    need = max((min_periods(model, panel) for model in models.values()), default=0)
    return cutoffs(panel.n_periods, panel.season_length, config, min_history=need)


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Everything a backtest produced.

    Attributes:
        ids: Series ids.
        cutoffs: ``(n_folds,)`` training lengths.
        cutoff_ds: ``(n_folds,)`` start of the last training period at each cut-off.
        actual: ``(n_folds, n_series, horizon)`` true values (NaN at gaps).
        mask: Same shape: True where a point is scored.
        scale: ``(n_folds, n_series)`` MASE scales from each fold's training history.
        forecasts: Model -> fold forecasts (``None`` for folds a derived row does not score).
        seconds: Model -> fit + predict wall time over all folds.
        cpu_seconds: Model -> the same in CPU time of this process (robust to a busy machine).
        failures: Model -> number of series-folds it could not fit (it then fell back to the
            seasonal naive forecast; reported, never hidden).
        levels: Interval levels.
        intermittent: ``(n_folds, n_series)`` whether each series was intermittent in the history
            before each cut-off (``None``: never).
        scopes: Model -> ``any`` or ``intermittent`` (which series it is a candidate for).
    """

    ids: tuple[str, ...]
    cutoffs: np.ndarray
    cutoff_ds: np.ndarray
    actual: np.ndarray
    mask: np.ndarray
    scale: np.ndarray
    forecasts: dict[str, list[Forecast | None]]
    seconds: dict[str, float]
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    levels: tuple[int, ...] = (80, 95)
    intermittent: np.ndarray | None = None
    scopes: dict[str, str] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        """Model names (derived rows last)."""
        return list(self.forecasts)

    def metric(self, name: str, model: str) -> np.ndarray:
        """One metric for one model.

        Args:
            name: ``mase``, ``smape``, ``rmse`` or ``coverage-<level>``.
            model: Model name.

        Returns:
            ``(n_folds, n_series)`` values, NaN where the fold is not scored.
        """
        out = np.full(self.scale.shape, np.nan)
        for f, fc in enumerate(self.forecasts[model]):
            if fc is None:
                continue
            a, m = self.actual[f], self.mask[f]
            if name == "mase":
                out[f] = mase(a, fc.mean, self.scale[f], m)
            elif name == "smape":
                out[f] = smape(a, fc.mean, m)
            elif name == "rmse":
                out[f] = rmse(a, fc.mean, m)
            elif name.startswith("coverage-"):
                level = int(name.removeprefix("coverage-"))
                out[f] = coverage(a, fc.lower[level], fc.upper[level], m)
            else:
                raise InputError(f"unknown metric {name!r}; expected mase, smape, rmse, coverage-L")
        return out

    def scores(self) -> pl.DataFrame:
        """One row per model, series and scored fold.

        Returns:
            Columns ``model, unique_id, fold, cutoff, mase, smape, rmse, coverage-<level>...``.
        """
        import polars as pl  # the forecast extra; only the frame outputs need it

        names = ["mase", "smape", "rmse", *(f"coverage-{lv}" for lv in self.levels)]
        frames = []
        n_folds, n = self.scale.shape
        for model in self.forecasts:
            values = {name: self.metric(name, model).reshape(-1) for name in names}
            frame = pl.DataFrame(
                {
                    "model": [model] * (n_folds * n),
                    "unique_id": list(self.ids) * n_folds,
                    "fold": np.repeat(np.arange(n_folds), n),
                    "cutoff": np.repeat(self.cutoff_ds, n),
                    **values,
                }
            )
            frames.append(frame.filter(pl.col("mase").is_not_nan()))
        return pl.concat(frames)

    def per_series(self, name: str = "mase") -> dict[str, np.ndarray]:
        """Mean over scored folds of one metric, per model and series.

        Args:
            name: Metric name.

        Returns:
            Model -> ``(n_series,)``.
        """
        out = {}
        for model in self.forecasts:
            values = self.metric(name, model)
            ok = np.isfinite(values)
            out[model] = np.where(
                ok.any(axis=0), np.where(ok, values, 0).sum(0) / np.maximum(ok.sum(0), 1), np.nan
            )
        return out

    def common_folds(self) -> np.ndarray:
        """Folds every row has a forecast for (the like-for-like folds).

        Returns:
            Fold indices.
        """
        have = np.array([[fc is not None for fc in folds] for folds in self.forecasts.values()])
        return np.flatnonzero(have.all(axis=0))

    def leaderboard(
        self, baseline: str = "seasonal_naive", *, like_for_like: bool = True
    ) -> pl.DataFrame:
        """Mean metrics per model, best MASE first.

        ``beats_baseline`` is the share of series whose mean MASE is below the baseline's.

        Args:
            baseline: Model the others are compared with.
            like_for_like: Score every row on the same folds (:meth:`common_folds`); ``False``
                scores each row on all its own folds (then pairs are compared on the folds
                both scored).

        Returns:
            One row per model; ``folds`` says which folds (1-based) were scored.
        """
        import polars as pl  # the forecast extra; only the frame outputs need it

        keep = np.zeros(len(self.cutoffs), dtype=bool)
        keep[self.common_folds() if like_for_like else np.arange(len(self.cutoffs))] = True

        def scored(name: str, model: str) -> np.ndarray:
            values = self.metric(name, model)
            values[~keep] = np.nan
            return values

        rows = []
        base = scored("mase", baseline) if baseline in self.forecasts else None
        for model in self.forecasts:
            row: dict[str, object] = {"model": model}
            m = scored("mase", model)
            row["mase"] = _finite_mean(m)
            row["mase_median"] = _finite_median(m)
            row["smape"] = _finite_mean(scored("smape", model))
            row["rmse"] = _finite_mean(scored("rmse", model))
            for level in self.levels:
                row[f"coverage-{level}"] = float(_finite_mean(scored(f"coverage-{level}", model)))
            if base is not None:
                row["beats_baseline"] = _share_better(m, base)
            folds = [f + 1 for f, fc in enumerate(self.forecasts[model]) if fc is not None]
            row["folds"] = ",".join(str(f) for f in folds if keep[f - 1])
            row["seconds"] = self.seconds.get(model, 0.0)
            row["cpu_seconds"] = self.cpu_seconds.get(model, 0.0)
            row["failures"] = self.failures.get(model, 0)
            rows.append(row)
        return pl.DataFrame(rows).sort("mase", nulls_last=True)


def _finite_mean(values: np.ndarray) -> float:
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def _finite_median(values: np.ndarray) -> float:
    ok = np.isfinite(values)
    return float(np.median(values[ok])) if ok.any() else float("nan")


def _column_means(values: np.ndarray) -> np.ndarray:
    """Mean of the finite values per column (NaN for a column without any), without warnings."""
    ok = np.isfinite(values)
    total = np.where(ok, values, 0.0).sum(axis=0)
    return np.where(ok.any(axis=0), total / np.maximum(ok.sum(axis=0), 1), np.nan)


def _share_better(model: np.ndarray, baseline: np.ndarray) -> float:
    both = np.isfinite(model) & np.isfinite(baseline)
    series = both.any(axis=0)
    if not series.any():
        return float("nan")
    a = np.where(both, model, 0).sum(0) / np.maximum(both.sum(0), 1)
    b = np.where(both, baseline, 0).sum(0) / np.maximum(both.sum(0), 1)
    return float(np.mean(a[series] < b[series]))


def backtest(
    panel: Panel, models: Mapping[str, Forecaster], config: BacktestConfig
) -> BacktestResult:
    """Rolling-origin cross-validation of every model on every series.

    Args:
        panel: The series (gaps are imputed for fitting and skipped when scoring).
        models: Name -> forecaster.
        config: Horizon, folds, levels and refit policy.

    Returns:
        Forecasts per fold and model, with the derived ``selected`` and ``ensemble`` rows.

    Raises:
        InputError: If there are no models or the panel is too short.
    """
    if not models:
        raise InputError("backtest needs at least one model")
    cuts = model_cutoffs(panel, models, config)
    h, levels = config.horizon, config.levels
    n_folds = len(cuts)
    closed = panel.closed
    actual = np.stack([panel.y[:, c : c + h] for c in cuts])
    mask = np.stack([~panel.gap[:, c : c + h] & ~closed[None, c : c + h] for c in cuts])
    mask &= np.isfinite(actual)
    # The MASE scale is the seasonal difference of open periods only (closed ones are NaN).
    open_y = np.where(closed[None, :], np.nan, panel.y)
    scale = np.stack([mase_scale(open_y[:, :c], panel.season_length) for c in cuts])
    window = config.intermittent_window or 8 * panel.season_length
    intermittent = np.stack(
        [intermittent_series(panel.head(int(c)), config.intermittent_adi, window) for c in cuts]
    )
    forecasts: dict[str, list[Forecast | None]] = {}
    seconds: dict[str, float] = {}
    cpu_seconds: dict[str, float] = {}
    failures: dict[str, int] = {}
    for name, model in models.items():
        started, cpu_started = time.perf_counter(), time.process_time()
        folds: list[Forecast | None] = []
        n_failed = 0
        for f, cut in enumerate(cuts):
            history = panel.head(int(cut))
            if f > 0 and name in config.no_refit and isinstance(model, UpdatableForecaster):
                model.update(history)
            else:
                model.fit(history)
            folds.append(model.predict(h, levels))
            n_failed += int(getattr(model, "n_failed_", 0) or 0)
        seconds[name] = time.perf_counter() - started
        cpu_seconds[name] = time.process_time() - cpu_started
        forecasts[name] = folds
        failures[name] = n_failed
    result = BacktestResult(
        ids=panel.ids,
        cutoffs=cuts,
        cutoff_ds=panel.ds[cuts - 1],
        actual=actual,
        mask=mask,
        scale=scale,
        forecasts=forecasts,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        failures=failures,
        levels=levels,
        intermittent=intermittent,
        scopes={name: scope_of(model) for name, model in models.items()},
    )
    if len(models) > 1 and n_folds > 1:
        forecasts[SELECTED], forecasts[ENSEMBLE] = _nested_selection(result, config.ensemble_size)
    return result


def candidates(result: BacktestResult, intermittent: np.ndarray) -> np.ndarray:
    """Which base models may be chosen for each series.

    Args:
        result: A backtest.
        intermittent: ``(n_series,)`` whether each series is intermittent.

    Returns:
        ``(n_models, n_series)`` bool over the base models (derived rows excluded); a series
        no model suits keeps every model.
    """
    base = [m for m in result.forecasts if m not in (SELECTED, ENSEMBLE)]
    ok = np.stack([suits(result.scopes.get(m, "any"), intermittent) for m in base])
    ok[:, ~ok.any(axis=0)] = True
    return ok


def choose_per_series(
    result: BacktestResult,
    *,
    upto_fold: int | None = None,
    k: int = 1,
    intermittent: np.ndarray | None = None,
) -> np.ndarray:
    """The ``k`` best candidate models per series by mean MASE over the backtest folds.

    Args:
        result: A backtest.
        upto_fold: Use folds ``< upto_fold`` only (``None``: all folds).
        k: Models per series (fewer candidates: the best ones repeat).
        intermittent: ``(n_series,)`` which series are intermittent (``None``: as classified at
            fold ``upto_fold``, or at the last fold).

    Returns:
        ``(n_series, k)`` indices into the base models (derived rows excluded), best first.
    """
    base = [m for m in result.forecasts if m not in (SELECTED, ENSEMBLE)]
    n_folds = len(result.cutoffs)
    stop = n_folds if upto_fold is None else upto_fold
    if intermittent is None:
        flags = result.intermittent
        where = min(stop, n_folds - 1)
        intermittent = (
            np.zeros(len(result.ids), dtype=bool) if flags is None else np.asarray(flags[where])
        )
    scores = np.stack([_column_means(result.metric("mase", m)[:stop]) for m in base])
    scores = np.where(np.isfinite(scores), scores, np.inf)  # (n_models, n_series)
    ok = candidates(result, intermittent)  # (n_models, n_series)
    # Non-candidates sort after every candidate, even one that never scored (inf).
    rank = np.where(ok, 0, 1)
    order = np.lexsort((scores, rank), axis=0)  # (n_models, n_series)
    n_ok = ok.sum(axis=0)  # (n_series,)
    # Fewer candidates than k: cycle through the candidates instead of taking excluded models.
    pick = np.arange(k)[None, :] % np.maximum(n_ok, 1)[:, None]  # (n_series, k)
    return np.asarray(order.T[np.arange(len(result.ids))[:, None], pick])


def interval_factors(
    result: BacktestResult, model: str, *, upto_fold: int | None = None
) -> dict[int, float]:
    """Factors that bring a model's intervals to nominal coverage on past folds.

    Per level: the conformal quantile (rank ``ceil((n + 1) q)``) of
    ``|actual - centre| / half-width`` over the scored points of folds ``< upto_fold`` (all
    folds when ``None``), pooled across series; a closed or zero-width point says nothing. A
    factor above 1 widens (the model's own intervals were too narrow: most model-based ones on
    the real logs), below 1 narrows (too wide).

    Args:
        result: A backtest.
        model: A base model.
        upto_fold: Use folds before this one only.

    Returns:
        Level -> factor (1.0 when fewer than 10 points can be used).
    """
    stop = len(result.cutoffs) if upto_fold is None else upto_fold
    out: dict[int, float] = {}
    for level in result.levels:
        ratios = []
        for f, fc in enumerate(result.forecasts[model][:stop]):
            if fc is None:
                continue
            half = (fc.upper[level] - fc.lower[level]) / 2.0
            centre = (fc.upper[level] + fc.lower[level]) / 2.0
            ok = result.mask[f] & (half > 0)
            ratios.append(np.abs(result.actual[f] - centre)[ok] / half[ok])
        values = np.concatenate(ratios) if ratios else np.empty(0)
        if values.size < 10:
            out[level] = 1.0
            continue
        rank = min(int(np.ceil((values.size + 1) * level / 100.0)), values.size)
        out[level] = float(np.sort(values)[rank - 1])
    return out


def calibrated_combination(
    result: BacktestResult, members: Sequence[Forecast], choice: np.ndarray, upto_fold: int
) -> Forecast:
    """Calibrate each member's intervals on folds ``< upto_fold``, then combine per ``choice``.

    Measured on the real logs (docs/BENCHMARKS.md), calibrating each member on its own past
    errors and averaging the bounds came closest to nominal coverage; calibrating the averaged
    combination instead under-covered (the members were chosen on those same folds, so the
    combination's past errors look smaller than its future ones), and only ever widening
    over-covered by about ten points at 80 %.

    Args:
        result: A backtest.
        members: One forecast per base model (same order as the backtest's base models).
        choice: ``(n_series, k)`` model indices per series.
        upto_fold: Folds ``< upto_fold`` calibrate.

    Returns:
        The combined forecast.
    """
    base = [m for m in result.forecasts if m not in (SELECTED, ENSEMBLE)]
    scaled = [
        rescale_intervals(fc, interval_factors(result, m, upto_fold=upto_fold))
        for m, fc in zip(base, members, strict=True)
    ]
    return combine(scaled, choice)


def rescale_intervals(forecast: Forecast, factors: dict[int, float]) -> Forecast:
    """Scale each level's interval around its centre by ``factors[level]``.

    Args:
        forecast: A forecast.
        factors: Level -> factor (from :func:`interval_factors`).

    Returns:
        The forecast with rescaled intervals (bounds kept >= 0 where they were).
    """
    lower, upper = {}, {}
    for level in forecast.lower:
        lo, hi = forecast.lower[level], forecast.upper[level]
        centre, half = (lo + hi) / 2.0, (hi - lo) / 2.0 * factors.get(level, 1.0)
        floor = np.where(lo >= 0, 0.0, -np.inf)
        lower[level] = np.maximum(centre - half, floor)
        upper[level] = centre + half
    return Forecast(forecast.ids, forecast.ds, forecast.mean, lower, upper, forecast.closed)


def _nested_selection(
    result: BacktestResult, ensemble_size: int
) -> tuple[list[Forecast | None], list[Forecast | None]]:
    base = [m for m in result.forecasts if m not in (SELECTED, ENSEMBLE)]
    selected: list[Forecast | None] = [None]
    ensemble: list[Forecast | None] = [None]
    k = min(ensemble_size, len(base))
    for f in range(1, len(result.cutoffs)):
        best = choose_per_series(result, upto_fold=f, k=k)
        members = []
        for m in base:
            fc = result.forecasts[m][f]
            if fc is None:
                raise InputError(f"model {m} has no forecast for fold {f}")
            members.append(fc)
        selected.append(calibrated_combination(result, members, best[:, :1], f))
        ensemble.append(calibrated_combination(result, members, best, f))
    return selected, ensemble


def combine(forecasts: Sequence[Forecast | None], choice: np.ndarray) -> Forecast:
    """Per series, average the forecasts (means and bounds) of the chosen models.

    Averaging bounds is a heuristic for ensembles (exact when ``choice`` has one column).

    Args:
        forecasts: One forecast per model, all for the same series and periods.
        choice: ``(n_series, k)`` model indices per series.

    Returns:
        The combined forecast.
    """
    present = [fc for fc in forecasts if fc is not None]
    if len(present) != len(forecasts) or not present:
        raise InputError("combine needs a forecast from every model")
    rows = np.arange(choice.shape[0])[:, None]

    def pick(arrays: list[np.ndarray]) -> np.ndarray:
        stacked = np.stack(arrays)  # (n_models, n_series, h)
        return np.asarray(stacked[choice, rows].mean(axis=1))

    first = present[0]
    return Forecast(
        ids=first.ids,
        ds=first.ds,
        mean=pick([fc.mean for fc in present]),
        lower={lv: pick([fc.lower[lv] for fc in present]) for lv in first.lower},
        upper={lv: pick([fc.upper[lv] for fc in present]) for lv in first.upper},
        closed=first.closed,
    )
