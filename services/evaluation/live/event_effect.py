"""What became of one event or correction (`GET /v1/events/{event_id}/effect`): its state and
every unit and period it counts against or toward now, within the asking key's scope."""

from datetime import datetime
from uuid import UUID

from services.evaluation.live.effects import EffectCalculator
from services.evaluation.live.repository.events import EvaluationRepository
from services.evaluation.records import APPLIED, Effect, StoredCorrection, StoredEvent
from services.evaluation.rules import WORK_RECORD_TYPES, Criterion
from services.evaluation.schemas import (
    CountsAgainstOut,
    CountsTowardOut,
    DisputeRefOut,
    EffectOut,
    EffectState,
    Indicator,
)
from shared.access.service import Principal
from shared.calendar.rules import local_day
from shared.calendar.store import Deadlines
from shared.errors import EventNotFound, OutOfScope
from shared.events import EventType
from shared.registry.cache import UnitRegistry


class EventEffects:
    def __init__(
        self,
        *,
        calculator: EffectCalculator,
        registry: UnitRegistry,
        deadlines: Deadlines | None = None,
    ) -> None:
        self.calculator = calculator
        self.registry = registry
        self.deadlines = deadlines

    async def of(
        self,
        repository: EvaluationRepository,
        *,
        event_id: UUID,
        principal: Principal,
        now: datetime,
    ) -> EffectOut:
        """An event's state and what it counts against now, or a correction's state; within
        the key's scope (the event's attributed unit, the correction's own unit)."""
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
        disputed = await self._disputed(repository, event)
        if event.voided or event.attributed_code != event.unit_code:
            history = (await repository.corrections_of([event.event_id])).get(event.event_id, [])
            reason = _corrected_by(event, history)
        else:
            reason = None
        if event.voided:
            return EffectOut(
                event_id=event.event_id,
                state=EffectState.voided,
                reason=reason,
                counts_against=[],
                **disputed,
            )
        counts: list[CountsAgainstOut] = []
        toward: list[CountsTowardOut] = []
        for effect in sorted(await repository.effects_of([event.event_id]), key=_by_unit):
            windows = sorted(self.calculator.windows_of([effect], now=now))
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
            reason=reason,
            counts_against=counts,
            counts_toward=toward,
            **disputed,
        )

    async def _disputed(self, repository: EvaluationRepository, event: StoredEvent) -> dict:
        """A counting event's last day to dispute it and its disputes (nothing for others)."""
        if event.facts is None or event.facts.type in WORK_RECORD_TYPES:
            return {}
        disputes = [
            DisputeRefOut(dispute_id=i, state=s)
            for i, s in await repository.disputes_of(event.event_id)
        ]
        if event.noticed_at is None:
            reason = "the event was applied before notices were kept: a rebuild adds them"
            return {"disputes": disputes, "dispute_until_reason": reason}
        if self.deadlines is None:
            return {"disputes": disputes, "dispute_until_reason": "no working-day calendar"}
        deadline = await self.deadlines.last_day(
            local_day(event.noticed_at), self.calculator.campaign.limits.dispute, name="dispute"
        )
        return {
            "disputes": disputes,
            "dispute_until": deadline.last_day,
            "dispute_until_reason": deadline.reason,
        }


def _corrected_by(event: StoredEvent, history: list[StoredCorrection]) -> str | None:
    """Which applied correction, or which upheld dispute, voided the event or moved it where
    it is attributed now."""
    applied = sorted(
        (c for c in history if c.state == APPLIED), key=lambda c: (c.accepted_at, c.event_id)
    )
    if event.voided:
        found = next((c for c in applied if c.type is EventType.event_voided), None)
        verb = "voided"
    else:
        moves = [c for c in applied if c.new_unit_code == event.attributed_code]
        found = moves[-1] if moves else None
        verb = "re-attributed"
    if found is None:
        return None
    if found.dispute_id is not None:
        return f"{verb} by dispute {found.dispute_id}"
    return f"{verb} by {found.event_id}"


def _by_unit(effect: Effect) -> str:
    return effect.unit_code
