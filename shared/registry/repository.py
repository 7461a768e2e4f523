"""The SQL of the unit registry (`registry.units`, `registry.meta`, `registry.unit_changes`).

`RegistryRepository` reads it (the in-process view, on a pooled connection of its own:
`RegistryRepository(connection)`); `UnitLoadRepository` writes a load, set-based, in the
command's transaction (`await UnitLoadRepository.from_connection(connection)`).
"""

from collections.abc import AsyncIterator, Sequence

import asyncpg

from shared.repository import Repository

VERSION_SQL = "SELECT version FROM registry.meta"
UNITS_SQL = "SELECT code, name, level, parent_code FROM registry.units ORDER BY code"
UNITS_BATCH = 50_000
SHAPE_SQL = "SELECT code, level, parent_code FROM registry.units"
HAS_UNIT_SQL = "SELECT EXISTS (SELECT FROM registry.units WHERE code = $1)"

LOCK_UNITS_SQL = "LOCK TABLE registry.units IN SHARE ROW EXCLUSIVE MODE"
INCOMING = "incoming_units"
DROP_INCOMING_SQL = f"DROP TABLE IF EXISTS {INCOMING}"
CREATE_INCOMING_SQL = f"""
    CREATE TEMP TABLE {INCOMING} (code char(12), name text, level text, parent_code char(12))
    ON COMMIT DROP
"""
INCOMING_COLUMNS = ["code", "name", "level", "parent_code"]
# Units already known whose level or parent the load changes.
MOVED_SQL = f"""
    SELECT i.code FROM {INCOMING} i JOIN registry.units u USING (code)
     WHERE (u.level, u.parent_code) IS DISTINCT FROM (i.level, i.parent_code)
"""
UPSERT_SQL = f"""
    WITH upserted AS (
        INSERT INTO registry.units AS u (code, name, level, parent_code)
        SELECT code, name, level, parent_code FROM {INCOMING}
        ON CONFLICT (code) DO UPDATE
           SET name = excluded.name, level = excluded.level,
               parent_code = excluded.parent_code, updated_at = now()
         WHERE (u.name, u.level, u.parent_code)
               IS DISTINCT FROM (excluded.name, excluded.level, excluded.parent_code)
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted) AS added,
           count(*) FILTER (WHERE NOT inserted) AS changed
      FROM upserted
"""
NEXT_VERSION_SQL = """
    INSERT INTO registry.meta (id, version, loaded_at) VALUES (1, 1, now())
    ON CONFLICT (id) DO UPDATE SET version = registry.meta.version + 1, loaded_at = now()
    RETURNING version
"""
RECORD_CHANGES_SQL = """
    INSERT INTO registry.unit_changes (version, code) SELECT $1, unnest($2::text[])
"""

UnitRow = tuple[str, str, str, str | None]  # code, name, level, parent_code


class RegistryRepository(Repository):
    async def version(self) -> int:
        """The registry's version; 0 before the first load."""
        return int(await self.connection.fetchval(VERSION_SQL) or 0)

    async def units(self) -> AsyncIterator[list[asyncpg.Record]]:
        """Every unit as (code, name, level, parent_code), in code order, a batch at a time
        (a nation's registry at once would be 645,000 records): inside a transaction."""
        cursor = await self.connection.cursor(UNITS_SQL)
        while rows := await cursor.fetch(UNITS_BATCH):
            yield rows

    async def shape(self) -> dict[str, tuple[str, str | None]]:
        """Every unit's (level, parent_code), by code: asyncpg's records directly, for a
        nation's registry is 645,000 of them."""
        return {
            code: (level, parent_code)
            for code, level, parent_code in await self.connection.fetch(SHAPE_SQL)
        }

    async def has_unit(self, code: str) -> bool:
        return bool(await self.connection.fetchval(HAS_UNIT_SQL, code))


class UnitLoadRepository(Repository):
    """A load: the file's units copied into a temporary table that ends with the
    transaction, then merged into the registry in one statement."""

    async def lock_units(self) -> None:
        """Held to the end of the transaction: one load at a time, readers go on."""
        await self.connection.execute(LOCK_UNITS_SQL)

    async def create_incoming(self) -> None:
        await self.connection.execute(DROP_INCOMING_SQL)
        await self.connection.execute(CREATE_INCOMING_SQL)

    async def copy_incoming(self, rows: Sequence[UnitRow]) -> None:
        await self.connection.copy_records_to_table(
            INCOMING, records=rows, columns=INCOMING_COLUMNS
        )

    async def moved(self) -> list[str]:
        """The incoming units the registry has with another level or parent, by code."""
        return sorted(code for (code,) in await self.connection.fetch(MOVED_SQL))

    async def upsert_incoming(self) -> tuple[int, int]:
        """Merge the incoming units into the registry: (added, changed)."""
        row = await self.connection.fetchrow(UPSERT_SQL)
        assert row is not None
        return int(row["added"]), int(row["changed"])

    async def next_version(self) -> int:
        return int(await self.connection.fetchval(NEXT_VERSION_SQL))

    async def record_changes(self, version: int, codes: Sequence[str]) -> None:
        """The units a load moved or re-levelled, under that load's version."""
        await self.connection.execute(RECORD_CHANGES_SQL, version, list(codes))
