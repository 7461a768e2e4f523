"""Applying events to statuses.

A batch is applied in the caller's transaction: record the new events and corrections (the
record of what was applied), work out each touched event's effects (the units on its attributed
chain it counts against, and under which criteria), replace the effects that changed, then
recompute every (unit, period) those effects fall in and publish the statuses that changed.
A status is always an aggregate of effect rows, so applying an event twice cannot count it
twice, and corrections and the rolling window's expiry are exact.
"""

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation import metrics
from services.evaluation.models import SCHEMA, outbox
from services.evaluation.repository import (
    COUNTED,
    Effect,
    EvaluationRepository,
    NewCorrection,
    NewEvent,
    StatusWindow,
    StoredCorrection,
    StoredEvent,
)
from services.evaluation.rules import CountingEvent, Facts, criteria_met, facts_of, people_of
from shared.campaign import Campaign, rolling_window
from shared.events import EventReattributed, EventRecord, EventType, EventVoided
from shared.levels import Level
from shared.outbox import OutboxMessage, OutboxRepository
from shared.registry.cache import UnitRegistry
from shared.status import ROLLING, CriterionCounts, UnitStatus

ONE_TICK = timedelta(microseconds=1)  # the rolling window excludes its start
MEMO_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Incoming:
    """One event of a batch, as read from the petition-event topic."""

    record: EventRecord
    correlation_id: str | None = None


@dataclass
class Applied:
    """What a batch did: the events and corrections applied for the first time, how many
    were seen before, and the status changes it published."""

    event_ids: list[UUID] = field(default_factory=list)
    redelivered: int = 0
    changes: list[UnitStatus] = field(default_factory=list)


def resolve(event: StoredEvent, corrections: Sequence[StoredCorrection]) -> tuple[str, bool]:
    """Where the event is attributed and whether it is voided, given all its corrections.
    Any void voids it; of several re-attributions the latest decision wins. The order of
    arrival plays no part, so a live run and a rebuild agree."""
    assert event.unit_code is not None
    voided = any(c.type is EventType.event_voided for c in corrections)
    moves = [c for c in corrections if c.type is EventType.event_reattributed]
    if not moves:
        return event.unit_code, voided
    latest = max(moves, key=lambda c: (c.occurred_at, c.accepted_at, c.event_id))
    assert latest.new_unit_code is not None
    return latest.new_unit_code, voided


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


def new_event(event: CountingEvent) -> NewEvent:
    return NewEvent(
        event_id=event.event_id,
        facts=facts_of(event),
        unit_code=event.unit_code,
        occurred_at=event.occurred_at,
    )


def new_correction(record: EventRecord) -> NewCorrection:
    event = record.event
    assert isinstance(event, EventVoided | EventReattributed)
    return NewCorrection(
        event_id=event.event_id,
        target_event_id=event.target_event_id,
        type=EventType(event.type),
        new_unit_code=event.new_unit_code if isinstance(event, EventReattributed) else None,
        occurred_at=event.occurred_at,
        accepted_at=record.accepted_at,
    )


def is_correction(record: EventRecord) -> bool:
    return isinstance(record.event, EventVoided | EventReattributed)


class EvaluationService:
    def __init__(
        self,
        *,
        campaign: Campaign,
        registry: UnitRegistry,
        schema: str = SCHEMA,
        publish: bool = True,
    ) -> None:
        self.campaign = campaign
        self.registry = registry
        self.schema = schema
        self.publish = publish
        self._chains: dict[str, tuple[tuple[str, Level], ...]] = {}
        self._chains_version = -1
        self._met: dict[Facts, dict[Level, int]] = {}

    # --- the pure parts ---------------------------------------------------------------------

    def effects_for(
        self, *, event_id: UUID, facts: Facts, unit_code: str, occurred_at: datetime
    ) -> list[Effect]:
        """The units on the chain of `unit_code` the event counts against, each judged by the
        rules of its own level."""
        people = people_of(facts)
        met = self._criteria(facts)
        return [
            Effect(event_id, code, met[level], people, occurred_at)
            for code, level in self._chain(unit_code)
            if met[level]
        ]

    def _chain(self, unit_code: str) -> tuple[tuple[str, Level], ...]:
        """The unit and its ancestors at campaign levels (cached until the registry changes)."""
        if self._chains_version != self.registry.version:
            self._chains.clear()
            self._chains_version = self.registry.version
        chain = self._chains.get(unit_code)
        if chain is None:
            rules = self.campaign.rules
            chain = tuple(
                (u.code, u.level) for u in self.registry.ancestors(unit_code) if u.level in rules
            )
            if chain:
                self._chains[unit_code] = chain
        return chain

    def _criteria(self, facts: Facts) -> dict[Level, int]:
        """`criteria_met` at every campaign level, remembered: many events share their facts."""
        met = self._met.get(facts)
        if met is None:
            if len(self._met) > MEMO_LIMIT:
                self._met.clear()
            rules = self.campaign.rules
            met = self._met[facts] = {
                level: int(criteria_met(facts, level, rules)) for level in rules
            }
        return met

    def windows_of(
        self, effects: Iterable[Effect], *, now: datetime
    ) -> dict[tuple[str, str], StatusWindow]:
        """Every (unit, period) an effect falls in: the named periods containing it, and the
        rolling period while it is less than 12 months old."""
        rolling_start = rolling_window(now)[0]
        windows: dict[tuple[str, str], StatusWindow] = {}
        for effect in effects:
            for period in self.campaign.periods_containing(effect.occurred_at):
                windows[(effect.unit_code, period.id)] = StatusWindow(
                    effect.unit_code, period.id, period.starts_at, period.ends_at
                )
            if effect.occurred_at > rolling_start:
                windows[(effect.unit_code, ROLLING)] = rolling_window_of(
                    effect.unit_code, rolling_start
                )
        return windows

    def period_bounds(self, now: datetime) -> list[tuple[str, datetime, datetime | None]]:
        """Every period as (id, starts_at, ends_at), the rolling one open-ended."""
        bounds: list[tuple[str, datetime, datetime | None]] = [
            (p.id, p.starts_at, p.ends_at) for p in self.campaign.periods
        ]
        bounds.append((ROLLING, rolling_window(now)[0] + ONE_TICK, None))
        return bounds

    def county_of(self, unit_code: str) -> str:
        county = self.registry.ancestor_at(unit_code, Level.county)
        return county.code if county else unit_code

    # --- applying a batch -------------------------------------------------------------------

    async def apply(
        self, session: AsyncSession, items: Sequence[Incoming], *, now: datetime
    ) -> Applied:
        repository = await EvaluationRepository.from_session(session, schema=self.schema)
        events: dict[UUID, tuple[NewEvent, Incoming]] = {}
        corrections: dict[UUID, tuple[NewCorrection, Incoming]] = {}
        for item in items:
            event = item.record.event
            if isinstance(event, EventVoided | EventReattributed):
                corrections.setdefault(event.event_id, (new_correction(item.record), item))
            else:
                events.setdefault(event.event_id, (new_event(event), item))
        targets = {correction.target_event_id for correction, _ in corrections.values()}

        known_now = await repository.upsert_events(
            [event for event, _ in events.values()], stubs=sorted(targets - events.keys())
        )
        recorded = await repository.add_corrections([c for c, _ in corrections.values()])
        # The events to re-evaluate, each with the correlation id of what touched it.
        causes = {event_id: events[event_id][1].correlation_id for event_id in known_now}
        for correction_id in recorded:
            correction, item = corrections[correction_id]
            causes[correction.target_event_id] = item.correlation_id
        changed = await self.reevaluate(repository, causes)
        statuses = await self.recompute(session, repository, changed, now=now, causes=causes)
        applied = [*known_now, *recorded]
        for event_id in applied:
            _, item = events.get(event_id) or corrections[event_id]
            metrics.events_applied.labels(item.record.event.type).inc()
        return Applied(
            event_ids=applied,
            redelivered=len(events) + len(corrections) - len(applied),
            changes=statuses,
        )

    async def reevaluate(
        self, repository: EvaluationRepository, event_ids: Iterable[UUID]
    ) -> list[Effect]:
        """Bring the effects of these events in line with their facts and corrections. Returns
        the effects removed and added (what the statuses must be recomputed for)."""
        stored = {i: e for i, e in (await repository.events(event_ids)).items() if e.known}
        history = await repository.corrections_of(stored)
        previous: dict[UUID, set[Effect]] = {}
        for effect in await repository.effects_of(stored):
            previous.setdefault(effect.event_id, set()).add(effect)
        replaced: list[UUID] = []
        fresh: list[Effect] = []
        attributions: list[tuple[UUID, str, bool]] = []
        changed: list[Effect] = []
        for event in stored.values():
            unit_code, voided = resolve(event, history.get(event.event_id, []))
            if (unit_code, voided) != (event.attributed_code, event.voided):
                attributions.append((event.event_id, unit_code, voided))
            effects = set() if voided else set(self._effects_of(event, unit_code))
            before = previous.get(event.event_id, set())
            if effects != before:
                replaced.append(event.event_id)
                fresh.extend(effects)
                changed.extend(effects ^ before)
        await repository.replace_effects([i for i in replaced if i in previous], fresh)
        await repository.set_attributions(attributions)
        return changed

    def _effects_of(self, event: StoredEvent, unit_code: str) -> list[Effect]:
        assert event.facts is not None and event.occurred_at is not None
        return self.effects_for(
            event_id=event.event_id,
            facts=event.facts,
            unit_code=unit_code,
            occurred_at=event.occurred_at,
        )

    async def recompute(
        self,
        session: AsyncSession,
        repository: EvaluationRepository,
        effects: Iterable[Effect],
        *,
        now: datetime,
        causes: Mapping[UUID, str | None] | None = None,
    ) -> list[UnitStatus]:
        """Recompute the statuses the effects fall in; store and publish those that changed."""
        effects = list(effects)
        windows = self.windows_of(effects, now=now)
        return await self._recompute_windows(
            session,
            repository,
            list(windows.values()),
            now=now,
            correlation=_correlation_by_unit(effects, causes or {}),
        )

    async def _recompute_windows(
        self,
        session: AsyncSession,
        repository: EvaluationRepository,
        windows: Sequence[StatusWindow],
        *,
        now: datetime,
        correlation: Mapping[str, str | None],
    ) -> list[UnitStatus]:
        if not windows:
            return []
        await repository.lock_counties(self.county_of(w.unit_code) for w in windows)
        statuses = [status_of(row) for row in await repository.recompute_statuses(windows, now=now)]
        if self.publish and statuses:
            await OutboxRepository(session, outbox).add(
                [message_of(s, correlation.get(s.unit_code)) for s in statuses]
            )
            metrics.status_changes.inc(len(statuses))
        return statuses

    # --- the rolling period -------------------------------------------------------------------

    async def expire_rolling(self, session: AsyncSession, *, now: datetime) -> list[UnitStatus]:
        """Age the rolling period to `now`: recompute the units whose effects left the window
        since the last pass. Units where nothing else counts become clean."""
        repository = await EvaluationRepository.from_session(session, schema=self.schema)
        previous = await repository.rolling_window_start()
        start = rolling_window(now)[0]
        if previous is not None and start <= previous:
            return []
        units = await repository.units_with_effects_between(previous, start)
        windows = [rolling_window_of(unit, start) for unit in units]
        statuses = await self._recompute_windows(
            session, repository, windows, now=now, correlation={}
        )
        await repository.set_rolling_window_start(start)
        metrics.rolling_expired.inc(len(statuses))
        return statuses

    # --- periods added while running -----------------------------------------------------------

    def add_periods(self, campaign: Campaign) -> list[str]:
        """Take the periods `campaign` has and this one lacks (a new calendar year); the rules
        stay as loaded. Returns the ids added."""
        known = set(self.campaign.period_ids())
        added = [p for p in campaign.periods if p.id not in known]
        if added:
            periods = (*self.campaign.periods, *added)
            self.campaign = dataclasses.replace(self.campaign, periods=periods)
        return [p.id for p in added]

    async def reconcile_periods(
        self, session: AsyncSession, period_ids: Iterable[str], *, now: datetime
    ) -> list[UnitStatus]:
        """Recompute every unit with an effect in these periods (added while events in them
        were already being applied)."""
        repository = await EvaluationRepository.from_session(session, schema=self.schema)
        windows = []
        for period_id in period_ids:
            period = self.campaign.period(period_id)
            if period is None:
                continue
            units = await repository.units_with_effects_in(period.starts_at, period.ends_at)
            windows += [
                StatusWindow(unit, period.id, period.starts_at, period.ends_at) for unit in units
            ]
        return await self._recompute_windows(session, repository, windows, now=now, correlation={})


def rolling_window_of(unit_code: str, rolling_start: datetime) -> StatusWindow:
    return StatusWindow(unit_code, ROLLING, rolling_start + ONE_TICK, None)


def _correlation_by_unit(
    effects: Sequence[Effect], causes: Mapping[UUID, str | None]
) -> dict[str, str | None]:
    correlation: dict[str, str | None] = {}
    for effect in effects:
        cause = causes.get(effect.event_id)
        if cause:
            correlation[effect.unit_code] = cause
    return correlation
