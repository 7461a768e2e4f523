"""The 异议 pages' reading and acting: a counted event disputed by its unit's side, the disputes
waiting for a bureau, and each dispute's page with what the key may do there, through the
cases service with the signed-in user's key. The service decides who may act; the pages only
offer each key the forms its side has (docs/api.md, "Cases service")."""

import asyncio
from typing import Any
from uuid import UUID

from services.console.clients.cases import Dispute
from services.console.service import ConsoleService
from services.console.sessions import Session
from services.console.views import DisputePage, DisputesPage
from shared.errors import NotFound, StateConflict
from shared.levels import Level

# The bureau that reviews a decision: the next one up from the deciding bureau.
REVIEWER_LEVEL = {Level.county: Level.city, Level.city: Level.province}
# Who may file, withdraw or ask for review for their side.
# What a page may ask of a dispute, and whether the form is a ruling (with a decision).
ACTIONS = {"decide": True, "review": True, "withdraw": False, "review-request": False}


class Disputing:
    def __init__(self, console: ConsoleService) -> None:
        self.console = console
        self.cases = console.clients.cases

    async def listing(self, session: Session, *, root: str) -> DisputesPage:
        """Every dispute under the root; for a bureau, also those waiting for it."""
        if session.role not in ("bureau", "admin"):
            every = await self.cases.listing(session, root=root)
            return DisputesPage(waiting=[], disputes=_last_changed_first(every))
        waiting, every = await asyncio.gather(
            self.cases.waiting(session, root=root), self.cases.listing(session, root=root)
        )
        mine = [d for d in waiting if self._rules_on(session, d)]
        return DisputesPage(waiting=mine, disputes=_last_changed_first(every))

    async def dispute(self, session: Session, dispute_id: str | UUID) -> DisputePage:
        found = await self.cases.dispute(session, dispute_id)
        return DisputePage(dispute=found, actions=list(found.actions))

    async def file(self, session: Session, filing: dict[str, Any]) -> Dispute:
        """The dispute filed; a form sent again after it went through finds it filed (the
        service refuses its dispute id twice) and acts no more."""
        try:
            return await self.cases.file(session, filing)
        except StateConflict:
            already = await self._filed_before(session, filing)
            if already is None:
                raise
            return already

    async def act(
        self, session: Session, *, dispute_id: UUID, action: str, version: str, body: dict[str, Any]
    ) -> Dispute:
        return await self.cases.act(
            session, dispute_id=dispute_id, action=action, version=version, body=body
        )

    def reviewer_of(self, dispute: Dispute) -> str | None:
        """The bureau above the deciding one: the city above a county, the province above a
        city."""
        registry = self.console.registry
        decider = registry.get_cached(dispute.decider_code)
        wanted = REVIEWER_LEVEL.get(decider.level) if decider else None
        reviewer = registry.ancestor_at(dispute.decider_code, wanted) if wanted else None
        return reviewer.code if reviewer else None

    def _rules_on(self, session: Session, dispute: Dispute) -> bool:
        """Whether the dispute waits for this key's bureau: to decide, or to review."""
        if dispute.state == "filed":
            return self._is_bureau_of(session, dispute.decider_code)
        return self._is_bureau_of(session, self.reviewer_of(dispute))

    @staticmethod
    def _is_bureau_of(session: Session, unit_code: str | None) -> bool:
        if session.role == "admin":
            return True
        return (
            session.role == "bureau" and unit_code is not None and session.scope_code == unit_code
        )

    async def _filed_before(self, session: Session, filing: dict[str, Any]) -> Dispute | None:
        try:
            found = await self.cases.dispute(session, filing["dispute_id"])
        except NotFound:
            return None
        return found if str(found.event_id) == str(filing["event_id"]) else None


def _last_changed_first(disputes: list[Dispute]) -> list[Dispute]:
    return sorted(disputes, key=lambda d: d.changed_at, reverse=True)
