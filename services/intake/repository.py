"""SQL for the journal and the outbox."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import JournalEntry, OutboxEntry

journal = JournalEntry.__table__  # type: ignore[attr-defined]
outbox = OutboxEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    event_id: UUID
    content_hash: str
    accepted_at: datetime


@dataclass(frozen=True, slots=True)
class PendingMessage:
    id: int
    event_id: UUID
    key: bytes
    value: bytes
    correlation_id: str | None


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

    async def add_to_outbox(self, messages: Sequence[dict[str, Any]]) -> None:
        if messages:
            await self.session.execute(outbox.insert(), list(messages))

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


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> "OutboxRepository":
        return cls(session)

    async def claim(self, limit: int) -> list[PendingMessage]:
        """The oldest pending messages, locked against other relays until this transaction ends."""
        result = await self.session.execute(
            sa.select(
                outbox.c.id,
                outbox.c.event_id,
                outbox.c.key,
                outbox.c.value,
                outbox.c.correlation_id,
            )
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [PendingMessage(*row) for row in result]

    async def mark_sent(self, ids: Sequence[int]) -> None:
        await self.session.execute(outbox.delete().where(outbox.c.id.in_(list(ids))))

    async def pending_count(self) -> int:
        return int(
            (
                await self.session.execute(sa.select(sa.func.count()).select_from(outbox))
            ).scalar_one()
        )
