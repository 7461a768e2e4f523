"""The service's records as its code handles them (rows read from, or written to, its schema)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from services.applications.workflow import Action, ApplicationState, UnitState


@dataclass(frozen=True, slots=True)
class StatusNow:
    """A unit's latest status for a period as the status topic told it (none: three-no)."""

    unit_code: str
    period: str
    three_no: bool
    counting_event_ids: list[str]
    version: int
    changed_at: datetime | None
    counts: dict[str, int]
    people: dict[str, int]


@dataclass(frozen=True, slots=True)
class AppliedUnit:
    unit_code: str
    self_evaluation: str
    rectifications: list[str]
    state: UnitState
    evidence: dict[str, Any] | None
    decision_reason: str | None
    flag_since: datetime | None
    flag_event_ids: list[str] | None

    @property
    def flagged(self) -> bool:
        return self.flag_since is not None


@dataclass(frozen=True, slots=True)
class Application:
    application_id: UUID
    county_code: str
    period: str
    state: ApplicationState
    version: int
    created_at: datetime
    updated_at: datetime
    units: list[AppliedUnit]

    def unit(self, code: str) -> AppliedUnit | None:
        return next((u for u in self.units if u.unit_code == code), None)


@dataclass(frozen=True, slots=True)
class Step:
    step_id: int
    application_id: UUID
    county_code: str
    period: str
    unit_code: str | None
    action: Action
    key_id: str | None
    role: str | None
    scope_code: str | None
    reason: str | None
    detail: dict[str, Any]
    at: datetime

    def message(self) -> dict[str, Any]:
        """The step as published on the applications topic and served by the feed."""
        return {
            "step_id": self.step_id,
            "application_id": str(self.application_id),
            "county_code": self.county_code,
            "period": self.period,
            "unit_code": self.unit_code,
            "action": self.action.value,
            "key_id": self.key_id,
            "role": self.role,
            "scope_code": self.scope_code,
            "reason": self.reason,
            "detail": self.detail,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Title:
    """An awarded (or revoked) unit: the title it holds for the period."""

    unit_code: str
    period: str
    application_id: UUID
    county_code: str
    version: int  # the application's, for If-Match on a revocation
    state: UnitState
    reason: str | None
    flag_since: datetime | None
    flag_event_ids: list[str] | None
