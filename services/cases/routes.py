"""The cases service's API: parse, authorise, call the service, render."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from services.cases.schemas import CalendarDayOut, CalendarYearOut
from shared.calendar.store import calendar_year
from shared.web import PrincipalDep

router = APIRouter(prefix="/v1", tags=["calendar"])

NOT_LOADED: dict[int | str, dict[str, Any]] = {
    404: {"description": "The calendar does not cover the year (it is never guessed)"}
}


@router.get(
    "/calendar/{year}",
    operation_id="getCalendarYear",
    response_model=CalendarYearOut,
    responses=NOT_LOADED,
    summary="The working-day calendar of a year",
    description="The days of the year that differ from Monday to Friday's rule: statutory "
    "days off and make-up working days (调休上班), each with where it came from (the holiday "
    "package or a local file loaded with `sanwu calendar load`), and the number of working "
    "days. Any key may read it. 404 for a year not loaded: deadlines that reach into it are "
    "not computable until it is.",
)
async def get_calendar_year(
    request: Request,
    principal: PrincipalDep,
    year: Annotated[int, Path(ge=1900, le=2200)],
) -> CalendarYearOut:
    found = await calendar_year(request.app.state.db, year)

    def listed(working: bool) -> list[CalendarDayOut]:
        return [
            CalendarDayOut(date=day.day, name=day.name, source=day.source)
            for day in found.days
            if day.working is working
        ]

    return CalendarYearOut(
        year=year,
        source=found.year.source,
        loaded_at=found.year.loaded_at,
        working_days=found.working_days,
        days_off=listed(False),
        make_up_working_days=listed(True),
    )
