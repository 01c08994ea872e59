"""``create_app(config)``: the FastAPI application; the lifespan loads the run and the state.

Nothing is built at import time: no app, no settings. ``create_app`` wires routers, middleware and
error handlers; the lifespan builds the :class:`~shopseq.serve.service.Service` (model, live
state rebuilt from the log, committer thread) before the first request and stops it after the
last, committing whatever is queued.

Every error body has one shape, ``{"error", "detail", "field"}``: validation errors name the field
(``query.k``, ``body.events.3.ts``), shopseq's ``InputError`` is 422, ``UnknownIdError`` 404, an
``ArtifactError`` on reload 422 (the old model keeps serving).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

import shopseq
from shopseq.errors import ArtifactError, InputError, StoreError, UnknownIdError
from shopseq.serve.config import ServeConfig
from shopseq.serve.metrics import AccessMiddleware
from shopseq.serve.routes import admin, events, forecasts, health, items, users
from shopseq.serve.schemas import ErrorBody
from shopseq.serve.security import BodyLimitMiddleware
from shopseq.serve.service import Service

__all__ = ["create_app"]

_log = logging.getLogger("shopseq.serve")


def _error(status: int, error: str, detail: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": error, "detail": detail, "field": field},
        status_code=status,
    )


def _field(loc: Any) -> str:
    return ".".join(str(p) for p in loc)


_BRANCHES = {"EventIn": False, "EventBatch": True}  # the union body of POST /v1/events


def _meant(errors: list[Any], body: Any) -> list[Any]:
    """Errors of the body branch the client meant (a batch if it sent ``events``), names dropped.

    A union body reports why it fits neither branch; naming the one intended is what helps.
    """
    batch = isinstance(body, dict) and "events" in body
    kept = []
    for error in errors:
        loc = list(error["loc"])
        if len(loc) > 1 and loc[0] == "body" and loc[1] in _BRANCHES:
            if _BRANCHES[loc[1]] != batch:
                continue
            error = {**error, "loc": (loc[0], *loc[2:])}
        kept.append(error)
    return kept or errors


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = _meant(list(errors), getattr(exc, "body", None))
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    detail = "; ".join(
        f"{_field(e['loc'])}: {e['msg']}" + (f" (got {e['input']!r})" if _short(e) else "")
        for e in errors[:5]
    )
    if len(errors) > 5:
        detail += f"; and {len(errors) - 5} more"
    return JSONResponse(
        jsonable_encoder(
            {"error": "RequestValidationError", "detail": detail, "field": _field(first["loc"])}
        ),
        status_code=422,
    )


def _short(error: Any) -> bool:
    value = error.get("input")
    return isinstance(value, str | int | float) and len(repr(value)) <= 80


def _handlers() -> dict[Any, Callable[..., Any]]:
    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        code = getattr(exc, "status_code", 500)
        response = _error(code, _http_name(code), str(getattr(exc, "detail", exc)))
        for name, value in (getattr(exc, "headers", None) or {}).items():
            response.headers[name] = value
        return response

    async def unknown_id(_: Request, exc: Exception) -> JSONResponse:
        return _error(404, type(exc).__name__, str(exc), "path")

    async def input_error(_: Request, exc: Exception) -> JSONResponse:
        return _error(422, type(exc).__name__, str(exc))

    async def artifact_error(_: Request, exc: Exception) -> JSONResponse:
        return _error(
            422, type(exc).__name__, f"{exc}; the previous model is still being served", "body.run"
        )

    async def store_error(_: Request, exc: Exception) -> JSONResponse:
        _log.error("state or log unavailable: %s", type(exc).__name__)
        return _error(503, type(exc).__name__, "the state store is unavailable; retry shortly")

    return {
        RequestValidationError: _validation_error,
        HTTPException: http_error,
        UnknownIdError: unknown_id,
        InputError: input_error,
        ArtifactError: artifact_error,
        StoreError: store_error,
    }


def _http_name(code: int) -> str:
    return {
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        413: "PayloadTooLarge",
        422: "InvalidParameter",
        503: "ServiceUnavailable",
    }.get(code, "HTTPError")


def create_app(config: ServeConfig, *, service: Service | None = None) -> FastAPI:
    """Build the application.

    Args:
        config: The service's config (the lifespan builds the service from it).
        service: An already built service to use instead (tests; it is not closed by the app).

    Returns:
        The app; run it with uvicorn (``shopseq serve``) or ``fastapi.testclient.TestClient``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.service = Service(config) if owned else service
        try:
            yield
        finally:
            if owned:
                app.state.service.close()

    app = FastAPI(
        title="shopseq",
        version=shopseq.__version__,
        summary="Live shop events in; recommendations, similar items, per-user predictions and "
        "forecasts out.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        responses={401: {"model": ErrorBody}, 413: {"model": ErrorBody}},
        # FastAPI's native OpenTelemetry asks OpenTelemetry's global providers whether anyone
        # configured them on every request (an import-system lookup with six stat calls each,
        # ~10 % of a posted event's CPU when profiled); the service has its own Prometheus
        # metrics (/metrics) and configures no OpenTelemetry, so it is off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    for router in (events.router, users.router, items.router, forecasts.router, admin.router):
        app.include_router(router)
    app.include_router(health.router)
    for error, handler in _handlers().items():
        app.add_exception_handler(error, handler)
    # The last added is the outermost: access timing sees everything, the 413s of the body limit
    # (which refuses before any parsing) included.
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(AccessMiddleware)
    return app
