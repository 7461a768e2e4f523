"""An in-process view of the registry that every service consults on its hot path.

It reloads when the registry's version changes (polled every few seconds) and looks a missing
code up in the database at once, so units loaded while the system runs are usable immediately.
The units are held packed (`shared/registry/packed.py`): every service holds a nation's.
"""

import asyncio
from typing import NoReturn

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.levels import Level
from shared.registry.packed import LevelTotals, PackedBuilder, UnitRef
from shared.registry.repository import RegistryRepository
from shared.repository import engine_connection
from shared.retry import keep_running

__all__ = ["UnitRef", "UnitRegistry"]

log = structlog.get_logger(__name__)


class UnitRegistry:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._units = PackedBuilder().build()
        self.version: int = -1
        self._loading = asyncio.Lock()

    # --- lookups --------------------------------------------------------------------------

    def get_cached(self, code: str) -> UnitRef | None:
        return self._units.get(code)

    async def get(self, code: str) -> UnitRef | None:
        unit = self.get_cached(code)
        if unit is None:
            unit = await self._fetch(code)
        return unit

    def ancestors(self, code: str) -> list[UnitRef]:
        """The unit itself, then its parent, up to the root (all must be cached)."""
        return self._units.chain(code)

    def ancestor_at(self, code: str, level: Level) -> UnitRef | None:
        return next((u for u in self.ancestors(code) if u.level == level), None)

    def keying_unit(self, code: str) -> str:
        """The code events of this unit are keyed (on Kafka) and locked (in evaluation) by:
        its county; in a city without counties (东莞, 中山: townships directly under the
        city) the city; failing both, the top of its branch. Every unit of a county, or of
        such a city, shares one."""
        return self._units.keying_code(code)

    def is_within(self, code: str, scope_code: str) -> bool:
        return self._units.is_within(code, scope_code)

    def children(self, code: str) -> list[str]:
        """The unit's children's codes, in code order."""
        return self._units.children(code)

    def roots(self) -> list[str]:
        """The units without a parent (the provinces of a national registry), in code order."""
        return self._units.roots()

    def members(self, code: str, level: Level) -> list[UnitRef]:
        """The units of the level under and including the unit, in code order."""
        return self._units.members(code, level)

    def search(self, query: str, *, within: str, limit: int) -> list[UnitRef]:
        """The units under `within` whose name holds the query or whose code starts with it:
        the highest levels first, then in code order; at most `limit`."""
        return self._units.search(query, within=within, limit=limit)

    def totals(self) -> LevelTotals:
        """How many units of each campaign level lie under each unit, as the registry is now."""
        return self._units.totals()

    def __len__(self) -> int:
        return len(self._units)

    def all(self) -> list[UnitRef]:
        """Every unit, made afresh (645,000 for a nation): prefer the lookups above."""
        return list(self._units.refs())

    # --- loading --------------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Reload everything if the registry changed since the last load. True if reloaded.

        One load at a time, and the version and the units are read from one snapshot: the
        cache never goes back to an older registry, and its version names exactly the units
        it holds (evaluation records which registry its effects follow by that version)."""
        async with (
            self._loading,
            engine_connection(self._engine) as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            registry = RegistryRepository(connection)
            version = await registry.version()
            if version <= self.version:
                return False
            packing = PackedBuilder()
            async for rows in registry.units():
                packing.add(rows)
            self._units = packing.build()
            self.version = version
        log.info("registry_loaded", units=len(self._units), version=version)
        return True

    async def _fetch(self, code: str) -> UnitRef | None:
        """A code the cache lacks: if the database has it, a load happened; reload."""
        async with engine_connection(self._engine) as connection:
            exists = await RegistryRepository(connection).has_unit(code)
        if not exists:
            return None
        await self.refresh()
        return self.get_cached(code)

    async def keep_fresh(self, interval: float) -> NoReturn:
        """Background task: poll the registry version every `interval` seconds until
        cancelled; a failed poll is logged and tried again after the backoff."""

        async def refresh_then_wait() -> None:
            await self.refresh()
            await asyncio.sleep(interval)

        await keep_running(refresh_then_wait, event="registry_refresh_failed")
