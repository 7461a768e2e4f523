"""The statuses: each (unit, period)'s counts aggregated from its effect rows, recomputed in
one statement per batch under the county locks."""

from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg

from services.evaluation.records import (
    CONTENT,
    COUNTED,
    STATUS_COLUMNS,
    STATUS_SCHEMA_VERSION,
    StatusWindow,
)
from services.evaluation.rules import Criterion
from services.evaluation.schema_repository import SchemaRepository, by_field, listed
from shared.locks import LockName, lock_key

LOCK_COUNTY = "SELECT pg_advisory_xact_lock($1)"
RECOMPUTE_STATUSES = """
    WITH k AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[],
                             $4::timestamptz[]) AS k(unit_code, period, starts_at, ends_at)
    ), fresh AS (
        SELECT k.unit_code, k.period, {aggregates}
        FROM k LEFT JOIN {schema}.effect f
            ON f.unit_code = k.unit_code AND f.criteria <> 0
            AND f.occurred_at >= k.starts_at
            AND (k.ends_at IS NULL OR f.occurred_at < k.ends_at)
        GROUP BY k.unit_code, k.period
    ), changed AS (
        SELECT n.*, coalesce(s.version, 0) + 1 AS version
        FROM fresh n LEFT JOIN {schema}.status s
            ON s.unit_code = n.unit_code AND s.period = n.period
        WHERE CASE WHEN s.unit_code IS NULL THEN cardinality(n.counting_event_ids) > 0
                   ELSE {differs} END
    )
    INSERT INTO {schema}.status AS s ({columns})
    SELECT unit_code, period, cardinality(counting_event_ids) = 0, {content},
           $5, version
    FROM changed
    ON CONFLICT (unit_code, period) DO UPDATE SET
        {updated}
    RETURNING {returned}
"""
STATUSES = "SELECT {columns} FROM {schema}.status ORDER BY unit_code, period"


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


def status_json(alias: str) -> str:
    """The SQL of a status's published value (`live.statuses.message_of`) from a `status` row
    `alias`, for a rebuild to publish every changed row in one statement (a test reads both
    back as the model)."""
    counts = ", ".join(f"'{name}', {alias}.{name}" for name in COUNTED)
    people = ", ".join(f"'{name}', {alias}.{name}_people" for name in COUNTED)
    return (
        f"json_build_object('schema_version', {STATUS_SCHEMA_VERSION}, "
        f"'unit_code', {alias}.unit_code, 'period', {alias}.period, "
        f"'three_no', {alias}.three_no, 'counts', json_build_object({counts}), "
        f"'people', json_build_object({people}), "
        f"'counting_event_ids', {alias}.counting_event_ids, "
        f"'changed_at', {alias}.changed_at, 'version', {alias}.version)"
    )


class StatusRepository(SchemaRepository):
    """The statuses of the schema's `status` table, recomputed from its `effect` rows."""

    async def lock_counties(self, county_codes: Iterable[str]) -> None:
        """Serialise status changes per county; always in code order, so never a deadlock."""
        for code in sorted(set(county_codes)):
            await self.connection.execute(LOCK_COUNTY, lock_key(LockName.evaluation_county, code))

    async def recompute_statuses(
        self, windows: Sequence[StatusWindow], *, now: datetime
    ) -> list[asyncpg.Record]:
        """Recompute the statuses from their effects; store and return those that changed
        (version + 1, changed_at = now). A pair that never counted anything stays without a
        row. Call with the counties locked."""
        if not windows:
            return []
        return await self.connection.fetch(
            RECOMPUTE_STATUSES.format(
                schema=self.schema,
                aggregates=aggregates("f"),
                differs=f"({listed(CONTENT, 's')}) IS DISTINCT FROM ({listed(CONTENT, 'n')})",
                columns=listed(STATUS_COLUMNS),
                content=listed(CONTENT),
                updated=", ".join(f"{c} = excluded.{c}" for c in STATUS_COLUMNS[2:]),
                returned=listed(STATUS_COLUMNS, "s"),
            ),
            *by_field(windows, "unit_code", "period", "starts_at", "ends_at"),
            now,
        )

    async def statuses(self) -> list[asyncpg.Record]:
        return await self.connection.fetch(
            STATUSES.format(schema=self.schema, columns=listed(STATUS_COLUMNS))
        )
