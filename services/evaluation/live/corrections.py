"""Corrections: recording them, and bringing their targets' effects and their own states in
line with what the rules of `shared.corrections` decide (the function intake uses too)."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from services.evaluation.live.effects import EffectCalculator
from services.evaluation.live.repository.events import EvaluationRepository
from services.evaluation.records import (
    APPLIED,
    PENDING,
    REFUSED,
    Effect,
    NewCorrection,
    NewEvent,
    StateChange,
    StoredCorrection,
    StoredEvent,
)
from shared.corrections import Correction, Covers, Refusal, Verdict, refuse_all, resolve
from shared.events import EventReattributed, EventRecord, EventType, EventVoided


@dataclass
class _Changes:
    """What re-evaluating some events changes, written in one statement each."""

    replaced: list[UUID] = field(default_factory=list)  # events whose effects are replaced
    fresh: list[Effect] = field(default_factory=list)
    changed: list[Effect] = field(default_factory=list)  # removed and added
    attributions: list[tuple[UUID, str, bool]] = field(default_factory=list)
    moved: set[UUID] = field(default_factory=set)  # attributed to another unit than before
    states: list[StateChange] = field(default_factory=list)


@dataclass(frozen=True)
class Reevaluated:
    """The effects removed and added (what the statuses must be recomputed for), and the
    events now attributed to another unit than before."""

    changed: list[Effect]
    moved: set[UUID]


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


class Reevaluation:
    """Re-evaluating events against their corrections, with the effects of `calculator`."""

    def __init__(self, *, calculator: EffectCalculator, covers: Covers) -> None:
        self.calculator = calculator
        self.covers = covers

    async def run(
        self,
        repository: EvaluationRepository,
        event_ids: Iterable[UUID],
        *,
        fresh: Mapping[UUID, NewEvent] | None = None,
    ) -> Reevaluated:
        """Bring the effects of these events in line with their facts and corrections, and the
        state of each of their corrections with what the rules decide. `fresh`: those of these
        events recorded just now, with no correction and no effect yet (nothing to read)."""
        fresh = fresh or {}
        ids = list(event_ids)
        read = [i for i in ids if i not in fresh]
        history = await repository.corrections_of(read)
        stored = {i: e for i, e in (await repository.events(read)).items() if e.known}
        # Targets that are themselves corrections: only those something corrects matter.
        corrections = await repository.corrections_among(i for i in history if i not in stored)
        previous: dict[UUID, set[Effect]] = {}
        for effect in await repository.effects_of(stored):
            previous.setdefault(effect.event_id, set()).add(effect)
        changes = _Changes()
        for target_id in ids:
            new = fresh.get(target_id)
            if new is not None:  # counted where reported, as `_follow` finds with no corrections
                effects = self.calculator.effects_for(
                    event_id=new.event_id,
                    facts=new.facts,
                    unit_code=new.unit_code,
                    occurred_at=new.occurred_at,
                )
                changes.fresh.extend(effects)
                changes.changed.extend(effects)
                continue
            targeting = history.get(target_id, [])
            event = stored.get(target_id)
            verdicts: Mapping[UUID, Verdict | None]
            if event is not None:
                verdicts = self._follow(
                    event, targeting, before=previous.get(target_id, set()), changes=changes
                )
            elif target_id in corrections:
                verdicts = refuse_all(map(as_correction, targeting), Refusal.target_is_correction)
            else:
                verdicts = verdicts_while_pending(targeting)
            changes.states.extend(
                change
                for c in targeting
                if c.dispute_id is None  # a dispute's verdict is not kept
                and (change := state_change(c, verdicts[c.event_id])) is not None
            )
        await repository.replace_effects(
            [i for i in changes.replaced if i in previous], changes.fresh
        )
        await repository.set_attributions(changes.attributions)
        await repository.set_correction_states(changes.states)
        return Reevaluated(changes.changed, changes.moved)

    def _follow(
        self,
        event: StoredEvent,
        targeting: Sequence[StoredCorrection],
        *,
        before: set[Effect],
        changes: _Changes,
    ) -> Mapping[UUID, Verdict]:
        """Resolve a known event's corrections; note what changes. Returns the verdicts."""
        assert event.unit_code is not None
        resolution = resolve(event.unit_code, map(as_correction, targeting), covers=self.covers)
        unit_code, voided = resolution.unit_code, resolution.voided
        if (unit_code, voided) != (event.attributed_code, event.voided):
            changes.attributions.append((event.event_id, unit_code, voided))
            if unit_code != event.attributed_code:
                changes.moved.add(event.event_id)
        effects = set() if voided else set(self._effects_of(event, unit_code))
        if effects != before:
            changes.replaced.append(event.event_id)
            changes.fresh.extend(effects)
            changes.changed.extend(effects ^ before)
        return resolution.verdicts

    def _effects_of(self, event: StoredEvent, unit_code: str) -> list[Effect]:
        assert event.facts is not None and event.occurred_at is not None
        return self.calculator.effects_for(
            event_id=event.event_id,
            facts=event.facts,
            unit_code=unit_code,
            occurred_at=event.occurred_at,
        )
