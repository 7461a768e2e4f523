"""What a delivery says: a thin payload per change, `{"type", "timestamp", "data"}`, whose data
carries the ids the feeds use (a status's unit, period and version; a warning's id and
version; a step's id), the unit and a few fields, so that a receiver reconciles by pulling the
feed or the resource. Each message of a topic the service reads becomes one change, parsed by
its one parser in `shared.messages`."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.webhooks.rules import Kind
from shared.consumer import Record, Rejected
from shared.messages import (
    ApplicationStep,
    CaseStep,
    DisputeStep,
    EarlyWarning,
    UnitStatus,
    parse_application_step,
    parse_case_step,
    parse_dispute_step,
    parse_early_warning,
    parse_unit_status,
)


@dataclass(frozen=True, slots=True)
class Change:
    kind: Kind
    message_id: str  # the `webhook-id`: the same for the same change, whatever the retries
    unit_code: str  # whose subscribers hear of it, and the order deliveries keep
    body: bytes
    happened_at: datetime


def _change(
    kind: Kind, *, message_id: str, type_: str, unit_code: str, at: datetime, data: dict[str, Any]
) -> Change:
    payload = {"type": type_, "timestamp": at.isoformat(), "data": data}
    return Change(kind, message_id, unit_code, orjson.dumps(payload), at)


def status_change(status: UnitStatus) -> Change:
    return _change(
        Kind.status_changes,
        message_id=f"status_{status.unit_code}_{status.period}_{status.version}",
        type_="unit.status_changed",
        unit_code=status.unit_code,
        at=status.changed_at,
        data={
            "unit_code": status.unit_code,
            "period": status.period,
            "version": status.version,
            "three_no": status.three_no,
            "changed_at": status.changed_at.isoformat(),
        },
    )


def warning_change(warning: EarlyWarning) -> Change:
    cleared = warning.cleared_at is not None
    return _change(
        Kind.warnings,
        message_id=f"warning_{warning.warning_id}_{warning.version}",
        type_="warning.cleared" if cleared else "warning.raised",
        unit_code=warning.unit_code,
        at=warning.cleared_at or warning.raised_at,
        data={
            "warning_id": str(warning.warning_id),
            "version": warning.version,
            "kind": warning.kind.value,
            "unit_code": warning.unit_code,
            "raised_at": warning.raised_at.isoformat(),
            "cleared_at": warning.cleared_at.isoformat() if warning.cleared_at else None,
        },
    )


def application_step_change(step: ApplicationStep) -> Change:
    unit = step.unit_code or step.county_code
    return _change(
        Kind.application_steps,
        message_id=f"application_step_{step.step_id}",
        type_="application.step",
        unit_code=unit,
        at=step.at,
        data={
            "step_id": step.step_id,
            "application_id": str(step.application_id),
            "county_code": step.county_code,
            "unit_code": step.unit_code,
            "period": step.period,
            "action": step.action.value,
        },
    )


def dispute_step_change(message: DisputeStep) -> Change:
    dispute = message.dispute
    return _change(
        Kind.dispute_steps,
        message_id=f"dispute_step_{message.step_id}",
        type_="dispute.step",
        unit_code=dispute.unit_code,
        at=message.step.at,
        data={
            "step_id": message.step_id,
            "dispute_id": str(dispute.dispute_id),
            "event_id": str(dispute.event_id),
            "version": dispute.version,
            "action": message.step.action.value,
            "state": dispute.state.value,
            "unit_code": dispute.unit_code,
        },
    )


def case_step_change(message: CaseStep) -> Change:
    case = message.case
    return _change(
        Kind.case_steps,
        message_id=f"case_step_{case.case_id}_{case.version}",
        type_="case.step",
        unit_code=case.unit_code,
        at=message.step.recorded_at,
        data={
            "step_id": message.step_id,
            "case_id": str(case.case_id),
            "version": case.version,
            "action": message.step.action.value,
            "state": case.state.value,
            "unit_code": case.unit_code,
            "owner_unit": case.owner_unit,
        },
    )


def _reading(
    parse: Callable[[Record], Any], to_change: Callable[[Any], Change]
) -> Callable[[Record], Change | Rejected]:
    def change_of(record: Record) -> Change | Rejected:
        parsed = parse(record)
        return parsed if isinstance(parsed, Rejected) else to_change(parsed)

    return change_of


# Each kind's topic (its property on `Settings`) and how a record becomes a change.
READERS: dict[Kind, tuple[str, Callable[[Record], Change | Rejected]]] = {
    Kind.status_changes: ("status_topic", _reading(parse_unit_status, status_change)),
    Kind.warnings: ("warning_topic", _reading(parse_early_warning, warning_change)),
    Kind.application_steps: (
        "application_topic",
        _reading(parse_application_step, application_step_change),
    ),
    Kind.dispute_steps: ("disputes_topic", _reading(parse_dispute_step, dispute_step_change)),
    Kind.case_steps: ("cases_topic", _reading(parse_case_step, case_step_change)),
}
