"""The service's records as its code handles them: what the repository package makes of the rows
of its schema (the statuses stay `models.UnitStatusRow`s)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from services.applications.workflow import Action, ApplicationState, UnitState
from shared.application_steps import ApplicationStep


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

    def message(self) -> ApplicationStep:
        """The step as published on the applications topic and served by the feed."""
        return ApplicationStep.model_validate(self, from_attributes=True)


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


@dataclass(frozen=True, slots=True)
class FlagChange:
    """One application unit flagged or cleared, with the events it was flagged for."""

    application_id: UUID
    unit_code: str
    event_ids: list[str]
