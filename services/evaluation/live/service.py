"""Applying events to statuses.

A batch is applied in the caller's transaction: record the new events and corrections (the
record of what was applied), work out each touched event's effects (the units on its attributed
chain it counts against, and under which criteria), replace the effects that changed, then
recompute every (unit, period) those effects fall in and publish the statuses that changed.
A status is always an aggregate of effect rows, so applying an event twice cannot count it
twice, and corrections and the rolling window's expiry are exact. Work records (meetings,
ratings) take the same path into the (unit, period)'s indicators instead of its status, and
their changes are published on the indicator topic through an outbox of their own.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation import metrics
from services.evaluation.live.corrections import Reevaluation, new_correction
from services.evaluation.live.effects import EffectCalculator
from services.evaluation.live.event_effect import EventEffects
from services.evaluation.live.indicators import indicator_message, indicators_of
from services.evaluation.live.repository.events import EvaluationRepository
from services.evaluation.live.repository.indicators import IndicatorRepository
from services.evaluation.live.repository.statuses import StatusRepository
from services.evaluation.live.repository.upkeep import UpkeepRepository
from services.evaluation.live.statuses import message_of, status_of
from services.evaluation.models import SCHEMA, indicator_outbox, outbox
from services.evaluation.records import (
    DisputeRecord,
    Effect,
    NewCorrection,
    NewEvent,
    StatusWindow,
)
from services.evaluation.rules import facts_of
from services.evaluation.schemas import EffectOut
from services.evaluation.warnings.upkeep import EarlyWarnings
from shared.access.service import Principal
from shared.calendar.store import Deadlines
from shared.campaign import Campaign
from shared.corrections import covers_in
from shared.dispute_steps import DisputeStep, newest_per_dispute
from shared.events import EventReattributed, EventRecord, EventVoided, noticed_at
from shared.indicators import UnitIndicators
from shared.outbox import OutboxRepository
from shared.registry.cache import UnitRegistry
from shared.status import UnitStatus


@dataclass(frozen=True, slots=True)
class Incoming:
    """One event of a batch, as read from the petition-event topic."""

    record: EventRecord
    correlation_id: str | None = None


@dataclass
class Applied:
    """What a batch did: the events and corrections applied for the first time, how many
    were seen before, and the status and indicator changes it published."""

    event_ids: list[UUID] = field(default_factory=list)
    redelivered: int = 0
    changes: list[UnitStatus] = field(default_factory=list)
    indicators: list[UnitIndicators] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UnitOfWork:
    """One transaction's repositories: the events and what feeds the statuses, the statuses,
    the indicators, and the upkeep rows; and the indicator changes the transaction published
    so far."""

    session: AsyncSession
    repository: EvaluationRepository
    statuses: StatusRepository
    upkeep: UpkeepRepository
    indicators: IndicatorRepository
    indicator_changes: list[UnitIndicators] = field(default_factory=list)


def new_event(record: EventRecord) -> NewEvent:
    event = record.event
    assert not isinstance(event, EventVoided | EventReattributed)
    return NewEvent(
        event_id=event.event_id,
        facts=facts_of(event),
        unit_code=event.unit_code,
        occurred_at=event.occurred_at,
        noticed_at=noticed_at(record),
    )


class EvaluationService:
    """The use cases of the live path, on the effects its `calculator` works out (by default
    with the campaign's rules on `registry`)."""

    def __init__(
        self,
        *,
        campaign: Campaign,
        registry: UnitRegistry,
        schema: str = SCHEMA,
        publish: bool = True,
        calculator: EffectCalculator | None = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        self.registry = registry
        self.calculator = calculator or EffectCalculator(campaign=campaign, registry=registry)
        self.schema = schema
        self.publish = publish
        self._reevaluation = Reevaluation(calculator=self.calculator, covers=covers_in(registry))
        self._event_effects = EventEffects(
            calculator=self.calculator, registry=registry, deadlines=deadlines
        )
        # The earliest pending rolling effect known here: when the next expiry pass is due.
        self.next_rolling_due: datetime | None = None

    @property
    def campaign(self) -> Campaign:
        """The campaign the effects are worked out with (it gains the periods of a new year)."""
        return self.calculator.campaign

    @campaign.setter
    def campaign(self, campaign: Campaign) -> None:
        self.calculator.campaign = campaign

    async def unit_of_work(self, session: AsyncSession, *, exclusive: bool = False) -> UnitOfWork:
        """The repositories of the session's transaction, holding the batch lock: shared by
        batches, exclusive for work no batch may run beside (a registry move, a swap)."""
        repository = await EvaluationRepository.from_session(session, schema=self.schema)
        await repository.lock_batches(exclusive=exclusive)
        return UnitOfWork(
            session=session,
            repository=repository,
            statuses=await StatusRepository.from_session(session, schema=self.schema),
            upkeep=await UpkeepRepository.from_session(session, schema=self.schema),
            indicators=await IndicatorRepository.from_session(session, schema=self.schema),
        )

    # --- applying a batch -------------------------------------------------------------------

    async def apply(
        self, session: AsyncSession, items: Sequence[Incoming], *, now: datetime
    ) -> Applied:
        work = await self.unit_of_work(session)
        repository = work.repository
        await self.use_current_registry(work.upkeep)
        events: dict[UUID, tuple[NewEvent, Incoming]] = {}
        corrections: dict[UUID, tuple[NewCorrection, Incoming]] = {}
        for item in items:
            event = item.record.event
            if isinstance(event, EventVoided | EventReattributed):
                corrections.setdefault(event.event_id, (new_correction(item.record), item))
            else:
                events.setdefault(event.event_id, (new_event(item.record), item))
        targets = {correction.target_event_id for correction, _ in corrections.values()}
        # Placeholders for targets not seen yet, and rows for the corrections' own ids: every
        # batch that records a correction or a correction of it locks that row first, so
        # whichever commits second sees that the target is a correction.
        stubs = sorted((targets | corrections.keys()) - events.keys())
        known_now = await repository.upsert_events(
            [event for event, _ in events.values()], stubs=stubs
        )
        recorded = await repository.add_corrections([c for c, _ in corrections.values()])
        # The events to re-evaluate, each with the correlation id of what touched it; a new
        # correction also as a target, in case corrections of it came first.
        causes = {event_id: events[event_id][1].correlation_id for event_id in known_now}
        for correction_id in recorded:
            correction, item = corrections[correction_id]
            causes[correction.target_event_id] = item.correlation_id
            causes.setdefault(correction_id, None)
        # An event recorded now that no correction names has no corrections and no effects
        # yet: its effects are worked out from the event itself.
        fresh = {i: events[i][0] for i, new in known_now.items() if new and i not in targets}
        reevaluated = await self._reevaluation.run(repository, causes, fresh=fresh)
        statuses = await self.recompute(work, reevaluated.changed, now=now, causes=causes)
        await self.reconsider_warnings(
            work.session,
            touched=causes,
            records=[item.record for item in items],
            fresh=fresh,
            moved=reevaluated.moved,
        )
        applied = [*known_now, *recorded]
        for event_id in applied:
            _, item = events.get(event_id) or corrections[event_id]
            metrics.events_applied.labels(item.record.event.type).inc()
        return Applied(
            event_ids=applied,
            redelivered=len(events) + len(corrections) - len(applied),
            changes=statuses,
            indicators=work.indicator_changes,
        )

    async def apply_disputes(
        self, session: AsyncSession, steps: Sequence[DisputeStep], *, now: datetime
    ) -> list[UnitStatus]:
        """Follow each dispute to the ruling in force after its newest step: an upheld one
        counts as the deciding bureau's correction of the event, a reversal on review undoes
        it. A step seen before changes nothing."""
        work = await self.unit_of_work(session)
        await self.use_current_registry(work.upkeep)
        newest = newest_per_dispute(steps)
        touched = await work.repository.put_disputes([dispute_record(s) for s in newest])
        # Like a correction that comes first, a ruling on an event not applied yet leaves a
        # placeholder, so that the event, when it comes, is evaluated with the ruling.
        await work.repository.upsert_events([], stubs=sorted(touched))
        reevaluated = await self._reevaluation.run(work.repository, touched)
        statuses = await self.recompute(work, reevaluated.changed, now=now)
        await self.reconsider_warnings(session, touched=touched, moved=reevaluated.moved)
        return statuses

    async def reconsider_warnings(
        self,
        session: AsyncSession,
        *,
        touched: Iterable[UUID],
        records: Sequence[EventRecord] = (),
        fresh: Collection[UUID] = (),
        moved: Collection[UUID] | None = None,
    ) -> None:
        """Record the visits among `records`, then raise and clear the warnings the touched
        events change. The live schema only: a rebuild finds the warnings at its swap.
        `fresh`: events recorded just now, with no correction; `moved`: those of the touched
        events attributed to another unit than before (by default any may have moved, as
        when the registry moved units)."""
        if self.publish:
            warnings = EarlyWarnings(
                campaign=self.campaign, registry=self.registry, chain=self.calculator.chain
            )
            await warnings.apply(session, records, touched=touched, fresh=fresh, moved=moved)

    async def reevaluate(
        self, repository: EvaluationRepository, event_ids: Iterable[UUID]
    ) -> list[Effect]:
        """Bring the effects of these events in line with their facts and corrections, and the
        state of each of their corrections with what the rules decide. Returns the effects
        removed and added (what the statuses must be recomputed for)."""
        return (await self._reevaluation.run(repository, event_ids)).changed

    async def use_current_registry(self, upkeep: UpkeepRepository) -> None:
        """Compute effects with a registry at least as new as the one this transaction sees:
        a load that committed before is followed here, and one that commits later is followed
        by `Upkeep.follow_registry`, which waits for this transaction."""
        if await upkeep.registry_version() > self.registry.version:
            await self.registry.refresh()

    async def recompute(
        self,
        work: UnitOfWork,
        effects: Iterable[Effect],
        *,
        now: datetime,
        causes: Mapping[UUID, str | None] | None = None,
    ) -> list[UnitStatus]:
        """Recompute the statuses the counting effects fall in and the indicators the work
        records' effects fall in; store and publish those that changed."""
        effects = list(effects)
        counting = [e for e in effects if not e.is_work_record]
        records = [e for e in effects if e.is_work_record]
        windows_to_recompute = self.calculator.windows_to_recompute
        return await self.recompute_windows(
            work,
            list(windows_to_recompute(counting, now=now).values()),
            now=now,
            correlation=_correlation_by_unit(effects, causes or {}),
            indicator_windows=list(windows_to_recompute(records, now=now).values()),
        )

    async def recompute_windows(
        self,
        work: UnitOfWork,
        windows: Sequence[StatusWindow],
        *,
        now: datetime,
        correlation: Mapping[str, str | None],
        indicator_windows: Sequence[StatusWindow] | None = None,
    ) -> list[UnitStatus]:
        """Recompute the statuses of `windows` and the indicators of `indicator_windows` (by
        default the same); store and publish those that changed. Returns the statuses; the
        indicators are noted in `work.indicator_changes`."""
        indicator_windows = windows if indicator_windows is None else indicator_windows
        if not windows and not indicator_windows:
            return []
        everything = [*windows, *indicator_windows]
        county_of = self.calculator.county_of
        await work.statuses.lock_counties(county_of(w.unit_code) for w in everything)
        rows = await work.statuses.recompute_statuses(windows, now=now)
        statuses = [status_of(row) for row in rows]
        await self._recompute_indicators(work, indicator_windows, now=now, correlation=correlation)
        self.due_at(await work.upkeep.mark_pending_rolling(everything))
        if self.publish and statuses:
            await OutboxRepository(work.session, outbox).add(
                [message_of(s, correlation.get(s.unit_code)) for s in statuses]
            )
            metrics.status_changes.inc(len(statuses))
        return statuses

    async def _recompute_indicators(
        self,
        work: UnitOfWork,
        windows: Sequence[StatusWindow],
        *,
        now: datetime,
        correlation: Mapping[str, str | None],
    ) -> None:
        rows = await work.indicators.recompute_indicators(windows, now=now)
        work.indicator_changes.extend(indicators_of(row) for row in rows)
        if self.publish and rows:
            await OutboxRepository(work.session, indicator_outbox).add(
                [indicator_message(row, correlation.get(row["unit_code"])) for row in rows]
            )
            metrics.indicator_changes.inc(len(rows))

    def due_at(self, moment: datetime | None) -> None:
        """Note an effect of the rolling period that comes due at `moment`."""
        if moment is not None and (self.next_rolling_due is None or moment < self.next_rolling_due):
            self.next_rolling_due = moment

    # --- what became of one event -----------------------------------------------------------

    async def effect(
        self, session: AsyncSession, *, event_id: UUID, principal: Principal, now: datetime
    ) -> EffectOut:
        """An event's state and what it counts against now, or a correction's state; within
        the key's scope (the event's attributed unit, the correction's own unit)."""
        repository = (await self.unit_of_work(session)).repository
        return await self._event_effects.of(
            repository, event_id=event_id, principal=principal, now=now
        )


def dispute_record(step: DisputeStep) -> DisputeRecord:
    dispute, outcome = step.dispute, step.outcome
    return (
        dispute.dispute_id,
        dispute.event_id,
        dispute.state.value,
        outcome.type if outcome else None,
        outcome.new_unit_code if outcome else None,
        outcome.decider_code if outcome else None,
        outcome.decided_at if outcome else None,
        dispute.version,
    )


def _correlation_by_unit(
    effects: Sequence[Effect], causes: Mapping[UUID, str | None]
) -> dict[str, str | None]:
    correlation: dict[str, str | None] = {}
    for effect in effects:
        cause = causes.get(effect.event_id)
        if cause:
            correlation[effect.unit_code] = cause
    return correlation
