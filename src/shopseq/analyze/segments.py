"""Customer segments: RFM scores and k-means clusters with a readable profile of each.

RFM scores come from per-user features as of one cut time (default: one second after the last
event): the columns of ``sequences.user_features`` that segments read, with the same definitions,
from one grouped query (:func:`segment_features`; the whole feature table also costs a window over
every user's events, category medians and two joins; ``tests/analyze/test_segments.py`` checks
the columns equal ``user_features``'). R (1-5, 5 best) ranks all users by the recency of their
last event; F ranks buyers by their number of purchases and M by their purchase value (1-5 among
buyers; users who never bought get F = M = 0). A score is ``1 + floor(5 * percent_rank)`` in that
order, so equal values share a score and the result does not depend on row order.

Clusters: k-means (scikit-learn) on standardised log1p(recency, purchases, spend, sessions,
events) plus the cart and purchase shares of a user's events. Each cluster gets a name built
from how its means differ from all users' (e.g. "active heavy browsers", "lapsed buyers").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import ibis
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from shopseq.analyze.result import Result, fetch_rows
from shopseq.schema import ACTION, PRICE, QUANTITY, SESSION_ID, TS, USER_ID, Action

__all__ = [
    "SegmentConfig",
    "SegmentProfile",
    "SegmentsResult",
    "segment_features",
    "segment_users",
]

#: Features k-means sees (log1p for the skewed counts); order fixes the centroid columns.
_LOG_FEATURES = ("recency_days", "frequency", "monetary", "n_sessions", "n_events")
_SHARE_FEATURES = ("share_cart", "share_purchase")


class SegmentConfig(BaseModel):
    """How to segment users.

    Attributes:
        k: Number of k-means clusters.
        as_of: Cut time of the features (naive UTC); ``None``: one second after the last event.
        n_init: k-means restarts.
        max_fit_users: Users k-means is fitted on at most (a seeded sample; all are assigned).
        seed: Seed of k-means and of the sample.
        threads: BLAS/OpenMP threads for k-means (1 is fastest on a busy 2-core machine).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(default=4, ge=2, le=20)
    as_of: datetime | None = None
    n_init: int = Field(default=4, ge=1)
    max_fit_users: int = Field(default=200_000, ge=10)
    seed: int = Field(default=0, ge=0)
    threads: int = Field(default=1, ge=1)


@dataclass(frozen=True, slots=True)
class SegmentProfile(Result):
    """What one segment looks like (means over its users).

    Attributes:
        segment: Segment number (0 = largest).
        name: Readable name from the profile.
        n_users: Users.
        share: Share of all users.
        buyer_share: Share of its users with a purchase.
        return_rate: Its return events per purchase event (0 without purchases).
        recency_days: Mean days since the last event.
        frequency: Mean purchases.
        monetary: Mean purchase value.
        n_sessions: Mean sessions.
        n_events: Mean events.
        r_score: Mean R score.
        f_score: Mean F score.
        m_score: Mean M score.
    """

    segment: int
    name: str
    n_users: int
    share: float
    buyer_share: float
    return_rate: float
    recency_days: float
    frequency: float
    monetary: float
    n_sessions: float
    n_events: float
    r_score: float
    f_score: float
    m_score: float


@dataclass(frozen=True, slots=True)
class SegmentsResult(Result):
    """RFM scores and segments.

    Attributes:
        as_of: Feature cut time.
        n_users: Users segmented.
        k: Clusters.
        rfm_grid: Users per (R score, F score): ``rfm_grid[r - 1][f]`` (F = 0: never bought).
        segments: Largest first.
        assignments: ``user_id, segment, segment_name, r_score, f_score, m_score`` per user (not
            in ``to_dict``; write it to the store to break a funnel down by segment).
    """

    as_of: datetime | None
    n_users: int
    k: int
    rfm_grid: tuple[tuple[int, ...], ...]
    segments: tuple[SegmentProfile, ...]
    assignments: pa.Table = field(metadata={"json": False})


def segment_features(events: ibis.Table, as_of: datetime) -> ibis.Table:
    """The per-user columns segments read, from the events before ``as_of``.

    Same definitions as the columns of that name in ``sequences.user_features``:
    ``recency_days`` (days from the user's last event, truncated to the second, to ``as_of``),
    ``frequency`` (purchase events), ``monetary`` (sum of price x quantity of purchases, a
    missing price 0, a missing quantity 1), ``n_sessions``, ``n_events``, ``share_cart``,
    ``share_purchase``, ``n_purchase`` and ``n_return``.

    Args:
        events: Prepared (sessionised) events.
        as_of: Cut time (naive UTC); events at or after it are ignored.

    Returns:
        One row per user (an expression; any engine).
    """
    past = events.filter(events[TS] < ibis.literal(as_of))
    action = past[ACTION]
    is_purchase = action == Action.PURCHASE.value
    value = past[PRICE].fill_null(0.0) * past[QUANTITY].fill_null(1).cast("float64")
    # Truncate first: epoch_seconds() keeps fractions on DuckDB but not on Spark (STACK.md).
    sec = past[TS].truncate("s").epoch_seconds().cast("int64")
    session = past[SESSION_ID]
    per_user = past.group_by(USER_ID).aggregate(
        _last=sec.max(),
        frequency=is_purchase.cast("int64").sum(),
        monetary=ibis.ifelse(is_purchase, value, 0.0).sum(),
        # user_features counts (user, session) groups: a missing session id is one more.
        n_sessions=session.nunique() + session.isnull().any().cast("int64"),
        n_events=past.count(),
        share_cart=(action == Action.CART.value).cast("float64").mean(),
        share_purchase=is_purchase.cast("float64").mean(),
        **{
            f"n_{a.value}": (action == a.value).cast("int64").sum()
            for a in (Action.PURCHASE, Action.RETURN)
        },
    )
    as_of_s = ibis.literal(as_of).truncate("s").epoch_seconds().cast("int64")
    recency = (as_of_s - per_user._last).cast("float64") / 86_400.0
    return per_user.mutate(recency_days=recency).drop("_last")


def _score(
    column: ibis.Value, descending: bool = False, among: ibis.BooleanValue | None = None
) -> ibis.IntegerValue:
    """1-5 by percent rank (over rows where ``among`` holds; 0 elsewhere)."""
    order = ibis.desc(column) if descending else column
    group = [] if among is None else [among]
    rank = ibis.percent_rank().over(ibis.window(group_by=group, order_by=order))
    score = ibis.least(5, (rank * 5).floor().cast("int64") + 1)
    return score if among is None else ibis.ifelse(among, score, 0)


def _name(z: dict[str, float], buyer_share: float, overall_buyers: float) -> str:
    words = []
    if z["recency_days"] < -0.5:
        words.append("active")
    elif z["recency_days"] > 0.5:
        words.append("lapsed")
    if z["n_events"] > 0.5:
        words.append("heavy")
    elif z["n_events"] < -0.5:
        words.append("light")
    if buyer_share >= 0.5 or buyer_share > 2 * overall_buyers > 0:
        words.append("repeat buyers" if z["frequency"] > 1.0 else "buyers")
    else:
        words.append("browsers")
    return " ".join(words)


def _kmeans_labels(
    matrix: npt.NDArray[np.float64], config: SegmentConfig
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    try:
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits
    except ImportError as err:  # an optional extra: say how to get it
        raise ImportError("segments need scikit-learn: pip install 'shopseq[analyze]'") from err

    mean, std = matrix.mean(axis=0), matrix.std(axis=0)
    scaled = (matrix - mean) / np.where(std > 0, std, 1.0)
    rng = np.random.default_rng(config.seed)
    fit_rows = (
        rng.choice(len(scaled), config.max_fit_users, replace=False)
        if len(scaled) > config.max_fit_users
        else np.arange(len(scaled))
    )
    k = min(config.k, len(np.unique(scaled[fit_rows], axis=0)))
    model = KMeans(n_clusters=max(k, 1), n_init=config.n_init, random_state=config.seed)
    with threadpool_limits(config.threads):
        model.fit(scaled[fit_rows])
        labels = model.predict(scaled).astype(np.int64)
    return labels, scaled


def segment_users(events: ibis.Table, config: SegmentConfig) -> SegmentsResult:
    """Score users by RFM and cluster them into readable segments.

    Args:
        events: Prepared events (``store.table("events_prepared")``).
        config: Clusters, cut time, seed.

    Returns:
        RFM grid, segment profiles and per-user assignments.
    """
    as_of = config.as_of
    if as_of is None:
        last = fetch_rows(events.aggregate(last=events[TS].max()))[0]["last"]
        as_of = last + timedelta(seconds=1) if last is not None else None
    empty_grid = tuple(tuple(0 for _ in range(6)) for _ in range(5))
    if as_of is None:
        schema = pa.schema([(USER_ID, pa.string()), ("segment", pa.int64())])
        return SegmentsResult(None, 0, config.k, empty_grid, (), schema.empty_table())
    features = segment_features(events, as_of)
    scored = features.mutate(
        r_score=_score(features.recency_days, descending=True),
        f_score=_score(features.frequency, among=features.frequency > 0),
        m_score=_score(features.monetary, among=features.frequency > 0),
    ).order_by(USER_ID)
    table = scored.select(
        USER_ID,
        *_LOG_FEATURES,
        *_SHARE_FEATURES,
        "r_score",
        "f_score",
        "m_score",
        f"n_{Action.PURCHASE.value}",
        f"n_{Action.RETURN.value}",
    ).to_pyarrow()
    n_users = table.num_rows
    columns = {
        name: table.column(name).to_numpy(zero_copy_only=False) for name in table.schema.names
    }
    raw = {name: np.nan_to_num(columns[name].astype(np.float64)) for name in _LOG_FEATURES}
    matrix = np.column_stack(
        [np.log1p(np.maximum(raw[n], 0.0)) for n in _LOG_FEATURES]
        + [np.nan_to_num(columns[n].astype(np.float64)) for n in _SHARE_FEATURES]
    )
    labels, scaled = _kmeans_labels(matrix, config) if n_users else (np.zeros(0, np.int64), matrix)
    # Renumber clusters by size (0 = largest), ties by first label.
    sizes = np.bincount(labels, minlength=labels.max() + 1 if n_users else 0)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty_like(order)
    relabel[order] = np.arange(len(order))
    labels = relabel[labels] if n_users else labels
    buyers = raw["frequency"] > 0
    overall_buyers = float(buyers.mean()) if n_users else 0.0
    grid = np.zeros((5, 6), np.int64)
    np.add.at(grid, (columns["r_score"] - 1, columns["f_score"]), 1)
    profiles, names = [], []
    for segment in range(len(order)):
        rows = labels == segment
        centroid = scaled[rows].mean(axis=0)
        z = {name: float(centroid[i]) for i, name in enumerate(_LOG_FEATURES)}
        buyer_share = float(buyers[rows].mean())
        bought = float(np.nan_to_num(columns[f"n_{Action.PURCHASE.value}"][rows]).sum())
        returned = float(np.nan_to_num(columns[f"n_{Action.RETURN.value}"][rows]).sum())
        name = _name(z, buyer_share, overall_buyers)
        while name in names:
            name += "+"
        names.append(name)
        profiles.append(
            SegmentProfile(
                segment=segment,
                name=name,
                n_users=int(rows.sum()),
                share=float(rows.mean()),
                buyer_share=buyer_share,
                return_rate=returned / bought if bought else 0.0,
                **{n: float(raw[n][rows].mean()) for n in _LOG_FEATURES},
                **{s: float(columns[s][rows].mean()) for s in ("r_score", "f_score", "m_score")},
            )
        )
    assignments = pa.table(
        {
            USER_ID: table.column(USER_ID),
            "segment": pa.array(labels, pa.int64()),
            "segment_name": pa.array([names[i] for i in labels], pa.string()),
            "r_score": table.column("r_score"),
            "f_score": table.column("f_score"),
            "m_score": table.column("m_score"),
        }
    )
    return SegmentsResult(
        as_of=as_of,
        n_users=n_users,
        k=len(order),
        rfm_grid=tuple(tuple(int(v) for v in row) for row in grid),
        segments=tuple(profiles),
        assignments=assignments,
    )
