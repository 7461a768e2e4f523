"""The warnings' part of `sanwu evaluation rebuild`: the visits noted as the topic is read,
every warning they give found beside the index builds, and the live warnings brought in line
with them under the swap's lock."""

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.models import SCHEMA
from services.evaluation.warnings.changes import changes, named_when_cleared
from services.evaluation.warnings.finder import Expected
from services.evaluation.warnings.records import StoredVisit, StoredWarning, warning_record
from services.evaluation.warnings.repository import WarningRepository
from services.evaluation.warnings.upkeep import EarlyWarnings
from shared.events import EventRecord


async def rebuilt(
    live: WarningRepository,
    staging: WarningRepository,
    *,
    wanted: Mapping[UUID, Expected],
    accepted: Mapping[UUID, datetime],
    now: datetime,
) -> "asyncio.Future[list[StoredWarning]]":
    """How the live warnings come in line with `wanted`, every warning the visits give
    (`FoundWarnings.wanted`): those the live ones lack are raised, those that differ get the next
    version. `accepted`: when each visit they name was accepted. The live warnings and the
    corrections' times (of the `staging` tables) are read now; the changes are worked out in
    a thread, so that the connection can go on meanwhile."""
    stored = {w.warning_id: w for w in await live.all_warnings()}
    # Warnings that no visit gives any more stay as stored (`warnings.upkeep`), cleared.
    kept = {i: w for i, w in stored.items() if i in wanted or w.cleared_at is None}
    named = named_when_cleared(kept, wanted)
    corrected = await staging.corrected_at(named) if named else {}
    return asyncio.ensure_future(
        asyncio.to_thread(
            changes, kept, wanted, accepted=accepted, corrected=corrected, fallback=now
        )
    )


RECORDS_AT_ONCE = 20_000


async def records_of(warnings: Sequence[StoredWarning]) -> AsyncIterator[tuple[Any, ...]]:
    """`warning_record` of each, made in a thread `RECORDS_AT_ONCE` at a time: a national
    rebuild changes half a million warnings, and their records all at once took hundreds
    of MiB."""
    for start in range(0, len(warnings), RECORDS_AT_ONCE):
        part = map(warning_record, warnings[start : start + RECORDS_AT_ONCE])
        for record in await asyncio.to_thread(list, part):
            yield record


@dataclass
class FoundWarnings:
    """Every warning the staging visits give (`wanted`), with when each visit they name was
    accepted, and the visits a correction touched (whose counties `set_counties` sets)."""

    corrected: list[StoredVisit]
    wanted: dict[UUID, Expected] = field(default_factory=dict)
    accepted: dict[UUID, datetime] = field(default_factory=dict)

    def add(self, wanted: Mapping[UUID, Expected], visits: Sequence[StoredVisit]) -> None:
        """A county's warnings, found in `visits`."""
        self.wanted |= wanted
        named = {e for x in wanted.values() for e in x.found.event_ids}
        self.accepted |= {v.event_id: v.accepted_at for v in visits if v.event_id in named}


class WarningRebuild:
    """The warnings' part of `sanwu evaluation rebuild`: the visit rows noted while the topic
    is read, COPied into the staging `warning_visit` (swapped in with the other rebuilt
    tables); every warning found before the swap, the changes to the live ones worked out
    under its lock while the histories are merged, and saved once the tables are in."""

    def __init__(self, warnings: EarlyWarnings, *, staging: str) -> None:
        self.warnings = warnings
        self.staging = staging
        self._rows: list[tuple[Any, ...]] = []
        self._noted = 0  # records noted, visits or not
        # What `find` found, with the number of records noted then.
        self._found: tuple[int, FoundWarnings] | None = None

    def note(self, record: EventRecord) -> None:
        """Its row, attributed where reported (`set_counties` sets the county of those
        corrected)."""
        self._noted += 1
        row = self.warnings.visit_row(record)
        if row is not None:
            self._rows.append(row)

    async def copy(self, connection: asyncpg.Connection, *, schema: str | None = None) -> None:
        """The rows noted since the last copy, into `schema` (by default the staging one)."""
        rows, self._rows = self._rows, []
        await WarningRepository(connection, schema=schema or self.staging).copy_visits(rows)

    async def find(self, connection: asyncpg.Connection) -> None:
        """Every warning the staging visits give as corrected, found a county at a time
        (fetched on `connection`, a second one, while the database builds the indexes; each
        county weighed in a thread), before the swap. Call once the staging tables have
        every event and correction read so far; then `set_counties`. `swap_in` uses them
        unless records were noted since."""
        noted = self._noted
        self._found = (noted, await self._find(connection))

    async def _find(self, connection: asyncpg.Connection) -> FoundWarnings:
        await self.copy(connection)
        staging = WarningRepository(connection, schema=self.staging)
        found = FoundWarnings(await staging.corrected_visits())
        # A visit attributed to another county than it was reported for is read in both.
        moved_in: dict[str, list[StoredVisit]] = {}
        for visit in found.corrected:
            county = self.warnings.county_where_attributed(visit)
            if county is not None and county != self.warnings.county_of(visit.unit_code):
                moved_in.setdefault(county, []).append(visit)
        everything_in = self.warnings.everything_in_county
        async for county, reported in staging.visits_by_county():
            visits = [*reported, *moved_in.pop(county, [])]
            found.add(await asyncio.to_thread(everything_in, county, visits), visits)
        for county, visits in moved_in.items():  # none reported for these counties
            found.add(await asyncio.to_thread(everything_in, county, visits), visits)
        return found

    async def set_counties(self, connection: asyncpg.Connection) -> None:
        """After `find`: the county of each corrected staging visit as attributed now."""
        if self._found is not None:
            await self._set_counties(connection, self._found[1].corrected)

    async def _set_counties(
        self, connection: asyncpg.Connection, visits: list[StoredVisit]
    ) -> None:
        await WarningRepository(connection, schema=self.staging).set_counties(
            [(v.event_id, self.warnings.county_where_attributed(v)) for v in visits]
        )

    async def reconcile(
        self, session: AsyncSession, *, now: datetime
    ) -> "asyncio.Future[list[StoredWarning]]":
        """Under the rebuild's lock, before the swap, once the staging tables have every event
        and correction: start working out how the live warnings change
        (`rebuilt`); `swap_in` saves the changes."""
        connection = (await WarningRepository.from_session(session)).connection
        if self._found is not None and self._found[0] == self._noted:
            found = self._found[1]
        else:  # records came in since `find`: found again
            found = await self._find(connection)
            await self._set_counties(connection, found.corrected)
        return await rebuilt(
            WarningRepository(connection, schema=SCHEMA),
            WarningRepository(connection, schema=self.staging),
            wanted=found.wanted,
            accepted=found.accepted,
            now=now,
        )

    async def stage(
        self, changes: "asyncio.Future[list[StoredWarning]]", spare: asyncpg.Connection
    ) -> list[StoredWarning]:
        """The changes `reconcile` works out, COPied into the staging schema on `spare` (not
        the swap's connection) as soon as they are known."""
        found = await changes
        self._found = None  # every warning found, and their visits' times: no longer needed
        await WarningRepository(spare, schema=self.staging).stage(records_of(found))
        return found

    async def swap_in(
        self, session: AsyncSession, staged: "asyncio.Future[list[StoredWarning]]"
    ) -> list[StoredWarning]:
        """Once the rebuilt tables are swapped in: the live warnings brought in line with the
        changes `stage` staged (saved and published)."""
        changes = await staged
        live = await WarningRepository.from_session(session)
        await live.save_staged(self.staging)
        return changes
