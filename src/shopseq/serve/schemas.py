"""Request and response bodies of the HTTP API (the OpenAPI spec is generated from these).

A posted event has exactly the canonical columns of ``schema.py`` (a test checks that the two
agree). Its values are checked here only for shape (types, lengths); what they mean (known action,
valid timestamp in range, price >= 0, quantity a positive integer) is checked by ingest's own
rules, so a posted event and the same row in a file are accepted or rejected alike.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

__all__ = [
    "MAX_BATCH",
    "MAX_ID_CHARS",
    "ErrorBody",
    "EventBatch",
    "EventError",
    "EventIn",
    "EventsResult",
    "ForecastPoint",
    "Forecasts",
    "Health",
    "ItemScore",
    "Readiness",
    "Recommendations",
    "ReloadRequest",
    "ReloadResult",
    "SimilarItems",
]

#: Longest id accepted (user, item, session, category).
MAX_ID_CHARS = 256
#: Most events in one request whatever the config says (the config may lower it).
MAX_BATCH = 10_000

Id = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_CHARS)]
OptionalId = Annotated[StrictStr, Field(max_length=MAX_ID_CHARS)] | None
Number = StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=64)]


class EventIn(BaseModel):
    """One event, with the canonical columns (``docs/schema.md``)."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id
    item_id: Id
    action: Annotated[StrictStr, Field(max_length=64, examples=["view"])]
    ts: Number | None = Field(
        default=None,
        description="ISO 8601 or Unix seconds, UTC when no offset is given; "
        "absent: the time the service received it.",
        examples=["2024-01-31T12:00:00Z"],
    )
    session_id: OptionalId = None
    category_id: OptionalId = None
    price: Number | None = None
    quantity: StrictInt | Annotated[StrictStr, Field(max_length=32)] | None = None
    query: Annotated[StrictStr, Field(max_length=1024)] | None = None


class EventBatch(BaseModel):
    """Several events in one request (accepted ones are durable before the response)."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventIn], Field(max_length=MAX_BATCH)]


class EventError(BaseModel):
    """Why one posted event was rejected (ingest's reason codes and messages)."""

    index: int = Field(description="Position of the event in the request (0-based).")
    field: str = Field(description="The field at fault.")
    reason: str = Field(description="Reason code, as in ingest's quarantine.")
    value: str = Field(description="The rejected value.")
    detail: str = Field(description="What is wrong and what is expected.")


class EventsResult(BaseModel):
    """What happened to a request's events."""

    accepted: int
    rejected: int
    errors: list[EventError]
    first_seq: int | None = Field(description="Log sequence number of the first accepted event.")
    last_seq: int | None = Field(description="Log sequence number of the last accepted event.")


class ItemScore(BaseModel):
    """One recommended or related item."""

    item_id: str
    score: float


class Recommendations(BaseModel):
    """Top items for a user."""

    items: list[ItemScore]
    source: Literal["history", "session", "popularity"] = Field(
        description="history: the user's history in the run plus live events; session: a user "
        "the run has not seen, from the live events; popularity: nothing known yet."
    )
    n_live_events: int = Field(description="Events of this user posted to the service and used.")
    model_version: str


class SimilarItems(BaseModel):
    """Items related to one item."""

    item_id: str
    items: list[ItemScore]
    method: str
    model_version: str


class ForecastPoint(BaseModel):
    """One forecast period of one series."""

    model_config = ConfigDict(extra="allow")

    unique_id: str
    ds: str
    mean: float | None
    model: str


class Forecasts(BaseModel):
    """Forecasts written by ``shopseq forecast``."""

    series: list[str]
    points: list[ForecastPoint]


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether the service can answer (model loaded, committer running, state reachable)."""

    ready: bool
    model_version: str | None
    checks: dict[str, bool]


class ReloadRequest(BaseModel):
    """Which run directory to serve next."""

    model_config = ConfigDict(extra="forbid")

    run: Annotated[StrictStr, Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="Run directory; absent: reload the one being served."
    )


class ReloadResult(BaseModel):
    """The swap that happened."""

    model_version: str
    previous_version: str
    seconds: float


class ErrorBody(BaseModel):
    """Every error response (4xx and 5xx)."""

    error: str = Field(description="Error class, e.g. RequestValidationError, UnknownIdError.")
    detail: str = Field(description="What is wrong and how to fix it.")
    field: str | None = Field(default=None, description="Where, e.g. query.k or body.events.0.ts.")
