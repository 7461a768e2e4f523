"""What the pages read from evaluation: what it made of an event."""

from uuid import UUID

from services.console.clients.http import Answer, ServiceClient
from services.console.sessions import Session
from shared.errors import NotFound


class CountsAgainst(Answer):
    unit_code: str
    period: str
    criteria: list[str]


class Effect(Answer):
    state: str
    reason: str | None = None
    counts_against: list[CountsAgainst]


class EvaluationClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def effect(self, session: Session, event_id: str | UUID) -> Effect | None:
        """None while evaluation has not evaluated the event yet."""
        try:
            return await self.http.get(f"/v1/events/{event_id}/effect", Effect, session=session)
        except NotFound:
            return None
