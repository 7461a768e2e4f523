"""All of reporting's SQL."""

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.cache import CHANNEL, STATUS_CHANNEL, StatusKey, status_payload
from services.reporting.models import (
    COUNTS,
    FIGURE_COLUMNS,
    PATH_LEVELS,
    SCHEMA,
    STATUS,
    counts_table,
    level_counts,
    path_column,
    status_changes,
    status_table,
    unit_status,
)
from services.reporting.readmodel import CountKey, Figures, StoredStatus, UnitPath
from shared.levels import Level
from shared.locks import LockName, lock_key
from shared.repository import Repository, rows_affected

# Every transaction that writes the read model (the consumers of all instances, the registry
# follower, a rebuild's swap) takes this lock first, so writers run one at a time. A change's
# seq is max + 1 taken under the lock, so seq order is commit order; PostgreSQL releases the
# lock only after the commit is visible, so a reader that sees a seq also sees every lower one
# and a cursor never passes a change that commits later.
APPLY_LOCK = lock_key(LockName.reporting_apply)
FEED_COLUMNS = ("seq", "unit_code", "period", "three_no", "version", "changed_at")
STATUS_SQL = f"SELECT * FROM {unit_status.fullname} WHERE unit_code = $1 AND period = $2"
# The codes travel as one array parameter: `IN (...)` would bind up to SCAN_CHUNK of them.
_NOT_CLEAN_AMONG = f"""
    FROM {unit_status.fullname}
    WHERE period = $1 AND unit_code = ANY($2::bpchar[]) AND NOT three_no
"""
NOT_CLEAN_SQL = "SELECT *" + _NOT_CLEAN_AMONG
NOT_CLEAN_CODES_SQL = "SELECT unit_code" + _NOT_CLEAN_AMONG


class ReportingRepository(Repository):
    """The read model. Writes and summaries run in a session
    (`await ReportingRepository.from_session(session)`); the reads of one statement that
    serve status and eligible-list requests run on a pooled connection of their own
    (`ReportingRepository(connection)`: no BEGIN/COMMIT)."""

    # --- writing (under the apply lock) ---------------------------------------------------

    async def lock_writes(self) -> None:
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(APPLY_LOCK)))

    async def announce_change(self, *, statuses: Collection[StatusKey] | None = ()) -> None:
        """Tell every instance, when this transaction commits, that the read model changed,
        and which statuses changed (None: any of them)."""
        await self.session.execute(sa.select(sa.func.pg_notify(CHANNEL, "")))
        if statuses is None or statuses:
            payload = status_payload(statuses)
            await self.session.execute(sa.select(sa.func.pg_notify(STATUS_CHANNEL, payload)))

    async def statuses(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredStatus]:
        if not keys:
            return {}
        t = unit_status
        rows = await self.session.execute(
            sa.select(t).where(sa.tuple_(t.c.unit_code, t.c.period).in_(list(keys)))
        )
        return {(r.unit_code, r.period): StoredStatus.from_row(r._mapping) for r in rows}

    async def save_statuses(self, statuses: Sequence[StoredStatus]) -> None:
        if not statuses:
            return
        statement = insert(unit_status)
        keys = {"unit_code", "period"}
        updates: dict[str, Any] = {
            c.name: statement.excluded[c.name]
            for c in unit_status.columns
            if c.name not in keys and c.name != "applied_at"
        }
        statement = statement.on_conflict_do_update(
            index_elements=["unit_code", "period"], set_=updates | {"applied_at": sa.func.now()}
        )
        await self.session.execute(statement, [s.to_row() for s in statuses])

    async def add_counts(self, deltas: Mapping[CountKey, Figures]) -> None:
        if not deltas:
            return
        statement = insert(level_counts)
        statement = statement.on_conflict_do_update(
            index_elements=["ancestor_code", "period", "level"],
            set_={
                name: level_counts.c[name] + statement.excluded[name]
                for name in ("not_clean", *FIGURE_COLUMNS)
            },
        )
        rows = [
            {"ancestor_code": code, "period": period, "level": level.value} | figures.columns()
            for (code, period, level), figures in sorted(deltas.items())
        ]
        await self.session.execute(statement, rows)

    async def append_changes(self, statuses: Sequence[StoredStatus]) -> None:
        """Feed rows, in the order given, numbered after the last one."""
        if not statuses:
            return
        last = await self.session.execute(
            sa.select(sa.func.coalesce(sa.func.max(status_changes.c.seq), 0))
        )
        base = int(last.scalar_one())
        rows = [
            {
                "seq": base + number,
                "unit_code": s.unit_code,
                "period": s.period,
                "level": s.level.value,
                "three_no": s.three_no,
                "version": s.version,
                "changed_at": s.changed_at,
            }
            | {path_column(level): code for level, code in zip(PATH_LEVELS, s.path, strict=True)}
            for number, s in enumerate(statuses, start=1)
        ]
        await self.session.execute(status_changes.insert(), rows)

    async def placements(self) -> list[tuple[str, Level, UnitPath]]:
        """Each unit with a status, with the level and path its counts were filed under."""
        t = unit_status
        path = [t.c[path_column(level)] for level in PATH_LEVELS]
        rows = await self.session.execute(sa.select(t.c.unit_code, t.c.level, *path).distinct())
        return [(r[0], Level(r[1]), tuple(r[2:])) for r in rows]

    async def statuses_of_units(self, unit_codes: Collection[str]) -> list[StoredStatus]:
        if not unit_codes:
            return []
        rows = await self.session.execute(
            sa.select(unit_status).where(unit_status.c.unit_code.in_(list(unit_codes)))
        )
        return [StoredStatus.from_row(r._mapping) for r in rows]

    async def move_units(self, placements: Sequence[tuple[str, Level, UnitPath]]) -> None:
        for unit_code, level, path in placements:
            values = {"level": level.value} | {
                path_column(lvl): code for lvl, code in zip(PATH_LEVELS, path, strict=True)
            }
            await self.session.execute(
                unit_status.update().where(unit_status.c.unit_code == unit_code).values(values)
            )

    # --- reading --------------------------------------------------------------------------

    async def counts(self, period: str, ancestor_codes: Collection[str]) -> dict[CountKey, Figures]:
        t = level_counts
        rows = await self.session.execute(
            sa.select(t).where(t.c.period == period, t.c.ancestor_code.in_(list(ancestor_codes)))
        )
        return {
            (r.ancestor_code, r.period, Level(r.level)): Figures.from_row(r._mapping) for r in rows
        }

    async def last_change(self, root_code: str | None, root_level: Level | None) -> datetime | None:
        """When a status under the root (None: anywhere) last changed; None if none did."""
        t = status_changes
        query = sa.select(t.c.changed_at).order_by(t.c.seq.desc()).limit(1)
        if root_code is not None and root_level is not None:
            query = query.where(t.c[path_column(root_level)] == root_code)
        return (await self.session.execute(query)).scalar()

    async def changes_after(
        self, *, root_code: str, root_level: Level, after: int, limit: int
    ) -> list[sa.Row[Any]]:
        t = status_changes
        rows = await self.session.execute(
            sa.select(*[t.c[name] for name in FEED_COLUMNS])
            .where(t.c[path_column(root_level)] == root_code, t.c.seq > after)
            .order_by(t.c.seq)
            .limit(limit)
        )
        return list(rows)

    # --- reads of one statement each, on a connection of their own --------------------------

    async def status(self, unit_code: str, period: str) -> StoredStatus | None:
        row = await self.connection.fetchrow(STATUS_SQL, unit_code, period)
        return StoredStatus.from_row(row) if row else None

    async def not_clean(self, period: str, unit_codes: list[str]) -> dict[str, StoredStatus]:
        """The statuses of those of the units that are not three-no in the period."""
        rows = await self.connection.fetch(NOT_CLEAN_SQL, period, unit_codes)
        return {row["unit_code"]: StoredStatus.from_row(row) for row in rows}

    async def not_clean_codes(self, period: str, unit_codes: list[str]) -> set[str]:
        """Which of the units are not three-no in the period (the rest have no status, or a
        clean one)."""
        rows = await self.connection.fetch(NOT_CLEAN_CODES_SQL, period, unit_codes)
        return {row["unit_code"] for row in rows}


STAGING_SUFFIX = "_rebuild"


class RebuildRepository(Repository):
    """Fresh copies of the status and count tables, filled from the status topic and swapped
    in; in a session (`await RebuildRepository.from_session(session)`)."""

    def __init__(self, connection: asyncpg.Connection, *, session: AsyncSession | None = None):
        super().__init__(connection, session=session)
        meta = sa.MetaData(schema=SCHEMA, naming_convention=unit_status.metadata.naming_convention)
        self.status = status_table(STATUS + STAGING_SUFFIX, meta)
        self.counts = counts_table(COUNTS + STAGING_SUFFIX, meta)

    async def create_staging(self) -> None:
        def create(sync: sa.Connection) -> None:
            for table in (self.status, self.counts):
                table.drop(sync, checkfirst=True)
                table.create(sync)

        await (await self.session.connection()).run_sync(create)

    async def keep_newest(self, statuses: Sequence[StoredStatus]) -> None:
        """Upsert into the staging status table; a lower or equal version never wins."""
        if not statuses:
            return
        statement = insert(self.status)
        statement = statement.on_conflict_do_update(
            index_elements=["unit_code", "period"],
            set_={
                c.name: statement.excluded[c.name]
                for c in self.status.columns
                if c.name not in ("unit_code", "period")
            },
            where=statement.excluded.version > self.status.c.version,
        )
        await self.session.execute(statement, [s.to_row() for s in statuses])

    async def merge_newer_live_rows(self) -> int:
        """Rows the running consumer applied after the topic was read for the rebuild."""
        columns = ", ".join(c.name for c in unit_status.columns)
        updates = ", ".join(
            f"{c.name} = excluded.{c.name}"
            for c in unit_status.columns
            if c.name not in ("unit_code", "period")
        )
        status = await self.connection.execute(
            f"INSERT INTO {SCHEMA}.{self.status.name} ({columns}) "
            f"SELECT {columns} FROM {SCHEMA}.{STATUS} "
            f"ON CONFLICT (unit_code, period) DO UPDATE SET {updates} "
            f"WHERE excluded.version > {self.status.name}.version"
        )
        return rows_affected(status)

    async def append_missed_changes(self) -> int:
        """Feed rows for every status the live read model lacked or had older."""
        paths = [path_column(level) for level in PATH_LEVELS]
        copied = ["unit_code", "period", "level", "three_no", "version", "changed_at", *paths]
        status = await self.connection.execute(
            f"INSERT INTO {SCHEMA}.status_changes (seq, {', '.join(copied)}) "
            f"SELECT (SELECT coalesce(max(seq), 0) FROM {SCHEMA}.status_changes) "
            f"+ row_number() OVER (ORDER BY s.changed_at, s.unit_code, s.period), "
            f"{', '.join('s.' + c for c in copied)} "
            f"FROM {SCHEMA}.{self.status.name} s "
            f"LEFT JOIN {SCHEMA}.{STATUS} l USING (unit_code, period) "
            f"WHERE l.unit_code IS NULL OR l.version < s.version"
        )
        return rows_affected(status)

    async def count_staged(self) -> None:
        paths = ", ".join(f"s.{path_column(level)}" for level in PATH_LEVELS)
        sums = ", ".join(f"sum(s.{name})" for name in FIGURE_COLUMNS)
        await self.connection.execute(
            f"INSERT INTO {SCHEMA}.{self.counts.name} "
            f"(ancestor_code, period, level, not_clean, {', '.join(FIGURE_COLUMNS)}) "
            f"SELECT a.code, s.period, s.level, count(*) FILTER (WHERE NOT s.three_no), {sums} "
            f"FROM {SCHEMA}.{self.status.name} s "
            f"CROSS JOIN LATERAL unnest(ARRAY[{paths}]) AS a(code) "
            f"WHERE a.code IS NOT NULL GROUP BY a.code, s.period, s.level"
        )

    async def swap(self) -> None:
        """Replace the live tables by the staging ones and give them the live names."""
        for live, staging in ((STATUS, self.status.name), (COUNTS, self.counts.name)):
            await self.connection.execute(f"DROP TABLE {SCHEMA}.{live}")
            await self.connection.execute(f"ALTER TABLE {SCHEMA}.{staging} RENAME TO {live}")
            await self.connection.execute(
                f"ALTER TABLE {SCHEMA}.{live} RENAME CONSTRAINT pk_{staging} TO pk_{live}"
            )

    async def staged_count(self) -> int:
        count = sa.select(sa.func.count()).select_from(self.status)
        return int((await self.session.execute(count)).scalar_one())
