from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from services.reporting import exports
from services.reporting.cache import Rendered
from services.reporting.schemas import (
    EligiblePageOut,
    FeedPageOut,
    IndicatorsOut,
    NotEligiblePageOut,
    SummaryOut,
    UnitStatusOut,
    WarningPageOut,
)
from services.reporting.service import ReportingService
from shared.early_warning import WarningKind
from shared.levels import Level
from shared.query_text import QueryText
from shared.web import PrincipalDep, get_principal

router = APIRouter(prefix="/v1", tags=["reporting"])
NOT_MODIFIED: dict[str, Any] = {"description": "Not modified: the If-None-Match ETag is current"}
# 401, 403, 422 and the rest are documented for every route by shared.problems.
NOT_FOUND: dict[str, Any] = {"description": "Unknown unit or period"}


class CampaignLevel(StrEnum):
    county = "county"
    township = "township"
    village = "village"


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


def reporting(request: Request) -> ReportingService:
    # From app state rather than a dependency: one less to resolve on every read.
    service: ReportingService = request.app.state.reporting
    return service


CODE_PATTERN = r"^[0-9]{12}$"
Root = Annotated[
    str, Query(pattern=CODE_PATTERN, description="A unit code: the subtree to report on")
]
PERIOD = QueryText(
    "period",
    "A period of the campaign (e.g. `2018`), or `rolling`",
    min_length=1,
    max_length=64,
    examples=("2018",),
)
STATUS_CODE = QueryText(
    "code", "A county, township or village", pattern=CODE_PATTERN, location="path"
)
SUMMARY_ROOT = QueryText(
    "root",
    "A unit code: the subtree to report on; without it, the key's scope (for a national key, "
    "the nation, with the provinces as its children)",
    required=False,
    pattern=CODE_PATTERN,
)
PeriodId = Annotated[
    str,
    Query(
        min_length=PERIOD.min_length,
        max_length=PERIOD.max_length,
        description=PERIOD.description,
        examples=list(PERIOD.examples),
    ),
]
# If-None-Match is read from the request in `with_etag` (a declared header parameter costs its
# resolution on every read) and documented here instead.
CONDITIONAL: dict[str, Any] = {
    "parameters": [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "An ETag from an earlier response",
        }
    ]
}
# The parameters of a paged list of units (eligible or not).
ListedLevel = Annotated[CampaignLevel, Query(description="The level of the units listed")]
PageCursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` of the previous page")
]
PageLimit = Annotated[int, Query(ge=1, le=1000, description="Units per page")]


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def with_etag(rendered: Rendered, request: Request) -> Response:
    """A client that holds the current ETag gets a 304 without a body."""
    headers = {"ETag": rendered.etag, "Cache-Control": "private, no-cache"}
    if etag_matches(request.headers.get("if-none-match"), rendered.etag):
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type="application/json", headers=headers)


@router.get(
    "/units/{code}/status",
    response_model=UnitStatusOut,
    responses={304: NOT_MODIFIED, 404: NOT_FOUND},
    openapi_extra={
        "parameters": [STATUS_CODE.documented(), PERIOD.documented(), *CONDITIONAL["parameters"]]
    },
    summary="A unit's three-no status for a period, with counts and the counting events",
    description="For a county, township or village the key may read. A unit no counting "
    "event touched is three-no at version 0. The ETag lets a client poll with "
    "If-None-Match and get 304 while nothing changed.",
    operation_id="getUnitStatus",
)
async def get_status(request: Request) -> Response:
    # Read here rather than declared (see QueryText), the key first as a dependency was.
    principal = await get_principal(request)
    code, period = STATUS_CODE.value(request), PERIOD.value(request)
    assert code is not None and period is not None
    service = reporting(request)
    return with_etag(await service.status(principal=principal, code=code, period=period), request)


@router.get(
    "/reports/summary",
    response_model=SummaryOut,
    responses={304: NOT_MODIFIED, 404: NOT_FOUND},
    openapi_extra={
        "parameters": [PERIOD.documented(), SUMMARY_ROOT.documented(), *CONDITIONAL["parameters"]]
    },
    summary="Three-no units against the campaign targets, per level and per direct child",
    description="For each campaign level at and under the root: how many units there are, "
    "how many are three-no, the ratio and whether the campaign's target is met; the same per "
    "direct child of the root. A level with no units under the root (a city without "
    "counties has none at county level) has a total of 0 and no ratio. Each level also says "
    "how many of its units keep their meeting cadence as of today (`cadence_kept`: no slot "
    "ended without a meeting) and the satisfaction rate of their ratings "
    "(`ratings`, `satisfaction_rate`). Without a root, the summary is of the key's scope; a "
    "national key gets the nation, whose `root` is null.",
    operation_id="getSummary",
)
async def get_summary(request: Request) -> Response:
    # Read here rather than declared (see QueryText), the key first as a dependency was.
    principal = await get_principal(request)
    period = PERIOD.value(request)
    root = SUMMARY_ROOT.value(request)
    assert period is not None
    service = reporting(request)
    summary = await service.summary(principal=principal, root=root, period=period)
    return with_etag(summary, request)


@router.get(
    "/reports/eligible",
    response_model=EligiblePageOut,
    responses={
        200: {
            "description": "A page of eligible units, or with `format` the whole list as a file",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                exports.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        304: NOT_MODIFIED,
        404: NOT_FOUND,
    },
    openapi_extra=CONDITIONAL,
    summary="Units of a level under the root that are eligible to apply (three-no now)",
    description="Pages in unit-code order: pass `next_cursor` back as `cursor` for the next "
    "page. With `format=csv` or `format=xlsx`, the whole list as a file, with the units that "
    "are not eligible and why. A page's ETag lets a client poll with If-None-Match and get "
    "304 while nothing changed.",
    operation_id="getEligibleUnits",
)
async def get_eligible(
    root: Root,
    period: PeriodId,
    level: ListedLevel,
    principal: PrincipalDep,
    request: Request,
    cursor: PageCursor = None,
    limit: PageLimit = 100,
    file_format: Annotated[
        ExportFormat,
        Query(alias="format", description="`csv` or `xlsx`: the whole list as a file"),
    ] = ExportFormat.json,
) -> Response:
    service = reporting(request)
    if file_format is ExportFormat.json:
        page = await service.eligible_page(
            principal=principal,
            root=root,
            period=period,
            level=Level(level.value),
            cursor=cursor,
            limit=limit,
        )
        return with_etag(page, request)
    csv = file_format is ExportFormat.csv
    write = exports.to_csv if csv else exports.to_xlsx
    content = await service.export(
        principal=principal,
        root=root,
        period=period,
        level=Level(level.value),
        file_format=file_format.value,
        render=lambda report: write(report, service.registry),
    )
    media_type = exports.CSV_MEDIA_TYPE if csv else exports.XLSX_MEDIA_TYPE
    name = exports.filename(root, period, Level(level.value), file_format.value)
    return Response(
        content,
        media_type=media_type,
        # A file of units and their records: kept by no cache on the way or in the browser.
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/reports/not-eligible",
    response_model=NotEligiblePageOut,
    responses={304: NOT_MODIFIED, 404: NOT_FOUND},
    openapi_extra=CONDITIONAL,
    summary="Units of a level under the root that are not eligible, with their counts",
    description="The units that are not three-no now, each with its counting batches and "
    "people per criterion and the counting events: what the file of the eligible list shows "
    "on its sheet of units that are not eligible. Pages in unit-code order: pass "
    "`next_cursor` back as `cursor` for the next page. A page's ETag lets a client poll with "
    "If-None-Match and get 304 while nothing changed.",
    operation_id="getNotEligibleUnits",
)
async def get_not_eligible(
    root: Root,
    period: PeriodId,
    level: ListedLevel,
    principal: PrincipalDep,
    request: Request,
    cursor: PageCursor = None,
    limit: PageLimit = 100,
) -> Response:
    page = await reporting(request).not_eligible_page(
        principal=principal,
        root=root,
        period=period,
        level=Level(level.value),
        cursor=cursor,
        limit=limit,
    )
    return with_etag(page, request)


@router.get(
    "/feed/status-changes",
    response_model=FeedPageOut,
    responses={404: NOT_FOUND},
    summary="Status changes under the root in the order reporting applied them",
    description="Pull again with `since` set to `next_cursor`: no change is skipped or "
    "repeated, also while changes keep arriving and across restarts. An empty `since` "
    "starts from the beginning.",
    operation_id="getStatusChanges",
)
async def get_feed(
    root: Root,
    principal: PrincipalDep,
    request: Request,
    since: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous pull")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Changes per pull")] = 100,
) -> FeedPageOut:
    service = reporting(request)
    return await service.feed(principal=principal, root=root, since=since, limit=limit)


@router.get(
    "/units/{code}/indicators",
    response_model=IndicatorsOut,
    responses={404: NOT_FOUND},
    summary="A unit's work records for a period: meeting cadence and satisfaction",
    description="Meetings: the cadence of the unit's level (village: ISO week, township: "
    "half-month, county: month, per the campaign), the slots that started in the period up to "
    "today (Asia/Shanghai) as `required`, those that ended with a meeting of the unit's own as "
    "`held`, those that ended without one as `missed` (their first days), the slot running "
    "today as `open` (neither held nor missed), and `compliance` = held / (held + missed). "
    "For `rolling`, the slots that start from the day after the window's start (today minus "
    "12 months) to today. Satisfaction: the ratings of the unit and its descendants whose "
    "events fall in the period, with the rate (satisfied and basically satisfied over all; "
    "null when there are none), in all and per source. A unit evaluation published nothing "
    "for has every ended slot missed and no ratings (version 0).",
    operation_id="getUnitIndicators",
)
async def get_indicators(
    code: Annotated[str, Path(pattern=CODE_PATTERN, description="A county, township or village")],
    period: PeriodId,
    principal: PrincipalDep,
    request: Request,
) -> IndicatorsOut:
    service = reporting(request)
    return await service.indicators(principal=principal, code=code, period=period)


@router.get(
    "/warnings",
    response_model=WarningPageOut,
    responses={404: NOT_FOUND},
    summary="Early warnings under the root, in the order they were raised or cleared",
    description="Each item is one version of a warning: raised (`cleared_at` null) or "
    "cleared (`cleared_at` set); a warning raised and later cleared appears twice. Pull again "
    "with `since` set to `next_cursor`: no item is skipped or repeated, also while warnings "
    "keep arriving and across restarts. An empty `since` starts from the beginning; `kind` "
    "keeps one kind of warning.",
    operation_id="getWarnings",
)
async def get_warnings(
    root: Root,
    principal: PrincipalDep,
    request: Request,
    since: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous pull")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Warnings per pull")] = 100,
    kind: Annotated[WarningKind | None, Query(description="Only warnings of this kind")] = None,
) -> WarningPageOut:
    service = reporting(request)
    return await service.warnings(
        principal=principal, root=root, since=since, limit=limit, kind=kind
    )
