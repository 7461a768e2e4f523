"""Applying events to statuses.

A batch is applied in the caller's transaction: record the new events and corrections (the
record of what was applied), work out each touched event's effects (the units on its attributed
chain it counts against, and under which criteria), replace the effects that changed, then
recompute every (unit, period) those effects fall in and publish the statuses that changed.
A status is always an aggregate of effect rows, so applying an event twice cannot count it
twice, and corrections and the rolling window's expiry are exact.
"""

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation import metrics
from services.evaluation.models import SCHEMA, outbox
from services.evaluation.repository import (
    COUNTED,
    PENDING,
    Effect,
    EvaluationRepository,
    NewCorrection,
    NewEvent,
    StateChange,
    StatusWindow,
    StoredCorrection,
    StoredEvent,
)
from services.evaluation.rules import (
    CountingEvent,
    Criterion,
    Facts,
    criteria_met,
    facts_of,
    people_of,
)
from services.evaluation.schemas import CountsAgainstOut, EffectOut, EffectState
from shared.access.service import Principal
from shared.campaign import Campaign, rolling_window
from shared.corrections import Correction, Refusal, Verdict, covers_in, refuse_all, resolve
from shared.errors import EventNotFound, OutOfScope
from shared.events import EventReattributed, EventRecord, EventType, EventVoided
from shared.levels import Level
from shared.outbox import OutboxMessage, OutboxRepository
from shared.registry.cache import UnitRegistry
from shared.status import ROLLING, CriterionCounts, UnitStatus

ONE_TICK = timedelta(microseconds=1)  # the rolling window excludes its start
APPLIED = "applied"
REFUSED = "refused"
MEMO_LIMIT = 100_000
FOLLOW_CHUNK = 5_000  # events re-evaluated at a time after a registry move


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


@dataclass
class _Changes:
    """What re-evaluating some events changes, written in one statement each."""

    replaced: list[UUID] = field(default_factory=list)  # events whose effects are replaced
    fresh: list[Effect] = field(default_factory=list)
    changed: list[Effect] = field(default_factory=list)  # removed and added
    attributions: list[tuple[UUID, str, bool]] = field(default_factory=list)
    states: list[StateChange] = field(default_factory=list)


def as_correction(stored: StoredCorrection) -> Correction:
    return Correction(
        event_id=stored.event_id,
        type=stored.type.value,
        new_unit_code=stored.new_unit_code,
        accepted_at=stored.accepted_at,
        scope_code=stored.scope_code,
        sender_known=stored.sender_known,
    )


def verdicts_while_pending(corrections: Sequence[StoredCorrection]) -> dict[UUID, Verdict | None]:
    """Corrections whose target has not arrived wait for it (None), unless no key sent them."""
    unknown = [as_correction(c) for c in corrections if not c.sender_known]
    pending: dict[UUID, Verdict | None] = {c.event_id: None for c in corrections}
    return pending | refuse_all(unknown, Refusal.unknown_sender)


def state_change(stored: StoredCorrection, verdict: Verdict | None) -> StateChange | None:
    """The correction's new state if the verdict changes it."""
    if verdict is None:
        state, reason = PENDING, None
    else:
        state, reason = (APPLIED, None) if verdict.applied else (REFUSED, verdict.reason)
    if (state, reason) == (stored.state, stored.reason):
        return None
    return StateChange(stored.event_id, state, reason)


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
        unit_code=event.unit_code,
        key_id=record.key_id,
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
        self._covers = covers_in(registry)
        # The window start of an expiry pass (a lower bound of the latest one), and the
        # earliest pending rolling effect known here: when the next pass is due.
        self._rolling_passed: datetime | None = None
        self.next_rolling_due: datetime | None = None
        # The registry version the last `follow_registry` brought the effects to.
        self.following_version: int | None = None

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
        """Every (unit, period) an effect counts in at `now`: the named periods containing it,
        and the rolling period while it lies in the trailing 12 months that end now."""
        start = rolling_window(now)[0]
        return self._windows(effects, now=now, counts=lambda at: start < at <= now)

    def windows_to_recompute(
        self, effects: Iterable[Effect], *, now: datetime
    ) -> dict[tuple[str, str], StatusWindow]:
        """The (unit, period) pairs whose status may change when these effects are added or
        removed: those of `windows_of`, and the rolling period also for an effect dated after
        `now` (its unit is then remembered as pending) or one that left the window after the
        last expiry pass known here (that pass finds units through effect rows, which a
        correction may just have removed)."""
        since = self._rolling_passed
        if since is not None:
            since = min(since, rolling_window(now)[0])
        return self._windows(effects, now=now, counts=lambda at: since is None or at > since)

    def _windows(
        self, effects: Iterable[Effect], *, now: datetime, counts: Callable[[datetime], bool]
    ) -> dict[tuple[str, str], StatusWindow]:
        """The named periods containing each effect, and the rolling period where `counts`
        says so of the effect's moment."""
        start = rolling_window(now)[0]
        windows: dict[tuple[str, str], StatusWindow] = {}
        for effect in effects:
            for period in self.campaign.periods_containing(effect.occurred_at):
                windows[(effect.unit_code, period.id)] = StatusWindow(
                    effect.unit_code, period.id, period.starts_at, period.ends_at
                )
            if counts(effect.occurred_at):
                windows[(effect.unit_code, ROLLING)] = rolling_window_of(
                    effect.unit_code, start, now
                )
        return windows

    def period_bounds(self, now: datetime) -> list[tuple[str, datetime, datetime | None]]:
        """Every period as (id, starts_at, ends_at); the rolling one ends at `now`."""
        bounds: list[tuple[str, datetime, datetime | None]] = [
            (p.id, p.starts_at, p.ends_at) for p in self.campaign.periods
        ]
        bounds.append((ROLLING, rolling_window(now)[0] + ONE_TICK, now + ONE_TICK))
        return bounds

    def county_of(self, unit_code: str) -> str:
        return self.registry.keying_unit(unit_code)

    # --- applying a batch -------------------------------------------------------------------

    async def apply(
        self, session: AsyncSession, items: Sequence[Incoming], *, now: datetime
    ) -> Applied:
        repository = await EvaluationRepository.from_session(session, schema=self.schema)
        await self.use_current_registry(repository)
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
        """Bring the effects of these events in line with their facts and corrections, and the
        state of each of their corrections with what the rules decide. Returns the effects
        removed and added (what the statuses must be recomputed for)."""
        ids = list(event_ids)
        history = await repository.corrections_of(ids)
        stored = {i: e for i, e in (await repository.events(ids)).items() if e.known}
        # Targets that are themselves corrections: only those something corrects matter.
        corrections = await repository.corrections_among(i for i in history if i not in stored)
        previous: dict[UUID, set[Effect]] = {}
        for effect in await repository.effects_of(stored):
            previous.setdefault(effect.event_id, set()).add(effect)
        changes = _Changes()
        for target_id in ids:
            targeting = history.get(target_id, [])
            event = stored.get(target_id)
            verdicts: Mapping[UUID, Verdict | None]
            if event is not None:
                verdicts = self._follow(event, targeting, previous.get(target_id, set()), changes)
            elif target_id in corrections:
                verdicts = refuse_all(map(as_correction, targeting), Refusal.target_is_correction)
            else:
                verdicts = verdicts_while_pending(targeting)
            changes.states.extend(
                change
                for c in targeting
                if (change := state_change(c, verdicts[c.event_id])) is not None
            )
        await repository.replace_effects(
            [i for i in changes.replaced if i in previous], changes.fresh
        )
        await repository.set_attributions(changes.attributions)
        await repository.set_correction_states(changes.states)
        return changes.changed

    def _follow(
        self,
        event: StoredEvent,
        targeting: Sequence[StoredCorrection],
        before: set[Effect],
        changes: "_Changes",
    ) -> Mapping[UUID, Verdict]:
        """Resolve a known event's corrections; note what changes. Returns the verdicts."""
        assert event.unit_code is not None
        resolution = resolve(event.unit_code, map(as_correction, targeting), covers=self._covers)
        unit_code, voided = resolution.unit_code, resolution.voided
        if (unit_code, voided) != (event.attributed_code, event.voided):
            changes.attributions.append((event.event_id, unit_code, voided))
        effects = set() if voided else set(self._effects_of(event, unit_code))
        if effects != before:
            changes.replaced.append(event.event_id)
            changes.fresh.extend(effects)
            changes.changed.extend(effects ^ before)
        return resolution.verdicts

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
        windows = self.windows_to_recompute(effects, now=now)
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
        self._due_at(await repository.mark_pending_rolling(windows))
        if self.publish and statuses:
            await OutboxRepository(session, outbox).add(
                [message_of(s, correlation.get(s.unit_code)) for s in statuses]
            )
            metrics.status_changes.inc(len(statuses))
        return statuses

    # --- what became of one event -----------------------------------------------------------

    async def effect(
        self, session: AsyncSession, *, event_id: UUID, principal: Principal, now: datetime
    ) -> EffectOut:
        """An event's state and what it counts against now, or a correction's state; within
        the key's scope (the event's attributed unit, the correction's own unit)."""
        repository = await EvaluationRepository.from_session(session, schema=self.schema)
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
        for effect in sorted(await repository.effects_of([event.event_id]), key=_by_unit):
            criteria = [c.name for c in Criterion if c & effect.criteria and c.name]
            counts.extend(
                CountsAgainstOut(unit_code=unit_code, period=period, criteria=criteria)
                for unit_code, period in sorted(self.windows_of([effect], now=now))
            )
        return EffectOut(event_id=event.event_id, state=EffectState.applied, counts_against=counts)

    # --- the rolling period -------------------------------------------------------------------

    async def expire_rolling(self, session: AsyncSession, *, now: datetime) -> list[UnitStatus]:
        """Move the rolling period to `now`: recompute the units whose effects left the window
        since the last pass (where nothing else counts they become clean), and those with an
        effect that was dated in the future when their status was computed and whose time has
        come."""
        repository = await EvaluationRepository.from_session(session, schema=self.schema)
        previous = await repository.rolling_window_start()
        start = rolling_window(now)[0]
        units = await repository.take_due_rolling(now)
        if previous is None or start > previous:
            units |= set(await repository.units_with_effects_between(previous, start))
            await repository.set_rolling_window_start(start)
        # Never older than a pass that ran with a later clock (another instance's).
        start = start if previous is None else max(start, previous)
        windows = [rolling_window_of(unit, start, now) for unit in sorted(units)]
        statuses = await self._recompute_windows(
            session, repository, windows, now=now, correlation={}
        )
        self.next_rolling_due = await repository.next_rolling_due()
        if previous is not None and (
            self._rolling_passed is None or previous > self._rolling_passed
        ):
            self._rolling_passed = previous
        metrics.rolling_expired.inc(len(statuses))
        return statuses

    def _due_at(self, moment: datetime | None) -> None:
        if moment is not None and (self.next_rolling_due is None or moment < self.next_rolling_due):
            self.next_rolling_due = moment

    # --- registry moves -------------------------------------------------------------------------

    async def use_current_registry(self, repository: EvaluationRepository) -> None:
        """Compute effects with a registry at least as new as the one this transaction sees:
        a load that committed before is followed here, and one that commits later is followed
        by `follow_registry`, which waits for this transaction."""
        if await repository.registry_version() > self.registry.version:
            await self.registry.refresh()

    async def follow_registry(self, session: AsyncSession, *, now: datetime) -> list[UnitStatus]:
        """Make the effects follow the registry as loaded now. The events attributed to the
        units that loads since the followed version moved (a village to another township,
        townships merged), or to units under them, count against their new ancestors and no
        longer against the old ones; the statuses of both are recomputed and published. No
        batch runs meanwhile, and a registry version is followed once, also by several
        instances or after a restart."""
        repository = await EvaluationRepository.excluding_batches(session, schema=self.schema)
        followed = await repository.followed_registry_version() or 0
        await self.registry.refresh()
        version = self.following_version = self.registry.version
        if followed >= version:
            return []
        moved = await repository.units_moved(followed, version)
        event_ids = await repository.events_attributed_to(self._subtrees(moved))
        changed: list[Effect] = []
        for first in range(0, len(event_ids), FOLLOW_CHUNK):
            changed += await self.reevaluate(repository, event_ids[first : first + FOLLOW_CHUNK])
        statuses = await self.recompute(session, repository, changed, now=now)
        await repository.set_followed_registry_version(version)
        metrics.registry_moves_followed.inc(len(event_ids))
        return statuses

    def _subtrees(self, codes: Iterable[str]) -> set[str]:
        """The units and everything under them. A unit that was under one of them at some
        version in between and is not now was moved itself, so it is among `codes` too."""
        found: set[str] = set()
        pending = list(codes)
        while pending:
            code = pending.pop()
            if code not in found:
                found.add(code)
                pending += self.registry.children(code)
        return found

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


def _by_unit(effect: Effect) -> str:
    return effect.unit_code


def rolling_window_of(unit_code: str, rolling_start: datetime, now: datetime) -> StatusWindow:
    """The rolling period's window (rolling_start, now]: an effect dated later counts from
    its own time on."""
    return StatusWindow(unit_code, ROLLING, rolling_start + ONE_TICK, now + ONE_TICK)


def _correlation_by_unit(
    effects: Sequence[Effect], causes: Mapping[UUID, str | None]
) -> dict[str, str | None]:
    correlation: dict[str, str | None] = {}
    for effect in effects:
        cause = causes.get(effect.event_id)
        if cause:
            correlation[effect.unit_code] = cause
    return correlation
