"""The SQL of a rebuild: fresh tables in a schema of their own, loaded by COPY, statuses
aggregated in one statement, then given the live history and swapped in."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from services.evaluation.config import EvaluationSettings
from services.evaluation.live.repository.indicators import (
    any_content,
    indicator_aggregates,
    indicator_json,
)
from services.evaluation.live.repository.statuses import aggregates, status_json
from services.evaluation.models import REBUILT_TABLES, SCHEMA, tables_in
from services.evaluation.records import (
    CONTENT,
    INDICATOR_COLUMNS,
    INDICATOR_CONTENT,
    STATUS_COLUMNS,
)
from services.evaluation.schema_repository import SchemaRepository, listed
from shared import database_roles
from shared.db import asyncpg_dsn
from shared.locks import LockName, lock_key
from shared.repository import rows_affected

STAGING = "evaluation_rebuild"
# Held for the whole rebuild (session level): one rebuild at a time.
RUNNING_LOCK = lock_key(LockName.evaluation_rebuild)
INDEXED_AFTER_LOAD = {
    "ix_event_attributed_code",
    "ix_effect_unit_code_occurred_at",
    "ix_effect_occurred_at",
    "ix_warning_visit_petitioner_ref",
    "ix_warning_visit_reported_county_occurred_at",
    "ix_warning_visit_county_occurred_at",
}

TRY_LOCK_RUNNING = "SELECT pg_try_advisory_lock($1)"
CREATE_SCHEMA = "CREATE SCHEMA {schema}"
DROP_SCHEMA = "DROP SCHEMA IF EXISTS {schema} CASCADE"
NO_AUTOVACUUM = "ALTER TABLE {schema}.{table} SET (autovacuum_enabled = false)"
SHOW_INDEX_WORKERS = "SHOW max_parallel_maintenance_workers"
SET_INDEX_WORKERS = "SET max_parallel_maintenance_workers = {workers}"
STORED_IDS = """
    SELECT event_id FROM {staging}.event WHERE known AND event_id = ANY($1::uuid[])
    UNION ALL
    SELECT event_id FROM {staging}.correction WHERE event_id = ANY($1::uuid[])
"""
ANALYZE = "ANALYZE {staging}.{table}"
COMPUTE_STATUSES = """
    WITH fresh AS (
        SELECT f.unit_code, p.period, {aggregates}
        FROM {staging}.effect f
        JOIN unnest($1::text[], $2::timestamptz[], $3::timestamptz[])
            AS p(period, starts_at, ends_at)
            ON f.occurred_at >= p.starts_at
            AND (p.ends_at IS NULL OR f.occurred_at < p.ends_at)
        WHERE f.criteria <> 0
        GROUP BY f.unit_code, p.period
    )
    INSERT INTO {staging}.status ({columns})
    SELECT n.unit_code, n.period, false, {content}, {changed_at}, {version}
    FROM fresh n
    LEFT JOIN {live}.status o ON o.unit_code = n.unit_code AND o.period = n.period
"""
COMPUTE_INDICATORS = """
    WITH fresh AS (
        SELECT f.unit_code, p.period, {aggregates}
        FROM {staging}.effect f
        JOIN unnest($1::text[], $2::timestamptz[], $3::timestamptz[])
            AS p(period, starts_at, ends_at)
            ON f.occurred_at >= p.starts_at
            AND (p.ends_at IS NULL OR f.occurred_at < p.ends_at)
        WHERE f.criteria = 0
        GROUP BY f.unit_code, p.period
    )
    INSERT INTO {staging}.indicators ({columns})
    SELECT n.unit_code, n.period, {content},
           {changed_at}, {version}
    FROM fresh n
    LEFT JOIN {live}.indicators o ON o.unit_code = n.unit_code AND o.period = n.period
"""
DIFFERENCES = """
    SELECT coalesce(n.unit_code, o.unit_code) AS unit_code,
           coalesce(n.period, o.period) AS period
    FROM {staging}.{table} n
    FULL JOIN {live}.{table} o ON o.unit_code = n.unit_code AND o.period = n.period
    WHERE CASE WHEN n.unit_code IS NULL THEN {held}
               WHEN o.unit_code IS NULL THEN true
               ELSE ({new_content}) IS DISTINCT FROM ({live_content})
          END
"""
PUBLISH_CHANGES = """
    WITH changed AS (
        INSERT INTO {live}.{outbox} (key, value, headers)
        SELECT convert_to(n.unit_code || ':' || n.period, 'UTF8'),
               convert_to(({message})::text, 'UTF8'), '{{}}'
        FROM {staging}.{table} n
        LEFT JOIN {live}.{table} o
            ON o.unit_code = n.unit_code AND o.period = n.period
        WHERE o.unit_code IS NULL OR n.version <> o.version
        ORDER BY n.unit_code, n.period
        RETURNING key
    )
    {result}
"""
CHANGED_KEYS = "SELECT convert_from(key, 'UTF8') AS key FROM changed"
CHANGED_COUNT = "SELECT count(*) FROM changed"
KEEP_LIVE_ROWS = """
    INSERT INTO {staging}.{table} ({columns})
    SELECT unit_code, period, {cleared}, changed_at, version - 1
    FROM {live}.{table}
    ON CONFLICT (unit_code, period) DO NOTHING
"""
MERGE_HISTORY = """
    UPDATE {staging}.{table} s SET (changed_at, version) = (c.changed_at, c.version)
    FROM (
        SELECT n.unit_code, n.period, {changed_at} AS changed_at, {version} AS version
        FROM {staging}.{table} n
        LEFT JOIN {live}.{table} o ON o.unit_code = n.unit_code AND o.period = n.period
    ) c
    WHERE c.unit_code = s.unit_code AND c.period = s.period
      AND (s.changed_at, s.version) IS DISTINCT FROM (c.changed_at, c.version)
"""
RETIRE = "ALTER TABLE {live}.{table} SET SCHEMA {retired}"
MOVE_IN = "ALTER TABLE {staging}.{table} SET SCHEMA {live}"
RESET_AUTOVACUUM = "ALTER TABLE {live}.{table} RESET (autovacuum_enabled)"


async def rebuild_connection(settings: EvaluationSettings) -> asyncpg.Connection:
    """A connection of the rebuild's own, with its sort memory (`rebuild_sort_memory`)."""
    memory = settings.rebuild_sort_memory
    return await asyncpg.connect(
        asyncpg_dsn(settings.database_url),
        server_settings={"work_mem": memory, "maintenance_work_mem": memory},
    )


def staging_ddl(*, after_load: bool = False) -> list[str]:
    """The rebuilt tables exactly as `models` defines them, in the staging schema; with
    `after_load`, the indexes built once the rows are in (one sort costs less than keeping
    them up to date row by row through the COPY)."""
    dialect = postgresql.dialect()
    tables = tables_in(STAGING)
    statements = []
    for name in REBUILT_TABLES:
        if not after_load:
            statements.append(str(CreateTable(tables[name]).compile(dialect=dialect)))
        statements += [
            str(CreateIndex(i).compile(dialect=dialect))
            for i in tables[name].indexes
            if (i.name in INDEXED_AFTER_LOAD) == after_load
        ]
    return statements


def history(new: str, now: str, *, content: Sequence[str] = CONTENT) -> tuple[str, str]:
    """changed_at and version of a rebuilt row `new` against the live one `o` (joined on
    the same key, or null): unchanged keeps both, changed takes the next version."""
    changed = (
        f"(o.unit_code IS NULL OR ({listed(content, new)}) "
        f"IS DISTINCT FROM ({listed(content, 'o')}))"
    )
    return (
        f"CASE WHEN {changed} THEN {now} ELSE o.changed_at END",
        f"CASE WHEN {changed} THEN coalesce(o.version, 0) + 1 ELSE o.version END",
    )


class RebuildRepository(SchemaRepository):
    """The SQL of a rebuild: fresh tables in a schema of their own (`schema`, the staging
    one), loaded by COPY, statuses aggregated in one statement, then given the live history
    and swapped in."""

    @property
    def staging(self) -> str:
        return self.schema

    @property
    def retired(self) -> str:
        return f"{self.schema}_retired"

    async def try_lock_running(self) -> bool:
        """Take the running lock for as long as the connection lives; false if another
        rebuild holds it."""
        return bool(await self.connection.fetchval(TRY_LOCK_RUNNING, RUNNING_LOCK))

    async def create_staging(self, ddl: Sequence[str]) -> None:
        await self.drop_staging()
        await self.connection.execute(CREATE_SCHEMA.format(schema=self.staging))
        await self.execute_ddl(ddl)
        # Autovacuum would vacuum the loaded tables while the rebuild needs every core, and
        # the swap would wait a second per table for it to give way; `swap` turns it back on.
        for table in REBUILT_TABLES:
            await self.connection.execute(NO_AUTOVACUUM.format(schema=self.staging, table=table))

    async def limit_index_workers(self, workers: int) -> None:
        """At most `workers` parallel workers per index build (never more than the server's
        own setting)."""
        allowed = int(await self.connection.fetchval(SHOW_INDEX_WORKERS))
        await self.connection.execute(SET_INDEX_WORKERS.format(workers=min(workers, allowed)))

    async def execute_ddl(self, ddl: Sequence[str]) -> None:
        for statement in ddl:
            await self.connection.execute(statement)

    async def drop_staging(self) -> None:
        await self.connection.execute(DROP_SCHEMA.format(schema=self.staging))
        await self.connection.execute(DROP_SCHEMA.format(schema=self.retired))

    async def copy(
        self, table: str, *, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        if rows:
            await self.connection.copy_records_to_table(
                table, records=rows, columns=list(columns), schema_name=self.staging
            )

    async def stored_ids(self, event_ids: Sequence[UUID]) -> set[UUID]:
        """Those of `event_ids` whose event or correction the staging tables have (not the
        placeholders of targets that never came)."""
        if not event_ids:
            return set()
        rows = await self.connection.fetch(STORED_IDS.format(staging=self.staging), list(event_ids))
        return {row["event_id"] for row in rows}

    async def analyze(self) -> None:
        """Statistics for the loaded tables: the rebuild's own statements need them, and the
        live batches after the swap (the visits the warnings read, among them)."""
        for table in ("event", "correction", "effect", "warning_visit"):
            await self.connection.execute(ANALYZE.format(staging=self.staging, table=table))

    async def compute_statuses(
        self, periods: Sequence[tuple[str, datetime, datetime | None]], *, now: datetime
    ) -> int:
        """Every (unit, period) with an effect in the period, aggregated in one pass, with the
        history of the live status as it is now (`merge_history` brings it up to date)."""
        statement = COMPUTE_STATUSES.format(
            aggregates=aggregates("f"),
            columns=listed(STATUS_COLUMNS),
            **self._with_history(CONTENT),
        )
        return await self._compute(statement, periods, now=now)

    async def compute_indicators(
        self, periods: Sequence[tuple[str, datetime, datetime | None]], *, now: datetime
    ) -> int:
        """Every (unit, period) with a work record in the period, like `compute_statuses`."""
        statement = COMPUTE_INDICATORS.format(
            aggregates=indicator_aggregates("f"),
            columns=listed(INDICATOR_COLUMNS),
            **self._with_history(INDICATOR_CONTENT),
        )
        return await self._compute(statement, periods, now=now)

    def _with_history(self, content: Sequence[str]) -> dict[str, str]:
        changed_at, version = history("n", "$4::timestamptz", content=content)
        return {
            "staging": self.staging,
            "live": SCHEMA,
            "content": listed(content, "n"),
            "changed_at": changed_at,
            "version": version,
        }

    async def _compute(
        self,
        statement: str,
        periods: Sequence[tuple[str, datetime, datetime | None]],
        *,
        now: datetime,
    ) -> int:
        result = await self.connection.execute(
            statement,
            [p[0] for p in periods],
            [p[1] for p in periods],
            [p[2] for p in periods],
            now,
        )
        return rows_affected(result)

    async def differences(self) -> list[tuple[str, str]]:
        """The (unit, period) pairs whose rebuilt status or indicators differ from the live
        ones."""
        statuses = await self._differences("status", content=CONTENT, held="NOT o.three_no")
        indicators = await self._differences(
            "indicators", content=INDICATOR_CONTENT, held=any_content("o")
        )
        return sorted(set(statuses) | set(indicators))

    async def _differences(
        self, table: str, *, content: Sequence[str], held: str
    ) -> list[tuple[str, str]]:
        """`held`: whether a live row `o` holds anything (else no rebuilt row is its equal)."""
        rows = await self.connection.fetch(
            DIFFERENCES.format(
                staging=self.staging,
                live=SCHEMA,
                table=table,
                held=held,
                new_content=listed(content, "n"),
                live_content=listed(content, "o"),
            )
        )
        return [(row["unit_code"], row["period"]) for row in rows]

    async def merge_history(self, *, now: datetime) -> list[tuple[str, str]]:
        """Under the rebuild lock: bring the history up to date with the live statuses (they
        kept changing while the rebuild ran). A pair that never counts anything any more keeps
        its row, clean. The statuses that differ from the live ones go into the outbox;
        returns their (unit, period)."""
        zeros = ", ".join("0" for _ in CONTENT[:-1])
        await self._merge_history(
            "status",
            columns=STATUS_COLUMNS,
            content=CONTENT,
            cleared=f"true, {zeros}, '{{}}'",
            now=now,
        )
        rows = await self.connection.fetch(
            self._publishing("status", "outbox", status_json("n"), CHANGED_KEYS)
        )
        return [(unit_code, period) for unit_code, period in (r["key"].split(":", 1) for r in rows)]

    async def merge_indicator_history(self, *, now: datetime) -> int:
        """`merge_history` for the indicators: a pair without work records any more keeps its
        row, empty. The indicators that differ from the live ones go into the indicator
        outbox; returns how many (a national rebuild publishes more than half a million, and
        their keys alone took 200 MiB in Python)."""
        zeros = ", ".join("0" for _ in INDICATOR_CONTENT[1:])
        await self._merge_history(
            "indicators",
            columns=INDICATOR_COLUMNS,
            content=INDICATOR_CONTENT,
            cleared=f"'{{}}', {zeros}",
            now=now,
        )
        published: int = await self.connection.fetchval(
            self._publishing("indicators", "indicator_outbox", indicator_json("n"), CHANGED_COUNT)
        )
        return published

    def _publishing(self, table: str, outbox: str, message: str, result: str) -> str:
        """The statement that puts each rebuilt row `n` of `table` whose version differs from
        the live one's into `outbox`, its message `message` written by the database (a rebuild
        may publish one per village: no row travels through Python), keyed by
        `shared.status.status_key`; `result` selects from the keys `changed`."""
        return PUBLISH_CHANGES.format(
            staging=self.staging,
            live=SCHEMA,
            table=table,
            outbox=outbox,
            message=message,
            result=result,
        )

    async def _merge_history(
        self,
        table: str,
        *,
        columns: Sequence[str],
        content: Sequence[str],
        cleared: str,
        now: datetime,
    ) -> None:
        """`columns`: (unit_code, period, ..., changed_at, version), of which `content` is
        compared; `cleared`: the columns between period and changed_at of a pair that has
        nothing any more."""
        await self.connection.execute(
            KEEP_LIVE_ROWS.format(
                staging=self.staging,
                live=SCHEMA,
                table=table,
                columns=listed(columns),
                cleared=cleared,
            )
        )
        changed_at, version = history("n", "$1::timestamptz", content=content)
        await self.connection.execute(
            MERGE_HISTORY.format(
                staging=self.staging,
                live=SCHEMA,
                table=table,
                changed_at=changed_at,
                version=version,
            ),
            now,
        )

    async def swap(self, tables: Sequence[str]) -> None:
        """Put the rebuilt tables in place of the live ones (call holding the rebuild lock).
        Moving tables between schemas is instant; the old ones are dropped afterwards by
        `drop_staging`, outside the lock."""
        await self.connection.execute(CREATE_SCHEMA.format(schema=self.retired))
        for table in tables:
            await self.connection.execute(
                RETIRE.format(live=SCHEMA, table=table, retired=self.retired)
            )
            await self.connection.execute(
                MOVE_IN.format(staging=self.staging, table=table, live=SCHEMA)
            )
            await self.connection.execute(RESET_AUTOVACUUM.format(live=SCHEMA, table=table))
        for statement in database_roles.rights_on(SCHEMA):
            await self.connection.execute(statement)
