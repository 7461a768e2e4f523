"""The read model's values and their arithmetic, without I/O.

A status contributes to every ancestor of its unit (the unit itself included) at the unit's
level: one "not clean" when it is not three-no, plus its batches and people per criterion.
Applying a change adds the new contribution and takes the old one away, at the old path, so a
unit the registry moved since is counted where it is now.
"""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.reporting.models import (
    CRITERIA,
    PATH_LEVELS,
    batches_column,
    path_column,
    people_column,
)
from shared.levels import Level
from shared.registry.cache import UnitRegistry
from shared.status import CriterionCounts, UnitStatus

Counts = tuple[int, ...]  # one per criterion, in CRITERIA order
UnitPath = tuple[str | None, ...]  # the ancestor (or the unit) at each of PATH_LEVELS
CountKey = tuple[str, str, Level]  # (ancestor code, period, level)
ZERO: Counts = (0,) * len(CRITERIA)


def counts_of(counts: CriterionCounts) -> Counts:
    return tuple(getattr(counts, c) for c in CRITERIA)


def criterion_counts(counts: Counts) -> dict[str, int]:
    return dict(zip(CRITERIA, counts, strict=True))


def _add(a: Counts, b: Counts) -> Counts:
    return tuple(x + y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, slots=True)
class Figures:
    not_clean: int = 0
    batches: Counts = ZERO
    people: Counts = ZERO

    def __add__(self, other: "Figures") -> "Figures":
        return Figures(
            self.not_clean + other.not_clean,
            _add(self.batches, other.batches),
            _add(self.people, other.people),
        )

    def __neg__(self) -> "Figures":
        return Figures(
            -self.not_clean, tuple(-x for x in self.batches), tuple(-x for x in self.people)
        )

    @property
    def is_zero(self) -> bool:
        return self == Figures()

    def columns(self) -> dict[str, int]:
        values = {batches_column(c): n for c, n in zip(CRITERIA, self.batches, strict=True)}
        values |= {people_column(c): n for c, n in zip(CRITERIA, self.people, strict=True)}
        return values | {"not_clean": self.not_clean}

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> "Figures":
        return cls(
            int(row["not_clean"]),
            tuple(int(row[batches_column(c)]) for c in CRITERIA),
            tuple(int(row[people_column(c)]) for c in CRITERIA),
        )


def path_of(registry: UnitRegistry, code: str) -> tuple[Level, UnitPath] | None:
    """The unit's level and path as the (cached) registry has them now."""
    chain = registry.ancestors(code)
    if not chain:
        return None
    by_level = {unit.level: unit.code for unit in chain}
    return chain[0].level, tuple(by_level.get(level) for level in PATH_LEVELS)


@dataclass(frozen=True, slots=True)
class StoredStatus:
    unit_code: str
    period: str
    level: Level
    path: UnitPath
    three_no: bool
    batches: Counts
    people: Counts
    counting_event_ids: tuple[str, ...]
    changed_at: datetime
    version: int

    @property
    def key(self) -> tuple[str, str]:
        return self.unit_code, self.period

    @property
    def ancestors(self) -> list[str]:
        return [code for code in self.path if code is not None]

    @property
    def figures(self) -> Figures:
        return Figures(0 if self.three_no else 1, self.batches, self.people)

    def moved(self, level: Level, path: UnitPath) -> "StoredStatus":
        return replace(self, level=level, path=path)

    @classmethod
    def from_message(cls, status: UnitStatus, *, level: Level, path: UnitPath) -> "StoredStatus":
        return cls(
            unit_code=status.unit_code,
            period=status.period,
            level=level,
            path=path,
            three_no=status.three_no,
            batches=counts_of(status.counts),
            people=counts_of(status.people),
            counting_event_ids=tuple(status.counting_event_ids),
            changed_at=status.changed_at,
            version=status.version,
        )

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "unit_code": self.unit_code,
            "period": self.period,
            "level": self.level.value,
            "three_no": self.three_no,
            "counting_event_ids": list(self.counting_event_ids),
            "changed_at": self.changed_at,
            "version": self.version,
        }
        row |= {
            path_column(level): code for level, code in zip(PATH_LEVELS, self.path, strict=True)
        }
        return row | {k: v for k, v in self.figures.columns().items() if k != "not_clean"}

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> "StoredStatus":
        return cls(
            unit_code=row["unit_code"],
            period=row["period"],
            level=Level(row["level"]),
            path=tuple(row[path_column(level)] for level in PATH_LEVELS),
            three_no=row["three_no"],
            batches=tuple(int(row[batches_column(c)]) for c in CRITERIA),
            people=tuple(int(row[people_column(c)]) for c in CRITERIA),
            counting_event_ids=tuple(row["counting_event_ids"]),
            changed_at=row["changed_at"],
            version=int(row["version"]),
        )


@dataclass
class CountDeltas:
    """What to add to the per-ancestor counts; entries that cancel out are dropped."""

    deltas: dict[CountKey, Figures] = field(default_factory=lambda: defaultdict(Figures))

    def add(self, status: StoredStatus, *, sign: int = 1) -> None:
        figures = status.figures if sign > 0 else -status.figures
        for code in status.ancestors:
            self.deltas[(code, status.period, status.level)] += figures

    def replace(self, before: StoredStatus | None, after: StoredStatus) -> None:
        if before is not None:
            self.add(before, sign=-1)
        self.add(after)

    def nonzero(self) -> dict[CountKey, Figures]:
        return {key: figures for key, figures in self.deltas.items() if not figures.is_zero}
