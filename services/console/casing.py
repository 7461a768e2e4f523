"""The 信访事项 pages' reading and acting: the desk's registration, a handling body's queue,
the cases under a unit, the overdue ones a bureau may supervise, each case with the forms of
the steps the key may take, and the case rates, through the cases service with the signed-in
user's key. The service decides who may take a step, and says which ones the key may take now:
the pages offer exactly those forms (docs/domain.md section 11)."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.console.clients.casework import Case, CaseRates, CaseworkClient
from services.console.service import ConsoleService
from services.console.sessions import Session

# A case none of whose duties is running sorts after those with one.
NO_DUTY = 10**6


@dataclass(frozen=True)
class Signed:
    """Who is acting: the session, and for a handler key the body it is of."""

    session: Session
    body: str | None = None

    @property
    def role(self) -> str:
        return self.session.role


def days_left(case: Case) -> int:
    """Days left on the duty clock still running (negative: overdue)."""
    duty = case.duty
    return NO_DUTY if duty is None or duty.days_left is None else duty.days_left


def by_days_left(cases: list[Case]) -> list[Case]:
    return sorted(cases, key=lambda c: (days_left(c), c.received_at))


class Casing:
    def __init__(self, console: ConsoleService, cases: CaseworkClient) -> None:
        self.console = console
        self.cases = cases

    async def register(self, session: Session, registration: dict[str, Any]) -> Case:
        """The case registered; a form sent again after it went through finds it registered
        (the service gives the same case id with the same content once more)."""
        return await self.cases.register(session, registration)

    async def listing(self, signed: Signed, *, root: str | None) -> list[Case]:
        """A handler's queue (the cases with its body now), or the cases under the root; the
        fewest days left first."""
        if signed.role == "handler":
            found = await self.cases.listing(signed.session, root=None)
            return by_days_left([c for c in found if self.handles(signed, c)])
        return by_days_left(await self.cases.listing(signed.session, root=root))

    async def overdue(self, session: Session, *, root: str) -> list[Case]:
        return by_days_left(await self.cases.listing(session, root=root, overdue=True))

    async def case(self, session: Session, case_id: str | UUID) -> Case:
        return await self.cases.case(session, case_id)

    async def act(
        self, session: Session, *, case_id: UUID, step: str, version: str, body: dict[str, Any]
    ) -> Case:
        return await self.cases.act(session, case_id=case_id, step=step, version=version, body=body)

    async def rates(self, session: Session, *, root: str, period: str) -> CaseRates:
        return await self.cases.rates(session, root=root, period=period)

    @staticmethod
    def offered(case: Case) -> list[str]:
        """The steps whose forms the page shows: those the service says the key may take."""
        return case.actions

    @staticmethod
    def handles(signed: Signed, case: Case) -> bool:
        """The case is with this key's body now."""
        return (
            signed.role == "handler"
            and signed.body is not None
            and (case.owner.unit_code, case.owner.body) == (signed.session.scope_code, signed.body)
        )
