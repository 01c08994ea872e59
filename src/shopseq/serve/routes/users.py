"""Per-user routes: recommendations from the live state, predictions from the predict runs.

``GET /v1/users/{user_id}/recommendations``: the next items, the events just posted included.
``GET /v1/users/{user_id}/predictions``: what the per-user prediction runs say, with reasons.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from shopseq.errors import UnknownIdError
from shopseq.serve.deps import ClientKeyDep, ModelDep, ServiceDep
from shopseq.serve.schemas import (
    MAX_ID_CHARS,
    ErrorBody,
    Recommendations,
    TaskPrediction,
    UserPredictions,
)
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
) -> JSONResponse:
    """Answer from the run's history of the user plus every event posted since.

    A user the run has never seen is answered from the events posted so far (``session``) or,
    with none, by popularity: never an error.
    """
    check_k(k, service.config.max_k)
    key = service.user_key(user_id)
    live = service.state.recent(key)
    shown = set(exclude or ())
    answer = model.recommend(key, k + len(shown), exclude_seen=exclude_seen, recent=live)
    items = [
        {"item_id": i, "score": s}
        for i, s in zip(answer.items, answer.scores, strict=True)
        if i not in shown
    ][:k]
    # The ``Recommendations`` body as FastAPI would write it from the model, returned as a
    # response so that it is not validated and serialised once more per request
    # (``tests/serve/test_app.py`` checks the bytes against the model's).
    return JSONResponse(
        {
            "items": items,
            "source": answer.source,
            "n_live_events": len(live),
            "model_version": model.version,
        }
    )


@router.get(
    "/{user_id}/predictions",
    response_model=UserPredictions,
    responses={404: {"model": ErrorBody, "description": "No served run scored this user."}},
    summary="Per-user predictions (purchase, churn, CLV, next action, time to next) with reasons",
)
async def predictions(user_id: UserId, service: ServiceDep, _: ClientKeyDep) -> UserPredictions:
    """Answer from the predict runs being served (``--predictions``), one entry per task.

    Each score describes the user as of its run's ``as_of``; ``n_live_events`` says how many of
    the user's events the service holds, which count from the next ``shopseq predict`` run.
    """
    runs = service.predictions  # taken once: a reload never changes it under this request
    key = service.user_key(user_id)
    found: list[TaskPrediction] = []
    missing: list[str] = []
    for scores in runs:
        answer = scores.get(key)
        if answer is None:
            missing.append(scores.task.name)
            continue
        found.append(
            TaskPrediction(
                task=answer.task,
                question=answer.question,
                kind=answer.kind,
                score=answer.score,
                prediction=answer.prediction,
                probabilities=answer.probabilities,
                values=answer.values,
                reasons=answer.reasons,
                model=answer.model,
                as_of=answer.as_of.isoformat() + "Z",
                run_version=answer.run_version,
            )
        )
    n_live = len(service.state.recent(key))
    if not found:
        if not runs:
            raise UnknownIdError(
                "no per-user prediction runs are served: start the service with --predictions "
                "DIR (shopseq predict <task> --out DIR) or reload with them"
            )
        raise UnknownIdError(
            f"this user is not scored by the served prediction runs ({', '.join(missing)}): "
            f"runs score users with events before their data end; {n_live} live event(s) of "
            "this user count from the next shopseq predict run"
        )
    return UserPredictions(predictions=found, missing_tasks=missing, n_live_events=n_live)
