"""``/healthz``, ``/readyz`` (no key needed) and ``/metrics`` (Prometheus text, key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from shopseq.serve.deps import ClientKeyDep, ServiceDep
from shopseq.serve.schemas import Health, Readiness

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """200 while the process answers."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    summary="Readiness",
)
async def readyz(service: ServiceDep, response: Response) -> Readiness:
    """200 when the model is loaded, the committer runs and the state answers; 503 otherwise."""
    checks = {"model": True, "committer": service.committer.alive}
    try:
        service.state.n_users()
        checks["state"] = True
    except Exception:  # a state that cannot answer makes the service not ready, nothing more
        checks["state"] = False
    ready = all(checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(ready=ready, model_version=service.model.version, checks=checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    summary="Prometheus metrics",
)
async def metrics(service: ServiceDep, _: ClientKeyDep) -> Response:
    """Request counts and latency per route, events accepted/rejected, model, state size."""
    service.metrics.state_users.set(service.state.n_users())
    service.metrics.log_events.set(service.committer.log_last_seq)
    return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")
