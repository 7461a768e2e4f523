"""SQL for the accepted-event journal."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import JournalEntry
from shared.outbox import OutboxMessage

journal = JournalEntry.__table__  # type: ignore[attr-defined]

_JOURNAL_COLUMNS = (
    "event_id",
    "type",
    "unit_code",
    "county_code",
    "target_event_id",
    "occurred_at",
    "payload",
    "content_hash",
    "key_id",
    "correlation_id",
    "accepted_at",
)
# One statement for one row or a thousand: each column travels as an array, so the text and
# its prepared plan never change (a multi-row VALUES would be compiled anew for every call).
# The outbox messages of the events that were new go in with the same statement (one round
# trip): the journal in the order given, the outbox in the messages' own order.
_INSERT_NEW = sa.text(
    """
    WITH inserted AS (
        INSERT INTO intake.journal (event_id, type, unit_code, county_code, target_event_id,
                                    occurred_at, payload, content_hash, key_id, correlation_id,
                                    accepted_at)
        SELECT event_id, type, unit_code, county_code, target_event_id,
               occurred_at, payload::jsonb, content_hash, key_id, correlation_id, accepted_at
          FROM unnest(CAST(:event_id AS uuid[]), CAST(:type AS text[]),
                      CAST(:unit_code AS text[]), CAST(:county_code AS text[]),
                      CAST(:target_event_id AS uuid[]), CAST(:occurred_at AS timestamptz[]),
                      CAST(:payload AS text[]), CAST(:content_hash AS text[]),
                      CAST(:key_id AS text[]), CAST(:correlation_id AS text[]),
                      CAST(:accepted_at AS timestamptz[]))
               WITH ORDINALITY AS incoming (event_id, type, unit_code, county_code,
                                            target_event_id, occurred_at, payload, content_hash,
                                            key_id, correlation_id, accepted_at, position)
         ORDER BY position
            ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id, accepted_at
    ), published AS (
        INSERT INTO intake.outbox (key, value, headers)
        SELECT message.key, message.value, message.headers::jsonb
          FROM unnest(CAST(:message_event_id AS uuid[]), CAST(:message_key AS bytea[]),
                      CAST(:message_value AS bytea[]), CAST(:message_headers AS text[]))
               WITH ORDINALITY AS message (event_id, key, value, headers, position)
         WHERE message.event_id IN (SELECT event_id FROM inserted)
         ORDER BY message.position
    )
    SELECT event_id, accepted_at FROM inserted
    """
).columns(journal.c.event_id, journal.c.accepted_at)


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

    async def insert_new(
        self, rows: Sequence[dict[str, Any]], *, messages: Sequence[tuple[UUID, OutboxMessage]]
    ) -> dict[UUID, datetime]:
        """Insert journal rows whose event_id is new, and the outbox messages of those events;
        returns {event_id: accepted_at} of the new ones. Rows and messages each go in the order
        given."""
        if not rows:
            return {}
        columns: dict[str, list[Any]] = {
            name: [row[name] for row in rows] for name in _JOURNAL_COLUMNS
        }
        columns["payload"] = [json.dumps(payload) for payload in columns["payload"]]
        columns["message_event_id"] = [event_id for event_id, _ in messages]
        columns["message_key"] = [message.key for _, message in messages]
        columns["message_value"] = [message.value for _, message in messages]
        columns["message_headers"] = [json.dumps(message.headers) for _, message in messages]
        result = await self.session.execute(_INSERT_NEW, columns)
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
