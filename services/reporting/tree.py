"""Figures that come from the registry alone, recomputed when its version changes: how many
units of each level lie under each unit, and which ones."""

from collections import OrderedDict

from shared.levels import Level
from shared.registry.cache import UnitRef, UnitRegistry
from shared.registry.packed import LevelTotals

# Units in the member lists kept (each a ref made for the list, about 240 bytes): the lists
# of every county and township of a province, or the villages of a few provinces. An eligible
# page of a list kept walks no tree.
MEMBERS_KEPT = 131_072


class UnitTree:
    def __init__(self, registry: UnitRegistry) -> None:
        self.registry = registry
        self._version: int | None = None
        self._totals: LevelTotals | None = None
        self._members: OrderedDict[tuple[str, Level], list[UnitRef]] = OrderedDict()
        self._members_kept = 0

    def refresh(self) -> None:
        version = self.registry.version  # read first: a reload during the count recounts later
        if version == self._version:
            return
        self._totals = self.registry.totals()
        self._members = OrderedDict()
        self._members_kept = 0
        self._version = version

    def total(self, code: str, level: Level) -> int:
        """Units of the level under and including the unit."""
        self.refresh()
        assert self._totals is not None
        return self._totals.get(code, level)

    def members(self, code: str, level: Level) -> list[UnitRef]:
        """Units of the level under and including the unit, in code order."""
        self.refresh()
        key = (code, level)
        if key in self._members:
            self._members.move_to_end(key)
            return self._members[key]
        found = self.registry.members(code, level)
        self._members[key] = found
        self._members_kept += len(found)
        while self._members_kept > MEMBERS_KEPT and len(self._members) > 1:
            _, dropped = self._members.popitem(last=False)
            self._members_kept -= len(dropped)
        return found
