"""Reasons: the largest TreeSHAP contributions of a score, written as plain sentences.

``"2 carts in the last 7 days: +0.41"`` reads "the feature with this value moved this owner's score
by +0.41". The numbers are exact additive contributions to the LightGBM raw score: log-odds for
the binary tasks (before calibration; calibration is monotone, so the order of reasons holds),
class log-odds for next action, and the target's units for the regressions (seconds, money).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np

from shopseq.users.tasks import ACTION_NAMES, Examples

__all__ = ["FEATURE_TEXT", "describe_feature", "reason_sentences"]

#: Feature -> (template, value kind, text when the value is missing). ``{short}`` / ``{long}``
#: are the feature windows. Kinds: count, days, seconds, hours, share, money, ratio, number,
#: action, hour, weekday.
FEATURE_TEXT: dict[str, tuple[str, str, str]] = {
    "recency_days": ("last active {value} ago", "days", "never active"),
    "purchase_recency_days": ("last purchase {value} ago", "days", "no purchase yet"),
    "cart_recency_days": ("last cart {value} ago", "days", "never added to cart"),
    "tenure_days": ("active over {value}", "days", ""),
    "frequency": ("{value} purchases so far", "count", ""),
    "monetary": ("{value} spent so far", "money", ""),
    "n_purchase_days": ("bought on {value} days", "count", ""),
    "first_purchase_age_days": ("first purchase {value} ago", "days", "no purchase yet"),
    "purchase_span_days": ("{value} between first and last purchase", "days", "no purchase yet"),
    "avg_purchase_day_value": ("{value} per purchase day", "money", "no purchase yet"),
    "n_events": ("{value} events so far", "count", ""),
    "n_items": ("{value} distinct items seen", "count", ""),
    "n_categories": ("{value} categories seen", "count", ""),
    "n_view": ("{value} views", "count", ""),
    "n_search": ("{value} searches", "count", ""),
    "n_favorite": ("{value} favourites", "count", ""),
    "n_cart": ("{value} add-to-carts", "count", ""),
    "n_remove_from_cart": ("{value} removals from cart", "count", ""),
    "n_purchase": ("{value} purchase events", "count", ""),
    "n_return": ("{value} returns", "count", ""),
    "share_view": ("{value} of events are views", "share", ""),
    "share_search": ("{value} of events are searches", "share", ""),
    "share_favorite": ("{value} of events are favourites", "share", ""),
    "share_cart": ("{value} of events are add-to-carts", "share", ""),
    "share_remove_from_cart": ("{value} of events are cart removals", "share", ""),
    "share_purchase": ("{value} of events are purchases", "share", ""),
    "share_return": ("{value} of events are returns", "share", ""),
    "last_action": ("last action was {value}", "action", "no last action"),
    "cart_to_purchase": ("{value} purchases per add-to-cart", "ratio", "never added to cart"),
    "abandoned_carts": ("{value} sessions with a cart and no purchase", "count", ""),
    "abandoned_carts_short": (
        "{value} carts in the last {short} without a purchase",
        "count",
        "",
    ),
    "buying_session_share": ("{value} of sessions ended in a purchase", "share", ""),
    "n_sessions": ("{value} sessions so far", "count", ""),
    "n_sessions_short": ("{value} sessions in the last {short}", "count", ""),
    "mean_session_events": ("{value} events per session on average", "number", ""),
    "max_session_events": ("longest session {value} events", "count", ""),
    "mean_session_seconds": ("sessions last {value} on average", "seconds", ""),
    "mean_gap_seconds": ("{value} between events on average", "seconds", "only one event"),
    "median_gap_seconds": ("typically {value} between events", "seconds", "only one event"),
    "mean_dwell_seconds": ("{value} per page on average", "seconds", "no multi-event session"),
    "median_dwell_seconds": ("typically {value} per page", "seconds", "no multi-event session"),
    "mean_session_gap_hours": ("{value} between sessions on average", "hours", "one session"),
    "median_session_gap_hours": ("typically {value} between sessions", "hours", "one session"),
    "std_session_gap_hours": ("irregular returns (spread {value})", "hours", "few sessions"),
    "n_events_short": ("{value} events in the last {short}", "count", ""),
    "n_events_long": ("{value} events in the last {long}", "count", ""),
    "activity_trend": (
        "activity in the last {short} at {value} of the {long} pace",
        "ratio",
        "no activity in the last {long}",
    ),
    "n_cart_short": ("{value} add-to-carts in the last {short}", "count", ""),
    "n_purchase_short": ("{value} purchases in the last {short}", "count", ""),
    "n_purchase_long": ("{value} purchases in the last {long}", "count", ""),
    "category_entropy": ("category variety {value} (entropy)", "number", ""),
    "top_category_share": ("{value} of events in the favourite category", "share", ""),
    "weekend_share": ("{value} of events at weekends", "share", ""),
    "evening_share": ("{value} of events in the evening", "share", ""),
    "night_share": ("{value} of events at night", "share", ""),
    "hour_sin": ("time-of-day habit (sine {value})", "number", ""),
    "hour_cos": ("time-of-day habit (cosine {value})", "number", ""),
    "share_at_cutoff_hour": ("{value} of events at this hour of day", "share", ""),
    "share_at_cutoff_weekday": ("{value} of events on this weekday", "share", ""),
    "mean_price": ("average price seen {value}", "money", "no prices seen"),
    "price_vs_category": ("prices seen at {value} of their category's median", "ratio", ""),
    "purchase_price_vs_category": (
        "bought at {value} of the category's median price",
        "ratio",
        "no purchase yet",
    ),
    # Session-prefix features.
    "k": ("{value} events into the session", "count", ""),
    "repeat_events": ("{value} repeat views in this session", "count", ""),
    "duration_seconds": ("session running for {value}", "seconds", ""),
    "last_dwell_seconds": ("{value} on the last page", "seconds", "first page"),
    "max_price": ("highest price viewed {value}", "money", "no prices seen"),
    "cart_value": ("{value} in the cart", "money", ""),
    "start_hour": ("session started at {value}", "hour", ""),
    "start_weekday": ("session started on a {value}", "weekday", ""),
    "user_prior_events": ("{value} earlier events by this shopper", "count", ""),
    "user_prior_purchases": ("{value} earlier purchases by this shopper", "count", ""),
    "user_prior_sessions": ("{value} earlier sessions by this shopper", "count", ""),
    "seconds_since_prev_event": ("back after {value}", "seconds", "first visit"),
}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def _window(window: timedelta) -> str:
    days = window.total_seconds() / 86_400
    return f"{days:g} days" if days >= 1 else _duration(window.total_seconds())


def _format(value: float, kind: str) -> str:
    formats: dict[str, Callable[[float], str]] = {
        "count": lambda v: f"{v:.0f}",
        "days": lambda v: _duration(v * 86_400),
        "seconds": _duration,
        "hours": lambda v: _duration(v * 3600),
        "share": lambda v: f"{100 * v:.0f} %",
        "money": lambda v: f"{v:,.2f}",
        "ratio": lambda v: f"{v:.2f}x",
        "action": lambda v: ACTION_NAMES[int(v)] if 0 <= v < len(ACTION_NAMES) else "?",
        "hour": lambda v: f"{int(v):02d}:00",
        "weekday": lambda v: _WEEKDAYS[int(v) % 7],
    }
    formatter = formats.get(kind)
    return formatter(value) if formatter is not None else f"{value:.3g}"


def describe_feature(
    name: str,
    value: float,
    *,
    short: timedelta = timedelta(days=7),
    long: timedelta = timedelta(days=30),
) -> str:
    """A feature and its value in plain words.

    Args:
        name: Feature name.
        value: Its value (NaN: missing).
        short: The short feature window (for "in the last ...").
        long: The long feature window.

    Returns:
        E.g. ``"2 add-to-carts in the last 7 days"``.
    """
    template, kind, missing = FEATURE_TEXT.get(name, (name + " = {value}", "number", ""))
    windows = {"short": _window(short), "long": _window(long)}
    if not np.isfinite(value):
        return (missing or f"{name} unknown").format(**windows)
    return template.format(value=_format(float(value), kind), **windows)


def reason_sentences(
    examples: Examples,
    contributions: np.ndarray,
    *,
    top: int = 3,
    short: timedelta = timedelta(days=7),
    long: timedelta = timedelta(days=30),
    unit: str = "",
) -> list[list[str]]:
    """The ``top`` largest contributions of each example as sentences, largest first.

    Args:
        examples: The scored examples.
        contributions: (n, n_features + 1) from ``GBM.contributions`` (last column: the base).
        top: Reasons per example.
        short: The short feature window.
        long: The long feature window.
        unit: Unit written after the contribution (e.g. ``" s"``).

    Returns:
        One list of sentences per example.
    """
    per_feature = contributions[:, :-1]
    k = min(top, per_feature.shape[1])
    order = np.argsort(-np.abs(per_feature), axis=1, kind="stable")[:, :k]
    rows = np.arange(len(per_feature))[:, None]
    values = examples.features[rows, order]
    amounts = per_feature[rows, order]
    out = []
    for names, vals, amts in zip(order, values, amounts, strict=True):
        out.append(
            [
                f"{describe_feature(examples.feature_names[j], v, short=short, long=long)}: "
                f"{a:+.2f}{unit}"
                for j, v, a in zip(names, vals, amts, strict=True)
                if a != 0
            ]
        )
    return out
