"""The cases API: parse, call the service (which checks role, scope, state and limits), render
with the version as ETag."""

from datetime import date
from typing import Annotated, Any, cast
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel

from services.cases.cases.clocks import Clock
from services.cases.cases.registering import Registration
from services.cases.cases.repository import case_fields, step_fields
from services.cases.cases.schemas import (
    CODE_PATTERN,
    AnswerIn,
    CaseFeedPageOut,
    CaseFeedStepOut,
    CaseListOut,
    CaseOut,
    CaseStepOut,
    ClockOut,
    ExtendIn,
    NoteIn,
    OptionalReasonIn,
    OwnerOut,
    RateIn,
    ReasonIn,
    RegistrationBatchIn,
    RegistrationBatchOut,
    RegistrationIn,
    RegistrationResultOut,
    ReplyIn,
    RouteIn,
)
from services.cases.cases.service import CasesService, Found
from services.cases.cases.transitions import StepRequest
from shared import cursors
from shared.calendar.rules import local_day
from shared.case_steps import Action, CaseState
from shared.problems import problem_of
from shared.web import PrincipalDep, parse_if_match

router = APIRouter(prefix="/v1", tags=["cases"])

IfMatch = Annotated[
    str | None,
    Header(description='The case\'s version (its ETag, `"3"` or `3`): stale 412, none 428'),
]
STEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "The key may not take this step of this case"},
    404: {"description": "Unknown case, or outside the key's scope"},
    409: {"description": "The step does not fit the case's state"},
    412: {"description": "Stale version"},
    422: {"description": "Bad input, or late (naming the last day)"},
    428: {"description": "No If-Match"},
    503: {"description": "The calendar cannot say whether the limit is still open"},
}
PAGE = 100
LIST_CURSOR = "cases"
NOTE_ACTIONS = {
    "mediation": Action.mediated,
    "agent": Action.agent,
    "supervision": Action.supervised,
}


def service_of(request: Request) -> CasesService:
    cases: CasesService = request.app.state.cases
    return cases


def version_of(if_match: str | None) -> int:
    return parse_if_match(if_match, of="the case")


def clock_out(clock: Clock, today: date) -> ClockOut:
    return ClockOut(
        name=clock.name.value,
        started=clock.started,
        due=clock.due,
        due_reason=clock.due_reason,
        state=clock.state.value,
        done_at=clock.done_at,
        days_left=clock.days_left(today),
        due_soon=clock.due_soon(today),
    )


def case_out(found: Found, today: date, *, with_steps: bool = True) -> CaseOut:
    fields = case_fields(found.case)
    for name in ("content_hash", "owner_unit", "owner_body"):
        fields.pop(name)
    return CaseOut(
        **fields,
        owner=OwnerOut(unit_code=found.case.owner_unit, body=found.case.owner_body),
        summary=found.summary,
        clocks=[clock_out(c, today) for c in found.clocks],
        steps=[CaseStepOut(**step_fields(s)) for s in found.steps] if with_steps else [],
        duplicate=found.duplicate,
        actions=found.actions if with_steps else [],
    )


def rendered(request: Request, found: Found, response: Response) -> CaseOut:
    response.headers["ETag"] = f'"{found.case.version}"'
    return case_out(found, local_day(service_of(request).clock()))


@router.post(
    "/cases",
    status_code=201,
    operation_id="registerCase",
    response_model=CaseOut,
    responses={
        200: {"description": "The same case_id with the same content: a duplicate"},
        403: {"description": "Not a desk of the unit"},
        409: {"description": "The case_id names another registration"},
        422: {"description": "Bad input"},
    },
    summary="Register a case at the desk (一站式接待)",
    description="The registering desk's unit is the first receiver and owns the case until it "
    "routes it; the route clock runs 15 days from `received_at`. A registration of a matter "
    "(the same petitioner and category) that has a case links to it as a repeat "
    "(`repeat_of`), with no clocks of its own; after that case was closed it is `refused`.",
)
async def register_case(
    body: RegistrationIn, request: Request, response: Response, principal: PrincipalDep
) -> CaseOut:
    found = await service_of(request).register(principal, Registration(**body.model_dump()))
    if found.duplicate:
        response.status_code = 200
    return rendered(request, found, response)


@router.post(
    "/cases/batch",
    operation_id="registerCaseBatch",
    response_model=RegistrationBatchOut,
    summary="Register up to 1000 cases; one result per case, in order",
    description="Each case is checked and registered as by `POST /v1/cases`, in one "
    "transaction: a rejected one (its result names why, as a problem) does not stop the "
    "others. Results are `registered`, `repeat`, `refused` (a repeat of a closed case), "
    "`duplicate` or `rejected`, in the order of the cases.",
)
async def register_case_batch(
    body: RegistrationBatchIn, request: Request, principal: PrincipalDep
) -> RegistrationBatchOut:
    results = await service_of(request).register_batch(
        principal, [Registration(**c.model_dump()) for c in body.cases]
    )
    return RegistrationBatchOut(
        results=[
            RegistrationResultOut(
                case_id=r.case_id,
                status="duplicate" if r.duplicate else r.state.value if r.state else "rejected",
                error=problem_of(r.error) if r.error else None,
            )
            for r in results
        ]
    )


async def _take(
    request: Request,
    response: Response,
    principal: PrincipalDep,
    case_id: UUID,
    if_match: str | None,
    step: StepRequest,
) -> CaseOut:
    found = await service_of(request).take(principal, case_id, step, version=version_of(if_match))
    return rendered(request, found, response)


def _described(summary: str, description: str) -> dict[str, Any]:
    return {
        "response_model": CaseOut,
        "responses": STEP_RESPONSES,
        "summary": summary,
        "description": description,
    }


@router.post(
    "/cases/{case_id}/route",
    operation_id="routeCase",
    **_described(
        "Route a case to a handling body, or forward it to another unit (转送/交办)",
        "A desk of the unit the case is with, within 15 days of receiving it. With `to.body` "
        "the case goes to that body of the unit (its objection window of 5 working days and "
        "its 15 days to accept start); without, to the unit, which routes it in turn.",
    ),
)
async def route_case(
    case_id: UUID,
    body: RouteIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> CaseOut:
    action = Action.routed if body.to.body else Action.forwarded
    step = StepRequest(action, body.at, body.reason, body.to.model_dump())
    return await _take(request, response, principal, case_id, if_match, step)


def _simple_step(
    action: Action, path: str, operation_id: str, model: type[BaseModel], summary: str, text: str
) -> None:
    """A step whose body is its reason (or text), `at` and the step's own fields."""

    async def step(
        case_id: UUID,
        body: model,  # type: ignore[valid-type]
        request: Request,
        response: Response,
        principal: PrincipalDep,
        if_match: IfMatch = None,
    ) -> CaseOut:
        fields = cast(BaseModel, body).model_dump()
        at = fields.pop("at", None)
        reason = fields.pop("reason", "") or fields.pop("text", "") or fields.pop("note", "")
        request_ = StepRequest(action, at, reason, fields)
        return await _take(request, response, principal, case_id, if_match, request_)

    step.__name__ = f"{action.value}_case"
    router.post(
        f"/cases/{{case_id}}/{path}",
        operation_id=operation_id,
        **_described(summary, text),
    )(step)


_simple_step(
    Action.objected,
    "object",
    "objectToCase",
    ReasonIn,
    "Object that the matter is outside the body's remit",
    "The body the case is routed to, within 5 working days of the routing: the case returns "
    "to the unit that routed it, whose route clock starts again.",
)
_simple_step(
    Action.accepted,
    "accept",
    "acceptCase",
    AnswerIn,
    "Accept a case (受理), with the notice to the petitioner",
    "The body the case is routed to; the accept clock (15 days from routing) is met when both "
    "the decision and `notified_at` fall on or before its last day. The reply clock (60 days) "
    "starts.",
)
_simple_step(
    Action.declined,
    "decline",
    "declineCase",
    AnswerIn,
    "Decline a case (不予受理), telling the petitioner the proper channel",
    "The body the case is routed to, with the reason, `channel` and `notified_at`.",
)
_simple_step(
    Action.extended,
    "extend",
    "extendCaseReply",
    ExtendIn,
    "Extend the reply's limit once",
    "The handling body's head, once, by up to 30 days after the original last day, with a "
    "reason (the petitioner is told).",
)
_simple_step(
    Action.replied,
    "reply",
    "replyToCase",
    ReplyIn,
    "Reply to the petitioner (答复意见)",
    "The handling body: `support`, `explain` or `reject`, with the text. The rating window "
    "(15 days) and the window to ask for review (30 days) start.",
)
_simple_step(
    Action.rated,
    "rate",
    "rateCase",
    RateIn,
    "Record the petitioner's rating of the reply",
    "A desk over the case's unit, within the rating window.",
)
_simple_step(
    Action.review_requested,
    "review-request",
    "requestCaseReview",
    OptionalReasonIn,
    "Record the petitioner's request for 复查 or 复核",
    "A desk over the case's unit, within 30 days of the reply (复查, answered by the bureau "
    "above the unit that replied) or of the 复查's answer (复核, by the bureau above that).",
)
_simple_step(
    Action.reviewed,
    "review",
    "reviewCase",
    ReplyIn,
    "Answer a 复查 or 复核",
    "The reviewing bureau, within 30 days of the request. After 复核 the case is final.",
)
_simple_step(
    Action.closed,
    "close",
    "closeCase",
    OptionalReasonIn,
    "Close a case (终结)",
    "The petitioner's desk or a bureau over the case: after 复核, once the window to ask for "
    "review has passed unused, or after a refusal. The same matter is not accepted again.",
)


@router.post(
    "/cases/{case_id}/steps",
    operation_id="addCaseStep",
    **_described(
        "Record a mediation, a petition agent's step or a supervision note (督办)",
        "`mediation` (人民, 行政, 司法 or 联合调解: `people`, `administrative`, `judicial`, "
        "`joint`) by the handling body while it handles the case; `agent` (信访代理员) by the "
        "desk or the body; `supervision` by a bureau over the unit, on an overdue case.",
    ),
)
async def add_case_step(
    case_id: UUID,
    body: NoteIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> CaseOut:
    detail = {"mediation": body.mediation.value if body.mediation else None}
    step = StepRequest(NOTE_ACTIONS[body.kind], body.at, body.note, detail)
    return await _take(request, response, principal, case_id, if_match, step)


@router.get(
    "/cases/{case_id}",
    operation_id="getCase",
    response_model=CaseOut,
    responses={404: {"description": "Unknown case, or outside the key's scope"}},
    summary="A case with its clocks and every step",
    description="Its state, owner, clocks (each with its last day and state) and every step "
    "with what happened when, who recorded it and why; the version as ETag. The summary only "
    "for keys that may read it.",
)
async def get_case(
    case_id: UUID, request: Request, response: Response, principal: PrincipalDep
) -> CaseOut:
    return rendered(request, await service_of(request).get(principal, case_id), response)


@router.get(
    "/cases",
    operation_id="listCases",
    response_model=CaseListOut,
    summary="Cases of a subtree, or a handling body's queue",
    description="Cases whose unit, first receiver or owner lies within `root` (default: the "
    "key's scope); a handler key gets the cases with its body. Oldest first, 100 a page; "
    "`overdue=true`: only those with a duty past its last day. Summaries and steps are "
    "given by `GET /v1/cases/{case_id}`.",
)
async def list_cases(
    request: Request,
    principal: PrincipalDep,
    root: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    state: CaseState | None = None,
    overdue: bool = False,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CaseListOut:
    service = service_of(request)
    found = await service.listed(
        principal, root=root or principal.scope_code, state=state, overdue=overdue
    )
    start = cursors.decode_seq(LIST_CURSOR, cursor, field="cursor") if cursor else 0
    page = found[start : start + PAGE]
    today = local_day(service.clock())
    more = start + PAGE < len(found)
    return CaseListOut(
        cases=[case_out(f, today, with_steps=False) for f in page],
        next_cursor=cursors.encode(LIST_CURSOR, str(start + PAGE)) if more else None,
    )


@router.get(
    "/feed/cases",
    operation_id="getCaseSteps",
    response_model=CaseFeedPageOut,
    summary="Every step of the cases under the root, in the order they were made",
    description="For systems that pull: pass `next_cursor` back as `since`; no step is skipped "
    "or repeated, also while steps keep being made and across restarts.",
)
async def get_case_feed(
    request: Request,
    principal: PrincipalDep,
    root: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    since: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CaseFeedPageOut:
    rows, cursor = await service_of(request).feed(
        principal, root=root or principal.scope_code, since=since, limit=limit
    )
    return CaseFeedPageOut(
        items=[
            CaseFeedStepOut(
                **step_fields(row.step),
                step_id=row.step.step_id,
                case_id=row.case_id,
                unit_code=row.unit_code,
                owner=OwnerOut(unit_code=row.owner_unit, body=row.owner_body),
            )
            for row in rows
        ],
        next_cursor=cursor,
    )
