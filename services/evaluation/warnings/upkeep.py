"""Raising and clearing early warnings as batches are applied, in the batch's transaction, and
finding them all for `sanwu evaluation rebuild`. What a warning is: `finder`.

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

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.warnings.changes import changes, named_when_cleared
from services.evaluation.warnings.finder import (
    Chain,
    Expected,
    Found,
    Visit,
    WarningFinder,
    expected,
)
from services.evaluation.warnings.records import (
    StoredVisit,
    StoredWarning,
    placed_at,
    reported,
    standing,
    stored_visit,
)
from services.evaluation.warnings.repository import WarningRepository
from services.evaluation.warnings.rising import RisingWarnings
from shared.campaign import Campaign
from shared.early_warning import WarningKind
from shared.events import EventRecord, PetitionVisit
from shared.levels import Level
from shared.registry.cache import UnitRegistry


class EarlyWarnings:
    def __init__(
        self, *, campaign: Campaign, registry: UnitRegistry, chain: Chain | None = None
    ) -> None:
        """`chain`: the unit and its ancestors at campaign levels, if the caller remembers
        them across batches (as the live path's effect calculator does); by default worked
        out here and remembered for one batch."""
        self.campaign = campaign
        self.registry = registry
        self.chain: Chain = chain or self._chain_of
        self.finder = WarningFinder(
            rules=campaign.warnings,
            level_rules=campaign.rules,
            chain=self.chain,
            county_of=self.county_of,
        )
        self._chains: dict[str, tuple[tuple[str, Level], ...]] = {}
        self._counties: dict[str, str] = {}
        self.rising = RisingWarnings(
            finder=self.finder,
            chain=self.chain,
            keying_unit=registry.keying_unit,
            reach=self._reach(),
        )

    def _chain_of(self, unit_code: str) -> tuple[tuple[str, Level], ...]:
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
        """The `warning_visit` row of a visit (none for other events), attributed where it
        was reported (`set_counties` sets the county of a corrected one)."""
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
            county,
        )

    # --- a batch --------------------------------------------------------------------------

    async def apply(
        self,
        session: AsyncSession,
        records: Sequence[EventRecord],
        *,
        touched: Iterable[UUID],
        fresh: Collection[UUID] = (),
        moved: Collection[UUID] | None = None,
    ) -> list[StoredWarning]:
        """Record the batch's visits, then raise and clear what the touched events change.
        Returns the changes published. `fresh`: events recorded just now, with no correction
        (a visit among them is as its record says, and is not read back); `moved`: those of
        the touched events attributed to another unit than before (None: any may have)."""
        self._counties.clear()  # the registry may have changed since the last batch
        repository = await WarningRepository.from_session(session)
        added = await repository.add_visits(
            [r for r in map(self.visit_row, records) if r is not None]
        )
        recorded = {
            visit.event_id: visit
            for r in records
            if r.event.event_id in added
            and r.event.event_id in fresh
            and (visit := stored_visit(r)) is not None
        }
        read_back = set(touched) - recorded.keys()
        visits = [*recorded.values(), *(await repository.visits(read_back) if read_back else [])]
        if not visits:
            return []
        self._chains.clear()  # the registry may have changed since the last batch
        # A visit recorded just now was recorded in the county it is attributed to.
        await repository.set_counties(
            [
                (v.event_id, self.county_where_attributed(v))
                for v in visits
                if v.event_id not in recorded
            ]
        )
        refs = {v.petitioner_ref for v in visits if v.petitioner_ref is not None}
        # A near-threshold warning names its own visit only, a repeat warning visits of its
        # own petitioner: those naming these visits are found by their scopes.
        stored = await repository.warnings_of(
            {
                WarningKind.near_threshold: [str(v.event_id) for v in visits],
                WarningKind.repeat_petitioner: refs,
            }
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
        accepted = {v.event_id: v.accepted_at for v in visits}
        near, near_now = [], []
        for visit in visits:
            found = self.finder.near_threshold(reported(visit))
            near += found
            if visit.voided:
                continue
            # Most visits are not corrected: the same as reported and as they stand.
            if visit.attributed_code != visit.unit_code:
                found = self.finder.near_threshold(placed_at(visit, visit.attributed_code))
            near_now += found
        wanted = expected(near, near_now)
        if refs:
            of_petitioners = await repository.visits_of_petitioners(refs)
            accepted |= {v.event_id: v.accepted_at for v in of_petitioners}
            wanted |= {
                i: e
                for i, e in self._repeat(of_petitioners).items()
                if e.found.detail["county_code"] in counties
            }
        # Where the rising warnings naming these visits are: where a visit that moved was
        # attributed before, too (no warning names a visit recorded only now).
        named = await repository.units_of_rising_naming(
            (touched_ids if moved is None else touched_ids & set(moved)) - added
        )
        spans = self.rising.spans(visits, named)
        if spans:
            considered |= {
                w.warning_id: w for w in await repository.rising_warnings_caused_in(spans)
            }
            wanted |= await self.rising.wanted(repository, spans)
        latest = max((r.accepted_at for r in records), default=None)
        return await self._reconcile(
            repository, considered, wanted, accepted=accepted, fallback=latest
        )

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

    def everything_in_county(
        self, county: str, visits: Sequence[StoredVisit]
    ) -> dict[UUID, Expected]:
        """The warnings of `everything` that belong to the county, from its visits: those
        reported for it or attributed to it. Of a rebuild, a county at a time: its units'
        rising warnings and its repeat warnings depend on these visits only, and a
        near-threshold warning on its own visit only (read in each county it is in, it is
        found alike in each)."""
        self._chains.clear()  # chains and counties are remembered for one county at a time
        self._counties.clear()
        return {i: x for i, x in self.everything(visits).items() if self._belongs(x.found, county)}

    def _belongs(self, found: Found, county: str) -> bool:
        if found.kind is WarningKind.rising:
            return self.county_of(found.unit_code) == county
        if found.kind is WarningKind.repeat_petitioner:
            return bool(found.detail["county_code"] == county)
        return True

    # --- comparing and storing ------------------------------------------------------------

    async def _reconcile(
        self,
        repository: WarningRepository,
        stored: Mapping[UUID, StoredWarning],
        wanted: Mapping[UUID, Expected],
        *,
        accepted: Mapping[UUID, datetime],
        fallback: datetime | None,
    ) -> list[StoredWarning]:
        named = named_when_cleared(stored, wanted)
        corrected = await repository.corrected_at(named) if named else {}
        # A warning raised now is raised when the latest visit it names was accepted. Of the
        # named visits not read yet (the rising windows' are not kept), that time alone is read.
        unread = {
            e for i, x in wanted.items() if i not in stored for e in x.found.event_ids
        } - accepted.keys()
        if unread:
            accepted = {**accepted, **await repository.accepted_at(unread)}
        found = changes(stored, wanted, accepted=accepted, corrected=corrected, fallback=fallback)
        await repository.save(found)  # and published
        return found
