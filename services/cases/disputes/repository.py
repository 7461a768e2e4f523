"""Every SQL statement of disputes and of the events they name."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.repository import Repository

PUT_EVENTS_SQL = """
INSERT INTO cases.event
    (event_id, type, unit_code, accepted_at, reported_at, target_event_id, new_unit_code)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::char(12)[], $4::timestamptz[],
                     $5::timestamptz[], $6::uuid[], $7::char(12)[])
ON CONFLICT (event_id) DO NOTHING
"""
# The event with what its corrections made of it: voided, or its latest unit.
EVENT_SQL = """
SELECT e.event_id, e.type, e.accepted_at, e.reported_at,
       COALESCE((SELECT c.new_unit_code FROM cases.event c
                  WHERE c.target_event_id = e.event_id AND c.type = 'event_reattributed'
                  ORDER BY c.accepted_at DESC LIMIT 1), e.unit_code) AS unit_code,
       EXISTS (SELECT 1 FROM cases.event c
                WHERE c.target_event_id = e.event_id AND c.type = 'event_voided') AS voided
FROM cases.event e WHERE e.event_id = $1
"""
DISPUTE_COLUMNS = """
dispute_id, event_id, unit_code, grounds, proposed_unit, duplicate_of, statement, filer_scope,
decider_code, state, decision, review_request_until, review, version, filed_at, changed_at
"""
INSERT_DISPUTE_SQL = f"""
INSERT INTO cases.dispute ({DISPUTE_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'filed', NULL, NULL, NULL, 1, $10, $10)
ON CONFLICT DO NOTHING
RETURNING {DISPUTE_COLUMNS}
"""
DISPUTE_SQL = f"SELECT {DISPUTE_COLUMNS} FROM cases.dispute WHERE dispute_id = $1"
DISPUTE_FOR_UPDATE_SQL = DISPUTE_SQL + " FOR UPDATE"
LIVE_DISPUTE_SQL = """
SELECT dispute_id FROM cases.dispute
WHERE event_id = $1 AND state IN ('filed', 'decided', 'review_requested')
"""
UPDATE_DISPUTE_SQL = f"""
UPDATE cases.dispute
SET state = $2, decision = COALESCE($3::jsonb, decision),
    review_request_until = COALESCE($4, review_request_until),
    review = COALESCE($5::jsonb, review), version = version + 1, changed_at = $6
WHERE dispute_id = $1
RETURNING {DISPUTE_COLUMNS}
"""
LIST_SQL = f"""
SELECT {DISPUTE_COLUMNS} FROM cases.dispute
WHERE ($1::text IS NULL OR state = $1)
ORDER BY filed_at, dispute_id
"""
NOTICES_SQL = """
SELECT event_id, accepted_at, reported_at FROM cases.event WHERE event_id = ANY($1::uuid[])
"""
INSERT_STEP_SQL = """
INSERT INTO cases.dispute_step
    (dispute_id, version, action, at, key_id, role, scope_code, reason, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
RETURNING step_id
"""
TAKE_TURN_SQL = "SELECT 1 FROM cases.step_turn WHERE id = 1 FOR UPDATE"
FEED_SQL = """
SELECT s.step_id, s.version, s.action, s.at, s.key_id, s.role, s.scope_code, s.reason, s.detail,
       d.dispute_id, d.event_id, d.unit_code, d.decider_code, d.filer_scope, d.decision
FROM cases.dispute_step s JOIN cases.dispute d USING (dispute_id)
WHERE s.step_id > $1
ORDER BY s.step_id
LIMIT $2
"""
STEPS_SQL = """
SELECT step_id, version, action, at, key_id, role, scope_code, reason, detail
FROM cases.dispute_step WHERE dispute_id = $1 ORDER BY version
"""


@dataclass(frozen=True, slots=True)
class KnownEvent:
    event_id: UUID
    type: str
    unit_code: str  # after re-attributions
    accepted_at: datetime
    reported_at: datetime | None
    voided: bool


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: UUID
    type: str
    unit_code: str
    accepted_at: datetime
    reported_at: datetime | None
    target_event_id: UUID | None
    new_unit_code: str | None


@dataclass(frozen=True, slots=True)
class DisputeRow:
    dispute_id: UUID
    event_id: UUID
    unit_code: str
    grounds: str
    proposed_unit: str | None
    duplicate_of: UUID | None
    statement: str
    filer_scope: str
    decider_code: str
    state: str
    decision: dict[str, Any] | None
    review_request_until: date | None
    review: dict[str, Any] | None
    version: int
    filed_at: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class StepRow:
    step_id: int
    version: int
    action: str
    at: datetime
    key_id: str
    role: str
    scope_code: str | None
    reason: str
    detail: dict[str, Any]


STEP_FIELDS = ("step_id", "version", "action", "at", "key_id", "role", "scope_code", "reason")


@dataclass(frozen=True, slots=True)
class FeedRow:
    step: StepRow
    dispute_id: UUID
    event_id: UUID
    unit_code: str
    decider_code: str
    filer_scope: str
    decision: dict[str, Any] | None


def _dispute(row: asyncpg.Record | None) -> DisputeRow | None:
    if row is None:
        return None
    found = dict(row)
    for name in ("decision", "review"):
        if isinstance(found[name], str):
            found[name] = json.loads(found[name])
    found["unit_code"] = found["unit_code"].strip()
    return DisputeRow(**found)


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


class EventRepository(Repository):
    async def put(self, events: Sequence[EventRow]) -> int:
        status = await self.connection.execute(
            PUT_EVENTS_SQL,
            [e.event_id for e in events],
            [e.type for e in events],
            [e.unit_code for e in events],
            [e.accepted_at for e in events],
            [e.reported_at for e in events],
            [e.target_event_id for e in events],
            [e.new_unit_code for e in events],
        )
        return int(status.rsplit(" ", 1)[-1])

    async def event(self, event_id: UUID) -> KnownEvent | None:
        row = await self.connection.fetchrow(EVENT_SQL, event_id)
        return None if row is None else KnownEvent(**dict(row))


class DisputeRepository(Repository):
    async def insert(self, dispute: DisputeRow) -> DisputeRow | None:
        """The dispute filed, or None when the event has a live dispute already."""
        row = await self.connection.fetchrow(
            INSERT_DISPUTE_SQL,
            dispute.dispute_id,
            dispute.event_id,
            dispute.unit_code,
            dispute.grounds,
            dispute.proposed_unit,
            dispute.duplicate_of,
            dispute.statement,
            dispute.filer_scope,
            dispute.decider_code,
            dispute.filed_at,
        )
        return _dispute(row)

    async def get(self, dispute_id: UUID, *, for_update: bool = False) -> DisputeRow | None:
        sql = DISPUTE_FOR_UPDATE_SQL if for_update else DISPUTE_SQL
        return _dispute(await self.connection.fetchrow(sql, dispute_id))

    async def live_on(self, event_id: UUID) -> UUID | None:
        found: UUID | None = await self.connection.fetchval(LIVE_DISPUTE_SQL, event_id)
        return found

    async def update(
        self,
        dispute_id: UUID,
        *,
        state: str,
        at: datetime,
        decision: dict[str, Any] | None = None,
        review_request_until: date | None = None,
        review: dict[str, Any] | None = None,
    ) -> DisputeRow:
        row = await self.connection.fetchrow(
            UPDATE_DISPUTE_SQL,
            dispute_id,
            state,
            _json(decision),
            review_request_until,
            _json(review),
            at,
        )
        updated = _dispute(row)
        assert updated is not None
        return updated

    async def listed(self, *, state: str | None) -> list[DisputeRow]:
        rows = await self.connection.fetch(LIST_SQL, state)
        return [d for row in rows if (d := _dispute(row)) is not None]

    async def notices(self, event_ids: list[UUID]) -> dict[UUID, tuple[datetime, datetime | None]]:
        """(accepted_at, reported_at) of each of these events known."""
        rows = await self.connection.fetch(NOTICES_SQL, event_ids)
        return {row["event_id"]: (row["accepted_at"], row["reported_at"]) for row in rows}

    async def add_step(self, step: StepRow, dispute_id: UUID) -> int:
        step_id: int = await self.connection.fetchval(
            INSERT_STEP_SQL,
            dispute_id,
            step.version,
            step.action,
            step.at,
            step.key_id,
            step.role,
            step.scope_code,
            step.reason,
            json.dumps(step.detail, ensure_ascii=False),
        )
        return step_id

    async def take_turn(self) -> None:
        """Wait for the transactions recording steps before this one to end: steps commit in
        step_id order. Taken last, once the dispute's row is locked or inserted, and held to
        the commit: a transaction holding it never waits for another's row, so the turn is
        held only for the step itself."""
        await self.connection.execute(TAKE_TURN_SQL)

    async def feed(self, *, after: int, limit: int) -> list[FeedRow]:
        rows = await self.connection.fetch(FEED_SQL, after, limit)
        return [
            FeedRow(
                step=StepRow(**{k: r[k] for k in STEP_FIELDS}, detail=_loaded(r["detail"])),
                dispute_id=r["dispute_id"],
                event_id=r["event_id"],
                unit_code=r["unit_code"].strip(),
                decider_code=r["decider_code"],
                filer_scope=r["filer_scope"],
                decision=_loaded(r["decision"]) if r["decision"] is not None else None,
            )
            for r in rows
        ]

    async def steps(self, dispute_id: UUID) -> list[StepRow]:
        rows = await self.connection.fetch(STEPS_SQL, dispute_id)
        return [StepRow(**{**dict(r), "detail": _loaded(r["detail"])}) for r in rows]


def _loaded(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)
