"""A small neural forecaster: an MLP on lagged windows, trained across all series (PyTorch).

Input: the last ``n_lags`` values of a series standardised by their own mean and standard
deviation (so one network serves series of any size), plus the holiday/promotion flags of the
``horizon`` target periods. Output: the ``horizon`` next values on the same standardised scale,
all at once (multi-output, no recursion). Trained with the L1 loss on windows from every series.

Intervals are split-conformal, as for the LightGBM model: the network is trained on windows whose
targets end before each series' last ``horizon`` periods, its errors on those periods (scaled
per series, pooled across series per step) give the half-widths, and the same network then
forecasts from the full history.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Self

import numpy as np
from pydantic import Field

from shopseq.errors import InputError, check_is_fitted
from shopseq.forecast.base import (
    Forecast,
    check_levels,
    conformal_halfwidths,
    event_indicator,
    make_forecast,
)
from shopseq.forecast.series import Panel
from shopseq.metrics.forecasting import mase_scale

try:
    import torch
    from torch import nn
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("MLPForecaster needs PyTorch: pip install 'shopseq[torch]'") from err

from shopseq.runtime import TorchRuntime
from shopseq.training import TrainingConfig, seeded_torch, torch_threads, train

__all__ = ["MLPForecaster", "MLPForecasterConfig", "MLPNet"]


class MLPForecasterConfig(TrainingConfig):
    """MLP forecaster hyper-parameters (plus the shared training loop's).

    Every epoch runs (no validation: the held-out last ``horizon`` periods calibrate the
    intervals instead), so ``patience`` defaults to ``None``.

    Attributes:
        horizon: Outputs of the network (the longest horizon you will ask).
        n_lags: Input window (``None``: four seasons).
        hidden_size: Width of the two hidden layers.
        max_windows: Most training windows (sampled, seeded) per fit.
        event_dates: Holiday/promotion days, given to the network for the target periods.
    """

    n_epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=256, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    patience: int | None = Field(default=None, ge=1)
    seed: int = Field(default=0, ge=0)
    horizon: int = Field(default=14, ge=1)
    n_lags: int | None = Field(default=None, ge=2)
    hidden_size: int = Field(default=64, ge=1)
    max_windows: int = Field(default=20_000, ge=1)
    event_dates: tuple[date, ...] = ()


class _WindowTask:
    """One epoch over the training windows, in shuffled mini-batches, for the shared loop."""

    def __init__(self, net: MLPNet, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
        self.net, self.x, self.y, self.batch_size = net, x, y, batch_size
        self.n_sequences = len(x)

    def n_batches(self) -> int:
        return -(-self.n_sequences // self.batch_size)

    def batches(self, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        order = torch.from_numpy(rng.permutation(self.n_sequences))
        for lo in range(0, self.n_sequences, self.batch_size):
            yield order[lo : lo + self.batch_size]

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        prediction = self.net(self.x[batch])  # (B, horizon)
        return torch.nn.functional.l1_loss(prediction, self.y[batch]), len(batch)


class MLPNet(nn.Module):
    """Window (+ event flags) -> horizon values."""

    def __init__(self, n_inputs: int, hidden_size: int, horizon: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_inputs, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, horizon),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs to forecasts.

        Args:
            x: ``(batch, n_lags + horizon)`` scaled window and event flags.

        Returns:
            ``(batch, horizon)`` scaled forecasts.
        """
        return self.layers(x)  # type: ignore[no-any-return]


class MLPForecaster:
    """A global MLP forecaster (see the module docstring)."""

    def __init__(
        self, config: MLPForecasterConfig | None = None, runtime: TorchRuntime | None = None
    ) -> None:
        self.config = config or MLPForecasterConfig()
        self.runtime = runtime or TorchRuntime()

    def min_periods(self, season_length: int) -> int:
        """Fewest history periods: one input window plus twice the horizon, plus one.

        Args:
            season_length: Periods per season.

        Returns:
            Periods.
        """
        return (self.config.n_lags or 4 * season_length) + 2 * self.config.horizon + 1

    def _inputs(
        self, y: np.ndarray, event: np.ndarray, series: np.ndarray, end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Windows ``y[series, end - L: end]`` standardised, with the future event flags."""
        lags, h = self.n_lags_, self.config.horizon
        window = y[series[:, None], end[:, None] - np.arange(lags, 0, -1)[None, :]]
        centre = window.mean(axis=1)
        spread = window.std(axis=1)
        spread = np.where(spread > 1e-9, spread, 1.0)
        flags = event[end[:, None] + np.arange(h)[None, :]]
        x = np.hstack([(window - centre[:, None]) / spread[:, None], flags])
        return x.astype(np.float32), centre, spread

    def fit(self, panel: Panel) -> Self:
        """Train the network and calibrate its intervals.

        Args:
            panel: History (gaps imputed).

        Returns:
            self

        Raises:
            InputError: If the history is too short for one window plus the calibration horizon.
        """
        cfg = self.config
        h = cfg.horizon
        self.n_lags_ = cfg.n_lags or 4 * panel.season_length
        y = panel.filled()
        n, total = y.shape
        stop = total - h  # windows whose targets end by `stop` train; the rest calibrates
        if stop - h - self.n_lags_ < 1:
            raise InputError(
                f"MLPForecaster needs at least {self.n_lags_ + 2 * h + 1} periods (window "
                f"{self.n_lags_} + 2 x horizon {h}); got {total}"
            )
        event = np.concatenate(
            [event_indicator(panel.ds, panel.freq, cfg.event_dates),
             event_indicator(panel.future_ds(h), panel.freq, cfg.event_dates)]
        )  # fmt: skip
        rng = np.random.default_rng(cfg.seed)
        ends = np.arange(self.n_lags_, stop - h + 1)
        pairs = np.stack(np.meshgrid(np.arange(n), ends, indexing="ij"), -1).reshape(-1, 2)
        if len(pairs) > cfg.max_windows:
            pairs = pairs[rng.choice(len(pairs), cfg.max_windows, replace=False)]
        x, centre, spread = self._inputs(y, event, pairs[:, 0], pairs[:, 1])
        target = y[pairs[:, 0][:, None], pairs[:, 1][:, None] + np.arange(h)[None, :]]
        target = ((target - centre[:, None]) / spread[:, None]).astype(np.float32)
        device = self.runtime.torch_device
        with seeded_torch(cfg.seed, self.runtime.threads):
            net = MLPNet(x.shape[1], cfg.hidden_size, h).to(device)
            optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr)
            task = _WindowTask(
                net,
                torch.from_numpy(x).to(device),
                torch.from_numpy(target).to(device),
                cfg.batch_size,
            )
            self.report_ = train(
                task, net, optimiser, cfg, self.runtime, validate=None, name="MLPForecaster"
            )
        self.net_ = net
        self.event_ = event
        calib = self._forecast(y, np.full(n, stop))
        self.errors_ = np.where(panel.gap[:, stop:], np.nan, y[:, stop:] - calib)
        self.scale_ = mase_scale(panel.y, panel.season_length)
        self.panel_ = panel
        return self

    def _forecast(self, y: np.ndarray, end: np.ndarray) -> np.ndarray:
        x, centre, spread = self._inputs(y, self.event_, np.arange(len(y)), end)
        inputs = torch.from_numpy(x).to(self.runtime.torch_device)
        with torch.no_grad(), torch_threads(self.runtime.threads):
            out = self.net_(inputs).cpu().numpy()  # (n, horizon)
        return np.asarray(out * spread[:, None] + centre[:, None], dtype=np.float64)

    def predict(self, horizon: int, levels: Sequence[int] = (80, 95)) -> Forecast:
        """Forecast ``horizon`` periods with conformal intervals.

        Args:
            horizon: Periods ahead (at most ``config.horizon``).
            levels: Interval levels.

        Returns:
            The forecast.

        Raises:
            InputError: If ``horizon`` exceeds the network's output size.
        """
        check_is_fitted(self, "net_")
        if horizon > self.config.horizon:
            raise InputError(
                f"The 'horizon' parameter of predict must be <= {self.config.horizon} (the "
                f"output size of this MLPForecaster). Got {horizon} instead."
            )
        y = self.panel_.filled()
        mean = self._forecast(y, np.full(len(y), y.shape[1]))[:, :horizon]
        widths = conformal_halfwidths(self.errors_[:, :horizon], self.scale_, check_levels(levels))
        return make_forecast(self.panel_, mean, widths)
