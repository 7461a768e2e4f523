"""Which side of a dispute a key is on: who sees it, and who lost its decision."""

from typing import Any, Protocol

from services.cases.disputes.repository import DisputeRow
from shared.access.models import Role
from shared.access.service import Principal
from shared.dispute_steps import Decision
from shared.registry.cache import UnitRegistry


class Seen(Protocol):
    """What says who sees a dispute (a dispute, or a step of the feed)."""

    @property
    def unit_code(self) -> str: ...
    @property
    def decider_code(self) -> str: ...
    @property
    def filer_scope(self) -> str: ...
    @property
    def decision(self) -> dict[str, Any] | None: ...


class Sides:
    def __init__(self, registry: UnitRegistry) -> None:
        self.registry = registry

    def lost(self, principal: Principal, dispute: DisputeRow) -> bool:
        assert dispute.decision is not None
        decision = dispute.decision["decision"]
        if principal.role is Role.admin:
            return True
        if principal.role not in (Role.desk, Role.bureau) or principal.scope_code is None:
            return False
        if decision == Decision.reject:
            return principal.scope_code == dispute.filer_scope
        if decision == Decision.uphold_reattribute:
            # The new unit's side, below the deciding bureau: not the bureau that decided.
            deciding = (
                principal.role is Role.bureau and principal.scope_code == dispute.decider_code
            )
            return (
                not deciding
                and self.registry.is_within(principal.scope_code, dispute.decider_code)
                and self.registry.is_within(dispute.decision["new_unit"], principal.scope_code)
            )
        return False

    def sees(self, principal: Principal, dispute: Seen) -> bool:
        """The event's side (its unit's subtree), the filer, the decider and the bureaus above
        it, and the side of the unit a decision moved the event to."""
        if principal.scope_code is None:
            return True
        return (
            self.registry.is_within(dispute.unit_code, principal.scope_code)
            or principal.scope_code in (dispute.decider_code, dispute.filer_scope)
            or self._reviewer_scope(principal, dispute)
            or self._moved_into(principal, dispute)
        )

    def _moved_into(self, principal: Principal, dispute: Seen) -> bool:
        """The side of the unit a decision moved the event to."""
        assert principal.scope_code is not None
        new_unit = (dispute.decision or {}).get("new_unit")
        return new_unit is not None and self.registry.is_within(new_unit, principal.scope_code)

    def _reviewer_scope(self, principal: Principal, dispute: Seen) -> bool:
        assert principal.scope_code is not None
        return self.registry.is_within(dispute.decider_code, principal.scope_code)
