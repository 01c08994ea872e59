"""Annotated dependencies of the routes (tests replace them with ``app.dependency_overrides``).

Every dependency is ``async def``: a plain ``def`` would run in the thread pool, one hop per
dependency per request, which costs more than the work it does here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from shopseq.serve.keys import ApiKey
from shopseq.serve.security import api_key_header, bearer, require_key
from shopseq.serve.service import LoadedRun, Service

__all__ = ["AdminKeyDep", "ClientKeyDep", "ModelDep", "ServiceDep"]


async def get_service(request: Request) -> Service:
    """The running service (built in the lifespan)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_model(service: ServiceDep) -> LoadedRun:
    """The model at the moment the request starts: a reload never changes it under a request."""
    return service.model


ModelDep = Annotated[LoadedRun, Depends(get_model)]


async def client_key(
    request: Request,
    service: ServiceDep,
    header: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> ApiKey:
    """Any accepted key (client or admin)."""
    record = require_key(service.keys, header, credentials, admin=False)
    request.state.api_key = record
    return record


async def admin_key(
    request: Request,
    service: ServiceDep,
    header: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> ApiKey:
    """An accepted admin key."""
    record = require_key(service.keys, header, credentials, admin=True)
    request.state.api_key = record
    return record


ClientKeyDep = Annotated[ApiKey, Depends(client_key)]
AdminKeyDep = Annotated[ApiKey, Depends(admin_key)]
