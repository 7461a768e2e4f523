"""What the cases service keeps of the petition-event topic: each event once however often it
is delivered, and what its corrections made of it."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.cases.consumers import EventConsumer, row_of
from services.cases.disputes.repository import EventRepository, KnownEvent
from shared.config import Settings
from shared.db import Database
from shared.events import EventRecord
from tests.support.cases import SIBLING_VILLAGE, VILLAGE, cases_settings
from tests.support.events import reattributed, visit, voided

ACCEPTED = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def record(event: dict[str, Any], *, minutes: int = 0) -> EventRecord:
    return EventRecord.model_validate(
        {
            "event": event,
            "accepted_at": ACCEPTED.replace(minute=minutes),
            "key_id": "a1b2c3d4e5f6",
        }
    )


async def kept(db: Database, event_id: str) -> KnownEvent | None:
    async with db.connection() as connection:
        return await EventRepository(connection).event(UUID(event_id))


async def test_an_event_delivered_twice_is_kept_once(db: Database, settings: Settings) -> None:
    consumer = EventConsumer(db=db, settings=cases_settings(settings))
    event = visit(VILLAGE)

    async with db.session() as session:
        first = await consumer.apply(session, [row_of(record(event))])
    async with db.session() as session:
        again = await consumer.apply(session, [row_of(record(event)), row_of(record(event))])

    assert (first.applied, first.ignored) == (1, 0)
    assert (again.applied, again.ignored) == (0, 2)
    found = await kept(db, event["event_id"])
    assert found is not None and found.unit_code == VILLAGE and not found.voided
    assert found.accepted_at == ACCEPTED and found.reported_at is None


async def test_corrections_void_or_move_the_event_they_target(
    db: Database, settings: Settings
) -> None:
    consumer = EventConsumer(db=db, settings=cases_settings(settings))
    moved, gone = visit(VILLAGE), visit(VILLAGE)

    async with db.session() as session:
        await consumer.apply(
            session,
            [
                row_of(record(moved)),
                row_of(record(gone)),
                row_of(record(reattributed(moved, SIBLING_VILLAGE), minutes=5)),
                row_of(record(voided(gone), minutes=6)),
            ],
        )

    moved_found = await kept(db, moved["event_id"])
    gone_found = await kept(db, gone["event_id"])
    assert moved_found is not None and moved_found.unit_code == SIBLING_VILLAGE
    assert gone_found is not None and gone_found.voided
