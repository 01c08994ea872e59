"""The model catalogues: every model a front end can name, as plain data (no registry).

A catalogue entry imports its model only when it is built, so naming or listing models (``shopseq
--help``, flag validation) never imports torch, statsforecast or LightGBM. Adding a model is one
file in its task folder plus one line here (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shopseq.errors import ConfigError
from shopseq.runtime import TorchRuntime

if TYPE_CHECKING:  # the catalogue itself must stay light: front ends import it to list names
    from shopseq.forecast.base import Forecaster
    from shopseq.nextitem.base import NextItemModel

__all__ = [
    "DEFAULT_FORECASTERS",
    "FAST_FORECASTERS",
    "FORECASTERS",
    "INTERMITTENT_FORECASTERS",
    "NEXT_ITEM_MODELS",
    "NO_REFIT",
    "ForecasterSettings",
    "NextItemSpec",
    "make_forecasters",
    "next_item_spec",
]


@dataclass(frozen=True, slots=True)
class NextItemSpec:
    """One next-item model of the catalogue.

    Attributes:
        classes: Imports and returns ``(model class, config class)`` (called when needed).
        baseline: Whether it counts as a baseline on a leaderboard.
        neural: Whether it trains with torch (its constructor takes a :class:`TorchRuntime`).
    """

    classes: Callable[[], tuple[Any, type[BaseModel]]]
    baseline: bool
    neural: bool = False

    def build(self, config: BaseModel, runtime: TorchRuntime) -> NextItemModel:
        """An unfitted model with ``config`` (and ``runtime`` for the torch models).

        Args:
            config: The model's config (an instance of its config class).
            runtime: Threads, device and progress of the torch models.

        Returns:
            The model.
        """
        model_class = self.classes()[0]
        model: NextItemModel = model_class(config, runtime) if self.neural else model_class(config)
        return model

    def load(self, directory: Any, runtime: TorchRuntime) -> NextItemModel:
        """Rebuild a model saved in ``directory``.

        Args:
            directory: The model directory (``Path``).
            runtime: Where the torch models score.

        Returns:
            The fitted model.
        """
        model_class = self.classes()[0]
        model: NextItemModel = (
            model_class.load(directory, runtime) if self.neural else model_class.load(directory)
        )
        return model


def _popularity() -> tuple[Any, type[BaseModel]]:
    from shopseq.nextitem.baselines import Popularity, PopularityConfig

    return Popularity, PopularityConfig


def _markov() -> tuple[Any, type[BaseModel]]:
    from shopseq.nextitem.baselines import MarkovChain, MarkovChainConfig

    return MarkovChain, MarkovChainConfig


def _itemknn() -> tuple[Any, type[BaseModel]]:
    from shopseq.nextitem.baselines import ItemKNN, ItemKNNConfig

    return ItemKNN, ItemKNNConfig


def _sknn() -> tuple[Any, type[BaseModel]]:
    from shopseq.nextitem.baselines import SessionKNN, SessionKNNConfig

    return SessionKNN, SessionKNNConfig


def _als() -> tuple[Any, type[BaseModel]]:
    from shopseq.nextitem.mf import ALS, ALSConfig

    return ALS, ALSConfig


def _bpr() -> tuple[Any, type[BaseModel]]:
    from shopseq.nextitem.mf import BPR, BPRConfig

    return BPR, BPRConfig


def _gru4rec() -> tuple[Any, type[BaseModel]]:
    from shopseq.nextitem.gru4rec import GRU4Rec, GRU4RecConfig

    return GRU4Rec, GRU4RecConfig


def _sasrec() -> tuple[Any, type[BaseModel]]:
    from shopseq.nextitem.sasrec import SASRec, SASRecConfig

    return SASRec, SASRecConfig


def _fusion() -> tuple[Any, type[BaseModel]]:
    from shopseq.nextitem.fusion import FusionConfig, ScoreFusion

    return ScoreFusion, FusionConfig


#: Model name -> entry: the one table of next-item models.
NEXT_ITEM_MODELS: dict[str, NextItemSpec] = {
    "popularity": NextItemSpec(_popularity, baseline=True),
    "markov": NextItemSpec(_markov, baseline=True),
    "itemknn": NextItemSpec(_itemknn, baseline=True),
    "sknn": NextItemSpec(_sknn, baseline=True),
    "als": NextItemSpec(_als, baseline=False),
    "bpr": NextItemSpec(_bpr, baseline=False),
    "gru4rec": NextItemSpec(_gru4rec, baseline=False, neural=True),
    "sasrec": NextItemSpec(_sasrec, baseline=False, neural=True),
    "fusion": NextItemSpec(_fusion, baseline=False, neural=True),
}


def next_item_spec(name: str) -> NextItemSpec:
    """The catalogue entry of a next-item model.

    Args:
        name: Model name.

    Returns:
        Its entry.

    Raises:
        ConfigError: For a name not in :data:`NEXT_ITEM_MODELS`.
    """
    if name not in NEXT_ITEM_MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(NEXT_ITEM_MODELS)}")
    return NEXT_ITEM_MODELS[name]


@dataclass(frozen=True, slots=True)
class ForecasterSettings:
    """What a forecaster is built with, beyond its defaults.

    Attributes:
        horizon: Longest horizon asked (global models calibrate their intervals for it).
        threads: Threads of LightGBM and torch.
        event_dates: Holiday/promotion days for the models that take regressors.
    """

    horizon: int
    threads: int = 1
    event_dates: tuple[date, ...] = ()


def _stats(kind: str) -> Callable[[ForecasterSettings], Forecaster]:
    def build(settings: ForecasterSettings) -> Forecaster:
        from shopseq.forecast.local import StatsModel, StatsModelConfig

        return StatsModel(StatsModelConfig(kind=kind, event_dates=settings.event_dates))

    return build


def _intermittent(kind: str) -> Callable[[ForecasterSettings], Forecaster]:
    def build(settings: ForecasterSettings) -> Forecaster:
        from shopseq.forecast.intermittent import IntermittentConfig, IntermittentModel

        return IntermittentModel(IntermittentConfig(kind=kind))

    return build


def _seasonal_naive(settings: ForecasterSettings) -> Forecaster:
    from shopseq.forecast.local import SeasonalNaive

    return SeasonalNaive()


def _moving_average(settings: ForecasterSettings) -> Forecaster:
    from shopseq.forecast.local import MovingAverage

    return MovingAverage()


def _lightgbm(settings: ForecasterSettings) -> Forecaster:
    from shopseq.forecast.gbm import LightGBMForecaster, LightGBMForecasterConfig

    config = LightGBMForecasterConfig(
        horizon=settings.horizon, threads=settings.threads, event_dates=settings.event_dates
    )
    return LightGBMForecaster(config)


def _mlp(settings: ForecasterSettings) -> Forecaster:
    from shopseq.forecast.mlp import MLPForecaster, MLPForecasterConfig

    config = MLPForecasterConfig(horizon=settings.horizon, event_dates=settings.event_dates)
    return MLPForecaster(config, TorchRuntime(threads=settings.threads))


#: Forecaster name -> constructor: the one table of forecasters.
FORECASTERS: dict[str, Callable[[ForecasterSettings], Forecaster]] = {
    "seasonal_naive": _seasonal_naive,
    "moving_average": _moving_average,
    "auto_ets": _stats("auto_ets"),
    "auto_ces": _stats("auto_ces"),
    "auto_theta": _stats("auto_theta"),
    "auto_arima": _stats("auto_arima"),
    "lightgbm": _lightgbm,
    "mlp": _mlp,
    # Intermittent demand: candidates only for mostly-zero series (``scope = "intermittent"``).
    "croston": _intermittent("croston"),
    "croston_sba": _intermittent("croston_sba"),
    "tsb": _intermittent("tsb"),
    "adida": _intermittent("adida"),
    "imapa": _intermittent("imapa"),
}
#: The intermittent-demand models, added to every default line-up: they cost microseconds per
#: series and are offered only where a series is mostly zeros.
INTERMITTENT_FORECASTERS = ("croston", "croston_sba", "tsb", "adida", "imapa")
#: The default line-up (AutoARIMA is fitted once and then only updated: it is the slowest).
DEFAULT_FORECASTERS = (
    "seasonal_naive",
    "moving_average",
    "auto_ets",
    "auto_ces",
    "auto_theta",
    "auto_arima",
    "lightgbm",
    *INTERMITTENT_FORECASTERS,
)
#: A line-up that runs in about a second on a handful of series (the demo's and the plan's).
FAST_FORECASTERS = (
    "seasonal_naive",
    "moving_average",
    "auto_theta",
    "auto_ces",
    "lightgbm",
    *INTERMITTENT_FORECASTERS,
)
#: Forecasters the backtest fits once and then only updates with the longer history.
NO_REFIT = frozenset({"auto_arima"})


def make_forecasters(
    names: tuple[str, ...] | list[str], settings: ForecasterSettings
) -> dict[str, Forecaster]:
    """Build forecasters by name.

    Args:
        names: Names from :data:`FORECASTERS`.
        settings: Horizon, threads and event days.

    Returns:
        Name -> unfitted forecaster, in the order given.

    Raises:
        ConfigError: For an unknown name.
    """
    unknown = [n for n in names if n not in FORECASTERS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {sorted(FORECASTERS)}")
    return {name: FORECASTERS[name](settings) for name in names}
