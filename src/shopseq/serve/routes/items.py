"""``GET /v1/items/{item_id}/similar``: items related to one item."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from shopseq.runs.serving import similar_items
from shopseq.serve.deps import ClientKeyDep, ModelDep, ServiceDep
from shopseq.serve.schemas import MAX_ID_CHARS, ErrorBody, ItemScore, SimilarItems
from shopseq.serve.security import check_k

__all__ = ["router"]

router = APIRouter(prefix="/v1/items", tags=["items"])


@router.get(
    "/{item_id}/similar",
    response_model=SimilarItems,
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="Items related to an item",
)
async def similar(
    item_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS)],
    service: ServiceDep,
    model: ModelDep,
    _: ClientKeyDep,
    k: Annotated[int, Query(ge=1, le=1000, description="Number of items.")] = 10,
) -> SimilarItems:
    """The model's own item similarity where it has one, else what it ranks next after the item.

    404 for an item the run does not know.
    """
    check_k(k, service.config.max_k)
    found = similar_items(model.run, item_id, k)
    return SimilarItems(
        item_id=item_id,
        items=[
            ItemScore(item_id=i, score=s) for i, s in zip(found.items, found.scores, strict=True)
        ],
        method=found.method,
        model_version=model.version,
    )
