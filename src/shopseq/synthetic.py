"""Synthetic shop logs that behave like a real shop, for tests, demos and benchmarks.

``generate_events`` builds a log in the canonical ``EVENT_SCHEMA`` with the regularities the later
stages look for: Zipf item popularity inside skewed categories, per-category lognormal prices,
heterogeneous and churning users, a daily/weekly rhythm with a trend and a promotion week,
sessions separated by hours or days (so a 30-minute gap recovers them), a planted "related item"
transition structure for next-item models, and a view -> cart -> purchase funnel converting 1-3 %
of sessions. ``write_events`` writes it as CSV (optionally gzip/zstd), Parquet or JSON lines, and
can plant counted defects (malformed rows, exact duplicates) for ingest tests.

Everything is vectorised numpy/pyarrow: the only Python loop runs over positions within a session.
All randomness comes from ``np.random.default_rng(config.seed)``, so a config fixes the output.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopseq.schema import ACTION_CODES, EVENT_COLUMNS, EVENT_SCHEMA, Action

__all__ = [
    "DEFECT_KINDS",
    "TS_TEXT_FORMAT",
    "GenerateReport",
    "GeneratorConfig",
    "generate_events",
    "generate_events_with_truth",
    "write_events",
]

_Arrays = dict[str, Any]  # named numpy arrays passed between the generation steps
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: How ``ts`` is written in text formats (naive UTC, second precision): ``2024-01-01 10:00:00``.
#: No ``Z`` suffix: Arrow refuses to parse a zone offset into the naive ``timestamp`` of the schema.
TS_TEXT_FORMAT = "%Y-%m-%d %H:%M:%S"

#: Defect kinds ``write_events`` can plant, in the order they are assigned.
DEFECT_KINDS: tuple[str, ...] = (
    "bad_timestamp",
    "unknown_action",
    "missing_field",
    "negative_price",
    "non_numeric_price",
    "wrong_column_count",
)
# Parquet keeps the typed schema, so only defects that fit the column types can be planted there.
_FORMAT_DEFECTS = {
    "csv": DEFECT_KINDS,
    "jsonl": DEFECT_KINDS[:5],
    "parquet": ("unknown_action", "missing_field", "negative_price"),
}
# suffix -> (format, compression)
_SUFFIXES: dict[str, tuple[str, str | None]] = {
    ".csv": ("csv", None), ".csv.gz": ("csv", "gzip"), ".csv.zst": ("csv", "zstd"),
    ".jsonl": ("jsonl", None), ".parquet": ("parquet", None),
}  # fmt: skip
_BAD_VALUES = {
    "bad_timestamp": ("2024-13-45 99:00:00", "yesterday", "31/02/2024 25:61"),
    "unknown_action": ("teleport", "hover", "wishlist_sync"),
    "non_numeric_price": ("abc", "12.5.1", "twelve"),
}
_CATEGORY_WORDS = (
    "shoes", "phones", "laptops", "books", "toys", "garden", "kitchen", "beauty", "jewelry",
    "sports", "music", "games", "pets", "baby", "office", "tools", "lighting", "bedding", "bags",
    "watches", "cameras", "audio", "snacks", "coffee", "tea", "wine", "bikes", "camping",
)  # fmt: skip

# Funnel and session shape. Tuned so that sessions average ~5.6 rows and 1-3 % of them convert.
_P_SESSION_END = 0.2  # geometric number of views per session, mean 5
_MAX_VIEWS = 40
_P_RELATED = 0.5
# With ``plant_sequence_structure``: a later view is a related item of the session's mission (its
# first item) or of the previous item, else a popular one; a session opens on the user's own
# favourite item of its category this often.
_P_MISSION, _P_MISSION_PREVIOUS, _P_FAVOURITE_ITEM = 0.35, 0.25, 0.5
_RELATED_CDF = np.cumsum([0.5, 0.25, 0.15, 0.1])  # which of an item's 4 related items is next
_ITEM_ZIPF = 0.95
_CATEGORY_ZIPF = 0.8
_P_SEARCH, _P_FAVORITE = 0.12, 0.03
_P_CART = (0.04, 0.3)  # per view, (non-converting, converting) session
_P_REMOVE = (0.35, 0.12)
_PURCHASE_BETA = (0.25, 11.0)  # user propensity to convert a session: mean 2.2 %, a few buyers high
_P_LOYAL, _P_CHURN_PER_WEEK = 0.25, 0.3
_MIN_SESSION_GAP_S = 3600  # sessions of one user start >= 1 h after the previous one ended
_ROWS_PER_SESSION = 5.6  # measured; used to size the session draw before trimming to n_events
_OVERSAMPLE = 1.15
_WEEKDAY_FACTOR = np.array([1.0, 0.96, 0.95, 0.98, 1.05, 1.25, 1.3])  # Mon..Sun
_TREND, _PROMO_FACTOR = 0.25, 1.8
# Relative session starts per hour (0-23): night trough, lunch bump, evening peak.
_HOURS_WEEKDAY = np.array(
    [0.3, 0.15, 0.08, 0.06, 0.06, 0.1, 0.25, 0.5, 0.7, 0.8, 0.85, 0.9,
     1.0, 0.95, 0.85, 0.85, 0.9, 1.0, 1.2, 1.45, 1.65, 1.7, 1.3, 0.7]
)  # fmt: skip
_HOURS_WEEKEND = np.array(
    [0.45, 0.25, 0.12, 0.08, 0.06, 0.07, 0.12, 0.25, 0.5, 0.8, 1.05, 1.2,
     1.25, 1.25, 1.2, 1.15, 1.15, 1.2, 1.3, 1.45, 1.6, 1.6, 1.25, 0.8]
)  # fmt: skip
_VIEW, _SEARCH, _FAVORITE = (ACTION_CODES[a] for a in (Action.VIEW, Action.SEARCH, Action.FAVORITE))
_CART, _REMOVE, _PURCHASE = (
    ACTION_CODES[a] for a in (Action.CART, Action.REMOVE_FROM_CART, Action.PURCHASE)
)
# Text is built per chunk to bound memory and keep string offsets under 2 GiB.
_CHUNK_ROWS = 1_000_000


class GeneratorConfig(BaseModel):
    """How big and how dirty a synthetic log to make.

    Attributes:
        n_events: Target number of events. The result is within a few per cent below it, unless
            ``n_days`` is too short for the users' sessions to fit without overlapping.
        n_users: Number of users; ``n_events // 40`` when ``None``.
        n_items: Number of items; ``max(n_events // 100, 50, n_categories)`` when ``None``.
        n_categories: Number of item categories.
        start: First day of the log, naive UTC.
        n_days: Length of the log in days.
        seed: Seed of the one random generator everything draws from.
        promotion: Whether one week mid-period gets a traffic spike.
        dirty_fraction: Fraction of rows ``write_events`` replaces by malformed rows.
        duplicate_fraction: Fraction of clean rows ``write_events`` writes twice in a row.
        plant_user_signals: Plant what the per-user models look for, with the truth known
            (:func:`generate_events_with_truth`): habitual return intervals per user, a churn
            hazard that rises as a user disengages (their gaps between sessions lengthen), longer
            dwell in sessions that end in a purchase, and per-user spend levels. Off by default
            so that logs generated before it existed stay identical.
        plant_sequence_structure: Plant what only a model of the whole history can use: each
            session has a mission (its first item), and a later view is a related item of the
            mission (35 %) or of the previous item (25 %), else a popular one; related items
            are alike (neighbours in a latent order of each category) rather than drawn at
            random, so embeddings can share what neighbours have in common; and each user has
            a favourite item per category that half of their sessions in that category open
            on (taste that persists across sessions). A first-order model sees only the previous
            item, so it cannot reach what a sequence model can. Without it the views follow the
            previous item only (50 %), which a first-order Markov chain fits exactly. Off by
            default so that logs generated before it existed stay identical.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_events: int = Field(default=1_000_000, gt=0)
    n_users: int | None = Field(default=None, gt=0)
    n_items: int | None = Field(default=None, gt=0)
    n_categories: int = Field(default=60, gt=0)
    start: datetime = datetime(2024, 1, 1)
    n_days: int = Field(default=120, gt=0)
    seed: int = Field(default=0, ge=0)
    promotion: bool = True
    dirty_fraction: float = Field(default=0.0, ge=0.0, le=0.5)
    duplicate_fraction: float = Field(default=0.0, ge=0.0, le=0.5)
    plant_user_signals: bool = False
    plant_sequence_structure: bool = False

    @field_validator("start")
    @classmethod
    def _naive_utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)

    @model_validator(mode="after")
    def _enough_items(self) -> GeneratorConfig:
        if self.n_items is not None and self.n_items < self.n_categories:
            raise ValueError(
                f"n_items ({self.n_items}) must be >= n_categories ({self.n_categories}); "
                "every category needs an item"
            )
        return self

    @property
    def resolved_n_users(self) -> int:
        """Number of users after applying the default."""
        return self.n_users if self.n_users is not None else max(self.n_events // 40, 1)

    @property
    def resolved_n_items(self) -> int:
        """Number of items after applying the default."""
        if self.n_items is not None:
            return self.n_items
        return max(self.n_events // 100, 50, self.n_categories)


@dataclass(frozen=True, slots=True)
class GenerateReport:
    """What ``write_events`` put in the file.

    Attributes:
        path: The file written.
        format: ``"csv"``, ``"jsonl"`` or ``"parquet"``.
        n_rows_written: Data rows in the file (header excluded), duplicates and defects included.
        n_clean_events: Rows of the table written unchanged (each counted once).
        n_duplicates: Extra copies of clean rows, each right after its original.
        defects: Number of malformed rows per defect kind (every kind the format supports).
        defect_rows: 0-based data-row index in the file of every malformed row, per kind; the
            physical line is ``index + 2`` in CSV (header, 1-based) and ``index + 1`` in JSONL.
    """

    path: Path
    format: str
    n_rows_written: int
    n_clean_events: int
    n_duplicates: int
    defects: dict[str, int]
    defect_rows: dict[str, IntArray] = field(compare=False, repr=False)


def generate_events(config: GeneratorConfig) -> pa.Table:
    """Generate a synthetic shop log.

    Args:
        config: Size, period and seed of the log.

    Returns:
        A table with exactly ``EVENT_SCHEMA``, sorted by ``ts`` (ties keep session order).
    """
    return _generate(config)[0]


def generate_events_with_truth(config: GeneratorConfig) -> tuple[pa.Table, pa.Table]:
    """Generate a log and the per-user truth behind it (``plant_user_signals`` must be on).

    Args:
        config: Size, period and seed of the log.

    Returns:
        ``(events, truth)``; ``truth`` has one row per user id: ``habit_days`` (their typical
        days between sessions), ``disengagement`` (how fast those gaps grow, per session; 0 for a
        steady user), ``left_day`` (day index of their last session when they left during the
        period, else null), ``spend_level`` (mean extra items per purchase) and ``propensity``
        (chance that a session converts).

    Raises:
        ValueError: If ``plant_user_signals`` is off (there is no planted truth then).
    """
    if not config.plant_user_signals:
        raise ValueError(
            "generate_events_with_truth needs GeneratorConfig(plant_user_signals=True)"
        )
    table, truth = _generate(config)
    assert truth is not None  # planted mode always returns it
    return table, truth


def _generate(config: GeneratorConfig) -> tuple[pa.Table, pa.Table | None]:
    rng = np.random.default_rng(config.seed)
    catalog = _Catalog.draw(config, rng)
    day_weight = _day_weights(config, rng)
    truth: _Arrays | None = None
    if config.plant_user_signals:
        s, truth = _draw_planted_sessions(config, catalog, day_weight, rng)
    else:
        s = _draw_sessions(config, catalog, day_weight, rng)
    opening = _favourite_openings(config, catalog, s) if config.plant_sequence_structure else None
    pos = _draw_views(s["n_views"], s["category"], catalog, rng, opening)
    rows = _lay_out_rows(s, pos, rng)
    if truth is not None:
        # Spend heterogeneity: each user buys more or fewer items per purchase.
        level = truth["spend_level"][s["user"][rows["session"]]]
        rows["quantity"] = np.minimum(1 + rng.poisson(level), 10).astype(np.int32)
    keep = _select_sessions(config, s, rows, rng)
    table = _to_table(config, catalog, s, rows, keep)
    if truth is None:
        return table, None
    users = _labels("u", config.resolved_n_users, 6)
    truth_table = pa.table(
        {
            "user_id": users,
            "habit_days": truth["habit"],
            "disengagement": truth["drift"],
            "left_day": pa.array(truth["left_day"], mask=truth["left_day"] < 0),
            "spend_level": truth["spend_level"],
            "propensity": truth["propensity"],
        }
    )
    return table, truth_table


@dataclass(frozen=True, slots=True)
class _Catalog:
    """Items in "position" order: contiguous per category, so sampling is one ``searchsorted``."""

    category: IntArray  # category of each position, sorted
    cat_start: IntArray
    cat_end: IntArray
    cat_weight: FloatArray  # share of popularity held by each category
    cdf: FloatArray  # category + within-category popularity CDF, strictly increasing
    related: IntArray  # (n_items, 4) positions of related items, same category
    price: FloatArray
    label: IntArray  # the number in the item id "i00042" of each position (ids look unordered)

    @staticmethod
    def draw(config: GeneratorConfig, rng: np.random.Generator) -> _Catalog:
        """Categories, item popularity, related items and prices."""
        n_items, n_cats = config.resolved_n_items, config.n_categories
        cat_w = rng.permutation(np.arange(1, n_cats + 1) ** -_CATEGORY_ZIPF)
        extra = rng.choice(n_cats, size=n_items - n_cats, p=cat_w / cat_w.sum())
        category = np.sort(np.concatenate([np.arange(n_cats), extra]))  # each category non-empty
        cat_start = np.searchsorted(category, np.arange(n_cats))
        cat_end = np.append(cat_start[1:], n_items)
        weight = rng.permutation(np.arange(1, n_items + 1) ** -_ITEM_ZIPF)
        cdf, total = _category_cdf(weight, category, cat_start, cat_end)
        label = rng.permutation(n_items)
        own = np.repeat(category, 4)
        # Related items follow a flattened popularity, so they carry signal beyond popularity.
        flat, _ = _category_cdf(np.sqrt(weight), category, cat_start, cat_end)
        related = _sample_items(flat, cat_start, cat_end, own, rng.random(own.size))
        start, size = cat_start[own], (cat_end - cat_start)[own]
        selfish = related == np.repeat(np.arange(n_items), 4)
        related[selfish] = (start + (related - start + 1) % size)[selfish]  # never itself
        level = rng.normal(np.log(25.0), 0.9, n_cats)  # each category has its own price level
        price = np.round(np.exp(level[category] + rng.normal(0.0, 0.35, n_items)), 2)
        related = related.reshape(n_items, 4)
        if config.plant_sequence_structure:
            related = _similar_items(config, category, cat_start, cat_end)
        price = np.maximum(price, 0.5)
        cat_weight = total / total.sum()
        return _Catalog(category, cat_start, cat_end, cat_weight, cdf, related, price, label)

    def sample(self, category: IntArray, u: FloatArray) -> IntArray:
        """Draw one item position per entry, by popularity within the given category."""
        return _sample_items(self.cdf, self.cat_start, self.cat_end, category, u)


def _similar_items(
    config: GeneratorConfig, category: IntArray, cat_start: IntArray, cat_end: IntArray
) -> IntArray:
    """(n_items, 4) related items by similarity: the nearest neighbours on a per-category ring.

    Each item gets a latent position (an angle) inside its category; its related items are the
    next, previous, second-next and second-previous items around that ring. Real shops relate
    items by likeness (style, use, price), which item embeddings can share between neighbours;
    related items drawn at random (the default) form a graph only counts can learn. Drawn from
    its own generator, so the main stream is unchanged.
    """
    rng = np.random.default_rng([config.seed, 13])
    n_items = category.size
    order = np.lexsort((rng.random(n_items), category))  # positions around each ring
    size = (cat_end - cat_start)[category]  # ring size of each slot (category is sorted)
    rank = np.arange(n_items) - cat_start[category]  # slot within its category's ring
    related = np.empty((n_items, 4), np.int64)
    for slot, step in enumerate((1, -1, 2, -2)):
        neighbour = order[cat_start[category] + (rank + step) % size]
        related[order, slot] = neighbour
    return related


def _category_cdf(
    weight: FloatArray, category: IntArray, cat_start: IntArray, cat_end: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Within-category CDF of ``weight`` offset by the category number, and category totals."""
    cum = np.cumsum(weight)
    before = np.concatenate([[0.0], cum])[cat_start]  # mass before each category
    total = cum[cat_end - 1] - before
    cdf = category + (cum - before[category]) / total[category]
    cdf[cat_end - 1] = np.arange(1, cat_start.size + 1)
    return cdf, total


def _sample_items(
    cdf: FloatArray, cat_start: IntArray, cat_end: IntArray, category: IntArray, u: FloatArray
) -> IntArray:
    # The CDF is offset by the category number, so one searchsorted serves every category.
    found = np.searchsorted(cdf, category + u, side="right")
    return np.clip(found, cat_start[category], cat_end[category] - 1)


def _day_weights(config: GeneratorConfig, rng: np.random.Generator) -> FloatArray:
    """Relative traffic per day: weekly rhythm, mild growth and optionally a promotion week."""
    days = np.arange(config.n_days)
    weight = _WEEKDAY_FACTOR[(config.start.weekday() + days) % 7] * (
        1.0 + _TREND * days / config.n_days
    )
    if config.promotion and config.n_days >= 28:
        promo = int(rng.integers(config.n_days // 3, config.n_days - 7))
        weight[promo : promo + 7] *= _PROMO_FACTOR
    return np.asarray(weight, dtype=np.float64)


def _sample_days(cum_weight: FloatArray, lo: IntArray, hi: IntArray, u: FloatArray) -> IntArray:
    """Draw a day in ``[lo, hi)`` for each entry, with probability proportional to its weight."""
    target = cum_weight[lo] + u * (cum_weight[hi] - cum_weight[lo])
    return np.clip(np.searchsorted(cum_weight, target, side="right") - 1, lo, hi - 1)


def _draw_sessions(
    config: GeneratorConfig, catalog: _Catalog, day_weight: FloatArray, rng: np.random.Generator
) -> _Arrays:
    """Users (lifetime, activity, propensity, tastes) and their sessions, more than needed."""
    n_users, n_days = config.resolved_n_users, config.n_days
    cum_day = np.concatenate([[0.0], np.cumsum(day_weight)])
    first_day = _sample_days(
        cum_day, np.zeros(n_users, np.int64), np.full(n_users, n_days), rng.random(n_users)
    )
    # Churners leave after a geometric number of weeks, so cohort retention decays.
    lifetime = 7 * rng.geometric(_P_CHURN_PER_WEEK, n_users)
    loyal = rng.random(n_users) < _P_LOYAL
    last_day = np.where(loyal, n_days, np.minimum(first_day + lifetime, n_days))
    activity = rng.lognormal(0.0, 1.0, n_users) * (last_day - first_day)
    propensity = rng.beta(*_PURCHASE_BETA, n_users)
    favourite = rng.choice(config.n_categories, (n_users, 2), p=catalog.cat_weight)
    target = _OVERSAMPLE * config.n_events / _ROWS_PER_SESSION
    rate = max(target - n_users, 0.0) / activity.sum()
    n_sessions = 1 + rng.poisson(rate * activity)
    user = np.repeat(np.arange(n_users), n_sessions)
    n = user.size
    day = _sample_days(cum_day, first_day[user], last_day[user], rng.random(n))
    day[np.cumsum(n_sessions) - n_sessions] = first_day  # every user shows up on their first day
    return _session_details(config, catalog, user, day, favourite, propensity, rng)


def _session_details(
    config: GeneratorConfig,
    catalog: _Catalog,
    user: IntArray,
    day: IntArray,
    favourite: IntArray,
    propensity: FloatArray,
    rng: np.random.Generator,
) -> _Arrays:
    """Start time, category, conversion and length of sessions whose user and day are drawn."""
    n = user.size
    weekend = (config.start.weekday() + day) % 7 >= 5
    hour_cdf = np.cumsum(np.stack([_HOURS_WEEKDAY, _HOURS_WEEKEND]), axis=1)
    hour_cdf /= hour_cdf[:, -1:]
    u = rng.random(n)
    hour = np.where(
        weekend, np.searchsorted(hour_cdf[1], u, "right"), np.searchsorted(hour_cdf[0], u, "right")
    )
    start_s = day * 86_400 + np.minimum(hour, 23) * 3_600 + rng.integers(0, 3_600, n)
    pick = rng.random(n)
    category = np.where(pick < 0.6, favourite[user, 0], favourite[user, 1])
    stray = pick >= 0.85  # sometimes users browse outside their favourite categories
    category[stray] = rng.choice(config.n_categories, int(stray.sum()), p=catalog.cat_weight)
    return {
        "user": user,
        "start_s": start_s,
        "category": category,
        "converting": rng.random(n) < propensity[user],
        "n_views": np.minimum(rng.geometric(_P_SESSION_END, n), _MAX_VIEWS),
    }


def _draw_planted_sessions(
    config: GeneratorConfig, catalog: _Catalog, day_weight: FloatArray, rng: np.random.Generator
) -> tuple[_Arrays, _Arrays]:
    """Sessions of users with habits, disengagement and a churn hazard; and the truth.

    Each user returns every ``habit`` days (gamma noise, coefficient of variation 0.35); a
    disengaging user's gaps grow by a factor ``exp(drift)`` per session, and the chance of
    leaving after a session rises with how far the gaps have grown (``0.02 + 0.5 (1 -
    exp(-drift * i))`` after session ``i``), so churn follows visible disengagement.
    """
    n_users, n_days = config.resolved_n_users, config.n_days
    cum_day = np.concatenate([[0.0], np.cumsum(day_weight)])
    first_day = _sample_days(
        cum_day, np.zeros(n_users, np.int64), np.full(n_users, n_days), rng.random(n_users)
    )
    propensity = rng.beta(*_PURCHASE_BETA, n_users)
    favourite = rng.choice(config.n_categories, (n_users, 2), p=catalog.cat_weight)
    per_user = config.n_events / (n_users * _ROWS_PER_SESSION)
    median_habit = float(np.clip(n_days / max(4.0 * per_user, 1.0), 1.0, 30.0))
    habit = np.clip(rng.lognormal(np.log(median_habit), 0.6, n_users), 1.0, float(n_days))
    drift = np.where(rng.random(n_users) < 0.6, rng.exponential(0.15, n_users), 0.0)
    spend_level = rng.lognormal(-0.5, 0.8, n_users)
    n_sessions = np.minimum(np.ceil(n_days / habit).astype(np.int64) + 2, 400)
    user = np.repeat(np.arange(n_users), n_sessions)
    starts = np.cumsum(n_sessions) - n_sessions
    index = np.arange(user.size) - np.repeat(starts, n_sessions)
    gap = habit[user] * np.exp(np.minimum(drift[user] * index, 30.0))
    gap *= rng.gamma(8.0, 1 / 8.0, user.size)
    gap[index == 0] = 0.0
    offset = np.cumsum(gap)
    offset -= np.repeat(offset[starts], n_sessions)
    day = first_day[user] + np.rint(offset).astype(np.int64)
    leave = rng.random(user.size) < 0.02 + 0.5 * (1.0 - np.exp(-drift[user] * index))
    left_before = np.cumsum(leave) - np.repeat(np.cumsum(leave)[starts] - leave[starts], n_sessions)
    earlier_leave = (left_before - leave) > 0  # a leave happened at an earlier session
    held = ~earlier_leave & (day < n_days)
    leaving = held & leave
    left_day = np.full(n_users, -1, np.int64)
    left_day[user[leaving]] = day[leaving]
    s = _session_details(config, catalog, user[held], day[held], favourite, propensity, rng)
    # Purchase intent in the path: sessions that will buy dwell longer on each page.
    s["dwell"] = np.where(s["converting"], 1.8, 1.0)
    truth = {
        "habit": habit,
        "drift": drift,
        "left_day": left_day,
        "spend_level": spend_level,
        "propensity": propensity,
    }
    return s, truth


def _favourite_openings(config: GeneratorConfig, catalog: _Catalog, s: _Arrays) -> IntArray:
    """Per session: the user's favourite item of its category when it opens on it, else -1.

    Drawn from a second generator seeded from ``config.seed``, so the main stream (and with it
    every other column of the log) is the one a log without this structure draws.
    """
    rng = np.random.default_rng([config.seed, 12])
    key = s["user"].astype(np.int64) * config.n_categories + s["category"]
    pairs, pair_of = np.unique(key, return_inverse=True)
    favourite = catalog.sample(pairs % config.n_categories, rng.random(pairs.size))[pair_of]
    return np.where(rng.random(key.size) < _P_FAVOURITE_ITEM, favourite, -1)


def _draw_views(
    n_views: IntArray,
    category: IntArray,
    catalog: _Catalog,
    rng: np.random.Generator,
    opening: IntArray | None = None,
) -> IntArray:
    """Item position of every view, flat in (session, position) order.

    ``opening`` (per session, -1: none) turns on the sequence structure: the session opens on
    that item, and later views follow the mission (the first item) as well as the previous one.
    The same random numbers are drawn either way.
    """
    step_start = np.cumsum(n_views) - n_views
    pos = np.empty(int(n_views.sum()), np.int64)
    for k in range(int(n_views.max())):  # loop over positions only; sessions are vectorised
        active = np.flatnonzero(n_views > k)
        idx = step_start[active] + k
        popular = catalog.sample(category[active], rng.random(active.size))
        if k == 0:
            first = popular if opening is None else opening[active]
            pos[idx] = np.where(first >= 0, first, popular)
            continue
        slot = np.searchsorted(_RELATED_CDF, rng.random(active.size) * _RELATED_CDF[-1], "right")
        slot = np.minimum(slot, 3)
        related = catalog.related[pos[idx - 1], slot]
        u = rng.random(active.size)
        if opening is None:
            pos[idx] = np.where(u < _P_RELATED, related, popular)
            continue
        mission = catalog.related[pos[step_start[active]], slot]
        follows = np.where(u < _P_MISSION + _P_MISSION_PREVIOUS, related, popular)
        pos[idx] = np.where(u < _P_MISSION, mission, follows)
    return pos


def _lay_out_rows(s: _Arrays, pos: IntArray, rng: np.random.Generator) -> _Arrays:
    """Expand views into rows (search, view, favorite, cart; then removes and purchases)."""
    n_views, converting = s["n_views"], s["converting"]
    n_sessions, n_steps = n_views.size, pos.size
    step_start = np.cumsum(n_views) - n_views
    sess = np.repeat(np.arange(n_sessions), n_views)
    conv = converting[sess]
    first = np.zeros(n_steps, bool)
    first[step_start] = True
    search = first & (rng.random(n_steps) < _P_SEARCH)
    favorite = rng.random(n_steps) < _P_FAVORITE
    cart = rng.random(n_steps) < np.where(conv, _P_CART[1], _P_CART[0])
    no_cart = converting & (np.add.reduceat(cart, step_start) == 0)
    cart[(step_start + n_views - 1)[no_cart]] = True  # a converting session carts at least once
    removed = cart & (rng.random(n_steps) < np.where(conv, _P_REMOVE[1], _P_REMOVE[0]))
    last_cart = np.maximum.reduceat(np.where(cart, np.arange(n_steps), -1), step_start)
    removed[last_cart[converting]] = False  # so a converting session always buys something
    purchase = cart & ~removed & conv
    main = search.astype(np.int64) + 1 + favorite + cart
    tail = removed.astype(np.int64) + purchase
    n_rows = np.add.reduceat(main + tail, step_start)
    row_start = np.cumsum(n_rows) - n_rows
    main_cum, tail_cum = np.cumsum(main) - main, np.cumsum(tail) - tail
    main_at = row_start[sess] + main_cum - main_cum[step_start][sess]
    n_main = np.add.reduceat(main, step_start)
    tail_at = (row_start + n_main)[sess] + tail_cum - tail_cum[step_start][sess]
    total = int(n_rows.sum())
    action = np.empty(total, np.int8)
    item = np.empty(total, np.int64)
    view_at = main_at + search
    placed = [
        (main_at[search], _SEARCH, pos[search]),
        (view_at, _VIEW, pos),
        (view_at[favorite] + 1, _FAVORITE, pos[favorite]),
        ((view_at + 1 + favorite)[cart], _CART, pos[cart]),
        (tail_at[removed], _REMOVE, pos[removed]),
        ((tail_at + removed)[purchase], _PURCHASE, pos[purchase]),
    ]
    for at, code, what in placed:
        action[at] = code
        item[at] = what
    # 5-120 s between events of a session (lognormal around 30 s), far below a 30-minute gap.
    gap = np.clip(np.rint(rng.lognormal(np.log(30.0), 0.7, total)), 5, 120).astype(np.int64)
    if "dwell" in s:  # planted signals: a per-session dwell factor
        gap = np.rint(gap * s["dwell"][np.repeat(np.arange(n_sessions), n_rows)]).astype(np.int64)
    gap[row_start] = 0
    cum = np.cumsum(gap)
    offset = cum - np.repeat(cum[row_start], n_rows)
    quantity = np.minimum(rng.geometric(0.85, total), 5).astype(np.int32)
    return {
        "session": np.repeat(np.arange(n_sessions), n_rows),
        "action": action,
        "pos": item,
        "offset_s": offset,
        "quantity": quantity,
        "n_rows": n_rows,
        "duration_s": offset[row_start + n_rows - 1],
    }


def _select_sessions(
    config: GeneratorConfig, s: _Arrays, rows: _Arrays, rng: np.random.Generator
) -> BoolArray:
    """Drop sessions that collide with an earlier one of the same user, then trim to n_events."""
    user, start = s["user"], s["start_s"]
    order = np.lexsort((start, user))
    # Offsetting each user by more than the period turns a per-user running max into a global one.
    span = (config.n_days + 2) * 86_400
    key_end = user[order] * span + start[order] + rows["duration_s"][order]
    prev_end = np.concatenate([[np.iinfo(np.int64).min // 2], np.maximum.accumulate(key_end)[:-1]])
    ok = user[order] * span + start[order] >= prev_end + _MIN_SESSION_GAP_S
    keep = np.zeros(user.size, bool)
    if config.plant_user_signals:
        # Trim whole users, not random sessions, so each kept user's habits stay intact.
        held = order[ok]
        per_user = np.bincount(user[held], weights=rows["n_rows"][held], minlength=user.max() + 1)
        chosen = rng.permutation(per_user.size)
        kept_users = chosen[np.cumsum(per_user[chosen]) <= config.n_events]
        keep[held[np.isin(user[held], kept_users)]] = True
        return keep
    candidates = rng.permutation(order[ok])
    within = np.cumsum(rows["n_rows"][candidates]) <= config.n_events
    keep[candidates[within]] = True
    return keep


def _to_table(
    config: GeneratorConfig, catalog: _Catalog, s: _Arrays, rows: _Arrays, keep: BoolArray
) -> pa.Table:
    """Keep the chosen sessions' rows, sort them by time and build the string columns."""
    user = s["user"]
    kept = np.lexsort((s["start_s"], user))
    kept = kept[keep[kept]]
    new_user = np.concatenate([[True], user[kept][1:] != user[kept][:-1]])
    first_of_user = np.maximum.accumulate(np.where(new_user, np.arange(kept.size), 0))
    rank = np.full(user.size, -1, np.int64)
    rank[kept] = np.arange(kept.size)
    row_keep = keep[rows["session"]]
    sess = rows["session"][row_keep]
    epoch_s = s["start_s"][sess] + rows["offset_s"][row_keep]
    order = np.argsort(epoch_s, kind="stable")
    sess, epoch_s = sess[order], epoch_s[order]
    action = rows["action"][row_keep][order]
    pos = rows["pos"][row_keep][order]
    is_search, is_purchase = action == _SEARCH, action == _PURCHASE

    users = _labels("u", config.resolved_n_users, 6)
    session_labels = pc.binary_join_element_wise(
        users.take(user[kept]),
        pc.cast(pa.array(np.arange(kept.size) - first_of_user), pa.string()),
        "-",
    )
    categories = _labels("c", config.n_categories, 2)
    n_words = len(_CATEGORY_WORDS)  # "shoes", ..., then "shoes 1", ... for further categories
    names = [f"{_CATEGORY_WORDS[i % n_words]} {i // n_words}" for i in range(config.n_categories)]
    names = [name.removesuffix(" 0") for name in names]
    base_us = (config.start - datetime(1970, 1, 1)) // timedelta(microseconds=1)
    columns = [
        users.take(user[sess]),
        _labels("i", config.resolved_n_items, 5).take(catalog.label[pos]),
        pa.array([a.value for a in Action]).take(action),
        pa.array(base_us + epoch_s * 1_000_000, pa.timestamp("us")),
        session_labels.take(rank[sess]),
        categories.take(catalog.category[pos]),
        pa.array(catalog.price[pos], pa.float64(), mask=is_search),
        pa.array(rows["quantity"][row_keep][order], pa.int32(), mask=~is_purchase),
        pa.array(names).take(pa.array(s["category"][sess], mask=~is_search)),
    ]
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


def _labels(prefix: str, n: int, width: int) -> pa.Array:
    """Ids like ``u000123`` for 0..n-1, zero-padded to at least ``width`` digits."""
    digits = pc.cast(pa.array(np.arange(n)), pa.string())
    padded = pc.utf8_lpad(digits, width=max(width, len(str(n - 1))), padding="0")
    return pc.binary_join_element_wise(prefix, padded, "")


def write_events(table: pa.Table, path: Path, config: GeneratorConfig) -> GenerateReport:
    """Write events atomically, planting the defects and duplicates the config asks for.

    The format follows the suffix: ``.csv``, ``.csv.gz``, ``.csv.zst``, ``.jsonl`` or ``.parquet``.
    Text formats write ``ts`` as ``TS_TEXT_FORMAT`` (naive UTC), nulls as empty CSV cells or JSON
    ``null``, and a CSV header of the canonical column names. Malformed rows replace randomly
    chosen rows (roughly equal numbers of each kind the format supports); duplicates repeat
    randomly chosen clean rows on the next line. The choice is seeded by ``config.seed``.

    Args:
        table: Events with exactly ``EVENT_SCHEMA`` (as from ``generate_events``).
        path: Destination; written to a temporary file in the same directory, then renamed.
        config: Supplies ``dirty_fraction``, ``duplicate_fraction`` and ``seed``.

    Returns:
        What was written, with exact defect and duplicate counts.

    Raises:
        ValueError: If the suffix is not supported or the table does not have ``EVENT_SCHEMA``.
    """
    suffix = next((sfx for sfx in _SUFFIXES if path.name.endswith(sfx)), None)
    if suffix is None:
        raise ValueError(f"{path.name}: unsupported suffix; expected one of {sorted(_SUFFIXES)}")
    if not table.schema.equals(EVENT_SCHEMA):
        raise ValueError(f"table schema {table.schema} differs from EVENT_SCHEMA {EVENT_SCHEMA}")
    fmt, compression = _SUFFIXES[suffix]
    kinds = _FORMAT_DEFECTS[fmt]
    rng = np.random.default_rng([config.seed, 1])  # own stream: writing never changes the events
    n = table.num_rows
    n_dirty = round(config.dirty_fraction * n)
    dirty = np.sort(rng.choice(n, n_dirty, replace=False))
    kind = rng.permutation(np.arange(n_dirty) % len(kinds))
    variant = rng.integers(0, 6, n_dirty)  # picks among each kind's example values
    clean = np.ones(n, bool)
    clean[dirty] = False
    n_dup = round(config.duplicate_fraction * (n - n_dirty))
    copies = np.ones(n, np.int64)
    copies[rng.choice(np.flatnonzero(clean), n_dup, replace=False)] = 2
    written_at = np.cumsum(copies) - copies  # data-row index of each table row in the file
    defect = _Defects(dirty, kind, variant, kinds)

    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name in the same directory, so os.replace is an atomic rename (mkstemp would
    # leave the file mode 0600).
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if fmt == "parquet":
            typed = defect.apply(table, 0, n, typed=True)
            pq.write_table(typed.take(np.repeat(np.arange(n), copies)), tmp)
        else:
            _write_text(table, tmp, fmt, compression, defect, copies)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return GenerateReport(
        path=path,
        format=fmt,
        n_rows_written=int(copies.sum()),
        n_clean_events=n - n_dirty,
        n_duplicates=n_dup,
        defects={k: int((kind == i).sum()) for i, k in enumerate(kinds)},
        defect_rows={k: written_at[dirty[kind == i]] for i, k in enumerate(kinds)},
    )


@dataclass(frozen=True, slots=True)
class _Defects:
    """Which rows are malformed and how; applied chunk by chunk."""

    rows: IntArray  # sorted table-row indices
    kind: IntArray  # index into ``kinds``
    variant: IntArray
    kinds: tuple[str, ...]

    def mask(
        self, name: str, lo: int, hi: int, variant_mod: int = 1, variant_is: int = 0
    ) -> BoolArray:
        """Chunk-local boolean mask of rows with defect ``name`` (and the given variant class)."""
        mask = np.zeros(hi - lo, bool)
        if name in self.kinds:
            a, b = np.searchsorted(self.rows, [lo, hi])
            hit = (self.kind[a:b] == self.kinds.index(name)) & (
                self.variant[a:b] % variant_mod == variant_is
            )
            mask[self.rows[a:b][hit] - lo] = True
        return mask

    def apply(self, chunk: pa.Table, lo: int, hi: int, typed: bool) -> pa.Table:
        """Overwrite defect cells of rows ``lo:hi``; ``typed`` keeps the schema (Parquet)."""
        cols = {name: chunk.column(name).combine_chunks() for name in EVENT_COLUMNS}
        if not typed:
            cols = {
                name: pc.cast(col, pa.string()) for name, col in cols.items() if name != "ts"
            } | {"ts": pc.cast(pc.cast(cols["ts"], pa.timestamp("s"), safe=False), pa.string())}
        for v, name in enumerate(("user_id", "item_id")):
            mask = self.mask("missing_field", lo, hi, 2, v)
            cols[name] = pc.if_else(pa.array(mask), "", cols[name])
        neg = self.mask("negative_price", lo, hi)
        price = pc.fill_null(chunk.column("price").combine_chunks(), 12.5)
        negative = pc.negate(price) if typed else pc.cast(pc.negate(price), pa.string())
        cols["price"] = pc.if_else(pa.array(neg), negative, cols["price"])
        for kind, name in zip(_BAD_VALUES, ("ts", "action", "price"), strict=True):
            for v, value in enumerate(_BAD_VALUES[kind]):
                mask = self.mask(kind, lo, hi, len(_BAD_VALUES[kind]), v)
                if mask.any():
                    cols[name] = pc.if_else(pa.array(mask), value, cols[name])
        arrays = [cols[name] for name in EVENT_COLUMNS]
        if typed:
            return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)
        return pa.Table.from_arrays(arrays, names=list(EVENT_COLUMNS))


def _write_text(
    table: pa.Table,
    path: Path,
    fmt: str,
    compression: str | None,
    defect: _Defects,
    copies: IntArray,
) -> None:
    """Write CSV or JSON lines built with pyarrow string kernels, chunk by chunk.

    Hand-built instead of ``pyarrow.csv.write_csv`` because that writer cannot emit a row with the
    wrong number of fields, and pyarrow has no JSON writer. No value contains a comma, quote,
    backslash or newline (ids, actions and category words are generated), so nothing needs escaping.
    """
    raw = pa.OSFile(str(path), "wb")
    sink = raw if compression is None else pa.CompressedOutputStream(raw, compression)
    try:
        if fmt == "csv":
            sink.write(",".join(EVENT_COLUMNS).encode() + b"\n")
        for lo in range(0, max(table.num_rows, 1), _CHUNK_ROWS):
            hi = min(lo + _CHUNK_ROWS, table.num_rows)
            cells = defect.apply(table.slice(lo, hi - lo), lo, hi, typed=False)
            if fmt == "csv":
                lines = _csv_lines(cells, defect, lo, hi)
            else:
                lines = _json_lines(cells, defect.mask("non_numeric_price", lo, hi))
            lines = lines.take(pa.array(np.repeat(np.arange(hi - lo), copies[lo:hi])))
            if len(lines):
                offsets = np.frombuffer(lines.buffers()[1], np.int32)
                begin, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
                sink.write(lines.buffers()[2].slice(begin, end - begin))
    finally:
        sink.close()


def _csv_lines(cells: pa.Table, defect: _Defects, lo: int, hi: int) -> pa.Array:
    """One newline-terminated CSV line per row; wrong-column-count rows lose or gain a field."""
    cols = [cells.column(name).combine_chunks() for name in EVENT_COLUMNS]
    opts = {"null_handling": "replace", "null_replacement": ""}
    lines = pc.binary_join_element_wise(*cols, ",", **opts)
    fewer = defect.mask("wrong_column_count", lo, hi, 2, 0)
    more = defect.mask("wrong_column_count", lo, hi, 2, 1)
    if fewer.any() or more.any():
        short = pc.binary_join_element_wise(*cols[:-1], ",", **opts)
        lines = pc.if_else(pa.array(fewer), short, lines)
        lines = pc.if_else(pa.array(more), pc.binary_join_element_wise(lines, "extra", ","), lines)
    return pc.binary_join_element_wise(lines, "\n", "")


def _json_lines(cells: pa.Table, non_numeric_price: BoolArray) -> pa.Array:
    """One newline-terminated JSON object per row, numbers unquoted unless malformed."""
    numeric = {"price", "quantity"}
    parts: list[Any] = []
    for i, name in enumerate(EVENT_COLUMNS):
        col = cells.column(name).combine_chunks()
        token = col if name in numeric else pc.binary_join_element_wise('"', col, '"', "")
        if name == "price":
            token = pc.if_else(
                pa.array(non_numeric_price), pc.binary_join_element_wise('"', col, '"', ""), col
            )
        parts += [("{" if i == 0 else ",") + f'"{name}":', pc.fill_null(token, "null")]
    return pc.binary_join_element_wise(*parts, "}\n", "")
