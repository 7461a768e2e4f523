"""The events, corrections and effects of the live path, and its dead letters; set-based: one
statement per step of a batch, never one per event.

Statements go straight to the asyncpg connection under the session's transaction (arrays and
`unnest` for bulk writes). Every statement names its schema, so the same code writes the live
tables or a rebuild's fresh copies.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from services.evaluation.models import SCHEMA, dead_letter
from services.evaluation.records import (
    CORRECTION_COLUMNS,
    DISPUTE_COLUMNS,
    EFFECT_COLUMNS,
    EVENT_COLUMNS,
    DeadLetterRecord,
    DisputeRecord,
    Effect,
    NewCorrection,
    NewEvent,
    StateChange,
    StoredCorrection,
    StoredEvent,
    correction_of,
    correction_record,
    effect_record,
    event_of,
    event_record,
    stub_record,
)
from services.evaluation.schema_repository import SchemaRepository, by_column, by_field, listed
from shared.locks import LockName, lock_key

# Batches hold this shared; a rebuild's swap and a registry reconciliation hold it exclusively.
REBUILD_LOCK = lock_key(LockName.evaluation_batches)

LOCK = "SELECT {function}($1)"
UPSERT_EVENTS = """
    INSERT INTO {schema}.event AS e ({columns})
    SELECT * FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::text[], $5::text[],
                         $6::timestamptz[], $7::text[], $8::int[], $9::bool[], $10::bool[],
                         $11::text[], $12::text[], $13::timestamptz[])
        AS r({columns})
    ORDER BY r.event_id
    ON CONFLICT (event_id) DO UPDATE
        SET {updated}
        WHERE NOT e.known AND excluded.known
    RETURNING e.event_id, e.known, e.xmax = 0 AS inserted
"""
ADD_CORRECTIONS = """
    INSERT INTO {schema}.correction ({columns})
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[],
                         $5::timestamptz[], $6::timestamptz[], $7::text[], $8::text[],
                         $9::text[], $10::text[])
    ORDER BY 1
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
"""
EVENTS = "SELECT * FROM {schema}.event WHERE event_id = ANY($1::uuid[])"
CORRECTED_TARGETS = """
    SELECT target_event_id FROM {schema}.correction
    UNION SELECT event_id FROM evaluation.dispute WHERE outcome IS NOT NULL
    ORDER BY 1
"""
# A dispute's upheld ruling reads as one more correction of the event, by the bureau that made
# it (its scope), when it made it; its verdict is not kept (the dispute's is its own).
CORRECTIONS_OF = """
    SELECT c.event_id, c.target_event_id, c.type, c.new_unit_code, c.occurred_at,
           c.accepted_at, c.unit_code, k.scope_code, k.key_id IS NOT NULL AS sender_known,
           c.state, c.reason, NULL::uuid AS dispute_id
    FROM {schema}.correction c
    LEFT JOIN access.api_keys k ON k.key_id = c.key_id
    WHERE c.target_event_id = ANY($1::uuid[])
    UNION ALL
    SELECT d.dispute_id, d.event_id, d.outcome, d.new_unit_code, d.decided_at, d.decided_at,
           d.decider_code, d.decider_code, true, 'applied', NULL, d.dispute_id
    FROM evaluation.dispute d
    WHERE d.event_id = ANY($1::uuid[]) AND d.outcome IS NOT NULL
"""
# Each dispute's last step; an older step delivered again changes nothing.
PUT_DISPUTES = """
    INSERT INTO evaluation.dispute AS d ({columns})
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::timestamptz[], $8::int[]) AS r({columns})
    ORDER BY r.dispute_id
    ON CONFLICT (dispute_id) DO UPDATE SET {updated}
        WHERE excluded.version > d.version
    RETURNING d.event_id
"""
DISPUTES_OF = """
    SELECT dispute_id, state FROM evaluation.dispute WHERE event_id = $1 ORDER BY dispute_id
"""
CORRECTION = """
    SELECT c.*, k.scope_code, k.key_id IS NOT NULL AS sender_known
    FROM {schema}.correction c
    LEFT JOIN access.api_keys k ON k.key_id = c.key_id
    WHERE c.event_id = $1
"""
CORRECTIONS_AMONG = "SELECT event_id FROM {schema}.correction WHERE event_id = ANY($1::uuid[])"
UPDATE_BY_EVENT_ID = """
    UPDATE {schema}.{table} t SET ({names}) = ROW({values})
    FROM unnest({unnest}) AS r(event_id, {names})
    WHERE t.event_id = r.event_id
"""
RECORD_DEAD_LETTERS = """
    INSERT INTO {schema}.dead_letter (event_id, unit_code, reason)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
    ON CONFLICT (event_id) DO UPDATE
        SET unit_code = excluded.unit_code, reason = excluded.reason
"""
EFFECTS_OF = """
    SELECT {columns} FROM {schema}.effect
    WHERE event_id = ANY($1::uuid[])
"""
DELETE_EFFECTS = "DELETE FROM {schema}.effect WHERE event_id = ANY($1::uuid[])"
UNITS_WITH_EFFECTS_BETWEEN = """
    SELECT DISTINCT unit_code FROM {schema}.effect
    WHERE occurred_at <= $2 AND ($1::timestamptz IS NULL OR occurred_at > $1)
"""
UNITS_WITH_EFFECTS_IN = """
    SELECT DISTINCT unit_code FROM {schema}.effect
    WHERE occurred_at >= $1 AND occurred_at < $2
"""


class EvaluationRepository(SchemaRepository):
    """The events and corrections applied, their effects, and the dead letters; and the lock
    every batch holds."""

    # --- locks ------------------------------------------------------------------------------

    async def lock_batches(self, *, exclusive: bool) -> None:
        """Shared: a batch (none of a rebuild's swap or a registry reconciliation runs
        meanwhile). Exclusive: batches in flight have committed, and none starts until this
        transaction ends."""
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await self.connection.execute(LOCK.format(function=function), REBUILD_LOCK)

    # --- events and corrections -----------------------------------------------------------

    async def upsert_events(
        self, events: Sequence[NewEvent], *, stubs: Iterable[UUID]
    ) -> dict[UUID, bool]:
        """Record new events, and placeholders for correction targets not seen yet. Returns
        the events known for the first time, each with whether its row is new (true) rather
        than a placeholder a correction left (a row's xmax is 0 when this statement inserted
        it). Every row named is locked, in id order, so a concurrent batch with the same event
        or a correction of it waits for this one."""
        rows = [event_record(e)[:-1] for e in events] + [stub_record(i)[:-1] for i in stubs]
        if not rows:
            return {}
        updated = EVENT_COLUMNS[1:-1]
        result = await self.connection.fetch(
            UPSERT_EVENTS.format(
                schema=self.schema,
                columns=listed(EVENT_COLUMNS[:-1]),
                updated=", ".join(f"{c} = excluded.{c}" for c in updated),
            ),
            *by_column(rows, len(EVENT_COLUMNS) - 1),
        )
        return {row["event_id"]: row["inserted"] for row in result if row["known"]}

    async def add_corrections(self, corrections: Sequence[NewCorrection]) -> set[UUID]:
        """Record corrections; returns the ids recorded for the first time."""
        if not corrections:
            return set()
        rows = [correction_record(c) for c in corrections]
        result = await self.connection.fetch(
            ADD_CORRECTIONS.format(schema=self.schema, columns=listed(CORRECTION_COLUMNS)),
            *by_column(rows, len(CORRECTION_COLUMNS)),
        )
        return {row["event_id"] for row in result}

    async def events(self, event_ids: Iterable[UUID]) -> dict[UUID, StoredEvent]:
        ids = list(event_ids)
        if not ids:
            return {}
        rows = await self.connection.fetch(EVENTS.format(schema=self.schema), ids)
        return {row["event_id"]: event_of(row) for row in rows}

    async def corrected_targets(self) -> list[UUID]:
        """Every event some correction targets, arrived or not (the rebuild's second pass)."""
        rows = await self.connection.fetch(CORRECTED_TARGETS.format(schema=self.schema))
        return [row["target_event_id"] for row in rows]

    async def corrections_of(self, event_ids: Iterable[UUID]) -> dict[UUID, list[StoredCorrection]]:
        """The corrections targeting these events, each with its sender key's scope (keys'
        scopes never change, so this is the scope the correction was accepted under)."""
        ids = list(event_ids)
        if not ids:
            return {}
        rows = await self.connection.fetch(CORRECTIONS_OF.format(schema=self.schema), ids)
        found: dict[UUID, list[StoredCorrection]] = {}
        for row in rows:
            found.setdefault(row["target_event_id"], []).append(correction_of(row))
        return found

    async def put_disputes(self, disputes: Sequence[DisputeRecord]) -> set[UUID]:
        """Keep each dispute as its newest step left it; returns the events whose disputes
        changed."""
        if not disputes:
            return set()
        updated = ", ".join(f"{name} = excluded.{name}" for name in DISPUTE_COLUMNS[1:])
        rows = await self.connection.fetch(
            PUT_DISPUTES.format(columns=listed(DISPUTE_COLUMNS), updated=updated),
            *by_column(disputes, len(DISPUTE_COLUMNS)),
        )
        return {row["event_id"] for row in rows}

    async def disputes_of(self, event_id: UUID) -> list[tuple[UUID, str]]:
        """(dispute_id, state) of each dispute of the event."""
        rows = await self.connection.fetch(DISPUTES_OF, event_id)
        return [(row["dispute_id"], row["state"]) for row in rows]

    async def correction(self, event_id: UUID) -> StoredCorrection | None:
        row = await self.connection.fetchrow(CORRECTION.format(schema=self.schema), event_id)
        return correction_of(row) if row is not None else None

    async def corrections_among(self, event_ids: Iterable[UUID]) -> set[UUID]:
        """Those of these ids that are corrections."""
        ids = list(event_ids)
        if not ids:
            return set()
        rows = await self.connection.fetch(CORRECTIONS_AMONG.format(schema=self.schema), ids)
        return {row["event_id"] for row in rows}

    async def set_correction_states(self, changes: Sequence[StateChange]) -> None:
        await self._update_by_event_id(
            "correction",
            columns={"state": "text", "reason": "text"},
            arrays=by_field(changes, "event_id", "state", "reason"),
        )

    async def set_attributions(self, changes: Sequence[tuple[UUID, str, bool]]) -> None:
        """(event_id, attributed unit, voided) for events whose corrections changed them."""
        await self._update_by_event_id(
            "event",
            columns={"attributed_code": "text", "voided": "bool"},
            arrays=by_column(changes, 3),
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
        await self.connection.execute(
            UPDATE_BY_EVENT_ID.format(
                schema=self.schema,
                table=table,
                names=listed(names),
                values=listed(names, "r"),
                unnest=", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=1)),
            ),
            *arrays,
        )

    # --- dead letters -----------------------------------------------------------------------

    async def record_dead_letters(self, letters: Sequence[DeadLetterRecord]) -> None:
        if not letters:
            return
        await self.connection.execute(
            RECORD_DEAD_LETTERS.format(schema=SCHEMA),
            *by_field(letters, "event_id", "unit_code", "reason"),
        )

    async def dead_letter(self, event_id: UUID) -> DeadLetterRecord | None:
        found = await self.session.execute(
            sa.select(dead_letter.c.event_id, dead_letter.c.unit_code, dead_letter.c.reason).where(
                dead_letter.c.event_id == event_id
            )
        )
        row = found.one_or_none()
        return DeadLetterRecord(*row) if row is not None else None

    # --- effects ----------------------------------------------------------------------------

    async def effects_of(self, event_ids: Iterable[UUID]) -> list[Effect]:
        ids = list(event_ids)
        if not ids:
            return []
        rows = await self.connection.fetch(
            EFFECTS_OF.format(schema=self.schema, columns=listed(EFFECT_COLUMNS)), ids
        )
        return [Effect(**dict(row)) for row in rows]

    async def replace_effects(self, event_ids: Iterable[UUID], effects: Sequence[Effect]) -> None:
        """The events' effects become exactly `effects`."""
        ids = list(event_ids)
        if ids:
            await self.connection.execute(DELETE_EFFECTS.format(schema=self.schema), ids)
        await self.insert_effects(effects)

    async def insert_effects(self, effects: Sequence[Effect]) -> None:
        """Rows not there yet, by COPY: a batch has thousands, which cost less so than as
        arrays."""
        if not effects:
            return
        await self.connection.copy_records_to_table(
            "effect",
            records=[effect_record(e) for e in effects],
            columns=list(EFFECT_COLUMNS),
            schema_name=self.schema,
        )

    async def units_with_effects_between(
        self, after: datetime | None, until: datetime
    ) -> list[str]:
        """Units with an effect that occurred in (after, until]: those the rolling window lost."""
        rows = await self.connection.fetch(
            UNITS_WITH_EFFECTS_BETWEEN.format(schema=self.schema), after, until
        )
        return [row["unit_code"] for row in rows]

    async def units_with_effects_in(self, starts_at: datetime, ends_at: datetime) -> list[str]:
        """Units with an effect that occurred in [starts_at, ends_at)."""
        rows = await self.connection.fetch(
            UNITS_WITH_EFFECTS_IN.format(schema=self.schema), starts_at, ends_at
        )
        return [row["unit_code"] for row in rows]
