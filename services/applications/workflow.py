"""The title's lifecycle as plain rules, without I/O: states, who may act, and what each
decision does to a unit (docs/domain.md section 5).

    application: draft -> submitted -> reviewed -> decided
    unit:        proposed -> submitted -> recommended -> awarded -> revoked
                                      \\-> returned     \\-> rejected
"""

from collections.abc import Iterable
from enum import StrEnum

from shared.access.models import Role
from shared.access.service import OUTSIDE, Principal
from shared.application_steps import StepAction
from shared.errors import OutOfScope, PreconditionFailed
from shared.levels import Level
from shared.registry.cache import UnitRegistry
from shared.web import parse_if_match


class ApplicationState(StrEnum):
    draft = "draft"
    submitted = "submitted"  # some unit awaits the city's review
    reviewed = "reviewed"  # every unit reviewed; some recommended unit awaits the province
    decided = "decided"  # every unit decided


class UnitState(StrEnum):
    proposed = "proposed"
    submitted = "submitted"
    recommended = "recommended"
    returned = "returned"
    awarded = "awarded"
    rejected = "rejected"
    revoked = "revoked"


# A unit in these states no longer holds its place for the period (it may be applied again).
CLOSED = frozenset({UnitState.returned, UnitState.rejected, UnitState.revoked})
# A unit in these states is watched: losing three-no flags it.
WATCHED = frozenset({UnitState.submitted, UnitState.recommended, UnitState.awarded})


# What a step does, as the applications topic names it.
Action = StepAction


class Stage(StrEnum):
    """What a bureau does, and the level of bureau that does it."""

    apply = "apply"  # create and submit: the county bureau
    review = "review"  # approve or return: the city bureau
    award = "award"  # award, reject, revoke: the province bureau


BUREAU_LEVEL = {Stage.apply: Level.county, Stage.review: Level.city, Stage.award: Level.province}
# A review decision and an award decision: the unit's state before, the action, the state after.
REVIEW = {
    "approve": (Action.approved, UnitState.recommended),
    "return": (Action.returned, UnitState.returned),
}
AWARD = {
    "award": (Action.awarded, UnitState.awarded),
    "reject": (Action.rejected, UnitState.rejected),
}
STAGE_FROM = {Stage.review: UnitState.submitted, Stage.award: UnitState.recommended}


def application_state(unit_states: Iterable[UnitState]) -> ApplicationState:
    """The state of a submitted application, from its units' states."""
    states = set(unit_states)
    if UnitState.proposed in states:
        return ApplicationState.draft
    if UnitState.submitted in states:
        return ApplicationState.submitted
    if UnitState.recommended in states:
        return ApplicationState.reviewed
    return ApplicationState.decided


def require_stage(principal: Principal, registry: UnitRegistry, *, stage: Stage) -> None:
    """403 unless the key is a bureau of the stage's level (or an admin), whatever the county."""
    if principal.role == Role.admin:
        return
    if principal.role != Role.bureau:
        raise OutOfScope(f"a {principal.role} key may not act on applications", reason="role")
    level = BUREAU_LEVEL[stage]
    scope = registry.get_cached(principal.scope_code or "")
    if scope is None or scope.level != level:
        held = scope.level.value if scope else "unknown"
        raise OutOfScope(
            f"only a {level.value} bureau may {stage.value}; this key is a {held} bureau",
            reason="role",
        )


def require_bureau(
    principal: Principal, registry: UnitRegistry, *, stage: Stage, county_code: str
) -> None:
    """403 unless the key is a bureau of the stage's level over the county (or an admin)."""
    require_stage(principal, registry, stage=stage)
    if principal.scope_code is not None and not registry.is_within(
        county_code, principal.scope_code
    ):
        raise OutOfScope(OUTSIDE)


def require_version(if_match: str | None, current: int) -> None:
    if parse_if_match(if_match, of="the application") != current:
        raise PreconditionFailed(
            f"the application is at version {current}: it changed since you read it; read it "
            "again and decide on what it is now"
        )


def etag(version: int) -> str:
    return f'"{version}"'
