"""Aggregate time series from the store: the data forecasting models and the plan read.

One query per grain runs in the engine (Ibis): events are bucketed per day or hour and per category
label, and counted (views, carts, purchases, distinct users, revenue). The small result leaves the
engine here and is laid on a dense period grid spanning the observed range of the dataset.

Empty periods are treated in three ways, and the difference matters:

* **true zero** -- the store recorded events in that period, just none of this series' kind (no
  purchases in a category on a Tuesday): ``y = 0``, ``gap = False``.
* **gap** -- the store recorded *no event at all* in a period when it is normally active at that
  time (the median store count over the same weekday -- or hour of day for hourly series -- is at
  least ``SeriesConfig.gap_min_expected``, default 5, where a Poisson count is zero less than
  1 % of the time, and at most ``gap_max_zero_share``, default 10 %, of those periods were empty
  as well): a logging outage or a hole in a data slice.
  ``y = NaN``, ``gap = True``. Models see an imputed value (:meth:`Panel.filled`) and metrics skip
  gap periods.
* **closed** -- the shop does not trade then (``forecast/calendar.py``): a weekday (or hour of
  day) empty at every occurrence, learned from the store, or a date the user names
  (``SeriesConfig.closed_dates``). ``y`` keeps its value (0), ``Panel.closed`` is True; models
  see it interpolated, the forecast there is 0 with a 0-width interval and metrics skip it.

Series ids form a two-level hierarchy: ``total`` and ``total/<category>``. Categories beyond the
``top_categories`` largest (and events without a category) are pooled into ``total/other`` so the
categories still add up to the total for additive metrics (views, carts, purchases, revenue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

import ibis
import ibis.expr.types as ir
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopseq.errors import InputError
from shopseq.forecast.calendar import Closures, learn_closures
from shopseq.forecast.panel import OTHER, TOTAL, Freq, Panel, season_length, summing_matrix
from shopseq.schema import ACTION, CATEGORY_ID, PRICE, QUANTITY, TS, USER_ID, Action

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "OTHER",
    "TOTAL",
    "Freq",
    "Metric",
    "Panel",
    "SeriesConfig",
    "SeriesReport",
    "SeriesSet",
    "build_series",
    "check_groups",
    "season_length",
    "summing_matrix",
]


class Metric(StrEnum):
    """What a series counts per period."""

    VIEWS = "views"
    CARTS = "carts"
    PURCHASES = "purchases"
    USERS = "users"  # distinct users with any event
    CONVERSION = "conversion"  # purchases / views (undefined, hence flagged, without views)
    REVENUE = "revenue"  # price x quantity (1 when missing) over purchases, net of returns

    @property
    def additive(self) -> bool:
        """Whether category series add up to the total (distinct counts and ratios do not)."""
        return self not in (Metric.USERS, Metric.CONVERSION)


def check_groups(groups: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Refuse empty groups, a category in two groups, and the reserved names.

    Args:
        groups: Group name -> categories.

    Returns:
        The groups.

    Raises:
        ValueError: For a bad group (pydantic turns it into a validation error).
    """
    seen: dict[str, str] = {}
    for name, members in groups.items():
        if name in (TOTAL, OTHER):
            raise ValueError(f"{name!r} is reserved; name the group something else")
        if not members:
            raise ValueError(f"group {name!r} has no categories")
        for member in members:
            if member in seen:
                raise ValueError(
                    f"category {member!r} is in two groups ({seen[member]!r}, {name!r})"
                )
            seen[member] = name
    return groups


class SeriesConfig(BaseModel):
    """Which series to build.

    Attributes:
        metric: What to count.
        freq: ``"D"`` (days) or ``"h"`` (hours; ``"H"`` is accepted).
        by: ``"total"`` for one series; ``"category"`` for the total and one series per category.
        top_categories: Categories kept by name (largest first by the metric's action count);
            the rest are pooled into ``other``.
        categories: Exactly these categories by name instead (to align several metrics).
        gap_min_expected: An empty store period is a gap when the median store event count of the
            other periods at the same weekday (daily) or hour of day (hourly) is at least this...
        gap_max_zero_share: ...and at most this share of those other periods were empty too
            (quiet night hours, where traffic comes in bursts, are often empty: true zeros).
        start: First instant kept (naive UTC); ``None``: the first event.
        end: Instant after the last one kept (naive UTC); ``None``: after the last event.
        closed_dates: Days the shop is known to be closed (past or within the forecast horizon):
            forecast 0 with a 0-width interval, never scored, never a gap.
        learn_closures: Learn regular closures from the store: a weekday (and, hourly, an hour of
            day) on which nothing was logged at every one of at least...
        closure_min_occurrences: ...this many occurrences.
        groups: Named groups of categories, each forecast (and planned) as one series under its
            name; groups compete with single categories for the ``top_categories`` places.
        drop_partial_last: Without ``end``, leave out the last period when the log stops early
            in it: its last event comes earlier in the period than in nine of ten earlier
            periods (a log exported mid-day; UCI Online Retail ends at 12:50). Counted as a
            whole period it reads as a collapse in demand, and every model repeats it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric = Metric.PURCHASES
    freq: Freq = Freq.DAY
    by: Literal["total", "category"] = "category"
    top_categories: int = Field(default=10, ge=1)
    categories: tuple[str, ...] | None = None
    gap_min_expected: float = Field(default=5.0, ge=0.0)
    gap_max_zero_share: float = Field(default=0.1, ge=0.0, le=1.0)
    start: datetime | None = None
    end: datetime | None = None
    closed_dates: tuple[date, ...] = ()
    learn_closures: bool = True
    closure_min_occurrences: int = Field(default=4, ge=2)
    groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    drop_partial_last: bool = True

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return check_groups(value)

    @field_validator("freq", mode="before")
    @classmethod
    def _freq_alias(cls, value: object) -> object:
        # Pandas spells hours "H" (older) and "h" (newer); accept both, and "d" for days.
        return {"H": "h", "d": "D"}.get(value, value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class SeriesReport:
    """How the series were built.

    Attributes:
        metric: What was counted.
        freq: Period length.
        first_period: Start of the first period.
        last_period: Start of the last period.
        n_periods: Periods per series.
        n_series: Series built.
        gap_periods: Starts of the periods flagged as store-wide gaps.
        empty_true_zero: Empty store periods kept as true zeros (quiet times).
        categories: Category names kept (``other`` pools the rest).
        other_share: Share of the metric's events pooled into ``other``.
        closures: Closures applied (learned and given).
        closed_periods: Periods of the history that were closed.
        closed_with_events: Closed periods in which the store still logged events (a given
            closure date that was in fact open: check the closures file).
        partial_period: Start of the last period, left out because the log stops early in it
            (``SeriesConfig.drop_partial_last``); ``None`` when nothing was left out.
    """

    metric: Metric
    freq: Freq
    first_period: datetime
    last_period: datetime
    n_periods: int
    n_series: int
    gap_periods: tuple[datetime, ...]
    empty_true_zero: int
    categories: tuple[str, ...]
    other_share: float
    closures: Closures = field(default_factory=Closures)
    closed_periods: int = 0
    closed_with_events: int = 0
    partial_period: datetime | None = None


@dataclass(frozen=True, slots=True)
class SeriesSet:
    """Series built from a store.

    Attributes:
        panel: The series as arrays.
        report: How they were built.
        events: ``(n_periods,)`` store event count per period (all actions), for reference.
    """

    panel: Panel
    report: SeriesReport
    events: np.ndarray

    def to_long(self) -> pl.DataFrame:
        """The long frame (``unique_id, ds, y, gap``)."""
        return self.panel.to_long()


_ACTION_OF_METRIC: dict[Metric, Action | None] = {
    Metric.VIEWS: Action.VIEW,
    Metric.CARTS: Action.CART,
    Metric.PURCHASES: Action.PURCHASE,
    Metric.REVENUE: Action.PURCHASE,
    Metric.CONVERSION: Action.VIEW,
    Metric.USERS: None,
}


def _aggregate(
    events: ir.Table, bucket: ir.Value, label: ir.Value | None, metric: Metric
) -> ir.Table:
    is_view = (events[ACTION] == Action.VIEW.value).cast("int64")
    is_cart = (events[ACTION] == Action.CART.value).cast("int64")
    is_buy = events[ACTION] == Action.PURCHASE.value
    is_return = events[ACTION] == Action.RETURN.value
    qty = events[QUANTITY].cast("float64").coalesce(1.0)
    # Net revenue: a return takes its value back in the period it happens (quantities are
    # positive units; the action says the direction).
    sign = ibis.ifelse(is_buy, 1.0, ibis.ifelse(is_return, -1.0, 0.0))
    revenue = (sign * events[PRICE] * qty).coalesce(0.0)
    keys: dict[str, Any] = {"period": bucket}
    if label is not None:
        keys["label"] = label
    action = _ACTION_OF_METRIC[metric]
    # Unit prices of the events the metric counts (all events for distinct users).
    priced = (
        events[PRICE]
        if action is None
        else ibis.ifelse(events[ACTION] == action.value, events[PRICE], ibis.null("float64"))
    )
    return events.group_by(**keys).aggregate(
        views=is_view.sum(),
        carts=is_cart.sum(),
        purchases=is_buy.cast("int64").sum(),
        users=events[USER_ID].nunique(),
        revenue=revenue.sum(),
        events=events.count(),
        price=priced.mean(),
        last=events[TS].max(),
    )


def _period_value(rows: dict[str, np.ndarray], metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """Metric value and 'undefined' mask per aggregated row."""
    if metric is Metric.CONVERSION:
        views = rows["views"].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return rows["purchases"] / np.where(views > 0, views, np.nan), views <= 0
    return rows[metric.value].astype(np.float64), np.zeros(len(rows["period"]), dtype=bool)


def build_series(events: ir.Table, config: SeriesConfig) -> SeriesSet:
    """Aggregate ``events`` into series per period (and per category) on a dense grid.

    Args:
        events: Event table (``events_prepared`` normally).
        config: Metric, frequency, grouping and gap rule.

    Returns:
        The series, a report and the store event count per period.

    Raises:
        InputError: If no event falls in the requested range.
    """
    if config.start is not None:
        events = events.filter(events[TS] >= config.start)
    if config.end is not None:
        events = events.filter(events[TS] < config.end)
    unit = "D" if config.freq is Freq.DAY else "h"
    bucket = events[TS].truncate(unit)
    totals = _fetch(_aggregate(events, bucket, None, config.metric))
    if len(totals["period"]) == 0:
        raise InputError("no events in the requested range: nothing to build series from")
    step = np.timedelta64(1, "D") if config.freq is Freq.DAY else np.timedelta64(1, "h")
    partial = _partial_last(totals) if config.end is None and config.drop_partial_last else None
    if partial is not None:
        keep = totals["period"] < partial
        totals = {k: v[keep] for k, v in totals.items()}
        events = events.filter(events[TS] < _to_datetime(partial))
    first, last = totals["period"].min(), totals["period"].max()
    grid = np.arange(first, last + step, step).astype("datetime64[us]")
    position = {int(p): i for i, p in enumerate(grid.astype(np.int64))}

    def place(rows: dict[str, np.ndarray], values: np.ndarray) -> np.ndarray:
        out = np.zeros(len(grid))
        idx = np.array([position[int(p)] for p in rows["period"].astype(np.int64)], dtype=int)
        out[idx] = values
        return out

    store_events = place(totals, totals["events"].astype(np.float64))
    hourly = config.freq is Freq.HOUR
    known = Closures(dates=config.closed_dates)
    closures = known
    if config.learn_closures:
        learned = learn_closures(
            store_events,
            grid,
            hourly=hourly,
            min_occurrences=config.closure_min_occurrences,
            ignore=known.mask(grid, hourly=hourly),
        )
        closures = learned.merged(known)
    closed = closures.mask(grid, hourly=hourly)
    gap_t, quiet = _store_gaps(store_events, grid, config, closed)

    def place_price(rows: dict[str, np.ndarray]) -> np.ndarray:
        out = np.full(len(grid), np.nan)
        idx = np.array([position[int(p)] for p in rows["period"].astype(np.int64)], dtype=int)
        out[idx] = rows["price"]
        return out

    ids: list[str] = [TOTAL]
    value, undefined = _period_value(totals, config.metric)
    y_rows = [place(totals, value)]
    price_rows = [place_price(totals)]
    undef_rows = [place(totals, undefined.astype(np.float64)) > 0]
    categories: tuple[str, ...] = ()
    other_share = 0.0
    if config.by == "category":
        label = _category_label(events, config)
        categories, other_share = _top_categories(events, label, config)
        known_label = label.isin(list(categories))
        label = ibis.ifelse(known_label, label, OTHER)
        per_label = _fetch(
            _aggregate(events, bucket, label, config.metric).order_by(["label", "period"])
        )
        labels = [*categories, *([OTHER] if other_share > 0 or config.categories else [])]
        for name in labels:
            mask = per_label["label"] == name
            rows = {k: v[mask] for k, v in per_label.items()}
            value, undefined = _period_value(rows, config.metric)
            ids.append(f"{TOTAL}/{name}")
            y_rows.append(place(rows, np.nan_to_num(value)))
            price_rows.append(place_price(rows))
            # A period where this category had no row at all has no views either.
            seen = place(rows, np.ones(len(rows["period"]))) > 0
            undef = place(rows, undefined.astype(np.float64)) > 0
            if config.metric is Metric.CONVERSION:
                undef |= ~seen
            undef_rows.append(undef)
    y = np.vstack(y_rows)
    # A closed period is not missing: conversion there is 0 (nothing sold), not undefined.
    undefined_rows = np.vstack(undef_rows) & ~closed[None, :]
    gap = undefined_rows | gap_t[None, :]
    y[gap] = np.nan
    price = np.vstack(price_rows)
    has_price = bool(np.isfinite(price).any())
    panel = Panel(tuple(ids), grid, y, gap, config.freq, closures, price if has_price else None)
    report = SeriesReport(
        metric=config.metric,
        freq=config.freq,
        first_period=_to_datetime(grid[0]),
        last_period=_to_datetime(grid[-1]),
        n_periods=len(grid),
        n_series=len(ids),
        gap_periods=tuple(_to_datetime(p) for p in grid[gap_t]),
        empty_true_zero=int(quiet),
        categories=categories,
        other_share=other_share,
        closures=closures,
        closed_periods=int(closed.sum()),
        closed_with_events=int((closed & (store_events > 0)).sum()),
        partial_period=None if partial is None else _to_datetime(partial),
    )
    return SeriesSet(panel=panel, report=report, events=store_events)


def _store_gaps(
    store_events: np.ndarray, grid: np.ndarray, config: SeriesConfig, closed: np.ndarray
) -> tuple[np.ndarray, int]:
    """Flag empty open periods at times the store is normally active; count the quiet ones."""
    if config.freq is Freq.DAY:
        slot = (grid.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 0 = Monday
    else:
        slot = grid.astype("datetime64[h]").astype(np.int64) % 24
    gap = np.zeros(len(grid), dtype=bool)
    empty = np.flatnonzero((store_events == 0) & ~closed)
    for t in empty:
        others = (slot == slot[t]) & (np.arange(len(grid)) != t) & ~closed
        pool = store_events[others] if others.any() else np.delete(store_events, t)
        gap[t] = (
            pool.size > 0
            and float(np.median(pool)) >= max(config.gap_min_expected, 1e-12)
            and float(np.mean(pool == 0)) <= config.gap_max_zero_share
        )
    return gap, int(empty.size - gap.sum())


#: Earlier periods the partial-period rule needs to judge the last one.
_PARTIAL_MIN_PERIODS = 8


def _partial_last(totals: dict[str, np.ndarray]) -> np.datetime64 | None:
    """The last period's start when the log stops early in it, else ``None``.

    Early means: its last event is earlier in the period than the last event of 90 % of the
    earlier periods. Judged against the log's own rhythm, a shop that always closes at 18:00
    keeps its last day, and a log of dates only (every event at midnight) keeps it too.
    """
    periods, last = totals["period"], totals["last"]
    if len(periods) <= _PARTIAL_MIN_PERIODS:
        return None
    order = np.argsort(periods)
    offset = (last[order] - periods[order]).astype("timedelta64[us]").astype(np.int64)
    if offset[-1] < np.quantile(offset[:-1], 0.1):
        return np.datetime64(periods[order][-1], "us")
    return None


def _category_label(events: ir.Table, config: SeriesConfig) -> ir.StringValue:
    """The category of each event, or the name of the group it belongs to."""
    label: ir.StringValue = events[CATEGORY_ID]
    for name, members in config.groups.items():
        label = ibis.ifelse(events[CATEGORY_ID].isin(list(members)), name, label)
    return label


def _top_categories(
    events: ir.Table, label: ir.Value, config: SeriesConfig
) -> tuple[tuple[str, ...], float]:
    action = _ACTION_OF_METRIC[config.metric]
    scoped = events.mutate(_label=label)
    if action is not None:
        scoped = scoped.filter(scoped[ACTION] == action.value)
    counts = (
        scoped.group_by(category=scoped["_label"])
        .aggregate(n=scoped.count())
        .order_by([ibis.desc("n"), "category"])
        .to_pyarrow()
        .to_pydict()
    )
    named = [(c, n) for c, n in zip(counts["category"], counts["n"], strict=True) if c is not None]
    if config.categories is not None:
        kept = config.categories
        named = [(c, n) for c, n in named if c in set(kept)]
    else:
        named = named[: config.top_categories]
        kept = tuple(str(c) for c, _ in named)
    total = sum(counts["n"])
    other = total - sum(n for _, n in named)
    return kept, (other / total if total else 0.0)


def _fetch(expr: ir.Table) -> dict[str, np.ndarray]:
    table = expr.to_pyarrow()
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        column = table[name]
        if name in ("period", "last"):
            out[name] = column.to_numpy().astype("datetime64[us]")
        elif name == "label":
            out[name] = np.asarray(column.to_pylist(), dtype=object)
        elif name == "price":  # missing stays missing: no priced event in the period
            out[name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            out[name] = np.nan_to_num(column.to_numpy(zero_copy_only=False).astype(np.float64))
    return out


def _to_datetime(value: np.datetime64) -> datetime:
    return datetime.fromisoformat(str(value.astype("datetime64[us]")))
