from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import Example
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from services.intake.gathering import Receipt
from services.intake.schemas import (
    BatchIn,
    BatchOut,
    ReceiptOut,
    StoredEventOut,
)
from services.intake.service import IntakeService
from shared.events import EXAMPLES, Event, event_adapter
from shared.web import (
    JsonRoute,
    PrincipalDep,
    SessionDep,
    charge_events,
    correlation_id,
    get_principal,
)

# Batches of a thousand events: their bodies are parsed by orjson (`JsonRoute`).
router = APIRouter(prefix="/v1/events", tags=["events"], route_class=JsonRoute)
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


def receipt_json(receipt: Receipt) -> bytes:
    """The receipt as `ReceiptOut` renders it, written without building the model. An id
    read back from the journal is asyncpg's own UUID type, written by `str`."""
    return orjson.dumps(receipt, default=str, option=orjson.OPT_UTC_Z)


class ReceiptResponse(Response):
    """The receipt's JSON with the headers `Response` would give it, set without the general
    case's checks of what else it might be given."""

    def __init__(self, receipt: Receipt) -> None:
        self.status_code = status.HTTP_200_OK if receipt.duplicate else status.HTTP_202_ACCEPTED
        self.background = None
        self.body = receipt_json(receipt)
        self.raw_headers = [
            (b"content-length", str(len(self.body)).encode()),
            (b"content-type", b"application/json"),
        ]


def _event_body() -> dict[str, Any]:
    """The request body of POST /v1/events as FastAPI would document an `Event` parameter:
    the event types' schemas are components already, through the batch's."""
    schema = event_adapter.json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    content = {"schema": {**schema, "title": "Event"}, "examples": EVENT_EXAMPLES}
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


def _is_json(content_type: str | None) -> bool:
    """No type, application/json or application/*+json, with any parameters: what FastAPI
    parses as JSON."""
    if content_type is None:
        return True
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def event_of(request: Request) -> Event:
    """The posted event, parsed and validated from the body's bytes in one step: an `Event`
    parameter would have FastAPI decode the JSON into Python objects first and validate those,
    a sixth of the route's time. A bad body is a 422 naming the field, as it would be."""
    body = await body_of(request)
    if not _is_json(request.headers.get("content-type")):
        raise RequestValidationError(
            [{"type": "content_type", "loc": ("body",), "msg": "the body must be JSON"}]
        )
    try:
        return event_adapter.validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None


async def body_of(request: Request) -> bytes:
    """The body, read from `receive` as `Request.body` would, without the async generator it
    reads through (a twentieth of the route's time)."""
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def post_event(request: Request) -> Response:
    # The key is read here rather than as a dependency (documented for every /v1/ route by
    # shared.problems): resolving it cost a tenth of the route's time. First, as a dependency
    # was: a caller without a valid key learns nothing of the body's checks.
    principal = await get_principal(request)
    event = await event_of(request)
    receipt = await intake(request).accept(
        event=event, principal=principal, correlation_id=correlation_id(request)
    )
    return ReceiptResponse(receipt)


router.add_api_route(
    "",
    post_event,
    methods=["POST"],
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
    openapi_extra=_event_body(),
)


@router.post(
    "/batch",
    response_model=BatchOut,
    summary="Post up to 1000 events; one result per event, in order",
    description="Each event is checked and stored as by `POST /v1/events`, independently: a "
    "rejected event (its result names why, as a problem) does not stop the others. Results "
    "are `accepted`, `duplicate` or `rejected`, in the order of the events. Every event of "
    "the batch counts against the key's rate limit. With `dry_run=true`, the same results "
    "(repeats and conflicts as the journal holds them now) and nothing stored. With "
    "`derive_event_ids=true`, each `event_id` is a seed and the event's id is "
    "`hmac-sha256(SANWU_PETITIONER_HASH_SECRET, seed)` as a UUID (version 8), returned in its "
    "result: the same seed gives the same id, and an id cannot be traced back to its seed "
    "without the secret (`sanwu events import` seeds each row without an id of its own from "
    "its content).",
    operation_id="postEventBatch",
)
async def post_batch(
    batch: Annotated[BatchIn, Body(openapi_examples=BATCH_EXAMPLES)],
    request: Request,
    principal: PrincipalDep,
    dry_run: Annotated[
        bool, Query(description="Check every event and answer as if stored; store nothing")
    ] = False,
    derive_event_ids: Annotated[
        bool, Query(description="Each event_id is a seed; the event's id is keyed from it")
    ] = False,
) -> Response:
    intake(request).check_batch_size(len(batch.events))
    charge_events(request, principal, events=len(batch.events))
    results = await intake(request).accept_batch(
        items=batch.events,
        principal=principal,
        correlation_id=correlation_id(request),
        dry_run=dry_run,
        derive_ids=derive_event_ids,
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
