"""The panel: equal-length series on one dense period grid, and the period vocabulary.

``series.py`` builds panels from a store; every model, the backtest and the plan read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from shopseq.errors import InputError
from shopseq.forecast.calendar import Closures, interpolate_closed

if TYPE_CHECKING:
    import polars as pl

__all__ = ["OTHER", "TOTAL", "Freq", "Panel", "season_length", "summing_matrix"]

#: Id of the top of the hierarchy and of the pooled small categories.
TOTAL = "total"
OTHER = "other"


class Freq(StrEnum):
    """Period length."""

    DAY = "D"
    HOUR = "h"


def season_length(freq: Freq) -> int:
    """The main seasonal period: a week of days, a day of hours.

    Args:
        freq: Period length.

    Returns:
        Periods per season.
    """
    return 7 if freq is Freq.DAY else 24


@dataclass(frozen=True, slots=True)
class Panel:
    """Equal-length series on one dense period grid (a 2-D array; long frames at the edges).

    Every series built from one store shares the grid, so a ``(n_series, n_periods)`` array is the
    natural layout: vectorised baselines, one global model's windows and per-fold slicing are all
    plain indexing (statsforecast's ``GroupedArray`` handles ragged series we never have).

    Attributes:
        ids: Series ids (``total``, ``total/<category>``).
        ds: ``(n_periods,)`` period starts, ``datetime64[us]``.
        y: ``(n_series, n_periods)`` float64 values, NaN at gaps.
        gap: ``(n_series, n_periods)`` True where the value is missing (a gap), not zero.
        freq: Period length.
        closures: When the shop is closed (applies to the history and to forecasts).
        price: ``(n_series, n_periods)`` mean unit price of the series' events per period (NaN
            where none had a price), for models that use price features; ``None``: unknown.
    """

    ids: tuple[str, ...]
    ds: np.ndarray
    y: np.ndarray
    gap: np.ndarray
    freq: Freq
    closures: Closures = field(default_factory=Closures)
    price: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, t = len(self.ids), len(self.ds)
        if self.y.shape != (n, t) or self.gap.shape != (n, t):
            raise InputError(
                f"panel arrays disagree: {n} ids x {t} periods, y {self.y.shape}, "
                f"gap {self.gap.shape}"
            )
        if self.price is not None and self.price.shape != (n, t):
            raise InputError(f"panel price {self.price.shape} does not match y {(n, t)}")

    @property
    def n_series(self) -> int:
        """Number of series."""
        return len(self.ids)

    @property
    def n_periods(self) -> int:
        """Number of periods."""
        return len(self.ds)

    @property
    def season_length(self) -> int:
        """Periods per season (7 for days, 24 for hours)."""
        return season_length(self.freq)

    @property
    def step(self) -> np.timedelta64:
        """Length of one period."""
        return np.timedelta64(1, "D") if self.freq is Freq.DAY else np.timedelta64(1, "h")

    @property
    def closed(self) -> np.ndarray:
        """``(n_periods,)`` True where the shop was closed."""
        return self.closures.mask(self.ds, hourly=self.freq is Freq.HOUR)

    def future_closed(self, horizon: int) -> np.ndarray:
        """Which of the next ``horizon`` periods the shop will be closed.

        Args:
            horizon: Periods ahead.

        Returns:
            ``(horizon,)`` bool.
        """
        return self.closures.mask(self.future_ds(horizon), hourly=self.freq is Freq.HOUR)

    def future_ds(self, horizon: int) -> np.ndarray:
        """Period starts of the ``horizon`` periods after the panel.

        Args:
            horizon: Periods ahead.

        Returns:
            ``(horizon,)`` datetime64[us].
        """
        future = self.ds[-1] + self.step * np.arange(1, horizon + 1)
        return np.asarray(future, dtype="datetime64[us]")

    def head(self, n_periods: int) -> Panel:
        """The first ``n_periods`` periods (what a model may see at a backtest cut-off).

        Args:
            n_periods: Periods kept.

        Returns:
            A panel that ends before period ``n_periods``.
        """
        return Panel(
            self.ids,
            self.ds[:n_periods],
            self.y[:, :n_periods],
            self.gap[:, :n_periods],
            self.freq,
            self.closures,
            None if self.price is None else self.price[:, :n_periods],
        )

    def rows(self, index: np.ndarray | list[int]) -> Panel:
        """The series at ``index``.

        Args:
            index: Row positions.

        Returns:
            A panel of those series.
        """
        idx = np.asarray(index, dtype=np.int64)
        return Panel(
            tuple(self.ids[i] for i in idx),
            self.ds,
            self.y[idx],
            self.gap[idx],
            self.freq,
            self.closures,
            None if self.price is None else self.price[idx],
        )

    def filled(self) -> np.ndarray:
        """Values with gaps imputed, for models that cannot take NaN.

        Closed periods are first interpolated between the nearest open values. A gap then
        takes the value one season earlier (itself filled first), else the previous value;
        leading gaps take the first observed value; a series with no value at all is 0.

        Returns:
            ``(n_series, n_periods)`` float64 without NaN.
        """
        y = interpolate_closed(self.y, self.closed)
        m = self.season_length
        for t in np.flatnonzero(np.isnan(y).any(axis=0)):
            if t >= m:
                rows = np.isnan(y[:, t])
                y[rows, t] = y[rows, t - m]
            if t >= 1:
                rows = np.isnan(y[:, t])
                y[rows, t] = y[rows, t - 1]
        for i in np.flatnonzero(np.isnan(y).any(axis=1)):
            seen = ~np.isnan(y[i])
            y[i, ~seen] = y[i, np.argmax(seen)] if seen.any() else 0.0
        return y

    def to_long(self) -> pl.DataFrame:
        """The Nixtla-style long frame.

        Returns:
            Columns ``unique_id``, ``ds``, ``y`` (NaN at gaps), ``gap``.
        """
        import polars as pl  # the forecast extra; only the frame outputs need it

        n, t = self.y.shape
        return pl.DataFrame(
            {
                "unique_id": np.repeat(np.asarray(self.ids, dtype=object), t).tolist(),
                "ds": np.tile(self.ds, n),
                "y": self.y.reshape(-1),
                "gap": self.gap.reshape(-1),
            }
        )

    @classmethod
    def from_long(cls, frame: pl.DataFrame, freq: Freq, closures: Closures | None = None) -> Panel:
        """Build a panel from a long frame on a complete, shared grid.

        Args:
            frame: Columns ``unique_id``, ``ds``, ``y`` and optionally ``gap``.
            freq: Period length.
            closures: When the shop is closed (``None``: never).

        Returns:
            The panel (ids in order of first appearance).

        Raises:
            InputError: If columns are missing or series do not share one dense grid.
        """
        missing = {"unique_id", "ds", "y"} - set(frame.columns)
        if missing:
            raise InputError(
                f"series frame: missing columns {sorted(missing)}; found {frame.columns}"
            )
        ids = tuple(frame["unique_id"].unique(maintain_order=True).to_list())
        rank = {sid: i for i, sid in enumerate(ids)}
        order = np.lexsort(
            (
                frame["ds"].to_numpy().astype("datetime64[us]"),
                np.array([rank[s] for s in frame["unique_id"].to_list()]),
            )
        )
        frame = frame[order.tolist()]
        ds = np.unique(frame["ds"].to_numpy().astype("datetime64[us]"))
        n, t = len(ids), len(ds)
        if frame.height != n * t:
            raise InputError(
                f"series frame: {frame.height} rows for {n} series x {t} periods; every series "
                "needs a row for every period (fill zeros or flag gaps first)"
            )
        y = frame["y"].to_numpy().astype(np.float64).reshape(n, t)
        gap = (
            frame["gap"].to_numpy().astype(bool).reshape(n, t)
            if "gap" in frame.columns
            else np.isnan(y)
        )
        panel = cls(ids, ds, y, gap | np.isnan(y), freq, closures or Closures())
        step = panel.step
        if t > 1 and not np.all(np.diff(ds) == step):
            raise InputError(f"series frame: periods are not evenly spaced by one '{freq}'")
        return panel


def summing_matrix(ids: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The summing matrix of a total -> category hierarchy.

    Args:
        ids: Series ids: ``total`` and ``total/<category>`` ids.

    Returns:
        ``S`` of shape ``(n_series, n_bottom)`` (row ``i`` says which bottom series add up to
        series ``i``) and the positions of the bottom series in ``ids``.

    Raises:
        InputError: If ``total`` or any category is missing.
    """
    bottom = np.array([i for i, s in enumerate(ids) if s.startswith(TOTAL + "/")], dtype=np.int64)
    if TOTAL not in ids or bottom.size == 0:
        raise InputError(
            f"a hierarchy needs '{TOTAL}' and at least one '{TOTAL}/<category>' series; "
            f"got {list(ids)[:5]}"
        )
    s = np.zeros((len(ids), bottom.size))
    s[ids.index(TOTAL), :] = 1.0
    s[bottom, np.arange(bottom.size)] = 1.0
    return s, bottom
