"""What the pages read from reporting: the summary against the targets, a unit's status and
indicators, the eligible and not-eligible lists, and the warnings feed."""

from datetime import date, datetime
from typing import Any, Generic, TypeVar

from services.console.clients.http import Answer, Download, ServiceClient
from services.console.sessions import Session
from shared.cadence import Cadence
from shared.levels import Level

LIST_PAGE = 1000


class Unit(Answer):
    code: str
    name: str
    level: Level
    parent_code: str | None


class Criteria(Answer):
    """One figure per criterion: batches (批次), people (人次) or events, as the field says."""

    skip_level: int
    non_reception_site: int
    collective: int
    incident: int


class LevelFigures(Answer):
    total: int
    three_no: int
    ratio: float | None
    target: float | None
    target_met: bool | None
    cadence_kept: int = 0
    ratings: int = 0
    satisfaction_rate: float | None = None


class ChildSummary(Answer):
    unit: Unit
    levels: dict[Level, LevelFigures]


class Summary(Answer):
    levels: dict[Level, LevelFigures]
    children: list[ChildSummary]
    open_warnings: int
    last_changed_at: datetime | None


class UnitStatus(Answer):
    three_no: bool
    counts: Criteria
    counting_event_ids: list[str]
    changed_at: datetime | None


class Meetings(Answer):
    cadence: Cadence
    required: int
    held: int
    missed: list[date]
    compliance: float | None


class Ratings(Answer):
    total: int
    rate: float | None


class Satisfaction(Answer):
    total: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    rate: float | None
    by_source: dict[str, Ratings]


class Indicators(Answer):
    meetings: Meetings
    satisfaction: Satisfaction


class NotEligibleUnit(Answer):
    code: str
    name: str
    parent_name: str | None
    counts: Criteria  # batches (批次)
    people: Criteria  # people (人次)


class WarningDetail(Answer):
    """What each kind of warning says of itself (near_threshold, repeat_petitioner, rising)."""

    headcount: int | None = None
    destination: str | None = None
    counted_from: int | None = None
    visits: int | None = None
    days: int | None = None
    recent: int | None = None
    recent_days: int | None = None
    baseline: int | None = None
    baseline_days: int | None = None


class EarlyWarning(Answer):
    warning_id: str
    kind: str
    unit_code: str
    raised_at: datetime
    cleared_at: datetime | None
    event_ids: list[str]
    detail: WarningDetail
    version: int


ItemT = TypeVar("ItemT", bound=Answer)


class ListPage(Answer, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None


class WarningPage(Answer):
    items: list[EarlyWarning]
    next_cursor: str


class ReportingClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def summary(self, session: Session, *, root: str, period: str) -> Summary:
        params = {"root": root, "period": period}
        return await self.http.get("/v1/reports/summary", Summary, session=session, params=params)

    async def status(self, session: Session, *, code: str, period: str) -> UnitStatus:
        path = f"/v1/units/{code}/status"
        return await self.http.get(path, UnitStatus, session=session, params={"period": period})

    async def indicators(self, session: Session, *, code: str, period: str) -> Indicators:
        path = f"/v1/units/{code}/indicators"
        return await self.http.get(path, Indicators, session=session, params={"period": period})

    async def eligible(self, session: Session, *, root: str, period: str, level: str) -> list[Unit]:
        """Every unit of the level under the root that may apply, in unit-code order."""
        params = {"root": root, "period": period, "level": level}
        return await self._every_page(
            "/v1/reports/eligible", ListPage[Unit], session=session, params=params
        )

    async def not_eligible(
        self, session: Session, *, root: str, period: str, level: str
    ) -> list[NotEligibleUnit]:
        """Every unit of the level under the root that may not apply, with its counts."""
        params = {"root": root, "period": period, "level": level}
        return await self._every_page(
            "/v1/reports/not-eligible", ListPage[NotEligibleUnit], session=session, params=params
        )

    async def eligible_file(
        self, session: Session, *, root: str, period: str, level: str, file_format: str
    ) -> Download:
        params = {"root": root, "period": period, "level": level, "format": file_format}
        return await self.http.download("/v1/reports/eligible", session=session, params=params)

    async def warnings(
        self, session: Session, *, root: str, since: str | None, limit: int
    ) -> WarningPage:
        """A page of the warnings raised or cleared under the root after `since`."""
        params = {"root": root, "since": since, "limit": limit}
        return await self.http.get("/v1/warnings", WarningPage, session=session, params=params)

    async def _every_page(
        self,
        path: str,
        page: type[ListPage[ItemT]],
        *,
        session: Session,
        params: dict[str, Any],
    ) -> list[ItemT]:
        items: list[ItemT] = []
        cursor = None
        while True:
            read = await self.http.get(
                path, page, session=session, params=params | {"cursor": cursor, "limit": LIST_PAGE}
            )
            items += read.items
            cursor = read.next_cursor
            if cursor is None:
                return items
