"""What the log holds: one leaf per history record, the UTF-8 bytes of its RFC 8785 canonical
JSON. The same leaf is made from the message a service published (the consumers) and from the
row the service keeps (`sanwu audit verify`), so a row changed after it was logged no longer
makes its leaf.

Every leaf is an object with `kind` and `id` (the record's own id, as text) and the record's
facts. Nothing in a leaf is free text or a person's reference in clear: events come without
their free text and with references already hashed by intake; an application step's `reason`
(text a bureau wrote) is replaced by its SHA-256 (`reason_sha256`), and so are a dispute step's
`reason` and its dispute's `statement` (`statement_sha256`), and a case step's `reason`, its
case's `category` and the text in its detail (a refusal's `channel`), the petitioner named only
by the keyed hash the case holds (the summary is never on the topic); a key operation's actor is
kept only when it names a key or the system, otherwise replaced by the SHA-256 of the actor
(`user:` and `console:` actors name people and their machines). Moments are UTC, to the
microsecond, as `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson
import rfc8785

from shared.application_steps import ApplicationStep
from shared.case_steps import CaseStep
from shared.dispute_steps import Action, DisputeStep

# JSON numbers an IEEE double holds exactly: what RFC 8785 writes as plain integers.
SAFE_INTEGER = 2**53 - 1
# Actors that name no person (SECURITY.md: the key audit's actors).
PLAIN_ACTORS = ("key:", "system", "unrecorded")
MOMENT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


class LeafKind(StrEnum):
    event = "event"  # an accepted event or correction (intake's journal)
    application_step = "application_step"  # a step of an application (applications.step)
    key_operation = "key_operation"  # a row of the key audit (access.key_audit)
    dispute_step = "dispute_step"  # a step of a dispute of a counted event (cases.dispute_step)
    case_step = "case_step"  # a step of a case (信访事项) (cases.case_step)


@dataclass(frozen=True, slots=True)
class Leaf:
    kind: LeafKind
    record_id: str
    body: bytes  # the canonical JSON

    @property
    def text(self) -> str:
        return self.body.decode()


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON. Where the value holds only strings, safe integers, booleans,
    nulls and ASCII keys, RFC 8785's text is what orjson writes with sorted keys (held equal
    by a property test), sixty times faster; otherwise the reference implementation writes it."""
    if _plain(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(value)


def _plain(value: Any) -> bool:
    # By exact type first (most values of a leaf), by isinstance for their subclasses; a
    # dict's strings and integers without a call each (most of a leaf's values).
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            item_kind = type(item)
            if item_kind is str or item_kind is bool or item is None:
                continue
            if item_kind is int:
                if -SAFE_INTEGER <= item <= SAFE_INTEGER:
                    continue
                return False
            if not _plain(item):
                return False
        return True
    if kind is int:
        return -SAFE_INTEGER <= value <= SAFE_INTEGER
    if kind is list:
        return all(_plain(item) for item in value)
    return _plain_subclass(value)


def _plain_subclass(value: Any) -> bool:
    if isinstance(value, str | bool):
        return True
    if isinstance(value, int):
        return -SAFE_INTEGER <= value <= SAFE_INTEGER
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return False


def moment(value: datetime) -> str:
    """A moment as the leaves write it (a moment without an offset is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC)
    if utc.year >= 1000:  # what strftime writes, a third of its time
        return MOMENT % (
            utc.year,
            utc.month,
            utc.day,
            utc.hour,
            utc.minute,
            utc.second,
            utc.microsecond,
        )
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_of(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def _leaf(kind: LeafKind, record_id: str, facts: dict[str, Any]) -> Leaf:
    return Leaf(kind, record_id, canonical({"kind": kind.value, "id": record_id, **facts}))


def event_leaf(
    *, event_id: UUID | str, payload: Mapping[str, Any], accepted_at: datetime, key_id: str
) -> Leaf:
    """An accepted event or correction: its payload as published (no free text, references
    hashed), who sent it and when it was accepted."""
    facts = {"event": dict(payload), "accepted_at": moment(accepted_at), "key_id": key_id}
    return _leaf(LeafKind.event, str(event_id), facts)


def application_step_leaf(step: ApplicationStep) -> Leaf:
    facts = {
        "application_id": str(step.application_id),
        "county_code": step.county_code,
        "period": step.period,
        "unit_code": step.unit_code,
        "action": step.action.value,
        "key_id": step.key_id,
        "role": step.role,
        "scope_code": step.scope_code,
        "reason_sha256": sha256_of(step.reason),
        "detail": step.detail,
        "at": moment(step.at),
    }
    return _leaf(LeafKind.application_step, str(step.step_id), facts)


# The steps whose detail holds a ruling: what was decided, the new unit and the bureau.
RULINGS = (Action.decided, Action.reviewed)
RULING_FACTS = ("decision", "new_unit", "by")


@dataclass(frozen=True, slots=True)
class DisputeStepFacts:
    """A dispute step as its own row and the facts of its dispute that never change make it:
    what a leaf keeps of the message, and all that the cases service's tables still say of the
    step once its dispute has moved on."""

    step_id: int
    dispute_id: UUID
    event_id: UUID
    unit_code: str
    grounds: str
    proposed_unit: str | None
    duplicate_of: UUID | None
    statement: str
    version: int
    action: str
    at: datetime
    key_id: str
    role: str
    scope_code: str | None
    reason: str
    detail: Mapping[str, Any]

    @classmethod
    def of(cls, message: DisputeStep) -> "DisputeStepFacts":
        dispute, step = message.dispute, message.step
        return cls(
            step_id=message.step_id,
            dispute_id=dispute.dispute_id,
            event_id=dispute.event_id,
            unit_code=dispute.unit_code,
            grounds=dispute.grounds.value,
            proposed_unit=dispute.proposed_unit,
            duplicate_of=dispute.duplicate_of,
            statement=dispute.statement,
            version=step.version,
            action=step.action.value,
            at=step.at,
            key_id=step.key_id,
            role=step.role,
            scope_code=step.scope_code,
            reason=step.reason,
            detail=step.detail,
        )


def ruling_in_leaf(facts: DisputeStepFacts) -> dict[str, Any] | None:
    """A decision's or a review's ruling, from the step's detail without its reason (free
    text, kept as `reason_sha256`); None for the other steps."""
    if facts.action not in RULINGS:
        return None
    return {name: facts.detail.get(name) for name in RULING_FACTS}


def dispute_step_leaf(facts: DisputeStepFacts) -> Leaf:
    leaf_facts = {
        "dispute_id": str(facts.dispute_id),
        "event_id": str(facts.event_id),
        "unit_code": facts.unit_code,
        "grounds": facts.grounds,
        "proposed_unit": facts.proposed_unit,
        "duplicate_of": None if facts.duplicate_of is None else str(facts.duplicate_of),
        "statement_sha256": sha256_of(facts.statement),
        "version": facts.version,
        "action": facts.action,
        "at": moment(facts.at),
        "key_id": facts.key_id,
        "role": facts.role,
        "scope_code": facts.scope_code,
        "reason_sha256": sha256_of(facts.reason),
        "ruling": ruling_in_leaf(facts),
    }
    return _leaf(LeafKind.dispute_step, str(facts.step_id), leaf_facts)


# What a case step's detail may say in clear (services/cases/cases/transitions.py): where the
# case went and what was done. Anything else there is text someone wrote.
CASE_PLACES = ("unit_code", "body", "from", "returned_to", "by", "level", "repeat_of")
CASE_CHOICES = ("notified_at", "days", "outcome", "mediation", "rating", "overdue")
CASE_DETAIL_FACTS = frozenset([*CASE_PLACES, *CASE_CHOICES])


@dataclass(frozen=True, slots=True)
class CaseStepFacts:
    """A case step as its own row and the facts of its case that never change make it: what a
    leaf keeps of the message, and all that the cases service's tables still say of the step
    once its case has moved on (its owner, state, reviews, rating and version have not)."""

    step_id: int
    case_id: UUID
    unit_code: str
    first_receiver: str
    received_at: datetime
    channel: str
    category: str
    petitioner_ref: str
    headcount: int
    event_ids: Sequence[UUID]
    repeat_of: UUID | None
    registered_at: datetime
    version: int
    action: str
    at: datetime
    recorded_at: datetime
    key_id: str
    role: str
    scope_code: str | None
    body: str | None
    reason: str
    detail: Mapping[str, Any]

    @classmethod
    def of(cls, message: CaseStep) -> "CaseStepFacts":
        case, step = message.case, message.step
        return cls(
            step_id=message.step_id,
            case_id=case.case_id,
            unit_code=case.unit_code,
            first_receiver=case.first_receiver,
            received_at=case.received_at,
            channel=case.channel.value,
            category=case.category,
            petitioner_ref=case.petitioner_ref,
            headcount=case.headcount,
            event_ids=case.event_ids,
            repeat_of=case.repeat_of,
            registered_at=case.registered_at,
            version=step.version,
            action=step.action.value,
            at=step.at,
            recorded_at=step.recorded_at,
            key_id=step.key_id,
            role=step.role,
            scope_code=step.scope_code,
            body=step.body,
            reason=step.reason,
            detail=step.detail,
        )


def case_detail_in_leaf(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The step's detail, each entry not in CASE_DETAIL_FACTS kept as `<name>_sha256`: of the
    text, or of the canonical JSON of another value."""
    kept: dict[str, Any] = {}
    for name, value in detail.items():
        if name in CASE_DETAIL_FACTS:
            kept[name] = value
        else:
            text = value if isinstance(value, str) else canonical(value).decode()
            kept[f"{name}_sha256"] = sha256_of(text)
    return kept


def case_step_leaf(facts: CaseStepFacts) -> Leaf:
    leaf_facts = {
        "case_id": str(facts.case_id),
        "unit_code": facts.unit_code,
        "first_receiver": facts.first_receiver,
        "received_at": moment(facts.received_at),
        "channel": facts.channel,
        "category_sha256": sha256_of(facts.category),
        "petitioner_ref": facts.petitioner_ref,
        "headcount": facts.headcount,
        "event_ids": [str(event_id) for event_id in facts.event_ids],
        "repeat_of": None if facts.repeat_of is None else str(facts.repeat_of),
        "registered_at": moment(facts.registered_at),
        "version": facts.version,
        "action": facts.action,
        "at": moment(facts.at),
        "recorded_at": moment(facts.recorded_at),
        "key_id": facts.key_id,
        "role": facts.role,
        "scope_code": facts.scope_code,
        "body": facts.body,
        "reason_sha256": sha256_of(facts.reason),
        "detail": case_detail_in_leaf(facts.detail),
    }
    return _leaf(LeafKind.case_step, str(facts.step_id), leaf_facts)


@dataclass(frozen=True, slots=True)
class KeyOperation:
    """A row of the key audit (`access.key_audit`)."""

    audit_id: int
    at: datetime
    action: str
    key_id: str
    role: str
    scope_code: str | None
    actor: str


def actor_in_leaf(actor: str) -> str:
    if actor.startswith(PLAIN_ACTORS):
        return actor
    kind, _, _ = actor.partition(":")
    return f"{kind}:sha256:{sha256_of(actor)}"


def key_operation_leaf(operation: KeyOperation) -> Leaf:
    facts = {
        "at": moment(operation.at),
        "action": operation.action,
        "key_id": operation.key_id,
        "role": operation.role,
        "scope_code": operation.scope_code,
        "actor": actor_in_leaf(operation.actor),
    }
    return _leaf(LeafKind.key_operation, str(operation.audit_id), facts)


def identity_of(body: bytes) -> tuple[str, str]:
    """(kind, id) of a leaf's text; ValueError when it is not a leaf of this log."""
    value = orjson.loads(body)
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        raise ValueError("not an object with a kind")
    if not isinstance(value.get("id"), str):
        raise ValueError("not an object with an id")
    return value["kind"], value["id"]


def is_canonical(body: bytes) -> bool:
    try:
        return canonical(orjson.loads(body)) == body
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return False
