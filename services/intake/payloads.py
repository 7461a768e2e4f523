"""An accepted event as intake stores and publishes it: references replaced by their keyed
hash, the canonical JSON (the text content hashes are taken over), the content hash, the
journal row and the outbox message, whose record carries no free text."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from shared.events import (
    FREE_TEXT_FIELDS,
    Event,
    EventReattributed,
    EventVoided,
    PetitionVisit,
    SatisfactionRating,
)
from shared.keyed_hash import KeyedHash
from shared.outbox import OutboxMessage


@dataclass(frozen=True, slots=True)
class Prepared:
    event: Event
    payload: dict[str, Any]
    content_hash: str
    county_code: str
    record_json: str  # what is published and journaled: the payload without its free text
    free_text_json: str | None  # the free text alone, kept apart until retention removes it


@dataclass(frozen=True, slots=True)
class Pending:
    """An event checked and prepared, with who sent it and when it is accepted."""

    prepared: Prepared
    key_id: str
    correlation_id: str
    accepted_at: datetime

    @property
    def event_id(self) -> UUID:
        return self.prepared.event.event_id


def references_of(event: Event) -> dict[str, str]:
    """The event's fields that are stored only as a keyed hash, with their values as sent."""
    if isinstance(event, PetitionVisit) and event.petitioner_ref is not None:
        return {"petitioner_ref": event.petitioner_ref}
    if isinstance(event, SatisfactionRating) and event.matter_ref is not None:
        return {"matter_ref": event.matter_ref}
    return {}


def prepare(event: Event, *, county_code: str, keyed_hash: KeyedHash) -> Prepared:
    payload = event.model_dump(mode="json", exclude_none=True)
    for field, ref in references_of(event).items():
        payload[field] = keyed_hash(ref)
    # Same content means the same facts: compare instants, not how the offset was written.
    comparable = payload | {"occurred_at": event.occurred_at.astimezone(UTC).isoformat()}
    content_hash = hashlib.sha256(canonical_bytes(comparable)).hexdigest()
    if FREE_TEXT_FIELDS.isdisjoint(payload):
        record_json = canonical_json(payload)  # encoded once, for the journal and the outbox
        return Prepared(event, payload, content_hash, county_code, record_json, None)
    published = without_free_text(payload)
    free_text = {k: v for k, v in payload.items() if k in FREE_TEXT_FIELDS}
    return Prepared(
        event,
        payload,
        content_hash,
        county_code,
        record_json=canonical_json(published),
        free_text_json=canonical_json(free_text),
    )


def without_free_text(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in FREE_TEXT_FIELDS}


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-ASCII as is: the text content hashes are taken over. The
    same text as json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    (a property test holds them equal), written by orjson, nine times faster."""
    return canonical_bytes(value).decode()


def canonical_bytes(value: Any) -> bytes:
    """`canonical_json` encoded as UTF-8, as orjson writes it."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def event_record(payload_json: str, *, accepted_at: str, key_id: str) -> bytes:
    """The message intake publishes, a `shared.events.EventRecord`: the canonical JSON of
    {"schema_version": 1, "event": payload, "accepted_at", "key_id"}, with the event's JSON
    (without its free text) spliced in rather than encoded a second time through the model (a
    batch spent a fifth of its time encoding JSON); tests/test_message_producers.py holds every
    event type's record to `shared.messages.parse_event_record`."""
    return (
        f'{{"accepted_at":{canonical_json(accepted_at)},"event":{payload_json},'
        f'"key_id":{canonical_json(key_id)},"schema_version":1}}'
    ).encode()


def journal_row(pending: Pending) -> dict[str, Any]:
    p = pending.prepared
    event = p.event
    return {
        "event_id": event.event_id,
        "type": event.type,
        "unit_code": event.unit_code,
        "county_code": p.county_code,
        "target_event_id": target_of(event),
        "occurred_at": event.occurred_at,
        "payload": p.record_json,
        "content_hash": p.content_hash,
        "key_id": pending.key_id,
        "correlation_id": pending.correlation_id or None,
        "accepted_at": pending.accepted_at,
        "free_text": p.free_text_json,
    }


def outbox_row(pending: Pending) -> OutboxMessage:
    p = pending.prepared
    return OutboxMessage(
        key=p.county_code.encode(),
        value=event_record(
            p.record_json, accepted_at=pending.accepted_at.isoformat(), key_id=pending.key_id
        ),
        headers={"event_id": str(p.event.event_id), "correlation_id": pending.correlation_id},
    )


def target_of(event: Event) -> UUID | None:
    # Not getattr(event, ..., None): a missing attribute takes pydantic's slow __getattr__ path.
    return event.target_event_id if isinstance(event, EventVoided | EventReattributed) else None
