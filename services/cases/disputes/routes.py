"""The disputes API: parse, authorise (the key; the service checks role and scope), call the
service, render with the version as ETag."""

from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response

from services.cases.disputes.service import Disputed, DisputesService, Filing, Ruling
from services.cases.schemas import (
    CODE_PATTERN,
    DisputeIn,
    DisputeListOut,
    DisputeOut,
    FeedPageOut,
    FeedStepOut,
    ReasonIn,
    RulingIn,
    StepOut,
)
from shared.dispute_steps import State
from shared.web import PrincipalDep, parse_if_match

router = APIRouter(prefix="/v1", tags=["disputes"])

IfMatch = Annotated[
    str | None,
    Header(description='The dispute\'s version (its ETag, `"3"` or `3`): stale 412, none 428'),
]
CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown dispute"},
    409: {"description": "The step does not fit the dispute's state"},
    412: {"description": "Stale version"},
    428: {"description": "No If-Match"},
}


def service_of(request: Request) -> DisputesService:
    disputes: DisputesService = request.app.state.disputes
    return disputes


def version_of(if_match: str | None) -> int:
    return parse_if_match(if_match, of="the dispute")


def rendered(found: Disputed, response: Response) -> DisputeOut:
    response.headers["ETag"] = f'"{found.dispute.version}"'
    fields = asdict(found.dispute)
    fields.pop("filer_scope")
    return DisputeOut(
        **fields,
        dispute_until=found.dispute_until,
        actions=found.actions,
        steps=[
            StepOut(**{k: v for k, v in asdict(s).items() if k != "step_id"}) for s in found.steps
        ],
    )


@router.post(
    "/disputes",
    status_code=201,
    operation_id="fileDispute",
    response_model=DisputeOut,
    responses={
        404: {"description": "Unknown event"},
        409: {"description": "The event has a live dispute, or is voided"},
        422: {"description": "Bad input, not a counting event, or late (naming the last day)"},
        503: {"description": "The calendar cannot say whether the window is still open"},
    },
    summary="Dispute a counted event",
    description="A desk or bureau whose scope covers the event's unit (up to its county) "
    "disputes it within 5 working days of the notice (the earlier of intake's acceptance and "
    "the event's `reported_at`). Grounds `not_ours` need `proposed_unit`, `duplicate` "
    "`duplicate_of`. The county bureau above the unit decides (the city without a county).",
)
async def file_dispute(
    body: DisputeIn, request: Request, response: Response, principal: PrincipalDep
) -> DisputeOut:
    filing = Filing(**body.model_dump())
    return rendered(await service_of(request).file(principal, filing), response)


@router.post(
    "/disputes/{dispute_id}/decide",
    operation_id="decideDispute",
    response_model=DisputeOut,
    responses=CHANGE_RESPONSES,
    summary="Decide a dispute",
    description="The deciding bureau upholds (voiding the event, or re-attributing it to a "
    "unit of its scope) or rejects, always with a reason.",
)
async def decide_dispute(
    dispute_id: UUID,
    body: RulingIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> DisputeOut:
    ruling = Ruling(**body.model_dump())
    found = await service_of(request).decide(
        principal, dispute_id, ruling, version=version_of(if_match)
    )
    return rendered(found, response)


@router.post(
    "/disputes/{dispute_id}/review-request",
    operation_id="requestDisputeReview",
    response_model=DisputeOut,
    responses=CHANGE_RESPONSES,
    summary="Ask the next bureau up to review a decision",
    description="The side the decision went against (the filer after a rejection; a desk or "
    "bureau over the new unit after a re-attribution), within 5 working days of the decision.",
)
async def request_review(
    dispute_id: UUID,
    body: ReasonIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> DisputeOut:
    found = await service_of(request).request_review(
        principal, dispute_id, body.reason, version=version_of(if_match)
    )
    return rendered(found, response)


@router.post(
    "/disputes/{dispute_id}/review",
    operation_id="reviewDispute",
    response_model=DisputeOut,
    responses=CHANGE_RESPONSES,
    summary="Review a decision (final)",
    description="The bureau above the decider decides again; its decision replaces the first.",
)
async def review_dispute(
    dispute_id: UUID,
    body: RulingIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> DisputeOut:
    ruling = Ruling(**body.model_dump())
    found = await service_of(request).review(
        principal, dispute_id, ruling, version=version_of(if_match)
    )
    return rendered(found, response)


@router.post(
    "/disputes/{dispute_id}/withdraw",
    operation_id="withdrawDispute",
    response_model=DisputeOut,
    responses=CHANGE_RESPONSES,
    summary="Withdraw a dispute not decided yet",
    description="The filer (a key of the filer's scope) withdraws it.",
)
async def withdraw_dispute(
    dispute_id: UUID,
    body: ReasonIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> DisputeOut:
    found = await service_of(request).withdraw(
        principal, dispute_id, body.reason, version=version_of(if_match)
    )
    return rendered(found, response)


@router.get(
    "/disputes/{dispute_id}",
    operation_id="getDispute",
    response_model=DisputeOut,
    responses={404: {"description": "Unknown dispute, or outside the key's scope"}},
    summary="A dispute with every step",
    description="Its state, decision and review, the last day to dispute the event, and "
    "every step with who, when and why; the version as ETag.",
)
async def get_dispute(
    dispute_id: UUID, request: Request, response: Response, principal: PrincipalDep
) -> DisputeOut:
    return rendered(await service_of(request).get(principal, dispute_id), response)


@router.get(
    "/disputes",
    operation_id="listDisputes",
    response_model=DisputeListOut,
    summary="Disputes of a subtree",
    description="Disputes of events of units within `root` (default: the key's scope), "
    "optionally in one state, oldest first, each with the last day to dispute its event; "
    "`steps` are given by `GET /v1/disputes/{dispute_id}` (empty here).",
)
async def list_disputes(
    request: Request,
    principal: PrincipalDep,
    root: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    state: State | None = None,
) -> DisputeListOut:
    service = service_of(request)
    found = await service.listed(principal, root=root or principal.scope_code or "", state=state)
    return DisputeListOut(
        disputes=[
            DisputeOut(
                **{k: v for k, v in asdict(d).items() if k != "filer_scope"},
                dispute_until=until,
            )
            for d, until in found
        ]
    )


@router.get(
    "/feed/disputes",
    operation_id="getDisputeSteps",
    response_model=FeedPageOut,
    summary="Every step of the disputes under the root, in the order they were made",
    description="For systems that pull: pass `next_cursor` back as `since`; no step is skipped "
    "or repeated, also while steps keep being made and across restarts. An empty `since` "
    "starts from the beginning. A page may hold fewer than `limit` steps (those of other "
    "subtrees are passed over); an empty page with the same cursor means nothing new.",
)
async def get_dispute_feed(
    request: Request,
    principal: PrincipalDep,
    root: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    since: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous pull")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Steps examined per pull")] = 100,
) -> FeedPageOut:
    rows, cursor = await service_of(request).feed(
        principal, root=root or principal.scope_code, since=since, limit=limit
    )
    return FeedPageOut(
        items=[
            FeedStepOut(
                **asdict(row.step),
                dispute_id=row.dispute_id,
                event_id=row.event_id,
                unit_code=row.unit_code,
            )
            for row in rows
        ],
        next_cursor=cursor,
    )
