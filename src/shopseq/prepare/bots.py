"""Optional bot/outlier filter: users whose activity is faster than a person's."""

from __future__ import annotations

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.schema import TS, USER_ID

__all__ = ["BotFilterConfig", "bot_users", "drop_bot_users"]


class BotFilterConfig(BaseModel):
    """When a user counts as a bot.

    Attributes:
        max_events_per_minute: A user with more events than this in any calendar minute is a bot
            and all their events are removed; ``None`` disables the filter.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_events_per_minute: int | None = Field(default=None, gt=0)


def bot_users(events: ibis.Table, config: BotFilterConfig) -> ibis.Table:
    """Return the users flagged as bots, with their busiest minute.

    Args:
        events: Events.
        config: The threshold.

    Returns:
        A table ``user_id, max_events_per_minute`` (empty when the filter is disabled).
    """
    per_minute = events.group_by(
        [events[USER_ID], events[TS].truncate("m").name("_minute")]
    ).aggregate(_n=ibis._.count())
    busiest = per_minute.group_by(USER_ID).aggregate(max_events_per_minute=ibis._._n.max())
    limit = config.max_events_per_minute
    if limit is None:
        return busiest.filter(ibis.literal(False))
    return busiest.filter(busiest.max_events_per_minute > limit)


def drop_bot_users(events: ibis.Table, bots: ibis.Table) -> ibis.Table:
    """Remove every event of the given users.

    Args:
        events: Events.
        bots: Table with a ``user_id`` column (from :func:`bot_users`).

    Returns:
        Events of the remaining users.
    """
    return events.anti_join(bots, events[USER_ID] == bots[USER_ID]).select(*events.columns)
