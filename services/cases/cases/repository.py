"""Every SQL statement of cases: the case as it stands, its protected summary, its steps."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.repository import Repository

CASE_COLUMNS = """
case_id, unit_code, first_receiver, owner_unit, owner_body, received_at, channel, category,
petitioner_ref, headcount, event_ids, state, repeat_of, reviews, rating, content_hash, version,
registered_at, changed_at
"""
INSERT_CASE_SQL = f"""
INSERT INTO cases.case ({CASE_COLUMNS})
VALUES ($1, $2, $3, $3, NULL, $4, $5, $6, $7, $8, $9, $10, $11, 0, NULL, $12, 1, $13, $13)
ON CONFLICT (case_id) DO NOTHING
RETURNING {CASE_COLUMNS}
"""
CASE_SQL = f"SELECT {CASE_COLUMNS} FROM cases.case WHERE case_id = $1"
CASE_FOR_UPDATE_SQL = CASE_SQL + " FOR UPDATE"
UPDATE_CASE_SQL = f"""
UPDATE cases.case
SET state = $2, owner_unit = $3, owner_body = $4, reviews = $5, rating = $6,
    version = version + 1, changed_at = $7
WHERE case_id = $1
RETURNING {CASE_COLUMNS}
"""
# Registrations of one matter wait for each other: the second sees the first as its case.
LOCK_MATTER_SQL = "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))"
# The matter's own case (not a repeat): the open one, else the latest closed.
MATTER_SQL = """
SELECT case_id, state FROM cases.case
WHERE petitioner_ref = $1 AND category = $2 AND repeat_of IS NULL
ORDER BY state = 'closed', received_at DESC
LIMIT 1
"""
INSERT_SUMMARY_SQL = "INSERT INTO cases.case_summary (case_id, summary) VALUES ($1, $2)"
SUMMARY_SQL = "SELECT summary FROM cases.case_summary WHERE case_id = $1"
# Cases whose unit, first receiver or owner is one of the units (all cases without them).
LIST_SQL = f"""
SELECT {CASE_COLUMNS} FROM cases.case
WHERE ($1::text IS NULL OR state = $1)
  AND ($2::text[] IS NULL OR unit_code = ANY($2) OR first_receiver = ANY($2)
       OR owner_unit = ANY($2))
ORDER BY received_at, case_id
"""
LAST_STEP_SQL = "SELECT coalesce(max(step_id), 0) FROM cases.case_step"
CONTENTS_SQL = "SELECT case_id, content_hash FROM cases.case WHERE case_id = ANY($1::uuid[])"
OPEN_SQL = """
SELECT case_id FROM cases.case
WHERE state NOT IN ('closed', 'repeat', 'refused') ORDER BY case_id
"""
LOCKED_SQL = f"""
SELECT {CASE_COLUMNS} FROM cases.case WHERE case_id = ANY($1::uuid[])
ORDER BY case_id FOR UPDATE
"""
# The cases of these units received in [start, end).
RECEIVED_SQL = f"""
SELECT {CASE_COLUMNS} FROM cases.case
WHERE received_at >= $1 AND received_at < $2 AND unit_code = ANY($3::text[])
"""
STEP_COLUMNS = (
    "step_id, version, action, at, recorded_at, key_id, role, scope_code, body, reason, detail"
)
INSERT_STEP_SQL = """
INSERT INTO cases.case_step
    (case_id, version, action, at, recorded_at, key_id, role, scope_code, body, reason, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
RETURNING step_id
"""
STEPS_SQL = f"""
SELECT case_id, {STEP_COLUMNS} FROM cases.case_step
WHERE case_id = ANY($1::uuid[]) ORDER BY case_id, version
"""
TAKE_TURN_SQL = "SELECT 1 FROM cases.case_step_turn WHERE id = 1 FOR UPDATE"
FEED_SQL = f"""
SELECT s.case_id, {", ".join("s." + c.strip() for c in STEP_COLUMNS.split(","))},
       c.unit_code, c.first_receiver, c.owner_unit, c.owner_body
FROM cases.case_step s JOIN cases.case c USING (case_id)
WHERE s.step_id > $1
ORDER BY s.step_id
LIMIT $2
"""


@dataclass(frozen=True, slots=True)
class CaseRow:
    case_id: UUID
    unit_code: str
    first_receiver: str
    owner_unit: str
    owner_body: str | None
    received_at: datetime
    channel: str
    category: str
    petitioner_ref: str
    headcount: int
    event_ids: list[UUID]
    state: str
    repeat_of: UUID | None
    reviews: int
    rating: str | None
    content_hash: str
    version: int
    registered_at: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class CaseStepRow:
    step_id: int
    version: int
    action: str
    at: datetime
    recorded_at: datetime
    key_id: str
    role: str
    scope_code: str | None
    body: str | None
    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CaseFeedRow:
    case_id: UUID
    step: CaseStepRow
    unit_code: str
    first_receiver: str
    owner_unit: str
    owner_body: str | None


STEP_FIELDS = tuple(f.name for f in fields(CaseStepRow))
CASE_FIELDS = tuple(f.name for f in fields(CaseRow))


def case_fields(case: CaseRow) -> dict[str, Any]:
    """The row's fields, not copied deeply (dataclasses.asdict copies every list and dict)."""
    return {name: getattr(case, name) for name in CASE_FIELDS}


def step_fields(step: CaseStepRow) -> dict[str, Any]:
    """The step's fields but its id, not copied deeply."""
    return {name: getattr(step, name) for name in STEP_FIELDS if name != "step_id"}


CODES = ("unit_code", "first_receiver", "owner_unit")


def _case(row: asyncpg.Record | None) -> CaseRow | None:
    if row is None:
        return None
    found = dict(row)
    for name in CODES:
        found[name] = found[name].strip()
    found["event_ids"] = list(found["event_ids"])
    return CaseRow(**found)


def _step(row: asyncpg.Record) -> CaseStepRow:
    found = {name: row[name] for name in STEP_FIELDS}
    detail = found["detail"]
    found["detail"] = json.loads(detail) if isinstance(detail, str) else dict(detail)
    if found["scope_code"] is not None:
        found["scope_code"] = found["scope_code"].strip()
    return CaseStepRow(**found)


class CaseRepository(Repository):
    async def insert(self, case: CaseRow) -> CaseRow | None:
        """The case registered, or None when its case_id is taken."""
        row = await self.connection.fetchrow(
            INSERT_CASE_SQL,
            case.case_id,
            case.unit_code,
            case.first_receiver,
            case.received_at,
            case.channel,
            case.category,
            case.petitioner_ref,
            case.headcount,
            case.event_ids,
            case.state,
            case.repeat_of,
            case.content_hash,
            case.registered_at,
        )
        return _case(row)

    async def get(self, case_id: UUID, *, for_update: bool = False) -> CaseRow | None:
        sql = CASE_FOR_UPDATE_SQL if for_update else CASE_SQL
        return _case(await self.connection.fetchrow(sql, case_id))

    async def update(
        self,
        case: CaseRow,
        *,
        state: str,
        at: datetime,
        owner_unit: str | None = None,
        owner_body: str | None = None,
        reviews: int | None = None,
        rating: str | None = None,
    ) -> CaseRow:
        """The case after a step. The owner changes only when `owner_unit` is given (with
        its body, or None for the unit itself)."""
        moved = owner_unit is not None
        row = await self.connection.fetchrow(
            UPDATE_CASE_SQL,
            case.case_id,
            state,
            owner_unit if moved else case.owner_unit,
            owner_body if moved else case.owner_body,
            case.reviews if reviews is None else reviews,
            rating or case.rating,
            at,
        )
        updated = _case(row)
        assert updated is not None
        return updated

    async def lock_matter(self, petitioner_ref: str, category: str) -> None:
        await self.connection.execute(LOCK_MATTER_SQL, petitioner_ref, category)

    async def matter(self, petitioner_ref: str, category: str) -> tuple[UUID, str] | None:
        """The matter's own case and its state (the open one first)."""
        row = await self.connection.fetchrow(MATTER_SQL, petitioner_ref, category)
        return None if row is None else (row["case_id"], row["state"])

    async def add_summary(self, case_id: UUID, summary: str) -> None:
        await self.connection.execute(INSERT_SUMMARY_SQL, case_id, summary)

    async def summary(self, case_id: UUID) -> str | None:
        found: str | None = await self.connection.fetchval(SUMMARY_SQL, case_id)
        return found

    async def listed(self, *, state: str | None, units: list[str] | None) -> list[CaseRow]:
        rows = await self.connection.fetch(LIST_SQL, state, units)
        return [c for row in rows if (c := _case(row)) is not None]

    async def last_step_id(self) -> int:
        found: int = await self.connection.fetchval(LAST_STEP_SQL)
        return found

    async def contents(self, case_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The content hash of each of these cases already registered."""
        rows = await self.connection.fetch(CONTENTS_SQL, list(case_ids))
        return {row["case_id"]: row["content_hash"] for row in rows}

    async def open_ids(self) -> list[UUID]:
        """The cases whose clocks may still run, in id order."""
        return [row["case_id"] for row in await self.connection.fetch(OPEN_SQL)]

    async def locked(self, case_ids: Sequence[UUID]) -> list[CaseRow]:
        """These cases, locked in id order (as a step locks one)."""
        rows = await self.connection.fetch(LOCKED_SQL, list(case_ids))
        return [c for row in rows if (c := _case(row)) is not None]

    async def received(self, start: datetime, end: datetime, units: list[str]) -> list[CaseRow]:
        rows = await self.connection.fetch(RECEIVED_SQL, start, end, units)
        return [c for row in rows if (c := _case(row)) is not None]

    async def add_step(self, case_id: UUID, step: CaseStepRow) -> int:
        step_id: int = await self.connection.fetchval(
            INSERT_STEP_SQL,
            case_id,
            step.version,
            step.action,
            step.at,
            step.recorded_at,
            step.key_id,
            step.role,
            step.scope_code,
            step.body,
            step.reason,
            json.dumps(step.detail, ensure_ascii=False),
        )
        return step_id

    async def steps(self, case_ids: Sequence[UUID]) -> dict[UUID, list[CaseStepRow]]:
        found: dict[UUID, list[CaseStepRow]] = {case_id: [] for case_id in case_ids}
        for row in await self.connection.fetch(STEPS_SQL, list(case_ids)):
            found[row["case_id"]].append(_step(row))
        return found

    async def take_turn(self) -> None:
        """Wait for the transactions recording case steps before this one to end: steps
        commit in step_id order. Taken last, once the case's row is locked or inserted."""
        await self.connection.execute(TAKE_TURN_SQL)

    async def feed(self, *, after: int, limit: int) -> list[CaseFeedRow]:
        rows = await self.connection.fetch(FEED_SQL, after, limit)
        return [
            CaseFeedRow(
                case_id=r["case_id"],
                step=_step(r),
                unit_code=r["unit_code"].strip(),
                first_receiver=r["first_receiver"].strip(),
                owner_unit=r["owner_unit"].strip(),
                owner_body=r["owner_body"],
            )
            for r in rows
        ]
