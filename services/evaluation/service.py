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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation import metrics
from services.evaluation.correcting import Reevaluation, new_correction
from services.evaluation.early_warnings import EarlyWarnings
from services.evaluation.effects import EffectCalculator
from services.evaluation.indicator_repository import IndicatorRepository
from services.evaluation.indicators import indicator_message, indicators_of
from services.evaluation.models import SCHEMA, indicator_outbox, outbox
from services.evaluation.records import (
    APPLIED,
    COUNTED,
    Effect,
    NewCorrection,
    NewEvent,
    StatusWindow,
    StoredEvent,
)
from services.evaluation.repository import EvaluationRepository
from services.evaluation.rules import AppliedEvent, Criterion, facts_of
from services.evaluation.schemas import (
    CountsAgainstOut,
    CountsTowardOut,
    EffectOut,
    EffectState,
    Indicator,
)
from services.evaluation.upkeep_repository import UpkeepRepository
from shared.access.service import Principal
from shared.campaign import Campaign
from shared.corrections import covers_in
from shared.errors import EventNotFound, OutOfScope
from shared.events import EventReattributed, EventRecord, EventType, EventVoided
from shared.indicators import UnitIndicators
from shared.outbox import OutboxMessage, OutboxRepository
from shared.registry.cache import UnitRegistry
from shared.status import CriterionCounts, UnitStatus


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
    """One transaction's repositories: the statuses and what feeds them, the indicators, and
    the upkeep rows; and the indicator changes the transaction published so far."""

    session: AsyncSession
    repository: EvaluationRepository
    upkeep: UpkeepRepository
    indicators: IndicatorRepository
    indicator_changes: list[UnitIndicators] = field(default_factory=list)


def status_of(row: Mapping[str, Any]) -> UnitStatus:
    ids = row["counting_event_ids"]
    return UnitStatus(
        unit_code=str(row["unit_code"]),
        period=str(row["period"]),
        three_no=bool(row["three_no"]),
        counts=CriterionCounts(**{name: row[name] for name in COUNTED}),
        people=CriterionCounts(**{name: row[f"{name}_people"] for name in COUNTED}),
        counting_event_ids=[str(i) for i in ids],
        changed_at=row["changed_at"],
        version=row["version"],
    )


def message_of(status: UnitStatus, correlation_id: str | None = None) -> OutboxMessage:
    headers = {"correlation_id": correlation_id} if correlation_id else {}
    return OutboxMessage(key=status.key, value=status.model_dump_json().encode(), headers=headers)


def new_event(event: AppliedEvent) -> NewEvent:
    return NewEvent(
        event_id=event.event_id,
        facts=facts_of(event),
        unit_code=event.unit_code,
        occurred_at=event.occurred_at,
    )


class EvaluationService(EffectCalculator):
    def __init__(
        self,
        *,
        campaign: Campaign,
        registry: UnitRegistry,
        schema: str = SCHEMA,
        publish: bool = True,
    ) -> None:
        super().__init__(campaign=campaign, registry=registry)
        self.schema = schema
        self.publish = publish
        self._reevaluation = Reevaluation(calculator=self, covers=covers_in(registry))
        # The earliest pending rolling effect known here: when the next expiry pass is due.
        self.next_rolling_due: datetime | None = None

    async def unit_of_work(self, session: AsyncSession, *, exclusive: bool = False) -> UnitOfWork:
        """The repositories of the session's transaction, holding the batch lock: shared by
        batches, exclusive for work no batch may run beside (a registry move, a swap)."""
        repository = await EvaluationRepository.from_session(session, schema=self.schema)
        await repository.lock_batches(exclusive=exclusive)
        upkeep = await UpkeepRepository.from_session(session, schema=self.schema)
        indicators = await IndicatorRepository.from_session(session, schema=self.schema)
        return UnitOfWork(
            session=session, repository=repository, upkeep=upkeep, indicators=indicators
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
                events.setdefault(event.event_id, (new_event(event), item))
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
        changed = await self.reevaluate(repository, causes)
        statuses = await self.recompute(work, changed, now=now, causes=causes)
        await self.reconsider_warnings(
            work.session, touched=causes, records=[item.record for item in items]
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

    async def reconsider_warnings(
        self,
        session: AsyncSession,
        *,
        touched: Iterable[UUID],
        records: Sequence[EventRecord] = (),
    ) -> None:
        """Record the visits among `records`, then raise and clear the warnings the touched
        events change. The live schema only: a rebuild finds the warnings at its swap."""
        if self.publish:
            await EarlyWarnings(campaign=self.campaign, registry=self.registry).apply(
                session, records, touched=touched
            )

    async def reevaluate(
        self, repository: EvaluationRepository, event_ids: Iterable[UUID]
    ) -> list[Effect]:
        """Bring the effects of these events in line with their facts and corrections, and the
        state of each of their corrections with what the rules decide. Returns the effects
        removed and added (what the statuses must be recomputed for)."""
        return await self._reevaluation.run(repository, event_ids)

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
        return await self.recompute_windows(
            work,
            list(self.windows_to_recompute(counting, now=now).values()),
            now=now,
            correlation=_correlation_by_unit(effects, causes or {}),
            indicator_windows=list(self.windows_to_recompute(records, now=now).values()),
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
        repository = work.repository
        everything = [*windows, *indicator_windows]
        await repository.lock_counties(self.county_of(w.unit_code) for w in everything)
        statuses = [status_of(row) for row in await repository.recompute_statuses(windows, now=now)]
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
        event = (await repository.events([event_id])).get(event_id)
        if event is not None and event.known:
            self._require_scope(principal, event.attributed_code)
            return await self._event_effect(repository, event, now=now)
        correction = await repository.correction(event_id)
        if correction is not None:
            self._require_scope(principal, correction.unit_code)
            return EffectOut(
                event_id=event_id,
                state=EffectState(correction.state),
                reason=correction.reason,
                counts_against=[],
            )
        letter = await repository.dead_letter(event_id)
        if letter is not None:
            self._require_scope(principal, letter.unit_code)
            return EffectOut(
                event_id=event_id,
                state=EffectState.dead_lettered,
                reason=letter.reason,
                counts_against=[],
            )
        raise EventNotFound(
            f"evaluation has no event {event_id}: it may not have been evaluated yet"
        )

    def _require_scope(self, principal: Principal, unit_code: str | None) -> None:
        if principal.scope_code is None:
            return
        if unit_code is None or not principal.covers(self.registry, unit_code):
            raise OutOfScope("this event is outside the key's scope")

    async def _event_effect(
        self, repository: EvaluationRepository, event: StoredEvent, *, now: datetime
    ) -> EffectOut:
        if event.voided:
            history = (await repository.corrections_of([event.event_id])).get(event.event_id, [])
            voids = [c for c in history if c.type is EventType.event_voided and c.state == APPLIED]
            reason = f"voided by {voids[0].event_id}" if voids else None
            return EffectOut(
                event_id=event.event_id, state=EffectState.voided, reason=reason, counts_against=[]
            )
        counts: list[CountsAgainstOut] = []
        toward: list[CountsTowardOut] = []
        for effect in sorted(await repository.effects_of([event.event_id]), key=_by_unit):
            windows = sorted(self.windows_of([effect], now=now))
            if effect.is_work_record:
                indicator = (
                    Indicator.satisfaction if effect.rating else Indicator.screening_meetings
                )
                toward.extend(
                    CountsTowardOut(
                        unit_code=unit_code, period=period, indicator=indicator, slot=effect.slot
                    )
                    for unit_code, period in windows
                )
                continue
            criteria = [c.name for c in Criterion if c & effect.criteria and c.name]
            counts.extend(
                CountsAgainstOut(unit_code=unit_code, period=period, criteria=criteria)
                for unit_code, period in windows
            )
        return EffectOut(
            event_id=event.event_id,
            state=EffectState.applied,
            counts_against=counts,
            counts_toward=toward,
        )


def _by_unit(effect: Effect) -> str:
    return effect.unit_code


def _correlation_by_unit(
    effects: Sequence[Effect], causes: Mapping[UUID, str | None]
) -> dict[str, str | None]:
    correlation: dict[str, str | None] = {}
    for effect in effects:
        cause = causes.get(effect.event_id)
        if cause:
            correlation[effect.unit_code] = cause
    return correlation
