"""SQL for the accepted-event journal."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa

from services.intake.models import FreeText, JournalEntry
from shared.corrections import Correction
from shared.outbox import OutboxMessage
from shared.repository import Repository, rows_affected

journal = JournalEntry.__table__  # type: ignore[attr-defined]
free_text = FreeText.__table__  # type: ignore[attr-defined]
_WITH_FREE_TEXT = sa.select(journal, free_text.c.fields.label("free_text")).select_from(
    journal.outerjoin(free_text, free_text.c.event_id == journal.c.event_id)
)

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
# trip, one transaction): the journal in the order given, the outbox in the messages' order.
INSERT_NEW_SQL = """
    WITH inserted AS (
        INSERT INTO intake.journal (event_id, type, unit_code, county_code, target_event_id,
                                    occurred_at, payload, content_hash, key_id, correlation_id,
                                    accepted_at)
        SELECT event_id, type, unit_code, county_code, target_event_id,
               occurred_at, payload::jsonb, content_hash, key_id, correlation_id, accepted_at
          FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[],
                      $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[],
                      $11::timestamptz[])
               WITH ORDINALITY AS incoming (event_id, type, unit_code, county_code,
                                            target_event_id, occurred_at, payload, content_hash,
                                            key_id, correlation_id, accepted_at, position)
         ORDER BY position
            ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id, accepted_at
    ), kept_apart AS (
        INSERT INTO intake.free_text (event_id, fields, accepted_at)
        SELECT text.event_id, text.fields::jsonb, inserted.accepted_at
          FROM unnest($1::uuid[], $16::text[]) AS text (event_id, fields)
          JOIN inserted USING (event_id)
         WHERE text.fields IS NOT NULL
    ), published AS (
        INSERT INTO intake.outbox (key, value, headers)
        SELECT message.key, message.value, message.headers::jsonb
          FROM unnest($12::uuid[], $13::bytea[], $14::bytea[], $15::text[])
               WITH ORDINALITY AS message (event_id, key, value, headers, position)
         WHERE message.event_id IN (SELECT event_id FROM inserted)
         ORDER BY message.position
    )
    SELECT event_id, accepted_at FROM inserted
"""
# Known targets of corrections: each with the corrections accepted for it and the scope of the
# key that sent each one (a key's scope never changes).
KNOWN_TARGETS_SQL = """
    SELECT t.event_id AS target_id, t.type AS target_type, t.unit_code AS target_unit,
           c.event_id, c.type, c.payload->>'new_unit_code' AS new_unit_code, c.accepted_at,
           k.scope_code, k.key_id IS NOT NULL AS sender_known
      FROM intake.journal t
      LEFT JOIN intake.journal c ON c.target_event_id = t.event_id
      LEFT JOIN access.api_keys k ON k.key_id = c.key_id
     WHERE t.event_id = ANY($1::uuid[])
"""
# A batch per statement, so that no statement holds many row locks for long.
PURGE_SQL = """
    DELETE FROM intake.free_text
     WHERE event_id IN (SELECT event_id FROM intake.free_text WHERE accepted_at < $1 LIMIT $2)
"""
RECEIPTS_SQL = """
    SELECT event_id, content_hash, accepted_at FROM intake.journal WHERE event_id = ANY($1::uuid[])
"""


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    event_id: UUID
    content_hash: str
    accepted_at: datetime


@dataclass(frozen=True, slots=True)
class KnownTarget:
    """An event in the journal that a correction targets, with its corrections so far."""

    event_id: UUID
    type: str
    unit_code: str
    corrections: list[Correction]


class EventRepository(Repository):
    """The accepted-event journal. Acceptance runs on a pooled connection of its own
    (`EventRepository(connection)`: each statement is its own transaction); reading one event
    runs in the request's session (`await EventRepository.from_session(session)`)."""

    async def insert_new(
        self, rows: Sequence[dict[str, Any]], *, messages: Sequence[tuple[UUID, OutboxMessage]]
    ) -> dict[UUID, datetime]:
        """Insert journal rows (payload as JSON text) whose event_id is new, and the outbox
        messages of those events, atomically; returns {event_id: accepted_at} of the new ones.
        Rows and messages each go in the order given."""
        if not rows:
            return {}
        columns = [[row[name] for row in rows] for name in _JOURNAL_COLUMNS]
        result = await self.connection.fetch(
            INSERT_NEW_SQL,
            *columns,
            [event_id for event_id, _ in messages],
            [message.key for _, message in messages],
            [message.value for _, message in messages],
            [orjson.dumps(message.headers).decode() for _, message in messages],
            [row["free_text"] for row in rows],
        )
        return {row["event_id"]: row["accepted_at"] for row in result}

    async def receipts(self, event_ids: Sequence[UUID]) -> dict[UUID, StoredReceipt]:
        if not event_ids:
            return {}
        result = await self.connection.fetch(RECEIPTS_SQL, list(event_ids))
        return {
            r["event_id"]: StoredReceipt(r["event_id"], r["content_hash"], r["accepted_at"])
            for r in result
        }

    async def known_targets(self, target_ids: Sequence[UUID]) -> dict[UUID, KnownTarget]:
        """The journal's record of these correction targets, with their corrections so far."""
        if not target_ids:
            return {}
        targets: dict[UUID, KnownTarget] = {}
        for row in await self.connection.fetch(KNOWN_TARGETS_SQL, list(target_ids)):
            target = targets.get(row["target_id"])
            if target is None:
                target = targets[row["target_id"]] = KnownTarget(
                    row["target_id"], row["target_type"], row["target_unit"], []
                )
            if row["event_id"] is not None:
                target.corrections.append(Correction.from_row(row))
        return targets

    async def purge_free_text(self, *, accepted_before: datetime, batch_size: int) -> int:
        """Remove the free text of up to `batch_size` events accepted before the moment;
        returns how many lost theirs."""
        status = await self.connection.execute(PURGE_SQL, accepted_before, batch_size)
        return rows_affected(status)

    async def get(self, event_id: UUID) -> sa.Row[Any] | None:
        """The journal row with its free text (`free_text`: None when there is none or it
        was removed)."""
        result = await self.session.execute(_WITH_FREE_TEXT.where(journal.c.event_id == event_id))
        return result.first()

    async def corrections_of(self, event_id: UUID) -> Sequence[sa.Row[Any]]:
        result = await self.session.execute(
            _WITH_FREE_TEXT.where(journal.c.target_event_id == event_id).order_by(
                journal.c.accepted_at, journal.c.event_id
            )
        )
        return result.all()
