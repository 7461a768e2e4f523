"""A batch of events (`POST /v1/events/batch`): each item read on its own, a result per item in
order, and the events of a batch accepted in their order. Optionally a dry run (every check and
the journal's repeats and conflicts, nothing stored) and ids keyed by the server from the
client's seeds (what `sanwu events import` sends for rows without an id of their own)."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import ValidationError

from services.intake.gathering import Outcome
from services.intake.payloads import Pending, Prepared
from services.intake.repository import KnownTarget
from shared.errors import DomainError, EventConflict, InvalidInput
from shared.events import Event, EventReattributed, EventVoided, event_adapter
from shared.problems import problem_of, validation_errors

MAX_ECHOED_ID = 64


@dataclass(frozen=True, slots=True)
class ItemResult:
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    error: dict[str, Any] | None = None


def parsed_items(
    items: list[Any], *, derive: Callable[[UUID], UUID] | None
) -> list[Event | ItemResult]:
    """Each item as an event (its id keyed from the one sent when `derive` is given), or the
    result that rejects it."""
    parsed: list[Event | ItemResult] = []
    for index, item in enumerate(items):
        try:
            event = event_adapter.validate_python(item)
        except ValidationError as exc:
            error = InvalidInput(
                f"events[{index}] is invalid", errors=validation_errors(exc.errors())
            )
            parsed.append(ItemResult(echoed_id(item, derive=derive), "rejected", problem_of(error)))
            continue
        if derive is not None:
            event = event.model_copy(update={"event_id": derive(event.event_id)})
        parsed.append(event)
    return parsed


def echoed_id(item: Any, *, derive: Callable[[UUID], UUID] | None = None) -> str | None:
    """The event id as sent (keyed, if the batch's ids are), echoed in an item's result if it
    can be: short text that is valid UTF-8 (a JSON escape can carry a lone surrogate, which
    cannot)."""
    value = item.get("event_id") if isinstance(item, dict) else None
    if not isinstance(value, str) or len(value) > MAX_ECHOED_ID:
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return None
    if derive is None:
        return value
    try:
        return str(derive(UUID(value)))
    except ValueError:
        return None


def first_of_each(
    prepared: list[Prepared], *, key_id: str, correlation_id: str, now: datetime
) -> list[Pending]:
    """A batch's events, the first of each id: acceptance is a total order, the i-th event
    is accepted i µs after the first, so that of two corrections of one event in a batch the
    later item comes last."""
    first: dict[UUID, Prepared] = {}
    for item in prepared:
        first.setdefault(item.event.event_id, item)
    return [
        Pending(
            p,
            key_id=key_id,
            correlation_id=correlation_id,
            accepted_at=now + timedelta(microseconds=i),
        )
        for i, p in enumerate(first.values())
    ]


def corrections_in(events: Iterable[Event]) -> dict[UUID, KnownTarget]:
    """A batch's own corrections, as targets: a correction of one of them is refused like a
    correction of a correction in the journal."""
    return {
        e.event_id: KnownTarget(e.event_id, e.type, e.unit_code, [])
        for e in events
        if isinstance(e, EventVoided | EventReattributed)
    }


def results_of(
    slots: list[ItemResult | Prepared], outcome: dict[UUID, Outcome]
) -> list[ItemResult]:
    """A result per item, in order: the outcome of its id, or a conflict for an id the batch
    holds twice with other content; a later item of the same id is a duplicate."""
    results: list[ItemResult] = []
    first_hash: dict[UUID, str] = {}
    reported: set[UUID] = set()
    for slot in slots:
        if isinstance(slot, ItemResult):
            results.append(slot)
            continue
        event_id = slot.event.event_id
        result = outcome[event_id]
        if first_hash.setdefault(event_id, slot.content_hash) != slot.content_hash:
            result = EventConflict(
                f"event {event_id} appears twice in the batch with other content"
            )
        if isinstance(result, DomainError):
            results.append(ItemResult(str(event_id), "rejected", problem_of(result)))
        elif event_id in reported or result.duplicate:
            results.append(ItemResult(str(event_id), "duplicate"))
        else:
            results.append(ItemResult(str(event_id), "accepted"))
        reported.add(event_id)
    return results
