"""The contract of every message the services exchange over Kafka: for each message type, the
model its producer encodes and the one parser every consumer calls,
`parse_<type>(record) -> Model | Rejected`.

A tombstone, a value that does not validate or a message that breaks a rule becomes a
`Rejected` (dead-lettered by `shared.consumer`) with its reason. A consumer never checks a
message again with rules of its own: what it needs beyond the message (the unit's place in the
registry) it looks up after parsing.

| message type        | model                                      | parser                   |
|---------------------|--------------------------------------------|--------------------------|
| petition events     | `shared.events.EventRecord`                | `parse_event_record`     |
| unit status         | `shared.status.UnitStatus`                 | `parse_unit_status`      |
| unit indicators     | `shared.indicators.UnitIndicators`         | `parse_unit_indicators`  |
| early warnings      | `shared.early_warning.EarlyWarning`        | `parse_early_warning`    |
| application steps   | `shared.application_steps.ApplicationStep` | `parse_application_step` |
| dispute steps       | `shared.dispute_steps.DisputeStep`         | `parse_dispute_step`     |
| case steps          | `shared.case_steps.CaseStep`               | `parse_case_step`        |
"""

import re
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from shared.application_steps import ApplicationStep
from shared.case_steps import CaseStep
from shared.consumer import Record, Rejected, summary_of
from shared.dispute_steps import DisputeStep
from shared.early_warning import EarlyWarning
from shared.events import EventRecord
from shared.indicators import UnitIndicators
from shared.status import UnitStatus

__all__ = [
    "ApplicationStep",
    "CaseStep",
    "DisputeStep",
    "EarlyWarning",
    "EventRecord",
    "UnitIndicators",
    "UnitStatus",
    "parse_application_step",
    "parse_case_step",
    "parse_dispute_step",
    "parse_early_warning",
    "parse_event_record",
    "parse_unit_indicators",
    "parse_unit_status",
]

Message = TypeVar("Message", bound=BaseModel)

CODE = re.compile(r"^[0-9]{12}$")
PERIOD = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_COUNT = 1_000_000_000  # the most any count in a message may be
MAX_VERSION = 2**31 - 1  # the versions of statuses and indicators are stored as INT
MAX_EVENT_IDS = 10_000  # the most events a warning may name


def parse_event_record(record: Record) -> EventRecord | Rejected:
    """An accepted event from the petition-event topic. Whether its units are known is the
    consumer's look-up (`unit_codes_of` names them)."""
    if record.value is None:
        return Rejected("the message has no value", "empty")
    try:
        return EventRecord.model_validate_json(record.value)
    except ValidationError as exc:
        return Rejected(f"not an event record: {summary_of(exc)}", "invalid")


def parse_unit_status(record: Record) -> UnitStatus | Rejected:
    return _decode(
        record,
        UnitStatus,
        what="a unit status",
        tombstone="statuses are never deleted",
        problems=_status_problems,
    )


def parse_unit_indicators(record: Record) -> UnitIndicators | Rejected:
    return _decode(
        record,
        UnitIndicators,
        what="unit indicators",
        tombstone="indicators are never deleted",
        problems=_indicator_problems,
    )


def parse_early_warning(record: Record) -> EarlyWarning | Rejected:
    return _decode(
        record,
        EarlyWarning,
        what="an early warning",
        tombstone="warnings are cleared, never deleted",
        problems=_warning_problems,
    )


def parse_application_step(record: Record) -> ApplicationStep | Rejected:
    return _decode(
        record,
        ApplicationStep,
        what="an application step",
        tombstone="steps are kept forever",
        problems=_step_problems,
    )


def parse_dispute_step(record: Record) -> DisputeStep | Rejected:
    return _decode(
        record,
        DisputeStep,
        what="a dispute step",
        tombstone="steps are kept forever",
        problems=_dispute_step_problems,
    )


def parse_case_step(record: Record) -> CaseStep | Rejected:
    return _decode(
        record,
        CaseStep,
        what="a case step",
        tombstone="steps are kept forever",
        problems=_case_step_problems,
    )


def _decode(
    record: Record,
    model: type[Message],
    *,
    what: str,
    tombstone: str,
    problems: Callable[[Message, bytes | None], list[str]],
) -> Message | Rejected:
    """`what` names the model in a reason ("a unit status"); `tombstone` says why a record
    without a value is refused."""
    if record.value is None:
        return Rejected(f"no value (a tombstone); {tombstone}")
    try:
        message = model.model_validate_json(record.value)
    except ValidationError as exc:
        return Rejected(f"not {what}: {summary_of(exc)}")
    found = problems(message, record.key)
    return Rejected("; ".join(found)) if found else message


def _identity_problems(
    *,
    key: bytes | None,
    expected_key: bytes,
    key_is: str = "unit_code:period",
    schema_version: int,
    unit_code: str,
    code_is: str = "unit_code",
    period: str | None = None,
    version: int | None = None,
    max_version: int | None = None,
) -> list[str]:
    """The problems of a message's key, schema version, unit code (the field `code_is`),
    period and version (those given)."""
    problems = []
    if key != expected_key:
        problems.append(f"key {key!r} is not {key_is} ({expected_key!r})")
    if schema_version != 1:
        problems.append(f"schema_version {schema_version} is not understood")
    if not CODE.match(unit_code):
        problems.append(f"{code_is} is not 12 digits")
    if period is not None and not PERIOD.match(period):
        problems.append("period is not a period id")
    if version is not None and max_version is not None and not 1 <= version <= max_version:
        problems.append(f"version must lie within 1..{max_version}")
    elif version is not None and version < 1:
        problems.append("version must be 1 or more")
    return problems


def _counts_problems(counts: list[int], *, what: str) -> list[str]:
    if any(not 0 <= n <= MAX_COUNT for n in counts):
        return [f"{what} must lie within 0..{MAX_COUNT}"]
    return []


def _offset_problems(*stamps: datetime | None, named: str) -> list[str]:
    if any(stamp is not None and stamp.utcoffset() is None for stamp in stamps):
        return [f"{named} has no offset" if len(stamps) == 1 else f"{named} need an offset"]
    return []


def _status_problems(status: UnitStatus, key: bytes | None) -> list[str]:
    return [
        *_identity_problems(
            key=key,
            expected_key=status.key,
            schema_version=status.schema_version,
            unit_code=status.unit_code,
            period=status.period,
            version=status.version,
            max_version=MAX_VERSION,
        ),
        *_counts_problems(
            [*status.counts.model_dump().values(), *status.people.model_dump().values()],
            what="counts",
        ),
        *_offset_problems(status.changed_at, named="changed_at"),
    ]


def _indicator_problems(message: UnitIndicators, key: bytes | None) -> list[str]:
    return [
        *_identity_problems(
            key=key,
            expected_key=message.key,
            schema_version=message.schema_version,
            unit_code=message.unit_code,
            period=message.period,
            version=message.version,
            max_version=MAX_VERSION,
        ),
        *_counts_problems(
            [n for c in message.ratings.values() for n in c.model_dump().values()],
            what="rating counts",
        ),
        *_offset_problems(message.changed_at, named="changed_at"),
    ]


def _warning_problems(warning: EarlyWarning, key: bytes | None) -> list[str]:
    problems = _identity_problems(
        key=key,
        expected_key=warning.key,
        key_is="the warning_id",
        schema_version=warning.schema_version,
        unit_code=warning.unit_code,
        version=warning.version,
    )
    if len(warning.event_ids) > MAX_EVENT_IDS:
        problems.append(f"more than {MAX_EVENT_IDS} event_ids")
    return problems + _offset_problems(
        warning.raised_at, warning.cleared_at, named="raised_at and cleared_at"
    )


def _step_problems(step: ApplicationStep, key: bytes | None) -> list[str]:
    problems = _identity_problems(
        key=key,
        expected_key=step.key,
        key_is="the county_code",
        schema_version=step.schema_version,
        unit_code=step.county_code,
        code_is="county_code",
        period=step.period,
    )
    if step.unit_code is not None and not CODE.match(step.unit_code):
        problems.append("unit_code is not 12 digits")
    if step.step_id < 1:
        problems.append("step_id must be 1 or more")
    return problems + _offset_problems(step.at, named="at")


def _dispute_step_problems(message: DisputeStep, key: bytes | None) -> list[str]:
    dispute = message.dispute
    problems = _identity_problems(
        key=key,
        expected_key=message.key,
        key_is="the event_id",
        schema_version=message.schema_version,
        unit_code=dispute.unit_code,
        version=dispute.version,
        max_version=MAX_VERSION,
    )
    if message.step_id < 1:
        problems.append("step_id must be 1 or more")
    if message.step.version != dispute.version:
        problems.append("the step's version is not the dispute's")
    rulings = [r for r in (dispute.decision, dispute.review) if r is not None]
    if any(not CODE.match(r.by) for r in rulings):
        problems.append("a ruling's bureau is not 12 digits")
    if any(r.decision == "uphold_reattribute" and r.new_unit is None for r in rulings):
        problems.append("a re-attribution names no new_unit")
    return problems + _offset_problems(
        message.step.at, dispute.changed_at, *(r.at for r in rulings), named="the times"
    )


def _case_step_problems(message: CaseStep, key: bytes | None) -> list[str]:
    case = message.case
    problems = _identity_problems(
        key=key,
        expected_key=message.key,
        key_is="the case_id",
        schema_version=message.schema_version,
        unit_code=case.unit_code,
        version=case.version,
        max_version=MAX_VERSION,
    )
    if message.step_id < 1:
        problems.append("step_id must be 1 or more")
    if message.step.version != case.version:
        problems.append("the step's version is not the case's")
    if not all(CODE.match(code) for code in (case.first_receiver, case.owner_unit)):
        problems.append("a unit of the case is not 12 digits")
    return problems + _offset_problems(
        message.step.at, message.step.recorded_at, case.changed_at, named="the times"
    )
