"""What a rebuild's read phase asks of the registry for each event, asked once per unit: whether
the unit is known, and the slot a meeting of it falls in.

A rebuild computes every effect on the registry as loaded at its start, so the answers hold for
the whole rebuild; a registry of another version starts them afresh all the same.
"""

from datetime import date, datetime
from typing import Any

from services.evaluation.live.effects import EffectCalculator
from shared.cadence import Cadence, slot_start
from shared.campaign import SHANGHAI
from shared.registry.cache import UnitRegistry

NOT_LOOKED_UP: Any = object()
NOT_IN_REGISTRY: Any = object()


class RebuildUnits:
    def __init__(self, *, calculator: EffectCalculator, registry: UnitRegistry) -> None:
        self.calculator = calculator
        self.registry = registry
        self._version = registry.version
        # By unit code: the cadence of its meetings (None: it keeps none), or NOT_IN_REGISTRY.
        self._cadences: dict[str, Any] = {}
        self._slots: dict[Cadence, dict[date, date]] = {c: {} for c in Cadence}

    def known(self, code: str) -> bool:
        """Whether the registry has the unit."""
        return self._cadence(code) is not NOT_IN_REGISTRY

    def meeting_slot(self, unit_code: str, occurred_at: datetime) -> date | None:
        """`EffectCalculator.meeting_slot`: the first day of the slot a meeting of the unit at
        `occurred_at` falls in, in the cadence of the unit's own level; none when the unit is
        not a campaign unit or its level keeps no cadence."""
        cadence = self._cadence(unit_code)
        if cadence is None or cadence is NOT_IN_REGISTRY:
            return None
        day = occurred_at.astimezone(SHANGHAI).date()
        slots = self._slots[cadence]
        slot = slots.get(day)
        if slot is None:
            slot = slots[day] = slot_start(day, cadence)
        return slot

    def _cadence(self, unit_code: str) -> Any:
        cadence = self._cadences.get(unit_code, NOT_LOOKED_UP)
        if cadence is NOT_LOOKED_UP:
            if self.registry.version != self._version:
                self._cadences.clear()
                self._version = self.registry.version
            cadence = self._cadences[unit_code] = self._cadence_of(unit_code)
        return cadence

    def _cadence_of(self, unit_code: str) -> Any:
        if self.registry.get_cached(unit_code) is None:
            return NOT_IN_REGISTRY
        return self.calculator.cadence_of(unit_code)
