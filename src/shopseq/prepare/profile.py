"""Dataset profile of an event store: what ``shopseq stats`` shows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import ibis

from shopseq.prepare.dedupe import drop_exact_duplicates
from shopseq.prepare.log import latest_prepare_counts
from shopseq.prepare.pipeline import PREPARED_TABLE
from shopseq.schema import (
    ACTION,
    CATEGORY_ID,
    ITEM_ID,
    SESSION_ID,
    TS,
    USER_ID,
    Action,
)
from shopseq.store import Store

__all__ = ["DatasetProfile", "Quantiles", "profile_store"]

_QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True, slots=True)
class Quantiles:
    """Distribution of a per-group count."""

    mean: float
    p50: float
    p90: float
    p99: float
    max: int


@dataclass(frozen=True, slots=True)
class DatasetProfile:
    """Counts that describe an event store.

    Attributes:
        table: Table profiled (``events_prepared`` when it exists, else ``events``).
        n_files: Files ingested.
        rows_read: Input rows read over all files.
        rows_quarantined: Input rows quarantined.
        quarantine_by_reason: Quarantined rows per reason.
        raw_events: Events accepted by ingest.
        exact_duplicates: Exact duplicates among the accepted events.
        n_events: Events in the profiled table.
        events_by_action: Events per action.
        n_users: Distinct users.
        n_items: Distinct items.
        n_categories: Distinct categories (missing not counted).
        n_sessions: Distinct sessions (``None`` before sessionisation).
        events_per_user: Distribution of events per user.
        events_per_session: Distribution of events per session (``None`` before sessionisation).
        first_ts: Earliest event.
        last_ts: Latest event.
        sparsity: 1 - distinct (user, item) pairs / (users x items).
        return_rate: Return events per purchase event (``None`` without purchases); a return
            is an invoice line of returned units, as a purchase is one of bought units.
    """

    table: str
    n_files: int
    rows_read: int
    rows_quarantined: int
    quarantine_by_reason: dict[str, int]
    raw_events: int
    exact_duplicates: int
    n_events: int
    events_by_action: dict[str, int]
    n_users: int
    n_items: int
    n_categories: int
    n_sessions: int | None
    events_per_user: Quantiles
    events_per_session: Quantiles | None
    first_ts: datetime | None
    last_ts: datetime | None
    sparsity: float
    return_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as plain JSON-ready data.

        Returns:
            A dict (timestamps as ISO strings).
        """
        data = asdict(self)
        for key in ("first_ts", "last_ts"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def _quantiles(counts: ibis.Table) -> tuple[Quantiles, int]:
    """The distribution of ``counts._n`` and the number of groups, from one query."""
    n = counts._n
    row = (
        counts.aggregate(
            groups=counts.count(),
            mean=n.mean(),
            max=n.max(),
            **{f"p{int(q * 100)}": n.quantile(q) for q in _QUANTILES},
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    quantiles = Quantiles(
        mean=float(row["mean"] or 0),
        p50=float(row["p50"] or 0),
        p90=float(row["p90"] or 0),
        p99=float(row["p99"] or 0),
        max=int(row["max"] or 0),
    )
    return quantiles, int(row["groups"] or 0)


def profile_store(store: Store) -> DatasetProfile:
    """Compute the profile (all aggregation in the store's engine).

    Args:
        store: The event store.

    Returns:
        The profile.
    """
    raw = store.table("events")
    prepared = store.has_table(PREPARED_TABLE)
    events = store.table(PREPARED_TABLE) if prepared else raw
    files = (
        store.table("source_files")
        .aggregate(
            n=ibis._.count(), read=ibis._.rows_read.sum(), quarantined=ibis._.rows_quarantined.sum()
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    quarantine = store.table("quarantine")
    by_reason = {
        r["reason"]: int(r["n"])
        for r in quarantine.group_by("reason")
        .aggregate(n=ibis._.count())
        .order_by("reason")
        .to_pyarrow()
        .to_pylist()
    }
    raw_n = int(raw.count().execute())
    summary = (
        events.aggregate(
            n=events.count(),
            users=events[USER_ID].nunique(),
            items=events[ITEM_ID].nunique(),
            categories=events[CATEGORY_ID].nunique(),
            first=events[TS].min(),
            last=events[TS].max(),
            bought=events.count(where=events[ACTION] == Action.PURCHASE.value),
            returned=events.count(where=events[ACTION] == Action.RETURN.value),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    # The exact duplicates prepare removed are in its log (when it still describes these
    # tables); recounting them is a hash aggregation over every raw event.
    logged = latest_prepare_counts(store, raw_n, int(summary["n"])) if prepared else None
    if logged is not None:
        exact_duplicates = logged.exact_duplicates
    else:
        dedup_n = int(drop_exact_duplicates(raw).count().execute()) if raw_n else 0
        exact_duplicates = raw_n - dedup_n
    pairs = int(events.select(USER_ID, ITEM_ID).distinct().count().execute())
    by_action = {
        r[ACTION]: int(r["n"])
        for r in events.group_by(ACTION)
        .aggregate(n=ibis._.count())
        .order_by(ibis.desc("n"))
        .to_pyarrow()
        .to_pylist()
    }
    per_user, _ = _quantiles(events.group_by(USER_ID).aggregate(_n=ibis._.count()))
    per_session = None
    n_sessions = None
    if prepared:  # the number of sessions comes with their distribution (one pass, not two)
        per_session, n_sessions = _quantiles(
            events.group_by(SESSION_ID).aggregate(_n=ibis._.count())
        )
    users, items = int(summary["users"]), int(summary["items"])
    return DatasetProfile(
        table=PREPARED_TABLE if prepared else "events",
        n_files=int(files["n"]),
        rows_read=int(files["read"] or 0),
        rows_quarantined=int(files["quarantined"] or 0),
        quarantine_by_reason=by_reason,
        raw_events=raw_n,
        exact_duplicates=exact_duplicates,
        n_events=int(summary["n"]),
        events_by_action=by_action,
        n_users=users,
        n_items=items,
        n_categories=int(summary["categories"]),
        n_sessions=n_sessions,
        events_per_user=per_user,
        events_per_session=per_session,
        first_ts=summary["first"],
        last_ts=summary["last"],
        sparsity=1.0 - pairs / (users * items) if users and items else 1.0,
        return_rate=float(summary["returned"] or 0) / float(summary["bought"])
        if summary["bought"]
        else None,
    )
