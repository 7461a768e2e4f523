"""A rebuild's fresh copies of the read model's tables: filled from the topics, topped up with
what the running consumers applied meanwhile, and swapped in. In a session
(`await RebuildRepository.from_session(session)`)."""

from collections.abc import Sequence

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.models import (
    COUNTS,
    FIGURE_COLUMNS,
    INDICATORS,
    PATH_LEVELS,
    SCHEMA,
    STATUS,
    WARNINGS,
    counts_table,
    early_warnings,
    indicators_table,
    path_column,
    status_changes,
    status_table,
    unit_indicators,
    unit_status,
    warning_changes,
    warnings_table,
)
from services.reporting.readmodel import StoredStatus
from services.reporting.records import StoredIndicators, StoredWarning
from services.reporting.repository.indicators import KEYS as INDICATOR_KEYS
from services.reporting.repository.indicators import SAVED_COLUMNS as INDICATOR_COLUMNS
from services.reporting.repository.indicators import indicator_rows
from services.reporting.repository.statements import listed, upsert_newer_sql
from services.reporting.repository.warnings import SAVED_COLUMNS as WARNING_COLUMNS
from services.reporting.repository.warnings import newest_per_warning, warning_row
from shared import database_roles
from shared.repository import Repository, rows_affected

STAGING_SUFFIX = "_rebuild"
STAGED_STATUS = STATUS + STAGING_SUFFIX
STAGED_COUNTS = COUNTS + STAGING_SUFFIX
STAGED_INDICATORS = INDICATORS + STAGING_SUFFIX
STAGED_WARNINGS = WARNINGS + STAGING_SUFFIX
STATUS_KEYS = ("unit_code", "period")
STATUS_COLUMNS = tuple(c.name for c in unit_status.columns)
PATHS = tuple(path_column(level) for level in PATH_LEVELS)
FED = ("unit_code", "period", "level", "three_no", "version", "changed_at", *PATHS)


def merge_newer_sql(*, live: str, staging: str, columns: Sequence[str], keys: str) -> str:
    """Rows the running consumers applied after the topic was read for the rebuild."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys.split(", "))
    return (
        f"INSERT INTO {SCHEMA}.{staging} ({listed(columns)}) "
        f"SELECT {listed(columns)} FROM {SCHEMA}.{live} "
        f"ON CONFLICT ({keys}) DO UPDATE SET {updates} "
        f"WHERE excluded.version > {staging}.version"
    )


def swap_sql(*, live: str, staging: str) -> list[str]:
    """Replace the live table by the staging one and give it the live names."""
    return [
        f"DROP TABLE {SCHEMA}.{live}",
        f"ALTER TABLE {SCHEMA}.{staging} RENAME TO {live}",
        f"ALTER TABLE {SCHEMA}.{live} RENAME CONSTRAINT pk_{staging} TO pk_{live}",
    ]


KEEP_NEWEST_SQL = upsert_newer_sql(
    f"{SCHEMA}.{STAGED_STATUS}",
    tuple(c for c in STATUS_COLUMNS if c != "applied_at"),
    keys=STATUS_KEYS,
)
MERGE_NEWER_STATUSES_SQL = merge_newer_sql(
    live=STATUS, staging=STAGED_STATUS, columns=STATUS_COLUMNS, keys="unit_code, period"
)
# Feed rows for every status the live read model lacked or had older.
APPEND_MISSED_CHANGES_SQL = (
    f"INSERT INTO {status_changes.fullname} (seq, {listed(FED)}) "
    f"SELECT (SELECT coalesce(max(seq), 0) FROM {status_changes.fullname}) "
    f"+ row_number() OVER (ORDER BY s.changed_at, s.unit_code, s.period), {listed(FED, 's')} "
    f"FROM {SCHEMA}.{STAGED_STATUS} s "
    f"LEFT JOIN {SCHEMA}.{STATUS} l USING (unit_code, period) "
    f"WHERE l.unit_code IS NULL OR l.version < s.version"
)
COUNT_STAGED_SQL = (
    f"INSERT INTO {SCHEMA}.{STAGED_COUNTS} "
    f"(ancestor_code, period, level, not_clean, {listed(FIGURE_COLUMNS)}) "
    f"SELECT a.code, s.period, s.level, count(*) FILTER (WHERE NOT s.three_no), "
    f"{', '.join(f'sum(s.{name})' for name in FIGURE_COLUMNS)} "
    f"FROM {SCHEMA}.{STAGED_STATUS} s "
    f"CROSS JOIN LATERAL unnest(ARRAY[{listed(PATHS, 's')}]) AS a(code) "
    f"WHERE a.code IS NOT NULL GROUP BY a.code, s.period, s.level"
)
SWAP_STATUSES_SQL = [
    *swap_sql(live=STATUS, staging=STAGED_STATUS),
    *swap_sql(live=COUNTS, staging=STAGED_COUNTS),
]

STAGE_INDICATORS_SQL = upsert_newer_sql(
    f"{SCHEMA}.{STAGED_INDICATORS}", INDICATOR_COLUMNS, keys=INDICATOR_KEYS
)
STAGE_WARNINGS_SQL = upsert_newer_sql(
    f"{SCHEMA}.{STAGED_WARNINGS}", WARNING_COLUMNS, keys=("warning_id",)
)
MERGE_NEWER_RECORDS_SQL = [
    merge_newer_sql(
        live=INDICATORS,
        staging=STAGED_INDICATORS,
        columns=[c.name for c in unit_indicators.columns],
        keys="unit_code, period",
    ),
    merge_newer_sql(
        live=WARNINGS,
        staging=STAGED_WARNINGS,
        columns=[c.name for c in early_warnings.columns],
        keys="warning_id",
    ),
]
FED_VERSIONS_SQL = f"""
    SELECT warning_id, max(version) AS version FROM {warning_changes.fullname}
    WHERE warning_id = ANY($1::uuid[]) GROUP BY warning_id
"""
SWAP_RECORDS_SQL = [
    *swap_sql(live=INDICATORS, staging=STAGED_INDICATORS),
    *swap_sql(live=WARNINGS, staging=STAGED_WARNINGS),
]


def _staging_metadata() -> sa.MetaData:
    return sa.MetaData(schema=SCHEMA, naming_convention=unit_status.metadata.naming_convention)


class RebuildRepository(Repository):
    """Fresh copies of the status and count tables."""

    def __init__(self, connection: asyncpg.Connection, *, session: AsyncSession | None = None):
        super().__init__(connection, session=session)
        meta = _staging_metadata()
        self.status = status_table(STAGED_STATUS, meta)
        self.counts = counts_table(STAGED_COUNTS, meta)

    async def create_staging(self) -> None:
        await _create(self.session, self.status, self.counts)

    async def keep_newest(self, statuses: Sequence[StoredStatus]) -> None:
        """Upsert into the staging status table; a lower or equal version never wins."""
        if not statuses:
            return
        columns = [c for c in STATUS_COLUMNS if c != "applied_at"]
        rows = [s.to_row() for s in statuses]
        await self.connection.executemany(
            KEEP_NEWEST_SQL, [[row[c] for c in columns] for row in rows]
        )

    async def merge_newer_live_rows(self) -> int:
        """Rows the running consumer applied after the topic was read for the rebuild."""
        return rows_affected(await self.connection.execute(MERGE_NEWER_STATUSES_SQL))

    async def append_missed_changes(self) -> int:
        """Feed rows for every status the live read model lacked or had older."""
        return rows_affected(await self.connection.execute(APPEND_MISSED_CHANGES_SQL))

    async def count_staged(self) -> None:
        await self.connection.execute(COUNT_STAGED_SQL)

    async def swap(self) -> None:
        """Replace the live tables by the staging ones and give them the live names."""
        for statement in [*SWAP_STATUSES_SQL, *database_roles.rights_on(SCHEMA)]:
            await self.connection.execute(statement)

    async def staged_count(self) -> int:
        count = sa.select(sa.func.count()).select_from(self.status)
        return int((await self.session.execute(count)).scalar_one())


class RecordsRebuildRepository(Repository):
    """Fresh copies of the indicator and warning tables."""

    def __init__(self, connection: asyncpg.Connection, *, session: AsyncSession | None = None):
        super().__init__(connection, session=session)
        meta = _staging_metadata()
        self.indicators = indicators_table(STAGED_INDICATORS, meta)
        self.warnings = warnings_table(STAGED_WARNINGS, meta)

    async def create_staging(self) -> None:
        await _create(self.session, self.indicators, self.warnings)

    async def stage_indicators(self, staged: Sequence[StoredIndicators]) -> None:
        """The highest version per (unit, period) wins."""
        rows = indicator_rows(staged)
        if rows:
            await self.connection.executemany(STAGE_INDICATORS_SQL, rows)

    async def stage_warnings(self, staged: Sequence[StoredWarning]) -> None:
        """The highest version per warning wins."""
        rows = [warning_row(w, WARNING_COLUMNS) for w in newest_per_warning(staged)]
        if rows:
            await self.connection.executemany(STAGE_WARNINGS_SQL, rows)

    async def merge_newer_live_rows(self) -> int:
        """Rows the running consumers applied after the topics were read for the rebuild."""
        taken = 0
        for statement in MERGE_NEWER_RECORDS_SQL:
            taken += rows_affected(await self.connection.execute(statement))
        return taken

    async def missed_warning_versions(self, read: Sequence[StoredWarning]) -> list[StoredWarning]:
        """Of the versions read from the topic, those above the last the feed holds."""
        ids = list({w.warning_id for w in read})
        fed = {
            row["warning_id"]: int(row["version"])
            for row in await self.connection.fetch(FED_VERSIONS_SQL, ids)
        }
        return [w for w in read if w.version > fed.get(w.warning_id, 0)]

    async def swap(self) -> None:
        for statement in [*SWAP_RECORDS_SQL, *database_roles.rights_on(SCHEMA)]:
            await self.connection.execute(statement)


async def _create(session: AsyncSession, *tables: sa.Table) -> None:
    def create(sync: sa.Connection) -> None:
        for table in tables:
            table.drop(sync, checkfirst=True)
            table.create(sync)

    await (await session.connection()).run_sync(create)
