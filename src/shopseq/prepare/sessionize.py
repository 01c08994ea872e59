"""Sessionisation: cut each user's events into sessions at inactivity gaps, or use the data's."""

from __future__ import annotations

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.schema import SESSION_ID, SOURCE_FILE_ID, SOURCE_ROW, TS, USER_ID

__all__ = ["SessionizeConfig", "sessionize"]


class SessionizeConfig(BaseModel):
    """How to cut sessions.

    Attributes:
        gap_seconds: A new session starts when a user is inactive for more than this long.
        use_dataset_sessions: Keep the session ids the data brought (REES46, YooChoose, ...);
            events without one fall back to inactivity-gap sessions.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gap_seconds: int = Field(default=30 * 60, gt=0)
    use_dataset_sessions: bool = False


def sessionize(events: ibis.Table, config: SessionizeConfig) -> ibis.Table:
    """Assign every event a ``session_id`` (``<user_id>#<n>``, n counting from 1 per user).

    The order within a user is (ts, source_file_id, source_row): a total order, so the result is
    the same on every engine and every run.

    Args:
        events: Events with lineage columns.
        config: The inactivity gap.

    Returns:
        The same events with ``session_id`` set.
    """
    window = ibis.window(
        group_by=events[USER_ID],
        order_by=[events[TS], events[SOURCE_FILE_ID], events[SOURCE_ROW]],
    )
    prev_ts = events[TS].lag().over(window)
    # Interval comparison, not epoch subtraction (Spark truncates epoch seconds; STACK.md).
    starts = prev_ts.isnull() | (events[TS] > prev_ts + ibis.interval(seconds=config.gap_seconds))
    flagged = events.mutate(_start=starts.cast("int64"))
    numbered = flagged.mutate(
        _session_no=flagged._start.sum().over(
            ibis.window(
                group_by=flagged[USER_ID],
                order_by=[flagged[TS], flagged[SOURCE_FILE_ID], flagged[SOURCE_ROW]],
                rows=(None, 0),
            )
        )
    )
    computed = numbered[USER_ID].concat("#", numbered._session_no.cast("string"))
    if config.use_dataset_sessions:
        computed = numbered[SESSION_ID].fill_null(computed)
    return numbered.mutate(**{SESSION_ID: computed}).select(*events.columns)
