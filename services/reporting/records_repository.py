"""Reporting's SQL for work-record indicators and early warnings (the status read model's is in
repository.py). Writes run in a session under the apply lock that `ReportingRepository` takes."""

from collections.abc import Collection, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.models import (
    INDICATORS,
    PATH_LEVELS,
    SCHEMA,
    WARNINGS,
    early_warnings,
    indicators_table,
    path_column,
    unit_indicators,
    warning_changes,
    warnings_table,
)
from services.reporting.records import StoredIndicators, StoredWarning
from shared.levels import Level
from shared.repository import Repository, rows_affected

INDICATORS_SQL = f"SELECT * FROM {unit_indicators.fullname} WHERE unit_code = $1 AND period = $2"
INDICATORS_AMONG_SQL = (
    f"SELECT * FROM {unit_indicators.fullname} WHERE period = $1 AND unit_code = ANY($2::bpchar[])"
)
# Per unit with indicators: whether its meetings fell in every ended slot ($3), and its ratings.
KEPT_AMONG_SQL = f"""
    SELECT unit_code, meetings_held @> $3::date[] AS kept,
           satisfied, basically_satisfied, dissatisfied
    FROM {unit_indicators.fullname}
    WHERE period = $1 AND unit_code = ANY($2::bpchar[])
"""
FED_VERSIONS_SQL = f"""
    SELECT warning_id, max(version) AS version FROM {warning_changes.fullname}
    WHERE warning_id = ANY($1::uuid[]) GROUP BY warning_id
"""
WARNING_FEED_COLUMNS = (
    "seq",
    "warning_id",
    "kind",
    "unit_code",
    "raised_at",
    "cleared_at",
    "event_ids",
    "detail",
    "version",
)


def _newest_per_key(indicators: Sequence[StoredIndicators]) -> list[StoredIndicators]:
    newest: dict[tuple[str, str], StoredIndicators] = {}
    for item in indicators:
        if item.key not in newest or item.version > newest[item.key].version:
            newest[item.key] = item
    return list(newest.values())


def _upsert_newer(table: sa.Table, keys: list[str]) -> Any:
    """An insert whose conflicting rows are replaced only by a higher version."""
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
        | {"applied_at": sa.func.now()},
        where=statement.excluded.version > table.c.version,
    )


class RecordsRepository(Repository):
    # --- indicators -------------------------------------------------------------------------

    async def save_indicators(
        self, indicators: Sequence[StoredIndicators], *, table: sa.Table = unit_indicators
    ) -> int:
        """Keep the highest version per (unit, period); returns how many rows it changed."""
        rows = [i.to_row() for i in _newest_per_key(indicators)]
        if not rows:
            return 0
        keys = ["unit_code", "period"]
        result = await self.session.execute(
            _upsert_newer(table, keys).returning(table.c.unit_code), rows
        )
        return len(result.all())

    async def indicators(self, unit_code: str, period: str) -> StoredIndicators | None:
        row = await self.connection.fetchrow(INDICATORS_SQL, unit_code, period)
        return StoredIndicators.from_row(row) if row else None

    async def indicators_among(
        self, period: str, unit_codes: list[str]
    ) -> dict[str, StoredIndicators]:
        rows = await self.connection.fetch(INDICATORS_AMONG_SQL, period, unit_codes)
        return {row["unit_code"]: StoredIndicators.from_row(row) for row in rows}

    async def kept_among(
        self, period: str, unit_codes: list[str], *, ended_slots: list[date]
    ) -> list[asyncpg.Record]:
        return list(await self.connection.fetch(KEPT_AMONG_SQL, period, unit_codes, ended_slots))

    # --- warnings ---------------------------------------------------------------------------

    async def open_warnings(self, root_code: str | None, root_level: Level | None) -> int:
        """Warnings under the root (None: anywhere) whose newest version is not cleared; under
        a root, as the warnings feed places them (by the path when each version was applied,
        found through the feed's index on that path)."""
        if root_code is None or root_level is None:
            t = early_warnings
            query = sa.select(sa.func.count()).where(t.c.cleared_at.is_(None))
            return int((await self.session.execute(query)).scalar_one())
        f = warning_changes
        newest = (
            sa.select(f.c.warning_id, f.c.cleared_at)
            .where(f.c[path_column(root_level)] == root_code)
            .ext(distinct_on(f.c.warning_id))
            .order_by(f.c.warning_id, f.c.seq.desc())
            .subquery()
        )
        query = sa.select(sa.func.count()).select_from(newest).where(newest.c.cleared_at.is_(None))
        return int((await self.session.execute(query)).scalar_one())

    async def warning_versions(self, warning_ids: Collection[UUID]) -> dict[UUID, int]:
        if not warning_ids:
            return {}
        t = early_warnings
        rows = await self.session.execute(
            sa.select(t.c.warning_id, t.c.version).where(t.c.warning_id.in_(list(warning_ids)))
        )
        return {r.warning_id: int(r.version) for r in rows}

    async def save_warnings(
        self, warnings: Sequence[StoredWarning], *, table: sa.Table = early_warnings
    ) -> None:
        newest: dict[UUID, StoredWarning] = {}
        for w in warnings:
            if w.warning_id not in newest or w.version > newest[w.warning_id].version:
                newest[w.warning_id] = w
        if newest:
            rows = [w.to_row() for w in newest.values()]
            await self.session.execute(_upsert_newer(table, ["warning_id"]), rows)

    async def append_warning_changes(self, warnings: Sequence[StoredWarning]) -> None:
        """Feed rows, in the order given, numbered after the last one (under the apply lock)."""
        if not warnings:
            return
        last = await self.session.execute(
            sa.select(sa.func.coalesce(sa.func.max(warning_changes.c.seq), 0))
        )
        base = int(last.scalar_one())
        rows = [
            {"seq": base + number}
            | w.to_row()
            | {path_column(level): code for level, code in zip(PATH_LEVELS, w.path, strict=True)}
            for number, w in enumerate(warnings, start=1)
        ]
        await self.session.execute(warning_changes.insert(), rows)

    async def warning_changes_after(
        self, *, root_code: str, root_level: Level, after: int, limit: int, kind: str | None
    ) -> list[sa.Row[Any]]:
        t = warning_changes
        query = sa.select(*[t.c[name] for name in WARNING_FEED_COLUMNS]).where(
            t.c[path_column(root_level)] == root_code, t.c.seq > after
        )
        if kind is not None:
            query = query.where(t.c.kind == kind)
        rows = await self.session.execute(query.order_by(t.c.seq).limit(limit))
        return list(rows)


STAGING_SUFFIX = "_rebuild"


class RecordsRebuildRepository(Repository):
    """Fresh copies of the indicator and warning tables, filled from their topics and swapped
    in; in a session."""

    def __init__(self, connection: asyncpg.Connection, *, session: AsyncSession | None = None):
        super().__init__(connection, session=session)
        meta = sa.MetaData(
            schema=SCHEMA, naming_convention=unit_indicators.metadata.naming_convention
        )
        self.indicators = indicators_table(INDICATORS + STAGING_SUFFIX, meta)
        self.warnings = warnings_table(WARNINGS + STAGING_SUFFIX, meta)

    async def create_staging(self) -> None:
        def create(sync: sa.Connection) -> None:
            for table in (self.indicators, self.warnings):
                table.drop(sync, checkfirst=True)
                table.create(sync)

        await (await self.session.connection()).run_sync(create)

    async def merge_newer_live_rows(self) -> int:
        """Rows the running consumers applied after the topics were read for the rebuild."""
        taken = 0
        for live, staging, keys in (
            (unit_indicators, self.indicators, "unit_code, period"),
            (early_warnings, self.warnings, "warning_id"),
        ):
            columns = ", ".join(c.name for c in live.columns)
            updates = ", ".join(
                f"{c.name} = excluded.{c.name}"
                for c in live.columns
                if c.name not in keys.split(", ")
            )
            status = await self.connection.execute(
                f"INSERT INTO {SCHEMA}.{staging.name} ({columns}) "
                f"SELECT {columns} FROM {live.fullname} "
                f"ON CONFLICT ({keys}) DO UPDATE SET {updates} "
                f"WHERE excluded.version > {staging.name}.version"
            )
            taken += rows_affected(status)
        return taken

    async def missed_warning_versions(
        self, warnings: Sequence[StoredWarning]
    ) -> list[StoredWarning]:
        """Of the versions read from the topic, those above the last the feed holds."""
        ids = list({w.warning_id for w in warnings})
        fed = {
            row["warning_id"]: int(row["version"])
            for row in await self.connection.fetch(FED_VERSIONS_SQL, ids)
        }
        return [w for w in warnings if w.version > fed.get(w.warning_id, 0)]

    async def swap(self) -> None:
        for live, staging in ((unit_indicators, self.indicators), (early_warnings, self.warnings)):
            await self.connection.execute(f"DROP TABLE {live.fullname}")
            await self.connection.execute(
                f"ALTER TABLE {SCHEMA}.{staging.name} RENAME TO {live.name}"
            )
            await self.connection.execute(
                f"ALTER TABLE {live.fullname} RENAME CONSTRAINT pk_{staging.name} TO pk_{live.name}"
            )
