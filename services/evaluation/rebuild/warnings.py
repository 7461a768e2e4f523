"""The warnings' part of `sanwu evaluation rebuild`: the visits noted as the topic is read,
every warning they give found beside the index builds, and the live warnings brought in line
with them under the swap's lock."""

import asyncio
from collections.abc import Mapping, Sequence
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
    visits: Sequence[StoredVisit],
    wanted: Mapping[UUID, Expected],
    now: datetime,
) -> "asyncio.Future[list[StoredWarning]]":
    """How the live warnings come in line with `wanted`, every warning `visits` give
    (`EarlyWarnings.everything`): those the live ones lack are raised, those that differ get
    the next version. The live warnings and the corrections' times (of the `staging` tables)
    are read now; the changes are worked out in a thread, so that the connection can go on
    meanwhile."""
    stored = {w.warning_id: w for w in await live.all_warnings()}
    # Warnings that no visit gives any more stay as stored (`warnings.upkeep`), cleared.
    kept = {i: w for i, w in stored.items() if i in wanted or w.cleared_at is None}
    named = named_when_cleared(kept, wanted)
    corrected = await staging.corrected_at(named) if named else {}
    accepted = {v.event_id: v.accepted_at for v in visits}
    return asyncio.ensure_future(
        asyncio.to_thread(
            changes, kept, wanted, accepted=accepted, corrected=corrected, fallback=now
        )
    )


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
        self._found: tuple[int, list[StoredVisit], dict[UUID, Expected]] | None = None

    def note(self, record: EventRecord) -> None:
        """Its row, attributed where reported (`load_visits` sets the county of those
        corrected)."""
        self._noted += 1
        row = self.warnings.visit_row(record)
        if row is not None:
            self._rows.append(row)

    async def copy(self, connection: asyncpg.Connection, *, schema: str | None = None) -> None:
        """The rows noted since the last copy, into `schema` (by default the staging one)."""
        rows, self._rows = self._rows, []
        await WarningRepository(connection, schema=schema or self.staging).copy_visits(rows)

    async def load_visits(
        self, connection: asyncpg.Connection, *, schema: str | None = None
    ) -> list[StoredVisit]:
        """Every visit in `schema` (by default the staging one) as corrected, its county set
        where corrected. Call once its tables have every event and correction read so far."""
        await self.copy(connection, schema=schema)
        visits = await WarningRepository(connection, schema=schema or self.staging).all_visits()
        await self._set_counties(connection, visits, schema=schema)
        return visits

    async def find(self, connection: asyncpg.Connection) -> None:
        """Every staging visit as corrected (fetched on `connection`, a second one, while the
        database builds the indexes) and every warning they give (found in a thread), before
        the swap. Call once the staging tables have every event and correction read so far;
        then `set_counties`. `swap_in` uses them unless records were noted since."""
        noted = self._noted
        await self.copy(connection)
        visits = await WarningRepository(connection, schema=self.staging).all_visits()
        wanted = await asyncio.to_thread(self.warnings.everything, visits)
        self._found = (noted, visits, wanted)

    async def set_counties(self, connection: asyncpg.Connection) -> None:
        """After `find`: the county of each corrected staging visit as attributed now."""
        if self._found is not None:
            await self._set_counties(connection, self._found[1])

    async def _set_counties(
        self,
        connection: asyncpg.Connection,
        visits: list[StoredVisit],
        *,
        schema: str | None = None,
    ) -> None:
        await WarningRepository(connection, schema=schema or self.staging).set_counties(
            [
                (v.event_id, self.warnings.county_where_attributed(v))
                for v in visits
                if v.voided or v.attributed_code != v.unit_code
            ]
        )

    async def reconcile(
        self, session: AsyncSession, *, now: datetime
    ) -> "asyncio.Future[list[StoredWarning]]":
        """Under the rebuild's lock, before the swap, once the staging tables have every event
        and correction: start working out how the live warnings change
        (`rebuilt`); `swap_in` saves the changes."""
        connection = (await WarningRepository.from_session(session)).connection
        if self._found is not None and self._found[0] == self._noted:
            _, visits, wanted = self._found
        else:  # records came in since `find`: found again
            visits = await self.load_visits(connection)
            wanted = await asyncio.to_thread(self.warnings.everything, visits)
        return await rebuilt(
            WarningRepository(connection, schema=SCHEMA),
            WarningRepository(connection, schema=self.staging),
            visits=visits,
            wanted=wanted,
            now=now,
        )

    async def stage(
        self, changes: "asyncio.Future[list[StoredWarning]]", spare: asyncpg.Connection
    ) -> list[StoredWarning]:
        """The changes `reconcile` works out, COPied into the staging schema on `spare` (not
        the swap's connection) as soon as they are known."""
        found = await changes
        records = await asyncio.to_thread(lambda: [warning_record(w) for w in found])
        await WarningRepository(spare, schema=self.staging).stage(records)
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
