"""The SQL of the early warnings: the visits they read (`warning_visit` beside `event`), the
warnings raised and cleared, and their outbox (migration 0005_evaluation)."""

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.evaluation.models import SCHEMA, warning_outbox
from services.evaluation.schema_repository import SchemaRepository
from services.evaluation.warnings.records import (
    SCHEMA_VERSION,
    VISIT_COLUMNS,
    WARNING_COLUMNS,
    StoredVisit,
    StoredWarning,
    VisitMoment,
    visit_of,
    warning_of,
    warning_record,
)
from shared.early_warning import WarningKind
from shared.outbox.repository import OutboxMessage, append

STAGED = "saved_warning"  # `stage`'s table
SAVED_AT_ONCE = 2000  # warnings a statement saves (see `WarningRepository.save`)

ADD_VISITS = """
    INSERT INTO {schema}.warning_visit ({columns})
    SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::text[],
                         $5::text[], $6::text[])
    ORDER BY 1
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
"""
VISITS = """
    SELECT v.event_id, v.accepted_at, v.petitioner_ref, e.unit_code, e.attributed_code,
           e.voided, e.occurred_at, e.destination, e.headcount
    FROM {schema}.warning_visit v JOIN {schema}.event e ON e.event_id = v.event_id
"""  # in the order of `StoredVisit`'s fields
VISITS_NAMED = VISITS + " WHERE v.event_id = ANY($1::uuid[])"
CORRECTED_VISITS = VISITS + " WHERE e.voided OR e.attributed_code <> e.unit_code"
# Every visit (as `VISITS`), then the county it was reported for; in the order of those counties.
VISITS_BY_REPORTED_COUNTY = """
    SELECT v.event_id, v.accepted_at, v.petitioner_ref, e.unit_code, e.attributed_code,
           e.voided, e.occurred_at, e.destination, e.headcount, v.reported_county
    FROM {schema}.warning_visit v JOIN {schema}.event e ON e.event_id = v.event_id
    ORDER BY v.reported_county
"""
VISITS_OF_PETITIONERS = VISITS + " WHERE v.petitioner_ref = ANY($1::text[])"
ACCEPTED_AT = """
    SELECT event_id, accepted_at FROM {schema}.warning_visit WHERE event_id = ANY($1::uuid[])
"""
# As the rising rule reads a visit (`VisitMoment`): its moment in microseconds since the epoch.
VISIT_MOMENTS_IN_COUNTY = """
    SELECT v.event_id, e.unit_code, e.attributed_code, e.voided,
           (extract(epoch FROM e.occurred_at) * 1000000)::int8
    FROM {schema}.warning_visit v JOIN {schema}.event e ON e.event_id = v.event_id
    WHERE (v.reported_county = $1 OR v.county = $1)
      AND v.occurred_at > $2 AND v.occurred_at <= $3
    ORDER BY e.occurred_at, e.event_id
"""
SET_COUNTIES = """
    UPDATE {schema}.warning_visit v SET county = r.county
    FROM unnest($1::uuid[], $2::text[]) AS r(event_id, county)
    WHERE v.event_id = r.event_id AND v.county IS DISTINCT FROM r.county
"""
CORRECTED_AT = """
    SELECT target_event_id, max(accepted_at) AS accepted_at
    FROM {schema}.correction
    WHERE target_event_id = ANY($1::uuid[]) AND state = 'applied'
    GROUP BY target_event_id
"""
WARNINGS_IN_SCOPES = """
    SELECT w.* FROM {schema}.warning w
    JOIN unnest($1::text[], $2::text[]) AS wanted(kind, scope)
      ON w.kind = wanted.kind AND w.scope = wanted.scope
"""
# Not the warnings (a rising one names a month of a unit's visits), only which of these visits
# each names: the GIN index of event_ids finds them.
UNITS_OF_RISING_NAMING = """
    WITH asked AS (SELECT DISTINCT unnest($1::uuid[]) AS event_id)
    SELECT DISTINCT asked.event_id, w.unit_code
    FROM {schema}.warning w
    CROSS JOIN LATERAL unnest(w.event_ids) AS named(event_id)
    JOIN asked ON asked.event_id = named.event_id
    WHERE w.kind = 'rising' AND w.event_ids && $1::uuid[]
"""
RISING_CAUSED_IN = """
    SELECT w.* FROM {schema}.warning w
    JOIN unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS s(scope, since, until)
      ON w.kind = 'rising' AND w.scope = s.scope AND w.cause_at BETWEEN s.since AND s.until
"""
ALL_WARNINGS = "SELECT * FROM {schema}.warning"
UPSERT_WARNINGS = """
    INSERT INTO {schema}.warning ({columns})
    {source}
    ON CONFLICT (warning_id) DO UPDATE SET {updated}
"""
WARNINGS_FROM_ARRAYS = """
    SELECT w.warning_id, w.kind, w.unit_code, w.scope, w.cause_at, w.raised_at,
           w.cleared_at, w.event_ids::uuid[], w.detail::jsonb, w.version
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[],
                $10::int[]) AS w({columns})
"""
WARNINGS_STAGED = "SELECT {columns} FROM {staging}.{staged}"
DROP_STAGED = "DROP TABLE IF EXISTS {schema}.{staged}"
CREATE_STAGED = (
    "CREATE UNLOGGED TABLE {schema}.{staged} (LIKE {live}.warning) "
    "WITH (autovacuum_enabled = false)"
)
PUBLISH_STAGED = """
    INSERT INTO {live}.warning_outbox (key, value, headers)
    SELECT convert_to(w.warning_id::text, 'UTF8'),
           convert_to(({message})::text, 'UTF8'), '{{}}'
    FROM {staging}.{staged} w
    ORDER BY w.warning_id
"""


def warning_json(alias: str) -> str:
    """The SQL of `StoredWarning.message` as published, from a `warning` row `alias`, for a
    rebuild to publish every warning in one statement."""
    return (
        f"json_build_object('schema_version', {SCHEMA_VERSION}, "
        f"'warning_id', {alias}.warning_id, 'kind', {alias}.kind, "
        f"'unit_code', {alias}.unit_code, 'raised_at', {alias}.raised_at, "
        f"'cleared_at', {alias}.cleared_at, 'event_ids', {alias}.event_ids, "
        f"'detail', {alias}.detail, 'version', {alias}.version)"
    )


class WarningRepository(SchemaRepository):
    # --- visits ---------------------------------------------------------------------------

    async def add_visits(self, rows: Sequence[tuple[Any, ...]]) -> set[UUID]:
        """Rows in VISIT_COLUMNS order; a visit recorded before stays as it is. Returns the
        ids of the visits recorded now."""
        if not rows:
            return set()
        added = await self.connection.fetch(
            ADD_VISITS.format(schema=self.schema, columns=", ".join(VISIT_COLUMNS)),
            *[list(column) for column in zip(*rows, strict=True)],
        )
        return {row["event_id"] for row in added}

    async def copy_visits(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            await self.connection.copy_records_to_table(
                "warning_visit", records=rows, columns=list(VISIT_COLUMNS), schema_name=self.schema
            )

    async def visits(self, event_ids: Iterable[UUID]) -> list[StoredVisit]:
        rows = await self.connection.fetch(VISITS_NAMED.format(schema=self.schema), list(event_ids))
        return [visit_of(r) for r in rows]

    async def accepted_at(self, event_ids: Iterable[UUID]) -> dict[UUID, datetime]:
        """When intake accepted each of these visits."""
        rows = await self.connection.fetch(ACCEPTED_AT.format(schema=self.schema), list(event_ids))
        return {row["event_id"]: row["accepted_at"] for row in rows}

    async def visits_of_petitioners(self, refs: Iterable[str]) -> list[StoredVisit]:
        rows = await self.connection.fetch(
            VISITS_OF_PETITIONERS.format(schema=self.schema), list(refs)
        )
        return [visit_of(r) for r in rows]

    async def visit_moments_in_county(
        self, county_code: str, *, after: datetime, until: datetime
    ) -> list[VisitMoment]:
        """The visits reported for or attributed to the county, dated in (after, until], as the
        rising rule reads them, in order (of their moments, then ids)."""
        rows = await self.connection.fetch(
            VISIT_MOMENTS_IN_COUNTY.format(schema=self.schema), county_code, after, until
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def corrected_visits(self) -> list[StoredVisit]:
        """The visits voided or attributed to another unit than reported for."""
        rows = await self.connection.fetch(CORRECTED_VISITS.format(schema=self.schema))
        return [visit_of(r) for r in rows]

    async def visits_by_county(
        self, *, chunk: int = 20_000
    ) -> AsyncIterator[tuple[str, list[StoredVisit]]]:
        """Every visit, a county at a time: those reported for it, with the county's code.
        Fetched `chunk` rows at a time through a cursor, so that no more than a county and a
        chunk are held at once."""
        county = ""  # no county's code is empty
        visits: list[StoredVisit] = []
        # A cursor of its own, closed at the end: the swap's transaction alters these tables
        # afterwards, which no open cursor on them allows.
        query = VISITS_BY_REPORTED_COUNTY.format(schema=self.schema)
        async with self.connection.transaction():  # a cursor lives in one
            await self.connection.execute(f"DECLARE visits_by_county NO SCROLL CURSOR FOR {query}")
            try:
                while rows := await self.connection.fetch(
                    f"FETCH FORWARD {int(chunk)} FROM visits_by_county"
                ):
                    for row in rows:
                        if row[9] != county:
                            if visits:
                                yield county, visits
                            county, visits = row[9], []
                        visits.append(StoredVisit(*row[:9]))
            finally:
                await self.connection.execute("CLOSE visits_by_county")
        if visits:
            yield county, visits

    async def set_counties(self, counties: Sequence[tuple[UUID, str | None]]) -> None:
        """The county each visit is attributed to now (none when voided)."""
        if not counties:
            return
        ids, codes = zip(*counties, strict=True)
        await self.connection.execute(
            SET_COUNTIES.format(schema=self.schema), list(ids), list(codes)
        )

    # --- corrections ----------------------------------------------------------------------

    async def corrected_at(self, event_ids: Iterable[UUID]) -> dict[UUID, datetime]:
        """When intake accepted the latest applied correction of each of these events."""
        rows = await self.connection.fetch(CORRECTED_AT.format(schema=self.schema), list(event_ids))
        return {row["target_event_id"]: row["accepted_at"] for row in rows}

    # --- warnings -------------------------------------------------------------------------

    async def warnings_of(self, scopes: dict[WarningKind, Iterable[str]]) -> list[StoredWarning]:
        """The warnings of these kinds and scopes."""
        kinds, values = [], []
        for kind, scope_values in scopes.items():
            for scope in scope_values:
                kinds.append(kind.value)
                values.append(scope)
        rows = await self.connection.fetch(
            WARNINGS_IN_SCOPES.format(schema=self.schema), kinds, values
        )
        return [warning_of(r) for r in {row["warning_id"]: row for row in rows}.values()]

    async def units_of_rising_naming(self, event_ids: Iterable[UUID]) -> dict[UUID, set[str]]:
        """For each of these events that a rising warning names, the units of those warnings."""
        ids = list(event_ids)
        if not ids:
            return {}
        rows = await self.connection.fetch(UNITS_OF_RISING_NAMING.format(schema=self.schema), ids)
        units: dict[UUID, set[str]] = {}
        for row in rows:
            units.setdefault(row["event_id"], set()).add(row["unit_code"])
        return units

    async def rising_warnings_caused_in(
        self, spans: Mapping[str, tuple[datetime, datetime]]
    ) -> list[StoredWarning]:
        """The rising warnings of each unit of `spans` whose cause is dated in its [since,
        until]."""
        if not spans:
            return []
        units = list(spans)
        rows = await self.connection.fetch(
            RISING_CAUSED_IN.format(schema=self.schema),
            units,
            [spans[u][0] for u in units],
            [spans[u][1] for u in units],
        )
        return [warning_of(r) for r in {row["warning_id"]: row for row in rows}.values()]

    async def all_warnings(self) -> list[StoredWarning]:
        rows = await self.connection.fetch(ALL_WARNINGS.format(schema=self.schema))
        return [warning_of(r) for r in rows]

    async def save(self, warnings: Sequence[StoredWarning]) -> None:
        """Each warning inserted or updated, and its change into the warning outbox, in the
        caller's transaction. A batch usually changes a few; one that changes a whole county's
        at national size is saved `SAVED_AT_ONCE` at a time, so that its rows and messages are
        never all in memory together."""
        for first in range(0, len(warnings), SAVED_AT_ONCE):
            await self._save(warnings[first : first + SAVED_AT_ONCE])

    async def _save(self, warnings: Sequence[StoredWarning]) -> None:
        records = [warning_record(w) for w in warnings]
        # unnest cannot take arrays of arrays of different lengths: the named events travel
        # as array literals.
        values = [list(column) for column in zip(*records, strict=True)]
        values[7] = ["{" + ",".join(map(str, ids)) + "}" for ids in values[7]]
        await self._upsert(WARNINGS_FROM_ARRAYS.format(columns=", ".join(WARNING_COLUMNS)), *values)
        await append(  # one statement: a batch changes a few warnings, where COPY costs two
            self.connection, warning_outbox, [outbox_message(w) for w in warnings]
        )

    # A rebuild saves every warning at once. Sending the named events as array literals and
    # the messages one by one would cost several times more: the warnings are COPied into a
    # table of the staging schema (`stage`, on a connection of the rebuild's own, while the
    # swap's transaction works on other things), and the database writes their messages.

    async def stage(
        self, records: Iterable[tuple[Any, ...]] | AsyncIterable[tuple[Any, ...]]
    ) -> None:
        """`warning_record`s into this (staging) schema's `saved_warning`, for `save_staged`."""
        await self.connection.execute(DROP_STAGED.format(schema=self.schema, staged=STAGED))
        await self.connection.execute(
            CREATE_STAGED.format(schema=self.schema, staged=STAGED, live=SCHEMA)
        )
        await self.connection.copy_records_to_table(
            STAGED, records=records, columns=list(WARNING_COLUMNS), schema_name=self.schema
        )

    async def save_staged(self, staging: str) -> None:
        """`save` of the warnings that `stage` put in the schema `staging`."""
        await self._upsert(
            WARNINGS_STAGED.format(
                columns=", ".join(WARNING_COLUMNS), staging=staging, staged=STAGED
            )
        )
        await self.connection.execute(
            PUBLISH_STAGED.format(
                live=SCHEMA, message=warning_json("w"), staging=staging, staged=STAGED
            )
        )

    async def _upsert(self, source: str, *values: Any) -> None:
        await self.connection.execute(
            UPSERT_WARNINGS.format(
                schema=self.schema,
                columns=", ".join(WARNING_COLUMNS),
                source=source,
                updated=", ".join(f"{c} = excluded.{c}" for c in WARNING_COLUMNS[1:]),
            ),
            *values,
        )


def outbox_message(warning: StoredWarning) -> OutboxMessage:
    """The warning's message as the outbox keeps it (its model only for as long as that takes)."""
    message = warning.message()
    return OutboxMessage(message.key, message.model_dump_json().encode(), {})
