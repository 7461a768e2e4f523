"""Raising and clearing early warnings as batches are applied, in the batch's transaction, and
rebuilding them with `sanwu evaluation rebuild`. What a warning is: `warnings.py`.

After a batch's effects are re-evaluated, the warnings that its visits (new ones, and those a
correction touched) can change are found again from the stored visits and compared with the
stored warnings: a new one is raised (version 1), one whose named events or detail changed gets
the next version, one no longer found in the visits as they stand is cleared (next version,
`cleared_at` set). Each such change goes once into `warning_outbox`, in the same transaction,
and the warning relay publishes it on `settings.warning_topic` keyed by the warning's id. A
redelivered batch finds what is stored already and changes nothing.

Times, defined so that a rebuild gives the same ones: `raised_at` is when intake accepted the
latest of the events the warning names when first raised; `cleared_at` when it accepted the
latest applied correction of those events. Only a warning that neither the visits as reported
nor as they stand give any more (a rising spell undone by a late-reported older visit, or the
warnings of an attribution that a second re-attribution replaced, each applied in a later
batch) is cleared at the latest acceptance time of the batch that cleared it; a rebuild, which
sees only the final visits, does not have such a warning at all and keeps it as stored.

The petitioner reference here is intake's keyed hash; it is never logged.
"""

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.models import SCHEMA
from services.evaluation.warning_repository import (
    StoredVisit,
    StoredWarning,
    WarningRepository,
    warning_outbox,
    warning_record,
)
from services.evaluation.warnings import (
    UUID_ORDER,
    Expected,
    Found,
    Visit,
    WarningFinder,
    by_subtree,
    expected,
)
from shared.campaign import Campaign
from shared.config import Settings
from shared.db import Database
from shared.early_warning import WarningKind
from shared.events import EventRecord, PetitionVisit
from shared.levels import Destination, Level
from shared.outbox import OutboxRelay
from shared.registry.cache import UnitRegistry


def warning_relay(db: Database, settings: Settings, *, idle_poll_seconds: float) -> OutboxRelay:
    return OutboxRelay(
        db=db,
        settings=settings,
        table=warning_outbox,
        topic=settings.warning_topic,
        idle_poll_seconds=idle_poll_seconds,
        notified=False,
    )


class EarlyWarnings:
    def __init__(self, *, campaign: Campaign, registry: UnitRegistry) -> None:
        self.campaign = campaign
        self.registry = registry
        self.finder = WarningFinder(
            rules=campaign.warnings,
            level_rules=campaign.rules,
            chain=self.chain,
            county_of=self.county_of,
        )
        self._chains: dict[str, tuple[tuple[str, Level], ...]] = {}
        self._counties: dict[str, str] = {}

    def chain(self, unit_code: str) -> tuple[tuple[str, Level], ...]:
        """The unit and its ancestors at campaign levels."""
        chain = self._chains.get(unit_code)
        if chain is None:
            rules = self.campaign.rules
            chain = self._chains[unit_code] = tuple(
                (u.code, u.level) for u in self.registry.ancestors(unit_code) if u.level in rules
            )
        return chain

    def county_of(self, unit_code: str) -> str:
        """`registry.keying_unit`, remembered like the chains."""
        county = self._counties.get(unit_code)
        if county is None:
            county = self._counties[unit_code] = self.registry.keying_unit(unit_code)
        return county

    def visit_row(self, record: EventRecord) -> tuple[Any, ...] | None:
        """The `warning_visit` row of a visit (none for other events)."""
        event = record.event
        if not isinstance(event, PetitionVisit):
            return None
        county = self.county_of(event.unit_code)
        return (
            event.event_id,
            record.accepted_at,
            event.occurred_at,
            event.petitioner_ref,
            county,
            None,
        )

    # --- a batch --------------------------------------------------------------------------

    async def apply(
        self,
        session: AsyncSession,
        records: Sequence[EventRecord],
        *,
        touched: Iterable[UUID],
    ) -> list[StoredWarning]:
        """Record the batch's visits, then raise and clear what the touched events change.
        Returns the changes published."""
        self._counties.clear()  # the registry may have changed since the last batch
        repository = await WarningRepository.from_session(session)
        await repository.add_visits([r for r in map(self.visit_row, records) if r is not None])
        visits = await repository.visits(touched)
        if not visits:
            return []
        self._chains.clear()  # the registry may have changed since the last batch
        await repository.set_counties(
            [(v.event_id, self.county_where_attributed(v)) for v in visits]
        )
        refs = {v.petitioner_ref for v in visits if v.petitioner_ref is not None}
        stored = await repository.warnings_of(
            scopes={
                WarningKind.near_threshold: [str(v.event_id) for v in visits],
                WarningKind.repeat_petitioner: refs,
            },
            naming=[v.event_id for v in visits],
        )
        # Repeat warnings of the counties these visits are, or were, in: a batch changes
        # nothing in other counties (their batches may run meanwhile).
        counties = {self.registry.keying_unit(v.unit_code) for v in visits}
        counties |= {c for v in visits if (c := self.county_where_attributed(v)) is not None}
        touched_ids = {v.event_id for v in visits}
        counties |= {
            str(w.detail["county_code"])
            for w in stored
            if w.kind is WarningKind.repeat_petitioner and touched_ids & set(w.event_ids)
        }
        considered = {
            w.warning_id: w
            for w in stored
            if w.kind is WarningKind.near_threshold
            or (w.kind is WarningKind.repeat_petitioner and w.detail["county_code"] in counties)
        }
        known = {v.event_id: v for v in visits}
        wanted = expected(
            (f for v in visits for f in self.finder.near_threshold(reported(v))),
            (f for v in visits if (s := standing(v)) for f in self.finder.near_threshold(s)),
        )
        if refs:
            of_petitioners = await repository.visits_of_petitioners(refs)
            known |= {v.event_id: v for v in of_petitioners}
            wanted |= {
                i: e
                for i, e in self._repeat(of_petitioners).items()
                if e.found.detail["county_code"] in counties
            }
        ranges = self._rising_ranges(visits, stored)
        if ranges:
            rising_stored = await repository.warnings_of(
                scopes={WarningKind.rising: ranges}, naming=[]
            )
            loaded = await self._rising_visits(repository, ranges)
            known |= {v.event_id: v for v in loaded}
            wanted |= self._rising(loaded, ranges)
            for unit_code, (since, until) in ranges.items():
                considered |= {
                    w.warning_id: w
                    for w in rising_stored
                    if w.scope == unit_code and since <= w.cause_at <= until
                }
        latest = max((r.accepted_at for r in records), default=None)
        return await self._reconcile(repository, considered, wanted, known=known, fallback=latest)

    def county_where_attributed(self, visit: StoredVisit) -> str | None:
        """The county a visit is attributed to now; none when voided."""
        return None if visit.voided else self.county_of(visit.attributed_code)

    def _repeat(self, visits: Sequence[StoredVisit]) -> dict[UUID, Expected]:
        by_ref: dict[str, list[StoredVisit]] = {}
        for visit in visits:
            if visit.petitioner_ref is not None:
                by_ref.setdefault(visit.petitioner_ref, []).append(visit)
        wanted: dict[UUID, Expected] = {}
        for group in by_ref.values():
            wanted |= expected(
                self.finder.repeat_petitioner(map(reported, group)),
                self.finder.repeat_petitioner(s for v in group if (s := standing(v))),
            )
        return wanted

    def _reach(self) -> timedelta:
        """How far a visit's moment reaches into the rising onsets after it."""
        rule = self.campaign.warnings.rising
        return timedelta(days=2 * rule.recent_days + rule.baseline_days)

    def _rising_ranges(
        self, visits: Sequence[StoredVisit], stored: Sequence[StoredWarning]
    ) -> dict[str, tuple[datetime, datetime]]:
        """Per unit whose rising onsets the visits may change: the span of those onsets."""
        # Rising warnings naming the visits: also where they were attributed before.
        named = [w for w in stored if w.kind is WarningKind.rising]
        ranges: dict[str, tuple[datetime, datetime]] = {}
        for visit in visits:
            units = {c for c, _ in self.chain(visit.unit_code)}
            units |= {c for c, _ in self.chain(visit.attributed_code)}
            units |= {w.unit_code for w in named if visit.event_id in w.event_ids}
            for unit_code in units:
                since, until = ranges.get(unit_code, (visit.occurred_at, visit.occurred_at))
                ranges[unit_code] = (min(since, visit.occurred_at), max(until, visit.occurred_at))
        return {code: (since, until + self._reach()) for code, (since, until) in ranges.items()}

    async def _rising_visits(
        self, repository: WarningRepository, ranges: Mapping[str, tuple[datetime, datetime]]
    ) -> list[StoredVisit]:
        by_county: dict[str, tuple[datetime, datetime]] = {}
        for unit_code, (since, until) in ranges.items():
            county = self.registry.keying_unit(unit_code)
            low, high = by_county.get(county, (since, until))
            by_county[county] = (min(low, since), max(high, until))
        loaded: dict[UUID, StoredVisit] = {}
        for county, (since, until) in sorted(by_county.items()):
            for visit in await repository.visits_in_county(
                county, after=since - self._reach(), until=until
            ):
                loaded[visit.event_id] = visit
        return list(loaded.values())

    def _rising(
        self, visits: Sequence[StoredVisit], ranges: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[UUID, Expected]:
        """The rising warnings of each unit in `ranges` with its onset in the unit's span."""
        as_reported = by_subtree(map(reported, visits), ranges, self.chain)
        as_standing = by_subtree((s for v in visits if (s := standing(v))), ranges, self.chain)
        wanted: dict[UUID, Expected] = {}
        for unit_code, (since, until) in ranges.items():
            wanted |= expected(
                self.finder.rising(
                    unit_code, as_reported.get(unit_code, []), since=since, until=until
                ),
                self.finder.rising(
                    unit_code, as_standing.get(unit_code, []), since=since, until=until
                ),
            )
        return wanted

    # --- all of them, for a rebuild -------------------------------------------------------

    def everything(self, visits: Sequence[StoredVisit]) -> dict[UUID, Expected]:
        """Every warning the visits give. Most visits are not corrected: as reported and as
        they stand are then the same, and so are the warnings of units with no other, so
        only the units a correction touched are also searched as reported."""
        corrected_units: set[str] = set()
        for visit in visits:
            if visit.voided or visit.attributed_code != visit.unit_code:
                corrected_units.update(c for c, _ in self.chain(visit.unit_code))
                if not visit.voided:
                    corrected_units.update(c for c, _ in self.chain(visit.attributed_code))
        as_reported: defaultdict[str, list[Visit]] = defaultdict(list)  # corrected units only
        as_standing: defaultdict[str, list[Visit]] = defaultdict(list)
        standing_at: defaultdict[str, list[int]] = defaultdict(list)  # their moments, for rising
        reported_near: list[Found] = []  # of the corrected visits only
        standing_near: list[Found] = []
        # In order, so that each unit's visits are too.
        placed_visits = []
        for visit in visits:
            placed = reported(visit)
            placed_visits.append((placed.order, placed, visit))
        placed_visits.sort(key=itemgetter(0))
        chains, chain, near_threshold = self._chains, self.chain, self.finder.near_threshold
        for (at, _), placed, visit in placed_visits:
            if visit.voided or visit.attributed_code != visit.unit_code:
                reported_near += near_threshold(placed)
                for unit_code, _ in chain(placed.unit_code):
                    if unit_code in corrected_units:
                        as_reported[unit_code].append(placed)
                placed_now = standing(visit)
                if placed_now is not None:
                    standing_near += near_threshold(placed_now)
                    for unit_code, _ in chain(placed_now.unit_code):
                        as_standing[unit_code].append(placed_now)
                        standing_at[unit_code].append(at)
                continue
            # Not corrected: the same as reported and as it stands.
            standing_near += near_threshold(placed)
            for unit_code, _ in chains.get(placed.unit_code) or chain(placed.unit_code):
                as_standing[unit_code].append(placed)
                standing_at[unit_code].append(at)
                if unit_code in corrected_units:
                    as_reported[unit_code].append(placed)
        wanted = expected(reported_near, standing_near)
        wanted |= self._repeat(visits)
        rising = self.finder.rising
        for unit_code in as_reported.keys() | as_standing.keys():
            now = rising(unit_code, as_standing[unit_code], times=standing_at[unit_code])
            before = rising(unit_code, as_reported[unit_code])
            wanted |= expected(before, now)
        return wanted

    async def rebuilt(
        self,
        live: WarningRepository,
        staging: WarningRepository,
        visits: Sequence[StoredVisit],
        *,
        wanted: Mapping[UUID, Expected],
        now: datetime,
    ) -> "asyncio.Future[list[StoredWarning]]":
        """How the live warnings come in line with `wanted`, every warning `visits` give
        (`everything`): those the live ones lack are raised, those that differ get the next
        version. The live warnings and the corrections' times (of the `staging` tables) are
        read now; the changes are worked out in a thread, so that the connection can go on
        meanwhile."""
        stored = {w.warning_id: w for w in await live.all_warnings()}
        # Warnings that no visit gives any more stay as stored (module docstring), cleared.
        kept = {i: w for i, w in stored.items() if i in wanted or w.cleared_at is None}
        named = _named(kept, wanted)
        corrected = await staging.corrected_at(named) if named else {}
        known = {v.event_id: v for v in visits}
        return asyncio.ensure_future(
            asyncio.to_thread(
                _changes, kept, wanted, known=known, corrected=corrected, fallback=now
            )
        )

    # --- comparing and storing ------------------------------------------------------------

    async def _reconcile(
        self,
        repository: WarningRepository,
        stored: Mapping[UUID, StoredWarning],
        wanted: Mapping[UUID, Expected],
        *,
        known: Mapping[UUID, StoredVisit],
        fallback: datetime | None,
    ) -> list[StoredWarning]:
        named = _named(stored, wanted)
        corrected = await repository.corrected_at(named) if named else {}
        changes = _changes(stored, wanted, known=known, corrected=corrected, fallback=fallback)
        await repository.save(changes)  # and published
        return changes


def _named(stored: Mapping[UUID, StoredWarning], wanted: Mapping[UUID, Expected]) -> set[UUID]:
    """The events whose corrections' times `_changes` may read: those of the warnings that
    are to be cleared."""
    clearing = [
        w
        for i, w in stored.items()
        if w.cleared_at is None and (i not in wanted or not wanted[i].active)
    ]
    named = {e for w in clearing for e in w.event_ids}
    named |= {e for x in wanted.values() if not x.active for e in x.found.event_ids}
    return named


def _changes(
    stored: Mapping[UUID, StoredWarning],
    wanted: Mapping[UUID, Expected],
    *,
    known: Mapping[UUID, StoredVisit],
    corrected: Mapping[UUID, datetime],
    fallback: datetime | None,
) -> list[StoredWarning]:
    """The next version of each warning that changes, in the order of their ids."""
    changes = []
    for warning_id in sorted(stored.keys() | wanted.keys(), key=UUID_ORDER):
        change = _change(
            stored.get(warning_id),
            wanted.get(warning_id),
            known=known,
            corrected=corrected,
            fallback=fallback,
        )
        if change is not None:
            changes.append(change)
    return changes


def _change(
    stored: StoredWarning | None,
    wanted: Expected | None,
    *,
    known: Mapping[UUID, StoredVisit],
    corrected: Mapping[UUID, datetime],
    fallback: datetime | None,
) -> StoredWarning | None:
    """The warning's next version, or None when it stays as it is."""
    cleared: datetime | None
    if wanted is None:
        if stored is None or stored.cleared_at is not None:
            return None
        cleared = _cleared_at(stored.event_ids, corrected, fallback or stored.raised_at)
        return replace(stored, cleared_at=cleared, version=stored.version + 1)
    found = wanted.found
    if stored is None:
        raised = max(known[e].accepted_at for e in found.event_ids)
        cleared = None if wanted.active else _cleared_at(found.event_ids, corrected, raised)
        return _stored(found, raised_at=raised, cleared_at=cleared, version=1)
    if wanted.active:
        cleared = None
    elif stored.cleared_at is not None:
        cleared = stored.cleared_at
    else:
        cleared = _cleared_at(found.event_ids, corrected, fallback or stored.raised_at)
    same = (
        stored.event_ids == found.event_ids
        and stored.detail == found.detail
        and (stored.cleared_at is None) == (cleared is None)
    )
    if same:
        return None
    return _stored(
        found, raised_at=stored.raised_at, cleared_at=cleared, version=stored.version + 1
    )


def _cleared_at(
    event_ids: Iterable[UUID], corrected: Mapping[UUID, datetime], fallback: datetime
) -> datetime:
    return max((corrected[e] for e in event_ids if e in corrected), default=fallback)


def _stored(
    found: Found, *, raised_at: datetime, cleared_at: datetime | None, version: int
) -> StoredWarning:
    return StoredWarning(
        warning_id=found.warning_id,
        kind=found.kind,
        unit_code=found.unit_code,
        scope=found.scope,
        cause_at=found.cause_at,
        raised_at=raised_at,
        cleared_at=cleared_at,
        event_ids=found.event_ids,
        detail=found.detail,
        version=version,
    )


def reported(visit: StoredVisit) -> Visit:
    """The visit at the unit it was reported for."""
    return _placed(visit, visit.unit_code)


def standing(visit: StoredVisit) -> Visit | None:
    """The visit at the unit it is attributed to now; none when voided."""
    return None if visit.voided else _placed(visit, visit.attributed_code)


DESTINATIONS = {d.value: d for d in Destination}  # a dict look-up costs less than the enum's


def _placed(visit: StoredVisit, unit_code: str) -> Visit:
    return Visit(
        visit.event_id,
        unit_code,
        visit.occurred_at,
        DESTINATIONS[visit.destination] if visit.destination else None,
        visit.headcount,
        visit.petitioner_ref,
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
            self._rows.append((*row[:5], row[4]))

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
        (`EarlyWarnings.rebuilt`); `swap_in` saves the changes."""
        connection = (await WarningRepository.from_session(session)).connection
        if self._found is not None and self._found[0] == self._noted:
            _, visits, wanted = self._found
        else:  # records came in since `find`: found again
            visits = await self.load_visits(connection)
            wanted = await asyncio.to_thread(self.warnings.everything, visits)
        return await self.warnings.rebuilt(
            WarningRepository(connection, schema=SCHEMA),
            WarningRepository(connection, schema=self.staging),
            visits,
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
