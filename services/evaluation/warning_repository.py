"""The SQL of early warnings: the visits they read (`warning_visit` beside `event`), the
warnings raised and cleared, and their outbox (migration 0005_evaluation)."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import sqlalchemy as sa

from services.evaluation.models import SCHEMA
from services.evaluation.repository import SchemaRepository
from shared.early_warning import EarlyWarning, WarningKind
from shared.outbox import outbox_table

warning_outbox = outbox_table(SCHEMA, sa.MetaData(), name="warning_outbox")
SCHEMA_VERSION = EarlyWarning.model_fields["schema_version"].default
STAGED = "saved_warning"  # `stage`'s table

VISIT_COLUMNS = (
    "event_id",
    "accepted_at",
    "occurred_at",
    "petitioner_ref",
    "reported_county",
    "county",
)
WARNING_COLUMNS = (
    "warning_id",
    "kind",
    "unit_code",
    "scope",
    "cause_at",
    "raised_at",
    "cleared_at",
    "event_ids",
    "detail",
    "version",
)
_VISIT_SELECT = """
    SELECT v.event_id, v.accepted_at, v.petitioner_ref, e.unit_code, e.attributed_code,
           e.voided, e.occurred_at, e.destination, e.headcount
    FROM {schema}.warning_visit v JOIN {schema}.event e ON e.event_id = v.event_id
"""


@dataclass(frozen=True, slots=True)
class StoredVisit:
    event_id: UUID
    accepted_at: datetime
    petitioner_ref: str | None
    unit_code: str
    attributed_code: str
    voided: bool
    occurred_at: datetime
    destination: str | None
    headcount: int


@dataclass(frozen=True, slots=True)
class StoredWarning:
    warning_id: UUID
    kind: WarningKind
    unit_code: str
    scope: str
    cause_at: datetime
    raised_at: datetime
    cleared_at: datetime | None
    event_ids: tuple[UUID, ...]
    detail: dict[str, Any]
    version: int

    def message(self) -> bytes:
        """The `EarlyWarning` as published, written straight from the warning rather than
        through the model (a rebuild has the database write it, `warning_json`; the tests
        read both back with the model)."""
        return orjson.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "warning_id": self.warning_id,
                "kind": self.kind,
                "unit_code": self.unit_code,
                "raised_at": self.raised_at,
                "cleared_at": self.cleared_at,
                "event_ids": self.event_ids,
                "detail": self.detail,
                "version": self.version,
            },
            default=str,  # ids read back from the database are asyncpg's own UUID type
        )


def warning_json(alias: str) -> str:
    """The SQL of `StoredWarning.message` from a `warning` row `alias`, for a rebuild to
    publish every warning in one statement."""
    return (
        f"json_build_object('schema_version', {SCHEMA_VERSION}, "
        f"'warning_id', {alias}.warning_id, 'kind', {alias}.kind, "
        f"'unit_code', {alias}.unit_code, 'raised_at', {alias}.raised_at, "
        f"'cleared_at', {alias}.cleared_at, 'event_ids', {alias}.event_ids, "
        f"'detail', {alias}.detail, 'version', {alias}.version)"
    )


def visit_of(row: asyncpg.Record) -> StoredVisit:
    return StoredVisit(*row)  # _VISIT_SELECT has the fields' order


def warning_of(row: asyncpg.Record) -> StoredWarning:
    values = dict(row)
    values["kind"] = WarningKind(values["kind"])
    values["event_ids"] = tuple(values["event_ids"])
    detail = values["detail"]  # a session's connection decodes JSON, a bare one does not
    values["detail"] = json.loads(detail) if isinstance(detail, str) else detail
    return StoredWarning(**values)


def warning_record(warning: StoredWarning) -> tuple[Any, ...]:
    return (
        warning.warning_id,
        warning.kind.value,
        warning.unit_code,
        warning.scope,
        warning.cause_at,
        warning.raised_at,
        warning.cleared_at,
        list(warning.event_ids),
        orjson.dumps(warning.detail).decode(),  # jsonb: the key order is the database's
        warning.version,
    )


class WarningRepository(SchemaRepository):
    # --- visits ---------------------------------------------------------------------------

    async def add_visits(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows in VISIT_COLUMNS order; a visit recorded before stays as it is."""
        if not rows:
            return
        await self.connection.execute(
            f"""
            INSERT INTO {self.schema}.warning_visit ({", ".join(VISIT_COLUMNS)})
            SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::text[],
                                 $5::text[], $6::text[])
            ORDER BY 1
            ON CONFLICT (event_id) DO NOTHING
            """,
            *[list(column) for column in zip(*rows, strict=True)],
        )

    async def copy_visits(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            await self.connection.copy_records_to_table(
                "warning_visit", records=rows, columns=list(VISIT_COLUMNS), schema_name=self.schema
            )

    async def visits(self, event_ids: Iterable[UUID]) -> list[StoredVisit]:
        rows = await self.connection.fetch(
            _VISIT_SELECT.format(schema=self.schema) + " WHERE v.event_id = ANY($1::uuid[])",
            list(event_ids),
        )
        return [visit_of(r) for r in rows]

    async def visits_of_petitioners(self, refs: Iterable[str]) -> list[StoredVisit]:
        rows = await self.connection.fetch(
            _VISIT_SELECT.format(schema=self.schema) + " WHERE v.petitioner_ref = ANY($1::text[])",
            list(refs),
        )
        return [visit_of(r) for r in rows]

    async def visits_in_county(
        self, county_code: str, *, after: datetime, until: datetime
    ) -> list[StoredVisit]:
        """The visits reported for or attributed to the county, dated in (after, until]."""
        rows = await self.connection.fetch(
            _VISIT_SELECT.format(schema=self.schema)
            + """ WHERE (v.reported_county = $1 OR v.county = $1)
                  AND v.occurred_at > $2 AND v.occurred_at <= $3""",
            county_code,
            after,
            until,
        )
        return [visit_of(r) for r in rows]

    async def all_visits(self) -> list[StoredVisit]:
        rows = await self.connection.fetch(_VISIT_SELECT.format(schema=self.schema))
        return [visit_of(r) for r in rows]

    async def set_counties(self, counties: Sequence[tuple[UUID, str | None]]) -> None:
        """The county each visit is attributed to now (none when voided)."""
        if not counties:
            return
        ids, codes = zip(*counties, strict=True)
        await self.connection.execute(
            f"""
            UPDATE {self.schema}.warning_visit v SET county = r.county
            FROM unnest($1::uuid[], $2::text[]) AS r(event_id, county)
            WHERE v.event_id = r.event_id AND v.county IS DISTINCT FROM r.county
            """,
            list(ids),
            list(codes),
        )

    # --- corrections ----------------------------------------------------------------------

    async def corrected_at(self, event_ids: Iterable[UUID]) -> dict[UUID, datetime]:
        """When intake accepted the latest applied correction of each of these events."""
        rows = await self.connection.fetch(
            f"""
            SELECT target_event_id, max(accepted_at) AS accepted_at
            FROM {self.schema}.correction
            WHERE target_event_id = ANY($1::uuid[]) AND state = 'applied'
            GROUP BY target_event_id
            """,
            list(event_ids),
        )
        return {row["target_event_id"]: row["accepted_at"] for row in rows}

    # --- warnings -------------------------------------------------------------------------

    async def warnings_of(
        self,
        *,
        scopes: dict[WarningKind, Iterable[str]],
        naming: Iterable[UUID],
    ) -> list[StoredWarning]:
        """The warnings of these kinds and scopes, and those naming any of these events."""
        kinds, values = [], []
        for kind, scope_values in scopes.items():
            for scope in scope_values:
                kinds.append(kind.value)
                values.append(scope)
        # Two statements, not one with OR: each then uses its index (kind and scope; the GIN
        # index of event_ids), where an OR of the two reads the whole table.
        rows = await self.connection.fetch(
            f"""
            SELECT w.* FROM {self.schema}.warning w
            JOIN unnest($1::text[], $2::text[]) AS wanted(kind, scope)
              ON w.kind = wanted.kind AND w.scope = wanted.scope
            """,
            kinds,
            values,
        )
        named = list(naming)
        if named:
            rows += await self.connection.fetch(
                f"SELECT * FROM {self.schema}.warning WHERE event_ids && $1::uuid[]", named
            )
        found = {row["warning_id"]: row for row in rows}
        return [warning_of(r) for r in found.values()]

    async def all_warnings(self) -> list[StoredWarning]:
        rows = await self.connection.fetch(f"SELECT * FROM {self.schema}.warning")
        return [warning_of(r) for r in rows]

    async def save(self, warnings: Sequence[StoredWarning]) -> None:
        """Each warning inserted or updated, and its change into the warning outbox, in the
        caller's transaction."""
        if not warnings:
            return
        records = [warning_record(w) for w in warnings]
        # unnest cannot take arrays of arrays of different lengths: the named events travel
        # as array literals.
        values = [list(column) for column in zip(*records, strict=True)]
        values[7] = ["{" + ",".join(map(str, ids)) + "}" for ids in values[7]]
        await self._upsert(
            f"""
            SELECT w.warning_id, w.kind, w.unit_code, w.scope, w.cause_at, w.raised_at,
                   w.cleared_at, w.event_ids::uuid[], w.detail::jsonb, w.version
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                        $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[],
                        $10::int[]) AS w({", ".join(WARNING_COLUMNS)})
            """,
            *values,
        )
        await self.connection.copy_records_to_table(
            "warning_outbox",
            records=[(str(w.warning_id).encode(), w.message(), "{}") for w in warnings],
            columns=["key", "value", "headers"],
            schema_name=SCHEMA,
        )

    # A rebuild saves every warning at once. Sending the named events as array literals and
    # the messages one by one would cost several times more: the warnings are COPied into a
    # table of the staging schema (`stage`, on a connection of the rebuild's own, while the
    # swap's transaction works on other things), and the database writes their messages.

    async def stage(self, records: Sequence[tuple[Any, ...]]) -> None:
        """`warning_record`s into this (staging) schema's `saved_warning`, for `save_staged`."""
        await self.connection.execute(f"DROP TABLE IF EXISTS {self.schema}.{STAGED}")
        await self.connection.execute(
            f"CREATE UNLOGGED TABLE {self.schema}.{STAGED} (LIKE {SCHEMA}.warning) "
            "WITH (autovacuum_enabled = false)"
        )
        await self.connection.copy_records_to_table(
            STAGED, records=records, columns=list(WARNING_COLUMNS), schema_name=self.schema
        )

    async def save_staged(self, staging: str) -> None:
        """`save` of the warnings that `stage` put in the schema `staging`."""
        await self._upsert(f"SELECT {', '.join(WARNING_COLUMNS)} FROM {staging}.{STAGED}")
        await self.connection.execute(
            f"""
            INSERT INTO {SCHEMA}.warning_outbox (key, value, headers)
            SELECT convert_to(w.warning_id::text, 'UTF8'),
                   convert_to(({warning_json("w")})::text, 'UTF8'), '{{}}'
            FROM {staging}.{STAGED} w
            ORDER BY w.warning_id
            """
        )

    async def _upsert(self, source: str, *values: Any) -> None:
        columns = ", ".join(WARNING_COLUMNS)
        updated = ", ".join(f"{c} = excluded.{c}" for c in WARNING_COLUMNS[1:])
        await self.connection.execute(
            f"""
            INSERT INTO {self.schema}.warning ({columns})
            {source}
            ON CONFLICT (warning_id) DO UPDATE SET {updated}
            """,
            *values,
        )
