from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.evaluation.schemas import EffectOut
from shared.web import PrincipalDep, SessionDep

router = APIRouter(prefix="/v1", tags=["evaluation"])
# 401, 403, 422 and the rest are documented for every route by shared.problems.
NOT_FOUND: dict[str, Any] = {
    "description": "Evaluation knows no such event: it may not have been evaluated yet"
}


@router.get(
    "/events/{event_id}/effect",
    response_model=EffectOut,
    response_model_exclude_none=True,
    responses={404: NOT_FOUND},
    summary="What the rules made of an event or a correction",
    operation_id="getEventEffect",
    description="A counted event: `applied` with every unit and period it counts against "
    "now (and under which criteria), or `voided`. A correction: `pending` while its target "
    "has not arrived, then `applied` or `refused` with the reason (outside the sender's "
    "scope, its target is a correction, the event was already voided). `dead_lettered`: "
    "evaluation could not apply it. Any key may read an event whose attributed unit (for a "
    "correction, its own unit) lies in its scope.",
)
async def get_effect(
    *, event_id: UUID, request: Request, session: SessionDep, principal: PrincipalDep
) -> JSONResponse:
    worker = request.app.state.worker  # services.evaluation.main.EvaluationWorker
    effect = await worker.service.effect(
        session, event_id=event_id, principal=principal, now=worker.clock.now()
    )
    body = effect.model_dump(mode="json", exclude_none=True)
    if effect.disputes is not None:  # a counting event: its last day is shown, null or not
        body.setdefault("dispute_until", None)
    return JSONResponse(body)
