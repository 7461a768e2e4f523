"""An in-process view of the registry that every service consults on its hot path.

It reloads when the registry's version changes (polled every few seconds) and looks a missing
code up in the database at once, so units loaded while the system runs are usable immediately.
"""

import asyncio
from dataclasses import dataclass
from typing import NoReturn

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.levels import Level
from shared.registry.repository import RegistryRepository
from shared.repository import engine_connection
from shared.retry import keep_running

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class UnitRef:
    code: str
    name: str
    level: Level
    parent_code: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "name": self.name,
            "level": self.level.value,
            "parent_code": self.parent_code,
        }


# The key of the parentless units among the child lists: no unit code is empty.
_ROOT = ""


class UnitRegistry:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._units: dict[str, UnitRef] = {}
        self._children: dict[str, list[str]] | None = None
        self.version: int = -1
        self._loading = asyncio.Lock()

    # --- lookups --------------------------------------------------------------------------

    def get_cached(self, code: str) -> UnitRef | None:
        return self._units.get(code)

    async def get(self, code: str) -> UnitRef | None:
        unit = self._units.get(code)
        if unit is None:
            unit = await self._fetch(code)
        return unit

    def ancestors(self, code: str) -> list[UnitRef]:
        """The unit itself, then its parent, up to the root (all must be cached)."""
        chain: list[UnitRef] = []
        unit = self._units.get(code)
        while unit is not None:
            chain.append(unit)
            unit = self._units.get(unit.parent_code) if unit.parent_code else None
        return chain

    def ancestor_at(self, code: str, level: Level) -> UnitRef | None:
        return next((u for u in self.ancestors(code) if u.level == level), None)

    def keying_unit(self, code: str) -> str:
        """The code events of this unit are keyed (on Kafka) and locked (in evaluation) by:
        its county; in a city without counties (东莞, 中山: townships directly under the
        city) the city; failing both, the top of its branch. Every unit of a county, or of
        such a city, shares one."""
        chain = self.ancestors(code)
        for level in (Level.county, Level.city):
            unit = next((u for u in chain if u.level == level), None)
            if unit is not None:
                return unit.code
        return chain[-1].code if chain else code

    def is_within(self, code: str, scope_code: str) -> bool:
        return any(u.code == scope_code for u in self.ancestors(code))

    def children(self, code: str) -> list[str]:
        return self._child_lists().get(code, [])

    def roots(self) -> list[str]:
        """The units without a parent (the provinces of a national registry), in code order."""
        return sorted(self._child_lists().get(_ROOT, []))

    def _child_lists(self) -> dict[str, list[str]]:
        if self._children is None:
            children: dict[str, list[str]] = {}
            for unit in self._units.values():
                children.setdefault(unit.parent_code or _ROOT, []).append(unit.code)
            self._children = children
        return self._children

    def __len__(self) -> int:
        return len(self._units)

    def all(self) -> list[UnitRef]:
        return list(self._units.values())

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
            rows = await registry.units()
            self._units = {
                code: UnitRef(code, name, Level(level), parent_code)
                for code, name, level, parent_code in rows
            }
            self._children = None
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
        return self._units.get(code)

    async def keep_fresh(self, interval: float) -> NoReturn:
        """Background task: poll the registry version every `interval` seconds until
        cancelled; a failed poll is logged and tried again after the backoff."""

        async def refresh_then_wait() -> None:
            await self.refresh()
            await asyncio.sleep(interval)

        await keep_running(refresh_then_wait, event="registry_refresh_failed")
