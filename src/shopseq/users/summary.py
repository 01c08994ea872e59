"""Per-customer repeat-purchase summaries (frequency, recency, age, spend) for customer-base models.

The notation is Fader, Hardie & Lee's: ``x`` repeat transactions, ``t_x`` the time from the first
to the last transaction, ``T`` the time from the first transaction to the end of observation, and
``m_x`` the mean value of the repeat transactions (the first one is left out, as in their
Gamma-Gamma note). A transaction is a day with at least one purchase: CDNOW's published figures
count days, and an order of several items in the store is several purchase events at one time.
Time is in units of ``unit_days`` days (7: weeks, as in the papers).

Observation ends on the last day before the cut-off: with a cut-off of 1997-10-01 00:00, a
customer who first bought on 1997-01-01 has ``T = 272 / 7`` weeks, which is how the published CDNOW
calibration period (39 weeks) is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis
import numpy as np
import pyarrow as pa

from shopseq.errors import InputError
from shopseq.schema import ACTION, PRICE, QUANTITY, TS, USER_ID, Action, epoch_micros

__all__ = ["CustomerSummary", "customer_summary", "summarize_transactions"]

_DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    """One row per customer with at least one transaction before the cut-off.

    Attributes:
        customer_ids: (n,) external customer ids.
        frequency: (n,) float ``x``, repeat transactions.
        recency: (n,) float ``t_x``, first to last transaction, in units.
        age: (n,) float ``T``, first transaction to the end of observation, in units.
        monetary: (n,) float ``m_x``, mean value of the repeat transactions (0 where ``x = 0``).
        unit_days: Days per time unit.
    """

    customer_ids: pa.Array
    frequency: np.ndarray
    recency: np.ndarray
    age: np.ndarray
    monetary: np.ndarray
    unit_days: float

    def __len__(self) -> int:
        return len(self.frequency)

    def take(self, index: np.ndarray) -> CustomerSummary:
        """Select customers by position (a bootstrap resample, a subset).

        Args:
            index: Positions (repeats allowed).

        Returns:
            The selected rows.
        """
        index = np.asarray(index, dtype=np.int64)
        return CustomerSummary(
            self.customer_ids.take(pa.array(index)),
            self.frequency[index],
            self.recency[index],
            self.age[index],
            self.monetary[index],
            self.unit_days,
        )


def summarize_transactions(
    customer_ids: pa.Array | np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    last_day: int,
    unit_days: float = 7.0,
) -> CustomerSummary:
    """Summarise purchase rows into one row per customer (vectorised; no loop over customers).

    Args:
        customer_ids: (n_rows,) customer of each purchase row.
        day: (n_rows,) int day number of each row (days since the epoch).
        value: (n_rows,) value of each row (rows of one customer and day are added up).
        last_day: Last day of observation (rows after it are ignored).
        unit_days: Days per time unit.

    Returns:
        The summary, customers in order of first appearance.

    Raises:
        InputError: If the arrays differ in length or ``unit_days`` is not positive.
    """
    ids = customer_ids if isinstance(customer_ids, pa.Array) else pa.array(customer_ids)
    day = np.asarray(day, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    if not len(ids) == len(day) == len(value):
        raise InputError(
            f"customer_ids, day and value must have one entry per row; got {len(ids)}, "
            f"{len(day)} and {len(value)}"
        )
    if unit_days <= 0:
        raise InputError(f"The 'unit_days' parameter must be > 0. Got {unit_days} instead.")
    keep = day <= last_day
    ids, day, value = ids.filter(pa.array(keep)), day[keep], value[keep]
    encoded = ids.cast(pa.string()).dictionary_encode()
    unique_ids = encoded.dictionary
    customer = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    # One transaction per (customer, day): sort by both and sum the values of each run.
    order = np.lexsort((day, customer))
    customer, day, value = customer[order], day[order], value[order]
    new_run = np.ones(len(day), dtype=bool)
    new_run[1:] = (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])
    run = np.cumsum(new_run) - 1
    run_customer, run_day = customer[new_run], day[new_run]
    run_value = np.bincount(run, weights=value)
    n = len(unique_ids)
    counts = np.bincount(run_customer, minlength=n)
    first_run = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last_run = np.cumsum(counts) - 1
    first_day, final_day = run_day[first_run], run_day[last_run]
    total = np.bincount(run_customer, weights=run_value, minlength=n)
    x = (counts - 1).astype(np.float64)
    repeat_value = total - run_value[first_run]
    monetary = np.divide(repeat_value, x, out=np.zeros(n), where=x > 0)
    return CustomerSummary(
        customer_ids=unique_ids,
        frequency=x,
        recency=(final_day - first_day) / unit_days,
        age=(last_day - first_day) / unit_days,
        monetary=monetary,
        unit_days=unit_days,
    )


def customer_summary(
    events: ibis.Table, as_of: datetime, unit_days: float = 7.0
) -> CustomerSummary:
    """Summarise the store's purchases before ``as_of`` (one Ibis query, then NumPy).

    Args:
        events: Events (prepared or not); only ``purchase`` events are read.
        as_of: Cut-off (naive UTC); observation ends on the day before it.
        unit_days: Days per time unit.

    Returns:
        The summary of every customer with a purchase before ``as_of``.

    Raises:
        InputError: If there is no purchase before ``as_of``.
    """
    buys = events.filter(
        (events[ACTION] == Action.PURCHASE.value) & (events[TS] < ibis.literal(as_of))
    )
    value = buys[PRICE].fill_null(0.0) * buys[QUANTITY].fill_null(1).cast("float64")
    # The day number in SQL: seconds of the day's midnight (truncate first, see STACK.md).
    day_seconds = buys[TS].truncate("D").epoch_seconds().cast("int64")
    per_day = buys.group_by([buys[USER_ID], day_seconds.name("_day")]).aggregate(_value=value.sum())
    data = per_day.to_pyarrow()
    if data.num_rows == 0:
        raise InputError(f"no purchase before {as_of}: customer-base models need purchases")
    last_moment = epoch_micros(as_of - timedelta(microseconds=1)) // 1_000_000
    return summarize_transactions(
        data.column(USER_ID).combine_chunks(),
        data.column("_day").to_numpy() // _DAY_SECONDS,
        data.column("_value").to_numpy(),
        last_day=last_moment // _DAY_SECONDS,
        unit_days=unit_days,
    )
