"""What the pages read from intake, and the desk's form posted to it."""

from datetime import datetime
from typing import Any
from uuid import UUID

from services.console.clients.http import Answer, ServiceClient
from services.console.sessions import Session


class StoredEvent(Answer):
    """An event as intake keeps it: the fields common to every type, then those of each type
    the pages show (None where the event's type has no such field, or the key may not read
    it)."""

    event_id: UUID
    type: str
    unit_code: str
    occurred_at: datetime
    accepted_at: datetime
    destination_level: str | None = None
    headcount: int | None = None
    skip_level: bool | None = None
    non_reception_site: bool | None = None
    law_related: bool | None = None
    category: str | None = None
    petitioner_ref: str | None = None
    kind: str | None = None
    summary: str | None = None
    platform: str | None = None
    attendees: int | None = None
    disputes_found: int | None = None
    disputes_resolved: int | None = None
    rating: str | None = None
    source: str | None = None
    matter_ref: str | None = None


class IntakeClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def event(self, session: Session, event_id: str | UUID) -> StoredEvent:
        return await self.http.get(f"/v1/events/{event_id}", StoredEvent, session=session)

    async def record(self, session: Session, event: dict[str, Any]) -> None:
        """Posts the event as the form built it; intake refuses what it must, field by field."""
        await self.http.send("POST", "/v1/events", session=session, json=event)
