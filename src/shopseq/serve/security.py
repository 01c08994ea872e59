"""API-key checks and the request-body limit.

Keys come in ``X-API-Key`` or ``Authorization: Bearer`` (what Prometheus sends when scraping
``/metrics``). A missing or unknown key is 401, a client key on an admin route 403. Keys are never
logged; a request is logged by route template only (``metrics.AccessMiddleware``).
"""

from __future__ import annotations

import json

from fastapi import HTTPException, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopseq.serve.keys import ApiKey, KeyStore

__all__ = ["BodyLimitMiddleware", "api_key_header", "bearer", "check_k", "require_key"]

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")
bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")


def require_key(
    keys: KeyStore,
    header: str | None,
    credentials: HTTPAuthorizationCredentials | None,
    *,
    admin: bool,
) -> ApiKey:
    """Return the record of the presented key or raise the HTTP error.

    Args:
        keys: The key store.
        header: ``X-API-Key`` value.
        credentials: ``Authorization: Bearer`` value.
        admin: Whether the route needs an admin key.

    Returns:
        The key's record.

    Raises:
        HTTPException: 401 without an accepted key, 403 for a client key on an admin route.
    """
    presented = header or (credentials.credentials if credentials is not None else None)
    if not presented:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API key is required: send it as X-API-Key (create one with "
            "shopseq serve keys add NAME)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    record = keys.check(presented)
    if record is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API key is not valid (unknown or revoked)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if admin and record.role != "admin":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this route needs an admin key; key {record.key_id!r} has role {record.role!r}",
        )
    return record


def check_k(k: int, max_k: int) -> None:
    """Refuse a ``k`` above the service's limit (422 naming the limit).

    Args:
        k: The requested number of items.
        max_k: The service's limit (``ServeConfig.max_k``).

    Raises:
        HTTPException: 422 when ``k`` is above the limit.
    """
    if k > max_k:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"The 'k' parameter must be an int in [1, {max_k}] on this service. Got {k} instead.",
        )


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, whether announced or streamed (pure ASGI).

    Args:
        app: The wrapped application.
        max_bytes: Largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on unless its body is over the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = -1
                if announced < 0 or announced > self.max_bytes:
                    await self._refuse(send, announced)
                    return
        seen = 0
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def receiving() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, receiving, sending)
        except _TooLarge:
            if not started:
                await self._refuse(send, seen)

    async def _refuse(self, send: Send, size: int) -> None:
        body = json.dumps(
            {
                "error": "PayloadTooLarge",
                "detail": f"the request body is larger than the limit of {self.max_bytes} bytes "
                f"(got {'an invalid length' if size < 0 else f'{size} bytes'}); "
                "send fewer events per request",
                "field": "body",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    """A streamed body went past the limit."""
