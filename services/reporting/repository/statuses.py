"""The latest status per (unit, period): what the projection reads and saves, the status and
eligible-list reads, and the placements the registry follow moves."""

from collections.abc import Collection, Sequence

import sqlalchemy as sa

from services.reporting.models import PATH_LEVELS, path_column, unit_status
from services.reporting.readmodel import StoredStatus, UnitPath
from services.reporting.repository.statements import column_arrays, insert_rows_sql, listed
from shared.levels import Level
from shared.repository import Repository

TABLE = unit_status.fullname
KEYS = ("unit_code", "period")
SAVED_COLUMNS = tuple(c.name for c in unit_status.columns if c.name != "applied_at")

# Keys and codes travel as array parameters: `IN (...)` would bind one parameter per value.
STATUSES_AMONG_SQL = f"""
    SELECT s.* FROM {TABLE} s
    JOIN unnest($1::bpchar[], $2::text[]) AS k(unit_code, period) USING (unit_code, period)
"""
_NOT_CLEAN_AMONG = f"""
    FROM {TABLE}
    WHERE period = $1 AND unit_code = ANY($2::bpchar[]) AND NOT three_no
"""
NOT_CLEAN_SQL = "SELECT *" + _NOT_CLEAN_AMONG
NOT_CLEAN_CODES_SQL = "SELECT unit_code" + _NOT_CLEAN_AMONG
SAVE_STATUS_SQL = (
    f"{insert_rows_sql(unit_status, SAVED_COLUMNS)} ON CONFLICT ({listed(KEYS)}) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SAVED_COLUMNS if c not in KEYS)
    + ", applied_at = now()"
)


class StatusRepository(Repository):
    """The projection's reads and writes in its session (`from_session`); the status and
    eligible-list reads of one statement each on a pooled connection of their own
    (`StatusRepository(connection)`: no BEGIN/COMMIT)."""

    # --- the projection (under the apply lock) ----------------------------------------------

    async def statuses(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredStatus]:
        if not keys:
            return {}
        codes, periods = zip(*keys, strict=True)
        rows = await self.connection.fetch(STATUSES_AMONG_SQL, list(codes), list(periods))
        return {(r["unit_code"], r["period"]): StoredStatus.from_row(r) for r in rows}

    async def save_statuses(self, statuses: Sequence[StoredStatus]) -> None:
        if not statuses:
            return
        rows = ([row[c] for c in SAVED_COLUMNS] for row in (s.to_row() for s in statuses))
        await self.connection.execute(
            SAVE_STATUS_SQL, *column_arrays(unit_status, SAVED_COLUMNS, rows)
        )

    # --- the registry follow (under the apply lock) -----------------------------------------

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

    # --- reads of one statement each --------------------------------------------------------

    async def not_clean(self, period: str, unit_codes: list[str]) -> dict[str, StoredStatus]:
        """The statuses of those of the units that are not three-no in the period."""
        rows = await self.connection.fetch(NOT_CLEAN_SQL, period, unit_codes)
        return {row["unit_code"]: StoredStatus.from_row(row) for row in rows}

    async def not_clean_codes(self, period: str, unit_codes: list[str]) -> set[str]:
        """Which of the units are not three-no in the period (the rest have no status, or a
        clean one)."""
        rows = await self.connection.fetch(NOT_CLEAN_CODES_SQL, period, unit_codes)
        return {row["unit_code"] for row in rows}
