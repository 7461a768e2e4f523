"""All of evaluation's SQL, set-based: one statement per step of a batch, never one per event.

Statements go straight to the asyncpg connection under the session's transaction (arrays and
`unnest` for bulk writes, COPY for the rebuild). Every statement names its schema, so the same
code writes the live tables or a rebuild's fresh copies.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.models import SCHEMA
from services.evaluation.rules import Criterion, Facts
from shared.events import EventType
from shared.levels import Destination
from shared.locks import LockName, lock_key
from shared.status import ROLLING

# Batches hold this shared; a rebuild's swap and a registry reconciliation hold it exclusively.
REBUILD_LOCK = lock_key(LockName.evaluation_batches)

COUNTED = ("skip_level", "non_reception_site", "collective", "incident")
CONTENT = (*COUNTED, *(f"{name}_people" for name in COUNTED), "counting_event_ids")
STATUS_COLUMNS = ("unit_code", "period", "three_no", *CONTENT, "changed_at", "version")
PENDING = "pending"  # a correction's state while its target has not arrived


def _aggregates(alias: str) -> str:
    """The status content of a (unit, period) from its effect rows `alias`."""
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
        f"FILTER (WHERE {alias}.event_id IS NOT NULL), '{{}}')"
    )
    return ",\n".join(f"{sql} AS {name}" for sql, name in zip(columns, CONTENT, strict=True))


def _listed(columns: Iterable[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}" for c in columns)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: UUID
    known: bool
    facts: Facts | None
    unit_code: str | None
    attributed_code: str | None
    occurred_at: datetime | None
    voided: bool


@dataclass(frozen=True, slots=True)
class StoredCorrection:
    event_id: UUID
    target_event_id: UUID
    type: EventType
    new_unit_code: str | None
    occurred_at: datetime
    accepted_at: datetime
    unit_code: str | None
    scope_code: str | None  # the sender key's scope; None: everywhere
    sender_known: bool  # whether the key it came from exists
    state: str  # pending, applied or refused
    reason: str | None


@dataclass(frozen=True, slots=True)
class Effect:
    """An event counting against one unit, under `criteria` (bits of `Criterion`)."""

    event_id: UUID
    unit_code: str
    criteria: int
    headcount: int
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class StatusWindow:
    """A (unit, period) to recompute, with the period's bounds: [starts_at, ends_at)."""

    unit_code: str
    period: str
    starts_at: datetime
    ends_at: datetime | None  # open (the rolling period)


@dataclass(frozen=True, slots=True)
class NewEvent:
    event_id: UUID
    facts: Facts
    unit_code: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class NewCorrection:
    event_id: UUID
    target_event_id: UUID
    type: EventType
    new_unit_code: str | None
    occurred_at: datetime
    accepted_at: datetime
    unit_code: str
    key_id: str


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    event_id: UUID
    unit_code: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class StateChange:
    """A correction's new state, with the reason when it is refused."""

    event_id: UUID
    state: str
    reason: str | None


def event_of(row: asyncpg.Record) -> StoredEvent:
    facts = None
    if row["known"]:
        destination = row["destination"]
        facts = Facts(
            type=EventType(row["type"]),
            destination=Destination(destination) if destination else None,
            headcount=row["headcount"],
            skip_level=row["skip_level"],
            non_reception_site=row["non_reception_site"],
        )
    return StoredEvent(
        event_id=row["event_id"],
        known=row["known"],
        facts=facts,
        unit_code=row["unit_code"],
        attributed_code=row["attributed_code"],
        occurred_at=row["occurred_at"],
        voided=row["voided"],
    )


def correction_of(row: asyncpg.Record) -> StoredCorrection:
    return StoredCorrection(
        event_id=row["event_id"],
        target_event_id=row["target_event_id"],
        type=EventType(row["type"]),
        new_unit_code=row["new_unit_code"],
        occurred_at=row["occurred_at"],
        accepted_at=row["accepted_at"],
        unit_code=row["unit_code"],
        scope_code=row["scope_code"],
        sender_known=row["sender_known"],
        state=row["state"],
        reason=row["reason"],
    )


def event_record(event: NewEvent) -> tuple[Any, ...]:
    """A known event's row as COPY and `upsert_events` take it."""
    facts = event.facts
    return (
        event.event_id,
        True,
        facts.type.value,
        event.unit_code,
        event.unit_code,
        event.occurred_at,
        facts.destination.value if facts.destination else None,
        facts.headcount,
        facts.skip_level,
        facts.non_reception_site,
        False,
    )


def correction_record(correction: NewCorrection) -> tuple[Any, ...]:
    """A correction's row as COPY and `add_corrections` take it."""
    return (
        correction.event_id,
        correction.target_event_id,
        correction.type.value,
        correction.new_unit_code,
        correction.occurred_at,
        correction.accepted_at,
        correction.unit_code,
        correction.key_id,
        PENDING,
        None,
    )


EVENT_COLUMNS = (
    "event_id",
    "known",
    "type",
    "unit_code",
    "attributed_code",
    "occurred_at",
    "destination",
    "headcount",
    "skip_level",
    "non_reception_site",
    "voided",
)
EFFECT_COLUMNS = ("event_id", "unit_code", "criteria", "headcount", "occurred_at")
CORRECTION_COLUMNS = (
    "event_id",
    "target_event_id",
    "type",
    "new_unit_code",
    "occurred_at",
    "accepted_at",
    "unit_code",
    "key_id",
    "state",
    "reason",
)


def _stub(event_id: UUID) -> tuple[Any, ...]:
    return (event_id, False, None, None, None, None, None, 0, False, False, False)


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]


class EvaluationRepository:
    def __init__(self, connection: asyncpg.Connection, *, schema: str = SCHEMA) -> None:
        self.connection = connection
        self.schema = schema

    @classmethod
    async def from_session(
        cls, session: AsyncSession, *, schema: str = SCHEMA
    ) -> "EvaluationRepository":
        """The repository on the session's connection. Its first statement (the shared rebuild
        lock) begins the transaction the asyncpg statements then run in."""
        connection = await session.connection()
        await connection.execute(
            sa.text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": REBUILD_LOCK}
        )
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        return cls(driver, schema=schema)

    @classmethod
    async def excluding_batches(
        cls, session: AsyncSession, *, schema: str = SCHEMA
    ) -> "EvaluationRepository":
        """The repository holding the rebuild lock exclusively: batches in flight have
        committed, and none starts until this transaction ends."""
        connection = await session.connection()
        await connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": REBUILD_LOCK}
        )
        return await cls.from_session(session, schema=schema)

    # --- events and corrections -----------------------------------------------------------

    async def upsert_events(
        self, events: Sequence[NewEvent], *, stubs: Iterable[UUID]
    ) -> set[UUID]:
        """Record new events, and placeholders for correction targets not seen yet. Returns
        the ids of events known for the first time. Every row named is locked, in id order,
        so a concurrent batch with the same event or a correction of it waits for this one."""
        rows = [event_record(e)[:-1] for e in events] + [_stub(i)[:-1] for i in stubs]
        if not rows:
            return set()
        updated = EVENT_COLUMNS[1:-1]
        result = await self.connection.fetch(
            f"""
            INSERT INTO {self.schema}.event AS e ({_listed(EVENT_COLUMNS[:-1])})
            SELECT * FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::text[], $5::text[],
                                 $6::timestamptz[], $7::text[], $8::int[], $9::bool[], $10::bool[])
                AS r({_listed(EVENT_COLUMNS[:-1])})
            ORDER BY r.event_id
            ON CONFLICT (event_id) DO UPDATE
                SET {", ".join(f"{c} = excluded.{c}" for c in updated)}
                WHERE NOT e.known AND excluded.known
            RETURNING e.event_id, e.known
            """,
            *_columns(rows, len(EVENT_COLUMNS) - 1),
        )
        return {row["event_id"] for row in result if row["known"]}

    async def add_corrections(self, corrections: Sequence[NewCorrection]) -> set[UUID]:
        """Record corrections; returns the ids recorded for the first time."""
        if not corrections:
            return set()
        rows = [correction_record(c) for c in corrections]
        result = await self.connection.fetch(
            f"""
            INSERT INTO {self.schema}.correction ({_listed(CORRECTION_COLUMNS)})
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[],
                                 $5::timestamptz[], $6::timestamptz[], $7::text[], $8::text[],
                                 $9::text[], $10::text[])
            ORDER BY 1
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id
            """,
            *_columns(rows, len(CORRECTION_COLUMNS)),
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
        if not changes:
            return
        await self.connection.execute(
            f"""
            UPDATE {self.schema}.correction c SET state = r.state, reason = r.reason
            FROM unnest($1::uuid[], $2::text[], $3::text[]) AS r(event_id, state, reason)
            WHERE c.event_id = r.event_id
            """,
            [c.event_id for c in changes],
            [c.state for c in changes],
            [c.reason for c in changes],
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
            [d.event_id for d in letters],
            [d.unit_code for d in letters],
            [d.reason for d in letters],
        )

    async def dead_letter(self, event_id: UUID) -> DeadLetterRecord | None:
        row = await self.connection.fetchrow(
            f"SELECT event_id, unit_code, reason FROM {SCHEMA}.dead_letter WHERE event_id = $1",
            event_id,
        )
        return DeadLetterRecord(**dict(row)) if row is not None else None

    async def set_attributions(self, changes: Sequence[tuple[UUID, str, bool]]) -> None:
        """(event_id, attributed unit, voided) for events whose corrections changed them."""
        if not changes:
            return
        await self.connection.execute(
            f"""
            UPDATE {self.schema}.event e SET attributed_code = r.code, voided = r.voided
            FROM unnest($1::uuid[], $2::text[], $3::bool[]) AS r(event_id, code, voided)
            WHERE e.event_id = r.event_id
            """,
            *_columns(changes, 3),
        )

    # --- effects ----------------------------------------------------------------------------

    async def effects_of(self, event_ids: Iterable[UUID]) -> list[Effect]:
        ids = list(event_ids)
        if not ids:
            return []
        rows = await self.connection.fetch(
            f"""
            SELECT {_listed(EFFECT_COLUMNS)} FROM {self.schema}.effect
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
        rows = [(e.event_id, e.unit_code, e.criteria, e.headcount, e.occurred_at) for e in effects]
        await self.connection.execute(
            f"""
            INSERT INTO {self.schema}.effect ({_listed(EFFECT_COLUMNS)})
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::int[],
                                 $5::timestamptz[])
            """,
            *_columns(rows, len(EFFECT_COLUMNS)),
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

    async def lock_counties(self, county_codes: Iterable[str]) -> None:
        """Serialise status changes per county; always in code order, so never a deadlock."""
        for code in sorted(set(county_codes)):
            await self.connection.execute(
                "SELECT pg_advisory_xact_lock($1)", lock_key(LockName.evaluation_county, code)
            )

    async def recompute_statuses(
        self, windows: Sequence[StatusWindow], *, now: datetime
    ) -> list[asyncpg.Record]:
        """Recompute the statuses from their effects; store and return those that changed
        (version + 1, changed_at = now). A pair that never counted anything stays without a
        row. Call with the counties locked."""
        if not windows:
            return []
        s = self.schema
        differs = f"({_listed(CONTENT, 's')}) IS DISTINCT FROM ({_listed(CONTENT, 'n')})"
        return await self.connection.fetch(
            f"""
            WITH k AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[],
                                     $4::timestamptz[]) AS k(unit_code, period, starts_at, ends_at)
            ), fresh AS (
                SELECT k.unit_code, k.period, {_aggregates("f")}
                FROM k LEFT JOIN {s}.effect f
                    ON f.unit_code = k.unit_code AND f.occurred_at >= k.starts_at
                    AND (k.ends_at IS NULL OR f.occurred_at < k.ends_at)
                GROUP BY k.unit_code, k.period
            ), changed AS (
                SELECT n.*, coalesce(s.version, 0) + 1 AS version
                FROM fresh n LEFT JOIN {s}.status s
                    ON s.unit_code = n.unit_code AND s.period = n.period
                WHERE CASE WHEN s.unit_code IS NULL THEN cardinality(n.counting_event_ids) > 0
                           ELSE {differs} END
            )
            INSERT INTO {s}.status AS s ({_listed(STATUS_COLUMNS)})
            SELECT unit_code, period, cardinality(counting_event_ids) = 0, {_listed(CONTENT)},
                   $5, version
            FROM changed
            ON CONFLICT (unit_code, period) DO UPDATE SET
                {", ".join(f"{c} = excluded.{c}" for c in STATUS_COLUMNS[2:])}
            RETURNING {_listed(STATUS_COLUMNS, "s")}
            """,
            [w.unit_code for w in windows],
            [w.period for w in windows],
            [w.starts_at for w in windows],
            [w.ends_at for w in windows],
            now,
        )

    async def statuses(self) -> list[asyncpg.Record]:
        return await self.connection.fetch(
            f"SELECT {_listed(STATUS_COLUMNS)} FROM {self.schema}.status ORDER BY unit_code, period"
        )

    # --- rolling expiry ---------------------------------------------------------------------

    async def rolling_window_start(self) -> datetime | None:
        """The window start of the last expiry pass, locked until the transaction ends."""
        return await self.connection.fetchval(
            f"SELECT window_start FROM {SCHEMA}.rolling_expiry WHERE id = 1 FOR UPDATE"
        )

    async def set_rolling_window_start(self, start: datetime) -> None:
        await self.connection.execute(
            f"""
            INSERT INTO {SCHEMA}.rolling_expiry (id, window_start) VALUES (1, $1)
            ON CONFLICT (id) DO UPDATE
                SET window_start = greatest(excluded.window_start, rolling_expiry.window_start)
            """,
            start,
        )

    async def mark_pending_rolling(self, windows: Sequence[StatusWindow]) -> datetime | None:
        """Remember, for each rolling window just recomputed, the unit's effects at or after
        its end (dated in the future when computed): the expiry pass recomputes the unit when
        their time comes. Returns the earliest moment newly remembered."""
        rolling = [w for w in windows if w.ends_at is not None and w.period == ROLLING]
        if not rolling:
            return None
        return await self.connection.fetchval(
            f"""
            WITH added AS (
                INSERT INTO {SCHEMA}.rolling_pending (unit_code, occurred_at)
                SELECT DISTINCT f.unit_code, f.occurred_at
                FROM unnest($1::text[], $2::timestamptz[]) AS w(unit_code, ends_at)
                JOIN {self.schema}.effect f
                    ON f.unit_code = w.unit_code AND f.occurred_at >= w.ends_at
                ON CONFLICT DO NOTHING
                RETURNING occurred_at
            )
            SELECT min(occurred_at) FROM added
            """,
            [w.unit_code for w in rolling],
            [w.ends_at for w in rolling],
        )

    async def mark_future_effects(self, now: datetime) -> None:
        """Every effect dated after `now` is pending for the rolling period (after a rebuild)."""
        await self.connection.execute(
            f"""
            INSERT INTO {SCHEMA}.rolling_pending (unit_code, occurred_at)
            SELECT DISTINCT unit_code, occurred_at FROM {self.schema}.effect WHERE occurred_at > $1
            ON CONFLICT DO NOTHING
            """,
            now,
        )

    async def take_due_rolling(self, now: datetime) -> set[str]:
        """The units with a pending effect whose time has come; no longer pending."""
        rows = await self.connection.fetch(
            f"DELETE FROM {SCHEMA}.rolling_pending WHERE occurred_at <= $1 RETURNING unit_code",
            now,
        )
        return {row["unit_code"] for row in rows}

    async def next_rolling_due(self) -> datetime | None:
        return await self.connection.fetchval(
            f"SELECT min(occurred_at) FROM {SCHEMA}.rolling_pending"
        )

    # --- registry moves ---------------------------------------------------------------------

    async def registry_version(self) -> int:
        """The registry's version as this transaction sees it now."""
        version = await self.connection.fetchval("SELECT version FROM registry.meta WHERE id = 1")
        return int(version or 0)

    async def followed_registry_version(self) -> int | None:
        """The registry version the effects follow, locked until the transaction ends."""
        return await self.connection.fetchval(
            f"SELECT version FROM {SCHEMA}.registry_followed WHERE id = 1 FOR UPDATE"
        )

    async def units_moved(self, after: int, until: int) -> list[str]:
        """The units that loads with a version in (after, until] moved or re-levelled."""
        rows = await self.connection.fetch(
            """
            SELECT DISTINCT code FROM registry.unit_changes
            WHERE version > $1 AND version <= $2 ORDER BY code
            """,
            after,
            until,
        )
        return [row["code"] for row in rows]

    async def events_attributed_to(self, unit_codes: Iterable[str]) -> list[UUID]:
        """The active events attributed to these units now, in id order."""
        codes = sorted(set(unit_codes))
        if not codes:
            return []
        rows = await self.connection.fetch(
            f"""
            SELECT event_id FROM {self.schema}.event
            WHERE attributed_code = ANY($1::text[]) AND known AND NOT voided
            ORDER BY event_id
            """,
            codes,
        )
        return [row["event_id"] for row in rows]

    async def set_followed_registry_version(self, version: int) -> None:
        await self.connection.execute(
            f"""
            INSERT INTO {SCHEMA}.registry_followed (id, version) VALUES (1, $1)
            ON CONFLICT (id) DO UPDATE SET version = excluded.version
            """,
            version,
        )


class RebuildRepository:
    """The SQL of a rebuild: fresh tables in a schema of their own, loaded by COPY, statuses
    aggregated in one statement, then given the live history and swapped in."""

    def __init__(self, connection: asyncpg.Connection, *, staging: str) -> None:
        self.connection = connection
        self.staging = staging
        self.retired = f"{staging}_retired"

    async def create_staging(self, ddl: Sequence[str]) -> None:
        await self.drop_staging()
        await self.connection.execute(f"CREATE SCHEMA {self.staging}")
        for statement in ddl:
            await self.connection.execute(statement)
        # Big sorts and hash aggregates stay in memory.
        await self.connection.execute("SET work_mem = '256MB'")

    async def drop_staging(self) -> None:
        await self.connection.execute(f"DROP SCHEMA IF EXISTS {self.staging} CASCADE")
        await self.connection.execute(f"DROP SCHEMA IF EXISTS {self.retired} CASCADE")

    async def copy(
        self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        if rows:
            await self.connection.copy_records_to_table(
                table, records=rows, columns=list(columns), schema_name=self.staging
            )

    async def analyze(self) -> None:
        for table in ("event", "correction", "effect"):
            await self.connection.execute(f"ANALYZE {self.staging}.{table}")

    async def compute_statuses(
        self, periods: Sequence[tuple[str, datetime, datetime | None]], *, now: datetime
    ) -> int:
        """Every (unit, period) with an effect in the period, aggregated in one pass, with the
        history of the live status as it is now (`merge_history` brings it up to date)."""
        changed_at, version = self._history("n", "$4::timestamptz")
        result = await self.connection.execute(
            f"""
            WITH fresh AS (
                SELECT f.unit_code, p.period, {_aggregates("f")}
                FROM {self.staging}.effect f
                JOIN unnest($1::text[], $2::timestamptz[], $3::timestamptz[])
                    AS p(period, starts_at, ends_at)
                    ON f.occurred_at >= p.starts_at
                    AND (p.ends_at IS NULL OR f.occurred_at < p.ends_at)
                GROUP BY f.unit_code, p.period
            )
            INSERT INTO {self.staging}.status ({_listed(STATUS_COLUMNS)})
            SELECT n.unit_code, n.period, false, {_listed(CONTENT, "n")}, {changed_at}, {version}
            FROM fresh n
            LEFT JOIN {SCHEMA}.status o ON o.unit_code = n.unit_code AND o.period = n.period
            """,
            [p[0] for p in periods],
            [p[1] for p in periods],
            [p[2] for p in periods],
            now,
        )
        return int(result.split()[-1])

    @staticmethod
    def _history(new: str, now: str) -> tuple[str, str]:
        """changed_at and version of a rebuilt status `new` against the live one `o` (joined
        on the same key, or null): unchanged keeps both, changed takes the next version."""
        changed = (
            f"(o.unit_code IS NULL OR ({_listed(CONTENT, new)}) "
            f"IS DISTINCT FROM ({_listed(CONTENT, 'o')}))"
        )
        return (
            f"CASE WHEN {changed} THEN {now} ELSE o.changed_at END",
            f"CASE WHEN {changed} THEN coalesce(o.version, 0) + 1 ELSE o.version END",
        )

    async def differences(self) -> list[tuple[str, str]]:
        """The (unit, period) pairs whose rebuilt content differs from the live status."""
        rows = await self.connection.fetch(
            f"""
            SELECT coalesce(n.unit_code, o.unit_code) AS unit_code,
                   coalesce(n.period, o.period) AS period
            FROM {self.staging}.status n
            FULL JOIN {SCHEMA}.status o ON o.unit_code = n.unit_code AND o.period = n.period
            WHERE CASE WHEN n.unit_code IS NULL THEN NOT o.three_no
                       WHEN o.unit_code IS NULL THEN true
                       ELSE ({_listed(CONTENT, "n")}) IS DISTINCT FROM ({_listed(CONTENT, "o")})
                  END
            ORDER BY 1, 2
            """
        )
        return [(row["unit_code"], row["period"]) for row in rows]

    async def merge_history(self, *, now: datetime) -> list[asyncpg.Record]:
        """Under the rebuild lock: bring the history up to date with the live statuses (they
        kept changing while the rebuild ran). A pair that never counts anything any more keeps
        its row, clean. Returns the statuses that differ from the live ones: to publish."""
        zeros = ", ".join("0" for _ in CONTENT[:-1])
        await self.connection.execute(
            f"""
            INSERT INTO {self.staging}.status ({_listed(STATUS_COLUMNS)})
            SELECT unit_code, period, true, {zeros}, '{{}}', changed_at, version - 1
            FROM {SCHEMA}.status
            ON CONFLICT (unit_code, period) DO NOTHING
            """
        )
        changed_at, version = self._history("n", "$1::timestamptz")
        await self.connection.execute(
            f"""
            UPDATE {self.staging}.status s SET (changed_at, version) = (c.changed_at, c.version)
            FROM (
                SELECT n.unit_code, n.period, {changed_at} AS changed_at, {version} AS version
                FROM {self.staging}.status n
                LEFT JOIN {SCHEMA}.status o ON o.unit_code = n.unit_code AND o.period = n.period
            ) c
            WHERE c.unit_code = s.unit_code AND c.period = s.period
              AND (s.changed_at, s.version) IS DISTINCT FROM (c.changed_at, c.version)
            """,
            now,
        )
        return await self.connection.fetch(
            f"""
            SELECT {_listed(STATUS_COLUMNS, "n")} FROM {self.staging}.status n
            LEFT JOIN {SCHEMA}.status o ON o.unit_code = n.unit_code AND o.period = n.period
            WHERE o.unit_code IS NULL OR n.version <> o.version
            """
        )

    async def swap(self, tables: Sequence[str]) -> None:
        """Put the rebuilt tables in place of the live ones (call holding the rebuild lock).
        Moving tables between schemas is instant; the old ones are dropped afterwards by
        `drop_staging`, outside the lock."""
        await self.connection.execute(f"CREATE SCHEMA {self.retired}")
        for table in tables:
            await self.connection.execute(f"ALTER TABLE {SCHEMA}.{table} SET SCHEMA {self.retired}")
            await self.connection.execute(f"ALTER TABLE {self.staging}.{table} SET SCHEMA {SCHEMA}")

    async def add_to_outbox(self, rows: Sequence[tuple[bytes, bytes, str]]) -> None:
        """(key, value, headers as JSON) of the status changes to publish."""
        if rows:
            await self.connection.copy_records_to_table(
                "outbox", records=rows, columns=["key", "value", "headers"], schema_name=SCHEMA
            )
