"""What the 异议 pages read from the cases service, and what they ask of it (docs/api.md, "Cases
service"). Every change but the filing sends the version the page was read at as If-Match, so
a second submit of the same form acts once: the service answers the stale version 412. A
filing carries the dispute id chosen when its form was opened, so it too is filed once."""

import asyncio
from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from services.console.clients.http import Answer, ServiceClient
from services.console.sessions import Session
from shared.errors import PreconditionFailed

# The states a dispute waits in for a bureau: to be decided, and to be reviewed.
WAITING = ("filed", "review_requested")


class Ruling(Answer):
    """A decision or a review: what, why, by which bureau and when."""

    decision: str
    new_unit: str | None = None
    reason: str
    by: str
    at: datetime


class StepDetail(Answer):
    """A decision's or a review's ruling; nothing for the other steps."""

    decision: str | None = None
    new_unit: str | None = None


class DisputeStep(Answer):
    version: int
    action: str
    at: datetime
    key_id: str
    role: str
    scope_code: str | None
    reason: str
    detail: StepDetail = StepDetail()


class Dispute(Answer):
    dispute_id: UUID
    event_id: UUID
    unit_code: str
    grounds: str
    proposed_unit: str | None
    duplicate_of: UUID | None
    statement: str
    state: str
    decider_code: str
    decision: Ruling | None
    review: Ruling | None
    dispute_until: date | None
    review_request_until: date | None
    version: int
    filed_at: datetime
    changed_at: datetime
    steps: list[DisputeStep] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)  # what the key may do now, says cases

    @property
    def filer_scope(self) -> str | None:
        """The scope of the key that filed it (the filer's side)."""
        filed = next((s for s in self.steps if s.action == "filed"), None)
        return filed.scope_code if filed else None


class Disputes(Answer):
    disputes: list[Dispute]


class CasesClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def file(self, session: Session, filing: dict[str, Any]) -> Dispute:
        response = await self.http.send("POST", "/v1/disputes", session=session, json=filing)
        return Dispute.model_validate_json(response.content)

    async def dispute(self, session: Session, dispute_id: str | UUID) -> Dispute:
        """The dispute with every step, oldest first."""
        return await self.http.get(f"/v1/disputes/{dispute_id}", Dispute, session=session)

    async def listing(
        self, session: Session, *, root: str, state: str | None = None
    ) -> list[Dispute]:
        """The disputes of events under the root (in one state), oldest first."""
        params = {"root": root, "state": state}
        found = await self.http.get("/v1/disputes", Disputes, session=session, params=params)
        return found.disputes

    async def waiting(self, session: Session, *, root: str) -> list[Dispute]:
        """The disputes under the root waiting for a decision or a review, oldest first."""
        lists = await asyncio.gather(
            *(self.listing(session, root=root, state=state) for state in WAITING)
        )
        return sorted((d for found in lists for d in found), key=lambda d: d.changed_at)

    async def act(
        self,
        session: Session,
        *,
        dispute_id: str | UUID,
        action: str,
        version: str,
        body: dict[str, Any],
    ) -> Dispute:
        """decide, review, withdraw or review-request, at the version the page was read at."""
        # The page's version, as the service gave it: ASCII digits. Anything else (a form
        # altered) names no version of the dispute.
        if not (version.isascii() and version.isdigit()):
            raise PreconditionFailed(f"the form names no version of this dispute: {version!r}")
        response = await self.http.send(
            "POST",
            f"/v1/disputes/{dispute_id}/{action}",
            session=session,
            json=body,
            headers={"If-Match": f'"{version}"'},
        )
        return Dispute.model_validate_json(response.content)
