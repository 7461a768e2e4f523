"""The registry's units packed into arrays, by position in code order: a nation's 645,000 units
take about 55 MiB this way, against about 270 MiB as an object and three strings each (and a
dict entry) per unit.

Codes are 12-digit numbers in one sorted array, found by bisection inside the span of their
first nine digits; names are one string cut at offsets; levels one byte each; parents and
children positions. A `UnitRef` is made when asked for, except for the units with children
(one in fourteen), whose refs and chains up to the root are kept: a village's ancestors are
its own ref and its parent's kept chain.
"""

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, pairwise

from shared.levels import CAMPAIGN_LEVELS, Level

LEVELS: tuple[Level, ...] = tuple(Level)  # from the top down: a parent's index is lower
_LEVEL_INDEX = {level.value: index for index, level in enumerate(LEVELS)}
_KEYING_LEVELS = (Level.county, Level.city)
# Codes sharing their first nine digits (a township's villages) are one span of the array.
_SPAN = 1000
_NONE = -1
RECENT_REFS = 4096


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


_new_ref = UnitRef.__new__
_set_code = UnitRef.__dict__["code"].__set__
_set_name = UnitRef.__dict__["name"].__set__
_set_level = UnitRef.__dict__["level"].__set__
_set_parent_code = UnitRef.__dict__["parent_code"].__set__


class PackedBuilder:
    """Takes the units (code, name, level, parent_code) in ascending code order, in batches."""

    def __init__(self) -> None:
        self.codes = array("q")
        self.parent_codes = array("q")
        self.levels = bytearray()
        self.name_ends = array("I")
        self._names: list[str] = []
        self._name_length = 0

    def add(self, rows: Iterable[tuple[str, str, str, str | None]]) -> None:
        names = []
        for code, name, level, parent_code in rows:
            self.codes.append(int(code))
            self.parent_codes.append(int(parent_code) if parent_code else _NONE)
            self.levels.append(_LEVEL_INDEX[level])
            self._name_length += len(name)
            self.name_ends.append(self._name_length)
            names.append(name)
        self._names.append("".join(names))

    def build(self) -> "PackedUnits":
        names = "".join(self._names)
        self._names = []
        return PackedUnits(self.codes, names, self.name_ends, self.levels, self.parent_codes)


class PackedUnits:
    def __init__(
        self, codes: array, names: str, name_ends: array, levels: bytearray, parent_codes: array
    ) -> None:
        if any(a >= b for a, b in pairwise(codes)):
            raise ValueError("units must come in strictly ascending code order")
        self._codes = codes
        self._names = names
        self._name_ends = name_ends
        self._levels = bytes(levels)
        self._spans = _spans(codes)
        self._parents = self._positions_of(parent_codes)
        self._child_starts, self._child_positions = _children(self._parents)
        self._roots = [p for p, parent in enumerate(self._parents) if parent == _NONE]
        # The units with children: by position, and by code (with their keying codes).
        self._chains: list[tuple[UnitRef, ...]] = [()] * len(codes)  # () for the others
        self._kept: dict[str, tuple[UnitRef, ...]] = {}
        self._keys: dict[str, str] = {}
        self._keep_branches()
        # Refs of units without children made lately: a request or an event asks about its
        # unit several times (found, within the key's scope, keyed by its county).
        self._recent: dict[str, UnitRef] = {}

    def __len__(self) -> int:
        return len(self._codes)

    # --- by code: the hot paths ---------------------------------------------------------

    def get(self, code: str) -> UnitRef | None:
        kept = self._kept.get(code)
        if kept is not None:
            return kept[0]
        ref = self._recent.get(code)
        if ref is None:
            position = self.position(code)
            if position == _NONE:
                return None
            if len(self._recent) >= RECENT_REFS:
                self._recent.clear()
            self._recent[code] = ref = self._leaf(position, code)
        return ref

    def chain(self, code: str) -> list[UnitRef]:
        """The unit, then its parent, up to the root; empty if there is no such unit."""
        kept = self._kept.get(code)
        if kept is not None:
            return list(kept)
        ref = self.get(code)
        if ref is None:
            return []
        return [ref] if ref.parent_code is None else [ref, *self._kept[ref.parent_code]]

    def keying_code(self, code: str) -> str:
        """See UnitRegistry.keying_unit."""
        key = self._keys.get(code)
        if key is not None:
            return key
        ref = self.get(code)
        if ref is None:
            return code
        if ref.parent_code is None or ref.level in _KEYING_LEVELS:
            return _keying_code(self.chain(code))
        return self._keys[ref.parent_code]

    def is_within(self, code: str, scope_code: str) -> bool:
        kept = self._kept.get(code)
        if kept is None:
            ref = self.get(code)
            if ref is None or code == scope_code:
                return ref is not None
            if ref.parent_code is None:
                return False
            kept = self._kept[ref.parent_code]
        return any(unit.code == scope_code for unit in kept)

    def position(self, code: str) -> int:
        """The unit's position in code order, or -1 if there is no such unit."""
        if len(code) != 12 or not code.isdigit() or not code.isascii():
            return _NONE
        number = int(code)
        span = self._spans.get(number // _SPAN)
        if span is None:
            return _NONE
        start, end = span
        position = bisect_left(self._codes, number, start, end)
        return position if position < end and self._codes[position] == number else _NONE

    def _positions_of(self, parent_codes: array) -> array:
        """The parents' positions: found once for each run of siblings (code order keeps a
        township's villages together)."""
        positions = array("i")
        last_code = position = _NONE
        for code in parent_codes:
            if code != last_code:
                last_code = code
                position = _NONE if code == _NONE else self.position(f"{code:012d}")
            positions.append(position)
        return positions

    # --- by position ----------------------------------------------------------------------

    def code_at(self, position: int) -> str:
        return f"{self._codes[position]:012d}"

    def ref(self, position: int) -> UnitRef:
        kept = self._chains[position]
        return kept[0] if kept else self._leaf(position, self.code_at(position))

    def _leaf(self, position: int, code: str) -> UnitRef:
        """`UnitRef(...)` at a third of the cost: the frozen dataclass's `__init__` sets each
        field through `object.__setattr__`, this through the slots themselves."""
        ends = self._name_ends
        parent = self._parents[position]
        ref = _new_ref(UnitRef)
        _set_code(ref, code)
        _set_name(ref, self._names[ends[position - 1] if position else 0 : ends[position]])
        _set_level(ref, LEVELS[self._levels[position]])
        _set_parent_code(ref, None if parent == _NONE else self._chains[parent][0].code)
        return ref

    def _is_under(self, position: int, scope: int) -> bool:
        while position != _NONE:
            if position == scope:
                return True
            position = self._parents[position]
        return False

    def _keep_branches(self) -> None:
        """Refs, chains and keying codes of the units with children, parents first (a
        parent's level is above its child's)."""
        starts = self._child_starts
        branches = [p for p in range(len(self._codes)) if starts[p] < starts[p + 1]]
        branches.sort(key=self._levels.__getitem__)
        for position in branches:
            parent = self._parents[position]
            above = () if parent == _NONE else self._chains[parent]
            assert above or parent == _NONE, "a parent below its child"
            leaf = self._leaf(position, self.code_at(position))
            self._chains[position] = chain = (leaf, *above)
            self._kept[leaf.code] = chain
            self._keys[leaf.code] = _keying_code(list(chain))

    # --- the tree -------------------------------------------------------------------------

    def children(self, code: str) -> list[str]:
        """The unit's children's codes, in code order."""
        position = self.position(code)
        if position == _NONE:
            return []
        start, end = self._child_starts[position], self._child_starts[position + 1]
        return [self.code_at(child) for child in self._child_positions[start:end]]

    def members(self, code: str, level: Level) -> list[UnitRef]:
        """The units of the level under and including the unit, in code order."""
        position = self.position(code)
        if position == _NONE:
            return []
        index, levels = LEVELS.index(level), self._levels
        starts, children = self._child_starts, self._child_positions
        found, pending = [], [position]
        while pending:
            at = pending.pop()
            if levels[at] == index:
                found.append(at)
            elif levels[at] < index:
                pending.extend(children[starts[at] : starts[at + 1]])
        return [self.ref(at) for at in sorted(found)]

    def roots(self) -> list[str]:
        return [self.code_at(p) for p in self._roots]

    def refs(self) -> Iterator[UnitRef]:
        return (self.ref(position) for position in range(len(self._codes)))

    def search(self, query: str, *, within: str, limit: int) -> list[UnitRef]:
        """The units under `within` whose name holds the query or whose code starts with it,
        the highest levels first, then in code order; at most `limit`."""
        scope = self.position(within)
        if scope == _NONE:
            return []
        found = set(self._named(query))
        if query.isascii() and query.isdigit() and len(query) <= 12:
            low, high = int(query.ljust(12, "0")), int(query.ljust(12, "9"))
            found.update(range(bisect_left(self._codes, low), bisect_right(self._codes, high)))
        ordered = sorted(
            (p for p in found if self._is_under(p, scope)), key=lambda p: (self._levels[p], p)
        )
        return [self.ref(p) for p in ordered[:limit]]

    def _named(self, text: str) -> Iterator[int]:
        """Positions of the units whose name holds the text."""
        start = self._names.find(text)
        while start >= 0:
            position = bisect_right(self._name_ends, start)
            if start + len(text) <= self._name_ends[position]:
                yield position
            start = self._names.find(text, start + 1)

    def totals(self) -> "LevelTotals":
        """How many units of each campaign level lie under each unit (itself included)."""
        columns = [
            array("i", (int(at == LEVELS.index(level)) for at in self._levels))
            for level in CAMPAIGN_LEVELS
        ]
        # The lowest levels first: a unit's counts are whole before they go to its parent.
        parents = self._parents
        for position in sorted(range(len(parents)), key=self._levels.__getitem__, reverse=True):
            parent = parents[position]
            if parent != _NONE:
                for column in columns:
                    column[parent] += column[position]
        return LevelTotals(self, dict(zip(CAMPAIGN_LEVELS, columns, strict=True)))


class LevelTotals:
    def __init__(self, units: PackedUnits, columns: dict[Level, array]) -> None:
        self._units = units
        self._columns = columns

    def get(self, code: str, level: Level) -> int:
        column = self._columns.get(level)
        position = self._units.position(code)
        return 0 if column is None or position == _NONE else column[position]


def _keying_code(chain: list[UnitRef]) -> str:
    for level in _KEYING_LEVELS:
        unit = next((u for u in chain if u.level == level), None)
        if unit is not None:
            return unit.code
    return chain[-1].code


def _spans(codes: array) -> dict[int, tuple[int, int]]:
    spans: dict[int, tuple[int, int]] = {}
    start = 0
    for position in range(1, len(codes) + 1):
        if position == len(codes) or codes[position] // _SPAN != codes[start] // _SPAN:
            spans[codes[start] // _SPAN] = (start, position)
            start = position
    return spans


def _children(parents: array) -> tuple[array, array]:
    """Each unit's children as a range of one array: starts[p] to starts[p + 1]."""
    counts = array("i", bytes(4 * (len(parents) + 1)))
    for parent in parents:
        if parent != _NONE:
            counts[parent + 1] += 1
    starts = array("i", accumulate(counts))
    filled = array("i", starts)
    positions = array("i", bytes(4 * filled[-1]))
    for position, parent in enumerate(parents):
        if parent != _NONE:
            positions[filled[parent]] = position
            filled[parent] += 1
    return starts, positions
