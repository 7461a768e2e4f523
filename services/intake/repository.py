"""SQL for the accepted-event journal."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import JournalEntry

journal = JournalEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    event_id: UUID
    content_hash: str
    accepted_at: datetime


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> "EventRepository":
        return cls(session)

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> dict[UUID, datetime]:
        """Insert journal rows whose event_id is new; returns {event_id: accepted_at} of those."""
        if not rows:
            return {}
        statement = (
            insert(journal)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=[journal.c.event_id])
            .returning(journal.c.event_id, journal.c.accepted_at)
        )
        result = await self.session.execute(statement)
        return {row.event_id: row.accepted_at for row in result}

    async def receipts(self, event_ids: Sequence[UUID]) -> dict[UUID, StoredReceipt]:
        if not event_ids:
            return {}
        result = await self.session.execute(
            sa.select(journal.c.event_id, journal.c.content_hash, journal.c.accepted_at).where(
                journal.c.event_id.in_(list(event_ids))
            )
        )
        return {
            r.event_id: StoredReceipt(r.event_id, r.content_hash, r.accepted_at) for r in result
        }

    async def get(self, event_id: UUID) -> sa.Row[Any] | None:
        result = await self.session.execute(
            sa.select(journal).where(journal.c.event_id == event_id)
        )
        return result.first()

    async def corrections_of(self, event_id: UUID) -> Sequence[sa.Row[Any]]:
        result = await self.session.execute(
            sa.select(journal)
            .where(journal.c.target_event_id == event_id)
            .order_by(journal.c.accepted_at, journal.c.event_id)
        )
        return result.all()
