"""Evaluation's live SQL, set-based: one statement per step of a batch, never one per event.

Statements go straight to the asyncpg connection under the session's transaction (arrays and
`unnest` for bulk writes). Every statement names its schema, so the same code writes the live
tables or a rebuild's fresh copies.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Self
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.models import SCHEMA
from services.evaluation.records import (
    CONTENT,
    CORRECTION_COLUMNS,
    COUNTED,
    EFFECT_COLUMNS,
    EVENT_COLUMNS,
    STATUS_COLUMNS,
    DeadLetterRecord,
    Effect,
    NewCorrection,
    NewEvent,
    StateChange,
    StatusWindow,
    StoredCorrection,
    StoredEvent,
    correction_of,
    correction_record,
    effect_record,
    event_of,
    event_record,
    stub_record,
)
from services.evaluation.rules import Criterion
from shared.locks import LockName, lock_key
from shared.repository import Repository, session_connection

# Batches hold this shared; a rebuild's swap and a registry reconciliation hold it exclusively.
REBUILD_LOCK = lock_key(LockName.evaluation_batches)


def aggregates(alias: str) -> str:
    """The status content of a (unit, period) from its effect rows `alias` (work records'
    rows, without criteria, count nothing here)."""
    columns = []
    for name in COUNTED:
        bit = Criterion[name].value
        columns.append(f"count({alias}.event_id) FILTER (WHERE {alias}.criteria & {bit} <> 0)")
    for name in COUNTED:
        bit = Criterion[name].value
        columns.append(
            f"coalesce(sum({alias}.headcount) FILTER (WHERE {alias}.criteria & {bit} <> 0), 0)"
        )
    columns.append(
        f"coalesce(array_agg({alias}.event_id ORDER BY {alias}.occurred_at, {alias}.event_id) "
        f"FILTER (WHERE {alias}.criteria <> 0), '{{}}')"
    )
    return ",\n".join(f"{sql} AS {name}" for sql, name in zip(columns, CONTENT, strict=True))


def listed(columns: Iterable[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}" for c in columns)


def by_column(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column: the arrays an `unnest` statement takes."""
    return [[row[i] for row in rows] for i in range(width)]


def by_field(records: Sequence[Any], *names: str) -> list[list[Any]]:
    """Records as one list per named field: the arrays an `unnest` statement takes."""
    return [[getattr(record, name) for record in records] for name in names]


class SchemaRepository(Repository):
    """A repository whose statements name the schema they work in (live or a rebuild's)."""

    def __init__(
        self,
        connection: asyncpg.Connection,
        *,
        schema: str = SCHEMA,
        session: AsyncSession | None = None,
    ) -> None:
        super().__init__(connection, session=session)
        self.schema = schema

    @classmethod
    async def from_session(cls, session: AsyncSession, *, schema: str = SCHEMA) -> Self:
        return cls(await session_connection(session), schema=schema, session=session)


class EvaluationRepository(SchemaRepository):
    # --- locks ------------------------------------------------------------------------------

    async def lock_batches(self, *, exclusive: bool) -> None:
        """Shared: a batch (none of a rebuild's swap or a registry reconciliation runs
        meanwhile). Exclusive: batches in flight have committed, and none starts until this
        transaction ends."""
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await self.connection.execute(f"SELECT {function}($1)", REBUILD_LOCK)

    async def lock_counties(self, county_codes: Iterable[str]) -> None:
        """Serialise status changes per county; always in code order, so never a deadlock."""
        for code in sorted(set(county_codes)):
            await self.connection.execute(
                "SELECT pg_advisory_xact_lock($1)", lock_key(LockName.evaluation_county, code)
            )

    # --- events and corrections -----------------------------------------------------------

    async def upsert_events(
        self, events: Sequence[NewEvent], *, stubs: Iterable[UUID]
    ) -> set[UUID]:
        """Record new events, and placeholders for correction targets not seen yet. Returns
        the ids of events known for the first time. Every row named is locked, in id order,
        so a concurrent batch with the same event or a correction of it waits for this one."""
        rows = [event_record(e)[:-1] for e in events] + [stub_record(i)[:-1] for i in stubs]
        if not rows:
            return set()
        updated = EVENT_COLUMNS[1:-1]
        result = await self.connection.fetch(
            f"""
            INSERT INTO {self.schema}.event AS e ({listed(EVENT_COLUMNS[:-1])})
            SELECT * FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::text[], $5::text[],
                                 $6::timestamptz[], $7::text[], $8::int[], $9::bool[], $10::bool[],
                                 $11::text[], $12::text[])
                AS r({listed(EVENT_COLUMNS[:-1])})
            ORDER BY r.event_id
            ON CONFLICT (event_id) DO UPDATE
                SET {", ".join(f"{c} = excluded.{c}" for c in updated)}
                WHERE NOT e.known AND excluded.known
            RETURNING e.event_id, e.known
            """,
            *by_column(rows, len(EVENT_COLUMNS) - 1),
        )
        return {row["event_id"] for row in result if row["known"]}

    async def add_corrections(self, corrections: Sequence[NewCorrection]) -> set[UUID]:
        """Record corrections; returns the ids recorded for the first time."""
        if not corrections:
            return set()
        rows = [correction_record(c) for c in corrections]
        result = await self.connection.fetch(
            f"""
            INSERT INTO {self.schema}.correction ({listed(CORRECTION_COLUMNS)})
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[],
                                 $5::timestamptz[], $6::timestamptz[], $7::text[], $8::text[],
                                 $9::text[], $10::text[])
            ORDER BY 1
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id
            """,
            *by_column(rows, len(CORRECTION_COLUMNS)),
        )
        return {row["event_id"] for row in result}

    async def events(self, event_ids: Iterable[UUID]) -> dict[UUID, StoredEvent]:
        ids = list(event_ids)
        if not ids:
            return {}
        rows = await self.connection.fetch(
            f"SELECT * FROM {self.schema}.event WHERE event_id = ANY($1::uuid[])", ids
        )
        return {row["event_id"]: event_of(row) for row in rows}

    async def corrected_targets(self) -> list[UUID]:
        """Every event some correction targets, arrived or not (the rebuild's second pass)."""
        rows = await self.connection.fetch(
            f"SELECT DISTINCT target_event_id FROM {self.schema}.correction ORDER BY 1"
        )
        return [row["target_event_id"] for row in rows]

    async def corrections_of(self, event_ids: Iterable[UUID]) -> dict[UUID, list[StoredCorrection]]:
        """The corrections targeting these events, each with its sender key's scope (keys'
        scopes never change, so this is the scope the correction was accepted under)."""
        ids = list(event_ids)
        if not ids:
            return {}
        rows = await self.connection.fetch(
            f"""
            SELECT c.*, k.scope_code, k.key_id IS NOT NULL AS sender_known
            FROM {self.schema}.correction c
            LEFT JOIN access.api_keys k ON k.key_id = c.key_id
            WHERE c.target_event_id = ANY($1::uuid[])
            """,
            ids,
        )
        found: dict[UUID, list[StoredCorrection]] = {}
        for row in rows:
            found.setdefault(row["target_event_id"], []).append(correction_of(row))
        return found

    async def correction(self, event_id: UUID) -> StoredCorrection | None:
        row = await self.connection.fetchrow(
            f"""
            SELECT c.*, k.scope_code, k.key_id IS NOT NULL AS sender_known
            FROM {self.schema}.correction c
            LEFT JOIN access.api_keys k ON k.key_id = c.key_id
            WHERE c.event_id = $1
            """,
            event_id,
        )
        return correction_of(row) if row is not None else None

    async def corrections_among(self, event_ids: Iterable[UUID]) -> set[UUID]:
        """Those of these ids that are corrections."""
        ids = list(event_ids)
        if not ids:
            return set()
        rows = await self.connection.fetch(
            f"SELECT event_id FROM {self.schema}.correction WHERE event_id = ANY($1::uuid[])", ids
        )
        return {row["event_id"] for row in rows}

    async def set_correction_states(self, changes: Sequence[StateChange]) -> None:
        await self._update_by_event_id(
            "correction",
            columns={"state": "text", "reason": "text"},
            arrays=by_field(changes, "event_id", "state", "reason"),
        )

    async def _update_by_event_id(
        self, table: str, *, columns: dict[str, str], arrays: list[list[Any]]
    ) -> None:
        """Set `columns` (name: type) of the rows of `table` named by event id, from one array
        per column, the ids first."""
        if not arrays[0]:
            return
        names = list(columns)
        types = ["uuid", *columns.values()]
        unnest = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=1))
        await self.connection.execute(
            f"""
            UPDATE {self.schema}.{table} t SET ({listed(names)}) = ROW({listed(names, "r")})
            FROM unnest({unnest}) AS r(event_id, {listed(names)})
            WHERE t.event_id = r.event_id
            """,
            *arrays,
        )

    # --- dead letters -----------------------------------------------------------------------

    async def record_dead_letters(self, letters: Sequence[DeadLetterRecord]) -> None:
        if not letters:
            return
        await self.connection.execute(
            f"""
            INSERT INTO {SCHEMA}.dead_letter (event_id, unit_code, reason)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
            ON CONFLICT (event_id) DO UPDATE
                SET unit_code = excluded.unit_code, reason = excluded.reason
            """,
            *by_field(letters, "event_id", "unit_code", "reason"),
        )

    async def dead_letter(self, event_id: UUID) -> DeadLetterRecord | None:
        row = await self.connection.fetchrow(
            f"SELECT event_id, unit_code, reason FROM {SCHEMA}.dead_letter WHERE event_id = $1",
            event_id,
        )
        return DeadLetterRecord(**dict(row)) if row is not None else None

    async def set_attributions(self, changes: Sequence[tuple[UUID, str, bool]]) -> None:
        """(event_id, attributed unit, voided) for events whose corrections changed them."""
        await self._update_by_event_id(
            "event",
            columns={"attributed_code": "text", "voided": "bool"},
            arrays=by_column(changes, 3),
        )

    # --- effects ----------------------------------------------------------------------------

    async def effects_of(self, event_ids: Iterable[UUID]) -> list[Effect]:
        ids = list(event_ids)
        if not ids:
            return []
        rows = await self.connection.fetch(
            f"""
            SELECT {listed(EFFECT_COLUMNS)} FROM {self.schema}.effect
            WHERE event_id = ANY($1::uuid[])
            """,
            ids,
        )
        return [Effect(**dict(row)) for row in rows]

    async def replace_effects(self, event_ids: Iterable[UUID], effects: Sequence[Effect]) -> None:
        """The events' effects become exactly `effects`."""
        ids = list(event_ids)
        if ids:
            await self.connection.execute(
                f"DELETE FROM {self.schema}.effect WHERE event_id = ANY($1::uuid[])", ids
            )
        await self.insert_effects(effects)

    async def insert_effects(self, effects: Sequence[Effect]) -> None:
        if not effects:
            return
        rows = [effect_record(e) for e in effects]
        await self.connection.execute(
            f"""
            INSERT INTO {self.schema}.effect ({listed(EFFECT_COLUMNS)})
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::int[],
                                 $5::timestamptz[], $6::date[], $7::text[], $8::text[])
            """,
            *by_column(rows, len(EFFECT_COLUMNS)),
        )

    async def units_with_effects_between(
        self, after: datetime | None, until: datetime
    ) -> list[str]:
        """Units with an effect that occurred in (after, until]: those the rolling window lost."""
        rows = await self.connection.fetch(
            f"""
            SELECT DISTINCT unit_code FROM {self.schema}.effect
            WHERE occurred_at <= $2 AND ($1::timestamptz IS NULL OR occurred_at > $1)
            """,
            after,
            until,
        )
        return [row["unit_code"] for row in rows]

    async def units_with_effects_in(self, starts_at: datetime, ends_at: datetime) -> list[str]:
        """Units with an effect that occurred in [starts_at, ends_at)."""
        rows = await self.connection.fetch(
            f"""
            SELECT DISTINCT unit_code FROM {self.schema}.effect
            WHERE occurred_at >= $1 AND occurred_at < $2
            """,
            starts_at,
            ends_at,
        )
        return [row["unit_code"] for row in rows]

    # --- statuses ---------------------------------------------------------------------------

    async def recompute_statuses(
        self, windows: Sequence[StatusWindow], *, now: datetime
    ) -> list[asyncpg.Record]:
        """Recompute the statuses from their effects; store and return those that changed
        (version + 1, changed_at = now). A pair that never counted anything stays without a
        row. Call with the counties locked."""
        if not windows:
            return []
        s = self.schema
        differs = f"({listed(CONTENT, 's')}) IS DISTINCT FROM ({listed(CONTENT, 'n')})"
        return await self.connection.fetch(
            f"""
            WITH k AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[],
                                     $4::timestamptz[]) AS k(unit_code, period, starts_at, ends_at)
            ), fresh AS (
                SELECT k.unit_code, k.period, {aggregates("f")}
                FROM k LEFT JOIN {s}.effect f
                    ON f.unit_code = k.unit_code AND f.criteria <> 0
                    AND f.occurred_at >= k.starts_at
                    AND (k.ends_at IS NULL OR f.occurred_at < k.ends_at)
                GROUP BY k.unit_code, k.period
            ), changed AS (
                SELECT n.*, coalesce(s.version, 0) + 1 AS version
                FROM fresh n LEFT JOIN {s}.status s
                    ON s.unit_code = n.unit_code AND s.period = n.period
                WHERE CASE WHEN s.unit_code IS NULL THEN cardinality(n.counting_event_ids) > 0
                           ELSE {differs} END
            )
            INSERT INTO {s}.status AS s ({listed(STATUS_COLUMNS)})
            SELECT unit_code, period, cardinality(counting_event_ids) = 0, {listed(CONTENT)},
                   $5, version
            FROM changed
            ON CONFLICT (unit_code, period) DO UPDATE SET
                {", ".join(f"{c} = excluded.{c}" for c in STATUS_COLUMNS[2:])}
            RETURNING {listed(STATUS_COLUMNS, "s")}
            """,
            *by_field(windows, "unit_code", "period", "starts_at", "ends_at"),
            now,
        )

    async def statuses(self) -> list[asyncpg.Record]:
        return await self.connection.fetch(
            f"SELECT {listed(STATUS_COLUMNS)} FROM {self.schema}.status ORDER BY unit_code, period"
        )
