"""Figures that come from the registry alone, recomputed when its version changes: how many
units of each level lie under each unit, and which ones."""

from collections import Counter, OrderedDict

from shared.levels import CAMPAIGN_LEVELS, RANK, Level
from shared.registry.cache import UnitRef, UnitRegistry

# Enough for every county and township of a province: an eligible page walks no tree.
MEMBER_LISTS_KEPT = 4096


class UnitTree:
    def __init__(self, registry: UnitRegistry) -> None:
        self.registry = registry
        self._version: int | None = None
        self._totals: Counter[tuple[str, Level]] = Counter()
        self._members: OrderedDict[tuple[str, Level], list[UnitRef]] = OrderedDict()

    def refresh(self) -> None:
        version = self.registry.version  # read first: a reload during the count recounts later
        if version == self._version:
            return
        totals: Counter[tuple[str, Level]] = Counter()
        for unit in self.registry.all():
            if unit.level in CAMPAIGN_LEVELS:
                for ancestor in self.registry.ancestors(unit.code):
                    totals[(ancestor.code, unit.level)] += 1
        self._totals = totals
        self._members = OrderedDict()
        self._version = version

    def total(self, code: str, level: Level) -> int:
        """Units of the level under and including the unit."""
        self.refresh()
        return self._totals[(code, level)]

    def members(self, code: str, level: Level) -> list[UnitRef]:
        """Units of the level under and including the unit, in code order."""
        self.refresh()
        key = (code, level)
        if key in self._members:
            self._members.move_to_end(key)
            return self._members[key]
        found = self._walk(code, level)
        self._members[key] = found
        if len(self._members) > MEMBER_LISTS_KEPT:
            self._members.popitem(last=False)
        return found

    def _walk(self, code: str, level: Level) -> list[UnitRef]:
        found = []
        pending = [code]
        while pending:
            unit = self.registry.get_cached(pending.pop())
            if unit is None or RANK[unit.level] < RANK[level]:
                continue
            if unit.level == level:
                found.append(unit)
            else:
                pending.extend(self.registry.children(unit.code))
        return sorted(found, key=lambda u: u.code)
