from typing import Annotated
from uuid import UUID

import orjson
from fastapi import APIRouter, Body, Request, Response, status
from fastapi.openapi.models import Example

from services.intake.schemas import (
    BatchIn,
    BatchOut,
    EventIn,
    ReceiptOut,
    StoredEventOut,
)
from services.intake.service import IntakeService
from shared.events import EXAMPLES
from shared.web import PrincipalDep, SessionDep, charge_events, correlation_id

router = APIRouter(prefix="/v1/events", tags=["events"])
EVENT_EXAMPLES: dict[str, Example] = {
    str(kind): {"summary": str(kind), "value": example} for kind, example in EXAMPLES.items()
}
BATCH_EXAMPLES: dict[str, Example] = {
    "mixed": {
        "summary": "One event of each type",
        "value": {"events": list(EXAMPLES.values())},
    }
}


def intake(request: Request) -> IntakeService:
    # From app state rather than a dependency: one less to resolve on every post.
    service: IntakeService = request.app.state.intake
    return service


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReceiptOut,
    responses={
        200: {"model": ReceiptOut, "description": "A repeat of an accepted event"},
        409: {"description": "The event id was already used with other content"},
    },
    summary="Post one event; 202 once it is durable",
    description="The event is checked against the registry, the campaign's rules for "
    "intake and the key's scope, then journalled: a 202 means it is durable and will be "
    "evaluated, even if the broker is down at that moment. The same `event_id` with the same "
    "content again answers 200 with `duplicate: true` and counts once; with other content, "
    "409. A bad field answers 422 naming it, and nothing is stored.",
    operation_id="postEvent",
)
async def post_event(
    event: Annotated[EventIn, Body(openapi_examples=EVENT_EXAMPLES)],
    request: Request,
    principal: PrincipalDep,
) -> Response:
    # The receipt is rendered here rather than validated again against the response model.
    receipt = await intake(request).accept(
        event=event, principal=principal, correlation_id=correlation_id(request)
    )
    body = ReceiptOut(
        event_id=receipt.event_id, accepted_at=receipt.accepted_at, duplicate=receipt.duplicate
    )
    return Response(
        body.model_dump_json(),
        status_code=status.HTTP_200_OK if receipt.duplicate else status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


@router.post(
    "/batch",
    response_model=BatchOut,
    summary="Post up to 1000 events; one result per event, in order",
    description="Each event is checked and stored as by `POST /v1/events`, independently: a "
    "rejected event (its result names why, as a problem) does not stop the others. Results "
    "are `accepted`, `duplicate` or `rejected`, in the order of the events. Every event of "
    "the batch counts against the key's rate limit.",
    operation_id="postEventBatch",
)
async def post_batch(
    batch: Annotated[BatchIn, Body(openapi_examples=BATCH_EXAMPLES)],
    request: Request,
    principal: PrincipalDep,
) -> Response:
    intake(request).check_batch_size(len(batch.events))
    charge_events(request, principal, events=len(batch.events))
    results = await intake(request).accept_batch(
        items=batch.events, principal=principal, correlation_id=correlation_id(request)
    )
    # Plain dicts to JSON: validating a thousand results against BatchOut again cost more
    # than writing them.
    body = {
        "results": [{"event_id": r.event_id, "status": r.status, "error": r.error} for r in results]
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/{event_id}",
    response_model=StoredEventOut,
    responses={404: {"description": "No such event"}},
    summary="The event as accepted, with the corrections that target it",
    description="Within the key's scope; 404 for an event intake never accepted.",
    operation_id="getEvent",
)
async def get_event(
    event_id: UUID, request: Request, session: SessionDep, principal: PrincipalDep
) -> dict[str, object]:
    return await intake(request).get(session, event_id=event_id, principal=principal)
