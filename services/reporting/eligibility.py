"""Which units of a level under a root are eligible to apply (three-no now) and which are not,
with their counts: pages of either list in unit-code order, and the whole answer the exports
present."""

from bisect import bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from services.reporting.readmodel import StoredStatus
from services.reporting.record_reads import RecordReads, UnitRecords
from services.reporting.repository import StatusRepository
from services.reporting.schemas import (
    EligiblePageOut,
    NotEligiblePageOut,
    NotEligibleUnitOut,
    counts_out,
    unit_out,
)
from services.reporting.tree import UnitTree
from shared import cursors
from shared.campaign import CurrentCampaign, Period, system_now
from shared.db import Database
from shared.levels import Level
from shared.registry.cache import UnitRef, UnitRegistry

ELIGIBLE_CURSOR = "e1"
NOT_ELIGIBLE_CURSOR = "n1"
SCAN_CHUNK = 500
Found = TypeVar("Found")


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The whole answer for one root, period and level, as the exports present it."""

    root: UnitRef
    period: Period | None  # None: rolling
    period_id: str
    level: Level
    as_of: datetime
    eligible: list[UnitRef]
    not_eligible: list[tuple[UnitRef, StoredStatus]]
    records: dict[str, UnitRecords] = field(default_factory=dict)  # cadence, satisfaction


def parent_name(registry: UnitRegistry, unit: UnitRef) -> str | None:
    parent = registry.get_cached(unit.parent_code) if unit.parent_code else None
    return parent.name if parent else None


def _chunks(members: list[UnitRef]) -> list[list[UnitRef]]:
    return [members[i : i + SCAN_CHUNK] for i in range(0, len(members), SCAN_CHUNK)]


def _codes(units: list[UnitRef]) -> list[str]:
    return [unit.code for unit in units]


class EligibleLists:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        tree: UnitTree,
        records: RecordReads,
        campaign: CurrentCampaign,
    ) -> None:
        self.db = db
        self.registry = registry
        self.tree = tree
        self.records = records
        self._campaign = campaign

    def members_after(self, *, root: str, level: Level, after: str | None) -> list[UnitRef]:
        """The units of the level under the root, in code order, after the code `after`."""
        members = self.tree.members(root, level)
        start = 0 if after is None else bisect_right(members, after, key=lambda u: u.code)
        return members[start:]

    async def eligible_page(
        self, members: list[UnitRef], *, period: str, limit: int
    ) -> EligiblePageOut:
        async def pick(repository: StatusRepository, chunk: list[UnitRef]) -> list[UnitRef]:
            not_clean = await repository.not_clean_codes(period, _codes(chunk))
            return [unit for unit in chunk if unit.code not in not_clean]

        page, more = await self._scan(members, limit=limit, pick=pick)
        return EligiblePageOut(
            items=[unit_out(u) for u in page],
            next_cursor=cursors.encode(ELIGIBLE_CURSOR, page[-1].code) if more else None,
        )

    async def not_eligible_page(
        self, members: list[UnitRef], *, period: str, limit: int
    ) -> NotEligiblePageOut:
        async def pick(
            repository: StatusRepository, chunk: list[UnitRef]
        ) -> list[tuple[UnitRef, StoredStatus]]:
            not_clean = await repository.not_clean(period, _codes(chunk))
            return [(unit, not_clean[unit.code]) for unit in chunk if unit.code in not_clean]

        page, more = await self._scan(members, limit=limit, pick=pick)
        return NotEligiblePageOut(
            items=[self.not_eligible_out(unit, status) for unit, status in page],
            next_cursor=cursors.encode(NOT_ELIGIBLE_CURSOR, page[-1][0].code) if more else None,
        )

    def not_eligible_out(self, unit: UnitRef, status: StoredStatus) -> NotEligibleUnitOut:
        return NotEligibleUnitOut(
            code=unit.code,
            name=unit.name,
            level=unit.level,
            parent_code=unit.parent_code,
            parent_name=parent_name(self.registry, unit),
            counts=counts_out(status.batches),
            people=counts_out(status.people),
            counting_event_ids=list(status.counting_event_ids),
        )

    async def _scan(
        self,
        members: list[UnitRef],
        *,
        limit: int,
        pick: Callable[[StatusRepository, list[UnitRef]], Awaitable[list[Found]]],
    ) -> tuple[list[Found], bool]:
        """The first `limit` of what `pick` finds among the members, chunk by chunk, and
        whether there are more."""
        found: list[Found] = []
        async with self.db.connection() as connection:
            repository = StatusRepository(connection)
            for chunk in _chunks(members):
                found += await pick(repository, chunk)
                if len(found) > limit:
                    break
        return found[:limit], len(found) > limit

    async def whole(self, unit: UnitRef, *, period: str, level: Level) -> Eligibility:
        eligible: list[UnitRef] = []
        not_eligible: list[tuple[UnitRef, StoredStatus]] = []
        members = self.tree.members(unit.code, level)
        async with self.db.connection() as connection:
            repository = StatusRepository(connection)
            for chunk in _chunks(members):
                not_clean = await repository.not_clean(period, _codes(chunk))
                for member in chunk:
                    status = not_clean.get(member.code)
                    if status is None:
                        eligible.append(member)
                    else:
                        not_eligible.append((member, status))
        campaign = self._campaign.get()
        records = await self.records.unit_records(
            campaign=campaign, units=members, period=period, level=level
        )
        return Eligibility(
            root=unit,
            period=campaign.period(period),
            period_id=period,
            level=level,
            as_of=system_now(),
            eligible=eligible,
            not_eligible=not_eligible,
            records=records,
        )
