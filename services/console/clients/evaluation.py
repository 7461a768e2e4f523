"""What the pages read from evaluation: what it made of an event, and for a counting event
the last day to dispute it and its disputes."""

from datetime import date
from uuid import UUID

from pydantic import Field

from services.console.clients.http import Answer, ServiceClient
from services.console.sessions import Session
from shared.errors import NotFound


class CountsAgainst(Answer):
    unit_code: str
    period: str
    criteria: list[str]


class DisputeRef(Answer):
    dispute_id: UUID
    state: str


class Effect(Answer):
    state: str
    reason: str | None = None
    counts_against: list[CountsAgainst]
    # A counting event's last day to dispute it; None for other events, and while the
    # working-day calendar cannot say (`dispute_until_reason` says why).
    dispute_until: date | None = None
    dispute_until_reason: str | None = None
    disputes: list[DisputeRef] = Field(default_factory=list)


class EvaluationClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def effect(self, session: Session, event_id: str | UUID) -> Effect | None:
        """None while evaluation has not evaluated the event yet."""
        try:
            return await self.http.get(f"/v1/events/{event_id}/effect", Effect, session=session)
        except NotFound:
            return None
