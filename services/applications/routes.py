"""The applications API: parse, authorise (the key; the service checks its role and scope),
call the service, render."""

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from services.applications.case_rates import CaseRatesSource
from services.applications.material_files import MaterialFiles
from services.applications.materials import XLSX_MEDIA_TYPE, Materials
from services.applications.materials_pdf import PDF_MEDIA_TYPE
from services.applications.records import Application
from services.applications.schemas import (
    ApplicationIn,
    ApplicationListOut,
    ApplicationOut,
    AwardIn,
    FeedPageOut,
    HistoryOut,
    ReviewIn,
    RevokeIn,
    StepOut,
    TitleOut,
    TitlesOut,
)
from services.applications.service import ApplicationsService
from services.applications.workflow import ApplicationState, etag
from shared.access.service import Principal
from shared.registry.cache import UnitRegistry
from shared.web import PrincipalDep

router = APIRouter(prefix="/v1", tags=["applications"])

CODE_PATTERN = r"^[0-9]{12}$"
IfMatch = Annotated[
    str | None,
    Header(
        description='The application\'s version (its ETag, `"3"` or `3`): a stale one is '
        "answered 412, none 428",
    ),
]
Root = Annotated[
    str | None,
    Query(pattern=CODE_PATTERN, description="A unit code: the subtree (default: the key's scope)"),
]
# A period names rows in the database, which cannot hold the NUL character: refused (422).
PERIOD_PATTERN = r"^[^\x00]+$"
PeriodQuery = Annotated[
    str, Query(min_length=1, max_length=64, pattern=PERIOD_PATTERN, examples=["2018"])
]
# 401, 403, 422 and the rest are documented for every route by shared.problems.
UNKNOWN_ROOT: dict[int | str, dict[str, Any]] = {
    404: {"description": "The root names no unit of the registry"}
}
CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown application"},
    409: {
        "description": "The request does not fit the state: each unit refused is named in "
        "`errors` with why (a flagged unit with its events)"
    },
    412: {"description": "If-Match names a version that is no longer current"},
    428: {"description": "No If-Match"},
}


@dataclass(frozen=True, slots=True)
class Call:
    """One request: the key it carries, the service it calls, and the response whose ETag it
    sets."""

    principal: Principal
    service: ApplicationsService
    response: Response
    authorization: str

    @property
    def registry(self) -> UnitRegistry:
        return self.service.registry

    def answer(self, application: Application) -> ApplicationOut:
        """The application, its version as the ETag."""
        self.response.headers["ETag"] = etag(application.version)
        return ApplicationOut.of(application, self.registry)

    async def decided(
        self, application_id: UUID, *, body: ReviewIn | AwardIn, if_match: str | None
    ) -> ApplicationOut:
        application = await self.service.deciding.decide(
            principal=self.principal, application_id=application_id, if_match=if_match, body=body
        )
        return self.answer(application)


async def call_of(principal: PrincipalDep, request: Request, response: Response) -> Call:
    return Call(
        principal,
        request.app.state.applications,
        response,
        authorization=request.headers.get("authorization", ""),
    )


CallDep = Annotated[Call, Depends(call_of)]


@router.post(
    "/applications",
    status_code=201,
    response_model=ApplicationOut,
    responses={
        404: {"description": "`county_code` names no unit of the registry"},
        409: CHANGE_RESPONSES[409],
    },
    summary="Create a county's application (申报) as a draft",
    description="County bureau only, within the campaign's application window (409 outside "
    "it, with the window). Each unit with its self-evaluation (自评) and rectifications "
    "(整改). Units unknown, outside the county, of no campaign level or listed twice: 422; "
    "not eligible now (not three-no for the period; with its counting event ids) or already "
    "in a live application for the period: 409. Every refused unit is named in `errors` with "
    "why, and nothing is stored. The ETag is the version to send as If-Match next.",
    operation_id="createApplication",
)
async def create_application(body: ApplicationIn, call: CallDep) -> ApplicationOut:
    return call.answer(await call.service.applying.create(principal=call.principal, body=body))


@router.post(
    "/applications/{application_id}/submit",
    response_model=ApplicationOut,
    responses=CHANGE_RESPONSES,
    summary="Submit a draft to the city (draft -> submitted), evidence snapshotted per unit",
    description="County bureau only, within the application window. Each unit is checked "
    "again (still eligible, in no other live application) and its evidence is kept: the "
    "status (version, counts per criterion), the self-evaluation and rectifications, and the "
    "meeting cadence and satisfaction (null while not known to this service), and the case "
    "rates of the period as the cases service reports them, asked with the caller's key (503 "
    "with nothing stored when it does not answer).",
    operation_id="submitApplication",
)
async def submit_application(
    application_id: UUID, request: Request, call: CallDep, if_match: IfMatch = None
) -> ApplicationOut:
    case_rates: CaseRatesSource = request.app.state.case_rates
    application = await call.service.applying.submit(
        principal=call.principal,
        application_id=application_id,
        if_match=if_match,
        case_rates=case_rates.on_behalf_of(call.authorization),
    )
    return call.answer(application)


def decisions_route(
    model: type[ReviewIn | AwardIn],
    *,
    path: str,
    summary: str,
    description: str,
    operation_id: str,
) -> None:
    """The route of one stage's decisions on an application's units (the city's review, the
    province's award): the same but for the body it takes."""

    async def decide(
        application_id: UUID,
        body: model,  # type: ignore[valid-type]
        call: CallDep,
        if_match: IfMatch = None,
    ) -> ApplicationOut:
        return await call.decided(application_id, body=body, if_match=if_match)

    router.post(
        path,
        response_model=ApplicationOut,
        responses=CHANGE_RESPONSES,
        summary=summary,
        description=description,
        operation_id=operation_id,
    )(decide)


decisions_route(
    ReviewIn,
    path="/applications/{application_id}/review",
    summary="The city's initial review (初审): approve or return each submitted unit",
    description="City bureau over the application's county only. Approved units become "
    "`recommended` (推荐) to the province; returned units (a reason is required) leave the "
    "application. A flagged unit cannot be approved (409). Units may be reviewed over several "
    "calls; the application is `reviewed` once no unit awaits review.",
    operation_id="reviewApplication",
)
decisions_route(
    AwardIn,
    path="/applications/{application_id}/award",
    summary="The province's decision (命名): award or reject each recommended unit",
    description="Province bureau only. Awarded units hold the title for the period; a "
    "rejection needs a reason. A flagged unit cannot be awarded (409). The application is "
    "`decided` once no unit awaits a decision.",
    operation_id="awardApplication",
)


@router.get(
    "/applications",
    response_model=ApplicationListOut,
    responses=UNKNOWN_ROOT,
    summary="Applications of the counties under the root",
    description="Readers and bureaus in their scope. Filter by period and state.",
    operation_id="listApplications",
)
async def list_applications(
    call: CallDep,
    root: Root = None,
    period: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=PERIOD_PATTERN)
    ] = None,
    state: ApplicationState | None = None,
) -> ApplicationListOut:
    found = await call.service.reads.find(
        principal=call.principal, root=root, period=period, state=state
    )
    return ApplicationListOut(items=[ApplicationOut.of(a, call.registry) for a in found])


@router.get(
    "/applications/{application_id}",
    response_model=ApplicationOut,
    responses={404: CHANGE_RESPONSES[404]},
    summary="An application: its units, their states, evidence and flags",
    description="Readers and bureaus whose scope covers the application's county. The ETag "
    "is the version to send as If-Match.",
    operation_id="getApplication",
)
async def get_application(application_id: UUID, call: CallDep) -> ApplicationOut:
    application = await call.service.reads.get(
        principal=call.principal, application_id=application_id
    )
    return call.answer(application)


@router.get(
    "/applications/{application_id}/history",
    response_model=HistoryOut,
    responses={404: CHANGE_RESPONSES[404]},
    summary="Every step of the application, oldest first: who, when and why",
    description="Kept forever. `key_id`, `role` and `scope_code` are null for the service's "
    "own steps (a unit flagged or its flag cleared by a status change).",
    operation_id="getApplicationHistory",
)
async def get_history(application_id: UUID, call: CallDep) -> HistoryOut:
    reads = call.service.reads
    steps = await reads.history(principal=call.principal, application_id=application_id)
    return HistoryOut(items=[StepOut.of(s) for s in steps])


@router.get(
    "/applications/{application_id}/materials",
    response_class=Response,
    responses={
        200: {
            "description": "The 申报材料 as a file",
            "content": {XLSX_MEDIA_TYPE: {}, PDF_MEDIA_TYPE: {}},
        },
        404: CHANGE_RESPONSES[404],
    },
    summary="The application materials (申报材料), in Chinese, as XLSX or PDF",
    description="The application, each unit with its self-evaluation, rectifications, "
    "evidence and flag, and every step so far. Readers and bureaus whose scope covers the "
    "application's county. Rendered once per version of the application and its history "
    "(and kept by each instance); sent with `Cache-Control: no-store`.",
    operation_id="getApplicationMaterials",
)
async def get_materials(
    application_id: UUID,
    call: CallDep,
    request: Request,
    file_format: Annotated[
        Literal["xlsx", "pdf"], Query(alias="format", description="The file's format")
    ] = "pdf",
) -> Response:
    reads = call.service.reads
    application = await reads.get(principal=call.principal, application_id=application_id)
    steps = await reads.history(principal=call.principal, application_id=application_id)
    materials = Materials(application, steps, call.registry, made_at=call.service.clock())
    files: MaterialFiles = request.app.state.material_files
    file = await files.get(materials, file_format=file_format)
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.name)}",
        # What a county wrote about its units: kept by no cache on the way or in the browser.
        "Cache-Control": "no-store",
    }
    return Response(file.content, media_type=file.media_type, headers=headers)


@router.get(
    "/titles",
    response_model=TitlesOut,
    responses=UNKNOWN_ROOT,
    summary="Title holders under the root for a period: held, at_risk or revoked",
    description="Every awarded unit: `held`, or `at_risk` while it is flagged (not three-no "
    "for the period since the award); revoked ones (摘牌) as `revoked` with the reason.",
    operation_id="listTitles",
)
async def list_titles(period: PeriodQuery, call: CallDep, root: Root = None) -> TitlesOut:
    titles = await call.service.reads.titles(principal=call.principal, root=root, period=period)
    return TitlesOut(items=[TitleOut.of(t, call.registry) for t in titles])


@router.post(
    "/titles/{code}/{period}/revoke",
    response_model=TitleOut,
    responses={
        404: {"description": "The unit holds no title for the period"},
        409: {"description": "The title is already revoked"},
        412: CHANGE_RESPONSES[412],
        428: CHANGE_RESPONSES[428],
    },
    summary="Revoke a title (摘牌), with a reason",
    description="Province bureau only; If-Match with the version of the application the "
    "title was awarded in (`version` in the title list).",
    operation_id="revokeTitle",
)
async def revoke_title(
    code: Annotated[str, Path(pattern=CODE_PATTERN)],
    period: Annotated[str, Path(min_length=1, max_length=64, pattern=PERIOD_PATTERN)],
    body: RevokeIn,
    call: CallDep,
    if_match: IfMatch = None,
) -> TitleOut:
    title = await call.service.deciding.revoke(
        principal=call.principal, code=code, period=period, if_match=if_match, reason=body.reason
    )
    call.response.headers["ETag"] = etag(title.version)
    return TitleOut.of(title, call.registry)


@router.get(
    "/feed/applications",
    response_model=FeedPageOut,
    responses=UNKNOWN_ROOT,
    summary="Every step under the root, in the order the steps were made",
    description="For city and province systems that pull: pass `next_cursor` back as `since`; "
    "no step is skipped or repeated, also while steps keep being made and across restarts. "
    "An empty `since` starts from the beginning.",
    operation_id="getApplicationSteps",
)
async def get_feed(
    call: CallDep,
    root: Root = None,
    since: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous pull")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Steps per pull")] = 100,
) -> FeedPageOut:
    steps, cursor = await call.service.reads.feed(
        principal=call.principal, root=root, since=since, limit=limit
    )
    return FeedPageOut(items=[StepOut.of(s) for s in steps], next_cursor=cursor)
