"""The petition-event topic, as far as disputes need it: each event's id, type, unit, when it
was accepted and reported, and what a correction targets (the repository derives voided and
re-attributed from those)."""

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.config import CasesSettings
from services.cases.disputes.repository import EventRepository, EventRow
from shared.consumer import BatchConsumer, Counters, DeadLetter, Record, Rejected
from shared.db import Database
from shared.events import EventReattributed, EventRecord, EventVoided
from shared.messages import parse_event_record

COUNTERS = Counters(
    Counter("sanwu_cases_events_applied_total", "Events the cases service keeps"),
    Counter("sanwu_cases_events_ignored_total", "Events delivered again, already kept"),
    Counter("sanwu_cases_events_dead_lettered_total", "Event records dead-lettered"),
)


@dataclass(frozen=True, slots=True)
class Kept:
    applied: int
    ignored: int


def row_of(record: EventRecord) -> EventRow:
    event = record.event
    target = event.target_event_id if isinstance(event, EventVoided | EventReattributed) else None
    new_unit = event.new_unit_code if isinstance(event, EventReattributed) else None
    return EventRow(
        event_id=event.event_id,
        type=event.type,
        unit_code=event.unit_code,
        accepted_at=record.accepted_at,
        reported_at=getattr(event, "reported_at", None),
        target_event_id=target,
        new_unit_code=new_unit,
    )


class EventConsumer(BatchConsumer[EventRow, Kept]):
    def __init__(self, *, db: Database, settings: CasesSettings) -> None:
        super().__init__(
            name="cases-events",
            db=db,
            settings=settings,
            topic=settings.events_topic,
            group_id=settings.events_consumer_group,
            batch_size=settings.cases_batch_size,
        )

    async def decode(self, record: Record) -> EventRow | Rejected:
        parsed = parse_event_record(record)
        return parsed if isinstance(parsed, Rejected) else row_of(parsed)

    async def apply(self, session: AsyncSession, items: Sequence[EventRow]) -> Kept:
        kept = await (await EventRepository.from_session(session)).put(items)
        return Kept(applied=kept, ignored=len(items) - kept)

    def committed(self, result: Kept) -> None:
        COUNTERS.count(result)

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        COUNTERS.count_dead(letters)
