"""``POST /v1/admin/reload``: swap in a new run without dropping a request (admin key)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi import APIRouter

from shopseq.serve.deps import AdminKeyDep, ServiceDep
from shopseq.serve.schemas import ErrorBody, ReloadRequest, ReloadResult

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/reload",
    response_model=ReloadResult,
    responses={
        422: {"model": ErrorBody, "description": "The run failed to load; the old one serves."}
    },
    summary="Load a run directory and swap it in atomically",
)
async def reload(
    service: ServiceDep, _: AdminKeyDep, body: ReloadRequest | None = None
) -> ReloadResult:
    """Load off the event loop, then swap; requests in flight finish on the old model."""
    started = time.perf_counter()
    target = Path(body.run) if body is not None and body.run else None
    new, old = await asyncio.to_thread(service.reload, target)
    return ReloadResult(
        model_version=new.version,
        previous_version=old.version,
        seconds=round(time.perf_counter() - started, 3),
    )
