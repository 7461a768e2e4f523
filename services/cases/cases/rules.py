"""Who sees a case and who may take each step of it, without I/O."""

from collections.abc import Iterable

from services.cases.cases.repository import CaseRow, CaseStepRow
from shared.access.models import Role
from shared.access.service import Principal
from shared.case_steps import Action
from shared.levels import Level
from shared.registry.cache import UnitRef, UnitRegistry

BUREAU_LEVELS = frozenset({Level.county, Level.city, Level.province})
# Roles that read the petitioner's summary of a case they see (a reader sees the rest).
SUMMARY_ROLES = frozenset({Role.desk, Role.bureau, Role.handler, Role.admin})


def units_under(registry: UnitRegistry, root: str) -> list[str]:
    """The root and every unit under it."""
    found, waiting = [], [root]
    while waiting:
        code = waiting.pop()
        found.append(code)
        waiting += registry.children(code)
    return found


class CaseSides:
    def __init__(self, registry: UnitRegistry) -> None:
        self.registry = registry

    def _covers(self, principal: Principal, *codes: str) -> bool:
        scope = principal.scope_code
        return scope is None or any(self.registry.is_within(code, scope) for code in codes)

    def sees(self, principal: Principal, case: CaseRow, steps: Iterable[CaseStepRow]) -> bool:
        """The units of the case (its own, the first receiver's, the owner's) and those above
        them; a handling body the case is or was routed to."""
        if principal.role is Role.admin:
            return True
        if principal.role is Role.handler:
            return self.handles(principal, case) or any(
                step.action == Action.routed
                and (step.detail.get("unit_code"), step.detail.get("body"))
                == (principal.scope_code, principal.body)
                for step in steps
            )
        return self._covers(principal, case.unit_code, case.first_receiver, case.owner_unit)

    def handles(self, principal: Principal, case: CaseRow) -> bool:
        """The body the case is with now."""
        if principal.role is Role.admin:
            return True
        return (
            principal.role is Role.handler
            and case.owner_body is not None
            and (principal.scope_code, principal.body) == (case.owner_unit, case.owner_body)
        )

    def owns(self, principal: Principal, case: CaseRow) -> bool:
        """A desk over the unit the case is with (not yet with one of its bodies)."""
        if principal.role is Role.admin:
            return True
        return (
            principal.role is Role.desk
            and case.owner_body is None
            and self._covers(principal, case.owner_unit)
        )

    def petitioners_desk(self, principal: Principal, case: CaseRow) -> bool:
        """A desk over the case's unit or its first receiver: records what the petitioner
        says (a rating, a request for review)."""
        if principal.role is Role.admin:
            return True
        return principal.role is Role.desk and self._covers(
            principal, case.unit_code, case.first_receiver
        )

    def supervises(self, principal: Principal, case: CaseRow) -> bool:
        if principal.role is Role.admin:
            return True
        return principal.role is Role.bureau and self._covers(principal, case.owner_unit)

    def may_close(self, principal: Principal, case: CaseRow) -> bool:
        return self.petitioners_desk(principal, case) or self.supervises(principal, case)

    def reviewer_above(self, unit_code: str) -> UnitRef | None:
        """The nearest bureau strictly above the unit (复查 above the unit that replied, 复核
        above the one that reviewed)."""
        above = self.registry.ancestors(unit_code)[1:]
        return next((u for u in above if u.level in BUREAU_LEVELS), None)

    @staticmethod
    def is_bureau_of(principal: Principal, unit_code: str) -> bool:
        if principal.role is Role.admin:
            return True
        return principal.role is Role.bureau and principal.scope_code == unit_code
