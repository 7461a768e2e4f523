"""Meeting cadence (docs/domain.md section 7): the slots of a level and which of them a unit kept.

A slot is named by its first day (Asia/Shanghai). A period's slots are those that start on a
date inside it; a slot that has not ended yet is open, neither held nor missed.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class Cadence(StrEnum):
    week = "week"  # ISO week, Monday to Sunday: 村（居）每周一次
    half_month = "half_month"  # days 1-15 and 16 to the month's end: 乡镇每半月一次
    month = "month"  # calendar month: 县每月一次


def slot_start(day: date, cadence: Cadence) -> date:
    """The first day of the slot that `day` falls in."""
    if cadence is Cadence.week:
        return day - timedelta(days=day.weekday())
    if cadence is Cadence.half_month:
        return day.replace(day=1 if day.day <= 15 else 16)
    return day.replace(day=1)


def next_slot(start: date, cadence: Cadence) -> date:
    """The first day of the slot after the one starting on `start`."""
    if cadence is Cadence.week:
        return start + timedelta(days=7)
    if cadence is Cadence.half_month and start.day == 1:
        return start.replace(day=16)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def slots_starting(first: date, last: date, *, cadence: Cadence) -> list[date]:
    """The slots that start on a date in [first, last]."""
    start = slot_start(first, cadence)
    if start < first:
        start = next_slot(start, cadence)
    slots = []
    while start <= last:
        slots.append(start)
        start = next_slot(start, cadence)
    return slots


@dataclass(frozen=True, slots=True)
class MeetingCadence:
    """How a unit kept its cadence in a period, as of `today`. Slots that have not started
    yet are not required; the slot that has started and not ended is `open`, neither held nor
    missed even when a meeting already fell in it (required = held + missed + open)."""

    cadence: Cadence
    required: int
    held: int
    missed: list[date]
    open: date | None

    @property
    def compliance(self) -> float | None:
        """The share of the decided slots (held, or ended and missed) that were held."""
        decided = self.held + len(self.missed)
        return self.held / decided if decided else None

    @property
    def kept(self) -> bool:
        return not self.missed


def cadence_of(
    held_slots: Iterable[date], *, cadence: Cadence, first: date, last: date, today: date
) -> MeetingCadence:
    """The cadence kept in the period [first, last] by a unit whose meetings fell in
    `held_slots` (slot start dates), as of `today`."""
    held = set(held_slots)
    started = slots_starting(first, min(last, today), cadence=cadence)
    open_slot = started[-1] if started and next_slot(started[-1], cadence) > today else None
    ended = [s for s in started if s != open_slot]
    return MeetingCadence(
        cadence=cadence,
        required=len(started),
        held=sum(1 for s in ended if s in held),
        missed=[s for s in ended if s not in held],
        open=open_slot,
    )
