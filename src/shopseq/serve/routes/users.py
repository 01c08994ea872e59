"""``GET /v1/users/{user_id}/recommendations``: the next items, from the user's live state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from shopseq.serve.deps import ClientKeyDep, ModelDep, ServiceDep
from shopseq.serve.schemas import MAX_ID_CHARS, ErrorBody, ItemScore, Recommendations
from shopseq.serve.security import check_k

__all__ = ["router"]

router = APIRouter(prefix="/v1/users", tags=["users"])

UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS)]


@router.get(
    "/{user_id}/recommendations",
    response_model=Recommendations,
    responses={422: {"model": ErrorBody}},
    summary="Top items for a user, live events included",
)
async def recommendations(
    user_id: UserId,
    service: ServiceDep,
    model: ModelDep,
    _: ClientKeyDep,
    k: Annotated[int, Query(ge=1, le=1000, description="Number of items.")] = 10,
    exclude_seen: Annotated[
        bool, Query(description="Never recommend an item of the history answered from.")
    ] = True,
    exclude: Annotated[
        list[Annotated[str, Query(max_length=MAX_ID_CHARS)]] | None,
        Query(max_length=1000, description="Items not to recommend (e.g. already shown)."),
    ] = None,
) -> Recommendations:
    """Answer from the run's history of the user plus every event posted since.

    A user the run has never seen is answered from the events posted so far (``session``) or,
    with none, by popularity: never an error.
    """
    check_k(k, service.config.max_k)
    key = service.user_key(user_id)
    live = service.state.recent(key)
    shown = set(exclude or ())
    answer = model.run.recommend(key, k + len(shown), exclude_seen=exclude_seen, recent=live)
    items = [
        ItemScore(item_id=i, score=s)
        for i, s in zip(answer.items, answer.scores, strict=True)
        if i not in shown
    ][:k]
    return Recommendations(
        items=items, source=answer.source, n_live_events=len(live), model_version=model.version
    )
