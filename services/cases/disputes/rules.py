"""Who may take each step of a dispute, without I/O."""

from shared.access.models import Role
from shared.access.service import Principal
from shared.levels import Level
from shared.registry.cache import UnitRef

COUNTING_TYPES = frozenset({"petition_visit", "incident", "public_opinion"})
CORRECTION_TYPES = frozenset({"event_voided", "event_reattributed"})
# A filer's scope is the event's unit or an ancestor, up to its county.
FILER_LEVELS = frozenset({Level.county, Level.township, Level.village})


def may_file(principal: Principal, chain: list[UnitRef]) -> bool:
    """A desk or bureau whose scope is the unit (first of `chain`) or an ancestor up to its
    county; an admin."""
    if principal.role is Role.admin:
        return True
    if principal.role not in (Role.desk, Role.bureau):
        return False
    return any(u.code == principal.scope_code and u.level in FILER_LEVELS for u in chain)


def decider_of(chain: list[UnitRef]) -> UnitRef | None:
    """The county above the unit; the city when the unit is a county or has no county above
    it. `chain` is the unit, then its ancestors."""
    above = chain[1:]
    county = next((u for u in above if u.level is Level.county), None)
    return county or next((u for u in above if u.level is Level.city), None)


def reviewer_of(decider: UnitRef, chain: list[UnitRef]) -> UnitRef | None:
    """The next bureau up from the decider: the city above a county, the province above a
    city."""
    above = [u for u in chain if u.code != decider.code]
    wanted = Level.city if decider.level is Level.county else Level.province
    return next((u for u in above if u.level is wanted), None)


def is_bureau_of(principal: Principal, unit_code: str) -> bool:
    if principal.role is Role.admin:
        return True
    return principal.role is Role.bureau and principal.scope_code == unit_code
