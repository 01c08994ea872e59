"""When the shop is closed: regular closures learned from history, and known closure dates.

A retail calendar has three kinds of empty periods, and each needs its own treatment:

* **regular closures** -- a weekday (or, for hourly series, an hour of day) on which the store
  logged nothing at *every* occurrence (at least ``min_occurrences`` of them): a shop shut on
  Saturdays, a site that takes no orders at night. Learned by :func:`learn_closures`.
* **known closures** -- dates the user names (``--closed``, a closures file): Christmas, bank
  holidays, a planned shutdown, in the past or in the forecast horizon.
* **gaps** -- empty periods when the store is normally active and no closure explains them: a
  logging outage. These stay the job of the gap rule in ``series.py``.

A closed period is forecast as exactly 0 with a 0-width interval, is never scored by the backtest
(its value is certain, so it would flatter every model alike), and is imputed for fitting (models
learn the open days' pattern, not a string of zeros they would then carry into open days).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from shopseq.errors import InputError

__all__ = [
    "WEEKDAYS",
    "Closures",
    "interpolate_closed",
    "learn_closures",
    "parse_dates",
    "read_closed_dates",
    "weekday_of",
]

#: Weekday names, 0 = Monday (ISO order).
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def weekday_of(ds: np.ndarray) -> np.ndarray:
    """Weekday of each period start, 0 = Monday.

    Args:
        ds: Period starts (datetime64).

    Returns:
        ``(len(ds),)`` int64 in 0..6.
    """
    # 1970-01-01 was a Thursday (weekday 3).
    return np.asarray((np.asarray(ds).astype("datetime64[D]").astype(np.int64) + 3) % 7)


@dataclass(frozen=True, slots=True)
class Closures:
    """The periods a shop is closed.

    Attributes:
        weekdays: Weekdays closed every week (0 = Monday).
        hours: Hours of day closed every day (hourly series only).
        dates: Individual closed days (whole days, any frequency).
    """

    weekdays: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()
    dates: tuple[date, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.weekdays or self.hours or self.dates)

    def mask(self, ds: np.ndarray, hourly: bool = False) -> np.ndarray:
        """Which periods are closed.

        Args:
            ds: Period starts (datetime64), past or future.
            hourly: Whether the periods are hours (then ``hours`` apply).

        Returns:
            ``(len(ds),)`` bool.
        """
        ds = np.asarray(ds)
        closed = np.zeros(len(ds), dtype=bool)
        if not self:
            return closed
        if self.weekdays:
            closed |= np.isin(weekday_of(ds), np.array(self.weekdays))
        if hourly and self.hours:
            closed |= np.isin(ds.astype("datetime64[h]").astype(np.int64) % 24, self.hours)
        if self.dates:
            wanted = np.array([np.datetime64(d, "D") for d in self.dates])
            closed |= np.isin(ds.astype("datetime64[D]"), wanted)
        return closed

    def merged(self, other: Closures) -> Closures:
        """The union of two closure sets.

        Args:
            other: More closures.

        Returns:
            Closures holding both.
        """
        return Closures(
            tuple(sorted({*self.weekdays, *other.weekdays})),
            tuple(sorted({*self.hours, *other.hours})),
            tuple(sorted({*self.dates, *other.dates})),
        )

    def describe(self) -> str:
        """One line for people ("closed Saturdays; 3 dates").

        Returns:
            The description ("" when nothing is closed).
        """
        parts = []
        if self.weekdays:
            parts.append("closed " + ", ".join(WEEKDAYS[d] + "s" for d in self.weekdays))
        if self.hours:
            parts.append("closed hours " + ", ".join(f"{h:02d}:00" for h in self.hours))
        if self.dates:
            shown = ", ".join(d.isoformat() for d in self.dates[:3])
            more = f" and {len(self.dates) - 3} more" if len(self.dates) > 3 else ""
            parts.append(f"closed on {shown}{more}")
        return "; ".join(parts)


def learn_closures(
    store_events: np.ndarray,
    ds: np.ndarray,
    *,
    hourly: bool,
    min_occurrences: int,
    ignore: np.ndarray | None = None,
) -> Closures:
    """Weekdays (and hours of day) on which the store logged nothing at every occurrence.

    Args:
        store_events: ``(n_periods,)`` events logged per period (all actions).
        ds: ``(n_periods,)`` period starts.
        hourly: Whether periods are hours (hours of day are learned too, and weekdays from whole
            days).
        min_occurrences: Fewest occurrences of a weekday (or hour) seen, all empty, to call it
            closed; fewer and it stays an ordinary quiet time.
        ignore: ``(n_periods,)`` periods left out (known closed dates).

    Returns:
        The learned closures (no dates).
    """
    keep = np.ones(len(ds), dtype=bool) if ignore is None else ~ignore
    events, when = store_events[keep], np.asarray(ds)[keep]
    if events.size == 0:
        return Closures()
    if hourly:
        day = when.astype("datetime64[D]")
        days, index = np.unique(day, return_inverse=True)
        per_day = np.bincount(index, weights=events, minlength=len(days))
        # A weekday is closed only when it is empty all day, every week.
        weekdays = _always_empty(per_day, weekday_of(days), 7, min_occurrences)
        open_hours = ~np.isin(weekday_of(when), weekdays)
        hour = when.astype("datetime64[h]").astype(np.int64) % 24
        hours = _always_empty(events[open_hours], hour[open_hours], 24, min_occurrences)
        return Closures(weekdays=weekdays, hours=hours)
    return Closures(weekdays=_always_empty(events, weekday_of(when), 7, min_occurrences))


def _always_empty(
    counts: np.ndarray, slot: np.ndarray, n_slots: int, min_occurrences: int
) -> tuple[int, ...]:
    seen = np.bincount(slot, minlength=n_slots)
    busy = np.bincount(slot, weights=counts, minlength=n_slots)
    closed = (seen >= min_occurrences) & (busy == 0)
    if closed.all():  # a store that is never open is an empty log, not a closure rule
        return ()
    return tuple(int(s) for s in np.flatnonzero(closed))


def read_closed_dates(path: Path) -> tuple[date, ...]:
    """Read closure dates from a text file: one ISO date per line; ``#`` starts a comment.

    Args:
        path: The file.

    Returns:
        The dates, sorted and unique.

    Raises:
        InputError: If the file cannot be read or a line is not a date (naming file and line).
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the closures file: {err}") from err
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        # A CSV with a date column first is accepted too ("2024-12-25,Christmas").
        value = value.split(",", 1)[0].strip()
        try:
            found.append(date.fromisoformat(value))
        except ValueError:
            raise InputError(
                f"{path}:{number}: {value!r} is not a date; expected one YYYY-MM-DD per line"
            ) from None
    return tuple(sorted(set(found)))


def parse_dates(values: Iterable[str], what: str) -> tuple[date, ...]:
    """Parse ISO dates given on the command line.

    Args:
        values: ``YYYY-MM-DD`` strings.
        what: The option's name, for the message.

    Returns:
        The dates, sorted and unique.

    Raises:
        InputError: For a value that is not a date.
    """
    out = []
    for value in values:
        try:
            out.append(date.fromisoformat(value.strip()))
        except ValueError:
            raise InputError(f"{what}: {value!r} is not a date; expected YYYY-MM-DD") from None
    return tuple(sorted(set(out)))


def interpolate_closed(y: np.ndarray, closed: Sequence[bool] | np.ndarray) -> np.ndarray:
    """Replace closed periods by a straight line between the nearest open values of each series.

    Models fit on the open days' pattern this way (a weekly string of zeros would otherwise be
    learned as demand and leak into open days); the forecast puts the zeros back.

    Args:
        y: ``(n_series, n_periods)`` values (NaN allowed: gaps, filled later).
        closed: ``(n_periods,)`` closed periods.

    Returns:
        A copy with closed periods interpolated (NaN where a series has no open value at all).
    """
    closed = np.asarray(closed, dtype=bool)
    out = y.copy()
    if not closed.any():
        return out
    t = np.arange(y.shape[1])
    for i in range(y.shape[0]):
        anchor = ~closed & np.isfinite(y[i])
        if anchor.any():
            out[i, closed] = np.interp(t[closed], t[anchor], y[i, anchor])
        else:
            out[i, closed] = np.nan
    return out
