"""``GET /v1/forecasts``: the forecasts ``shopseq forecast`` wrote, per series."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from shopseq.serve.deps import ClientKeyDep, ServiceDep
from shopseq.serve.schemas import MAX_ID_CHARS, ErrorBody, ForecastPoint, Forecasts

__all__ = ["router"]

router = APIRouter(prefix="/v1/forecasts", tags=["forecasts"])


@router.get(
    "",
    response_model=Forecasts,
    responses={404: {"model": ErrorBody}},
    summary="Forecasts per series",
)
async def forecasts(
    service: ServiceDep,
    _: ClientKeyDep,
    series: Annotated[
        list[Annotated[str, Query(max_length=MAX_ID_CHARS)]] | None,
        Query(max_length=100, description="Series ids (e.g. total, a category); absent: all."),
    ] = None,
) -> Forecasts:
    """Every period of the chosen series, with intervals where the forecast has them."""
    records = service.forecasts
    if records is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "no forecasts are loaded: start the service with --forecasts FILE "
            "(forecasts.json written by shopseq forecast --out DIR)",
        )
    wanted = set(series or ())
    points = [
        ForecastPoint.model_validate(r) for r in records if not wanted or r["unique_id"] in wanted
    ]
    if wanted and not points:
        known = sorted({str(r["unique_id"]) for r in records})
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no forecast for series {sorted(wanted)}; known series: {known[:20]}",
        )
    return Forecasts(series=sorted({p.unique_id for p in points}), points=points)
