"""``POST /v1/events``: live events in, durable before the answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse

from shopseq.errors import InputError
from shopseq.schema import EVENT_COLUMNS, TS
from shopseq.serve.committer import Record
from shopseq.serve.deps import ClientKeyDep, ServiceDep
from shopseq.serve.schemas import ErrorBody, EventBatch, EventIn, EventsResult

__all__ = ["router"]

_TS = EVENT_COLUMNS.index(TS)

router = APIRouter(prefix="/v1/events", tags=["events"])


def _records(events: list[EventIn]) -> list[Record]:
    """The events as text, as ingest reads a file (``ts`` defaults to the time received).

    The default is written as naive UTC ISO text (no ``+00:00``): the rules read text without an
    offset as UTC with DuckDB's plain timestamp cast, the same instant as with the offset but
    without the time-zone (ICU) parse.
    """
    now = datetime.now(UTC).replace(tzinfo=None).isoformat()
    out = []
    for event in events:
        values = [getattr(event, name) for name in EVENT_COLUMNS]
        if values[_TS] is None:
            values[_TS] = now
        out.append(tuple(None if v is None else str(v) for v in values))
    return out


@router.post(
    "",
    response_model=EventsResult,
    responses={
        207: {"model": EventsResult, "description": "Some events accepted, some rejected."},
        413: {"model": ErrorBody, "description": "Body or batch too large."},
        422: {"model": EventsResult, "description": "Every event rejected (see errors)."},
        503: {"model": ErrorBody, "description": "The event log cannot be written."},
    },
    summary="Post one event or a batch",
)
async def post_events(
    body: EventIn | EventBatch, service: ServiceDep, _: ClientKeyDep
) -> JSONResponse:
    """Validate events with ingest's rules; the accepted ones are fsynced before the answer.

    200: all accepted. 207: some rejected (``errors`` says which and why). 422: all rejected.
    """
    events = body.events if isinstance(body, EventBatch) else [body]
    if len(events) > service.config.max_batch:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a request may hold at most {service.config.max_batch} events; got {len(events)}",
        )
    if not events:
        return _answer(0, [], None, None)
    try:
        result = await asyncio.wrap_future(service.committer.submit(_records(events)))
    except InputError:
        raise  # 422 with its message (app.py)
    except Exception as err:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the events could not be made durable ({type(err).__name__}); nothing of this "
            "request was acknowledged: send it again",
        ) from err
    errors: list[dict[str, object]] = [
        {
            "index": r.line,
            "field": r.column,
            "reason": r.reason.value,
            "value": r.raw_value,
            "detail": r.detail,
        }
        for r in result.rejected
    ]
    return _answer(result.accepted, errors, result.first_seq, result.last_seq)


def _answer(
    accepted: int, errors: list[dict[str, object]], first: int | None, last: int | None
) -> JSONResponse:
    """The ``EventsResult`` body, built as the JSON FastAPI would write from the model.

    Returned as a response, so FastAPI does not validate and serialise the model once more per
    request (the OpenAPI spec still comes from ``response_model``); ``tests/serve`` checks the
    bodies against ``EventsResult``.
    """
    code = 200
    if errors:
        code = 207 if accepted else status.HTTP_422_UNPROCESSABLE_CONTENT
    return JSONResponse(
        {
            "accepted": accepted,
            "rejected": len(errors),
            "errors": errors,
            "first_seq": first,
            "last_seq": last,
        },
        status_code=code,
    )
