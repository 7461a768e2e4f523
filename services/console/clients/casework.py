"""What the 信访事项 pages read from the cases service, and what they ask of it (docs/api.md,
"Cases service"). A registration carries the case id chosen when its form was opened, so a
second submit registers once; every step sends the version the page was read at as If-Match,
so a second submit of a step acts once (the service answers the stale version 412)."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from services.console.clients.http import Answer, ServiceClient
from services.console.sessions import Session
from shared.errors import PreconditionFailed

# A queue or list is read a page (100 cases) at a time; past this many pages it is cut.
MAX_PAGES = 20
# The clocks a unit or body must answer: the others are the petitioner's windows.
DUTIES = frozenset({"route", "accept", "reply", "review"})


class CaseClock(Answer):
    name: str
    started: date
    due: date | None
    due_reason: str | None = None
    state: str  # running, met, late, overdue, lapsed
    done_at: datetime | None = None
    days_left: int | None = None
    due_soon: bool = False

    @property
    def is_duty(self) -> bool:
        return self.name in DUTIES

    @property
    def pending(self) -> bool:
        return self.state in ("running", "overdue")


class CaseStep(Answer):
    version: int
    action: str
    at: datetime
    recorded_at: datetime
    key_id: str
    role: str
    scope_code: str | None
    body: str | None
    reason: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Owner(Answer):
    unit_code: str
    body: str | None


class Case(Answer):
    case_id: UUID
    unit_code: str
    first_receiver: str
    owner: Owner
    received_at: datetime
    channel: str
    category: str
    headcount: int
    state: str
    repeat_of: UUID | None
    reviews: int
    rating: str | None
    summary: str | None  # none for keys that may not read it
    clocks: list[CaseClock]
    version: int
    registered_at: datetime
    changed_at: datetime
    steps: list[CaseStep] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)  # the steps the key may take now

    @property
    def duty(self) -> CaseClock | None:
        """The duty clock still to be answered (the last one started), if any."""
        return next((c for c in reversed(self.clocks) if c.is_duty and c.pending), None)

    @property
    def overdue(self) -> list[CaseClock]:
        return [c for c in self.clocks if c.is_duty and c.state == "overdue"]


class CaseList(Answer):
    cases: list[Case]
    next_cursor: str | None


class Rate(Answer):
    numerator: int
    denominator: int
    rate: float | None
    not_yet_due: int


class UnitRates(Answer):
    unit_code: str
    name: str
    level: str
    rates: dict[str, Rate]


class CaseRates(Answer):
    root: str
    name: str
    period: str
    starts_at: datetime
    ends_at: datetime
    rates: dict[str, Rate]
    children: list[UnitRates] = Field(default_factory=list)


class CaseworkClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def register(self, session: Session, registration: dict[str, Any]) -> Case:
        """The case registered; the same case id with the same content gives it again."""
        response = await self.http.send("POST", "/v1/cases", session=session, json=registration)
        return Case.model_validate_json(response.content)

    async def case(self, session: Session, case_id: str | UUID) -> Case:
        """The case with its clocks and every step, oldest first."""
        return await self.http.get(f"/v1/cases/{case_id}", Case, session=session)

    async def listing(
        self, session: Session, *, root: str | None, overdue: bool = False
    ) -> list[Case]:
        """The cases under the root (a handler key: those with its body), oldest first."""
        found: list[Case] = []
        params: dict[str, Any] = {"root": root, "overdue": "true" if overdue else None}
        for _ in range(MAX_PAGES):
            page = await self.http.get("/v1/cases", CaseList, session=session, params=params)
            found.extend(page.cases)
            if page.next_cursor is None:
                break
            params["cursor"] = page.next_cursor
        return found

    async def act(
        self,
        session: Session,
        *,
        case_id: str | UUID,
        step: str,
        version: str,
        body: dict[str, Any],
    ) -> Case:
        """A step (`route`, `accept` … or `steps` for a note) at the page's version."""
        # The page's version, as the service gave it: ASCII digits. Anything else (a form
        # altered) names no version of the case.
        if not (version.isascii() and version.isdigit()):
            raise PreconditionFailed(f"the form names no version of this case: {version!r}")
        response = await self.http.send(
            "POST",
            f"/v1/cases/{case_id}/{step}",
            session=session,
            json=body,
            headers={"If-Match": f'"{version}"'},
        )
        return Case.model_validate_json(response.content)

    async def rates(self, session: Session, *, root: str, period: str) -> CaseRates:
        params = {"root": root, "period": period}
        return await self.http.get(
            "/v1/reports/case-rates", CaseRates, session=session, params=params
        )
