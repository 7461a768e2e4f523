"""A rebuild's read phase: the petition-event topic read to its end offsets at the start,
each record turned into rows of the fresh tables (effects with each event's own attribution,
on the registry as loaded at the start) and COPied in, chunk by chunk; in this process or
shared out among reader processes (`readers`)."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from services.evaluation.config import EvaluationSettings
from services.evaluation.live.corrections import new_correction
from services.evaluation.live.service import EvaluationService
from services.evaluation.rebuild.readers import Read, read_in_processes, shares_of
from services.evaluation.rebuild.report import RebuildReport
from services.evaluation.rebuild.repository import STAGING, RebuildRepository, rebuild_connection
from services.evaluation.rebuild.units import RebuildUnits
from services.evaluation.rebuild.warnings import WarningRebuild
from services.evaluation.records import (
    CORRECTION_COLUMNS,
    EFFECT_COLUMNS,
    EVENT_COLUMNS,
    correction_record,
    effect_record,
    known_event_row,
)
from services.evaluation.rules import AppliedEvent, Facts, criteria_met, facts_of
from services.evaluation.warnings.upkeep import EarlyWarnings
from shared import kafka
from shared.consumer import Rejected
from shared.events import (
    EventReattributed,
    EventRecord,
    EventType,
    EventVoided,
    ScreeningMeeting,
    noticed_at,
)
from shared.messages import parse_event_record

CHUNK = 20_000
PARSED_BETWEEN_YIELDS = 1_000
CORRECTIONS = (EventVoided, EventReattributed)  # a tuple: isinstance is quicker than with |
MEETING = EventType.screening_meeting.value
FACTS_REMEMBERED = 100_000
# What tells events apart without bearing on their facts (no field of `Facts` comes from them).
PER_EVENT = frozenset(
    {"event_id", "unit_code", "occurred_at", "reported_at", "petitioner_ref", "matter_ref"}
)


def topic_reader(
    settings: EvaluationSettings, *, partitions: list[TopicPartition] | None = None
) -> kafka.TopicReader:
    """The petition-event topic (or only `partitions` of it), fetched in large chunks."""
    return kafka.TopicReader(
        settings,
        settings.events_topic,
        partitions=partitions,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )


@dataclass
class Rows:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    effects: list[tuple[Any, ...]] = field(default_factory=list)
    corrections: list[tuple[Any, ...]] = field(default_factory=list)


def meeting_record(meeting: ScreeningMeeting) -> tuple[Any, ...]:
    """`event_record` of a meeting, without the objects in between."""
    unit_code = meeting.unit_code
    return (
        meeting.event_id,
        True,
        MEETING,
        unit_code,
        unit_code,
        meeting.occurred_at,
        None,
        0,
        False,
        False,
        None,
        None,
        None,
        False,
    )


def event_row(event: AppliedEvent, facts: Facts, noticed: datetime | None) -> tuple[Any, ...]:
    """`event_record` of an event that is no correction, without the objects in between."""
    return known_event_row(event.event_id, event.unit_code, event.occurred_at, facts, noticed)


def meeting_effect_record(meeting: ScreeningMeeting, slot: date) -> tuple[Any, ...]:
    """`effect_record` of a meeting's one effect, in its slot at its own unit."""
    return (meeting.event_id, meeting.unit_code, 0, 0, meeting.occurred_at, slot, None, None)


class Loader:
    """Turns records into rows of the fresh tables (effects with each event's own
    attribution) and COPies them in."""

    def __init__(self, repository: RebuildRepository, service: EvaluationService) -> None:
        self.repository = repository
        self.service = service
        self.calculator = service.calculator
        self.registry = service.registry
        self.units = RebuildUnits(calculator=self.calculator, registry=self.registry)
        # The ids read, as their integers: a reader holds millions, and the integer alone
        # takes half the memory of the UUID around it.
        self.seen: set[int] = set()
        self._facts: dict[tuple[Any, ...], tuple[Facts, bool]] = {}
        self.report = RebuildReport()
        self.warnings = WarningRebuild(
            EarlyWarnings(campaign=service.campaign, registry=self.registry),
            staging=repository.schema,
        )

    def parse(self, record: ConsumerRecord[bytes, bytes]) -> EventRecord | None:
        """The record's event, unless it cannot be applied or was read before."""
        parsed = self.decode(record)
        return parsed if parsed is not None and self.first(parsed) else None

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> EventRecord | None:
        """The record's event, unless it cannot be applied (counted as skipped)."""
        self.report.messages += 1
        parsed = parse_event_record(record)
        if isinstance(parsed, Rejected):
            self.report.skipped += 1
            return None
        event = parsed.event
        known = self.units.known
        if not known(event.unit_code) or (
            isinstance(event, EventReattributed) and not known(event.new_unit_code)
        ):
            self.report.skipped += 1
            return None
        return parsed

    def first(self, parsed: EventRecord) -> bool:
        """Whether the event is read for the first time (then noted for the warnings)."""
        event_id = parsed.event.event_id.int
        if event_id in self.seen:
            return False
        self.seen.add(event_id)
        self.report.events += 1
        self.warnings.note(parsed)
        return True

    async def tail(
        self, records: list[ConsumerRecord[bytes, bytes]], repository: RebuildRepository
    ) -> list[EventRecord]:
        """The events of records read after the rebuild's ends, each once. The events that
        reader processes read are in the staging tables, not in `seen`: looked up there."""
        decoded = [p for r in records if (p := self.decode(r)) is not None]
        stored = await repository.stored_ids([p.event.event_id for p in decoded])
        self.seen |= {event_id.int for event_id in stored}
        return [p for p in decoded if self.first(p)]

    def rows_of(self, records: list[ConsumerRecord[bytes, bytes]], rows: Rows) -> None:
        """Add the rows of `records` to `rows`."""
        meeting_slot = self.units.meeting_slot
        for record in records:
            parsed = self.parse(record)
            if parsed is None:
                continue
            event = parsed.event
            if isinstance(event, ScreeningMeeting):  # most of them: no objects between
                rows.events.append(meeting_record(event))
                slot = meeting_slot(event.unit_code, event.occurred_at)
                if slot is not None:
                    rows.effects.append(meeting_effect_record(event, slot))
            elif isinstance(event, CORRECTIONS):
                rows.corrections.append(correction_record(new_correction(parsed)))
            else:
                self._add_event(rows, parsed, event)

    def _add_event(self, rows: Rows, record: EventRecord, event: AppliedEvent) -> None:
        facts, counts = self._facts_of(event)
        rows.events.append(event_row(event, facts, noticed_at(record)))
        if counts:
            rows.effects.extend(
                effect_record(e)
                for e in self.calculator.effects_for(
                    event_id=event.event_id,
                    facts=facts,
                    unit_code=event.unit_code,
                    occurred_at=event.occurred_at,
                )
            )

    def _facts_of(self, event: AppliedEvent) -> tuple[Facts, bool]:
        """`facts_of` the event, and whether they count anywhere (else the event has no
        effects), remembered: most events share their facts with many others."""
        key = (type(event), *[v for k, v in event.__dict__.items() if k not in PER_EVENT])
        known = self._facts.get(key)
        if known is None:
            if len(self._facts) > FACTS_REMEMBERED:
                self._facts.clear()
            facts = facts_of(event)
            rules = self.service.campaign.rules
            counts = facts.is_work_record or any(
                criteria_met(facts, level, rules) for level in rules
            )
            known = self._facts[key] = (facts, counts)
        return known

    async def copy(self, rows: Rows) -> None:
        await self.repository.copy("event", columns=EVENT_COLUMNS, rows=rows.events)
        await self.repository.copy("effect", columns=EFFECT_COLUMNS, rows=rows.effects)
        await self.repository.copy("correction", columns=CORRECTION_COLUMNS, rows=rows.corrections)
        await self.warnings.copy(self.repository.connection)

    async def load_all(
        self,
        reader: kafka.TopicReader,
        ends: dict[TopicPartition, int],
        *,
        on_chunk: Callable[[], None],
    ) -> None:
        """Read to `ends`; each chunk is COPied while the next one is read and parsed.
        `on_chunk` is called after each chunk is parsed."""
        copying: asyncio.Task[None] | None = None
        async for records in reader.read_to(ends, chunk=CHUNK):
            rows = Rows()
            for start in range(0, len(records), PARSED_BETWEEN_YIELDS):
                self.rows_of(records[start : start + PARSED_BETWEEN_YIELDS], rows)
                # The previous chunk's COPY data waits in the connection's write buffer,
                # sent only while the event loop runs: let it, so the database works on it
                # meanwhile instead of after.
                await asyncio.sleep(0)
            if copying is not None:
                await copying
            copying = asyncio.create_task(self.copy(rows))
            on_chunk()
        if copying is not None:
            await copying


async def read_topic(
    loader: Loader,
    reader: kafka.TopicReader,
    ends: dict[TopicPartition, int],
    settings: EvaluationSettings,
    *,
    on_read: Callable[[Read], None],
) -> None:
    """Read the topic to `ends` into the staging tables: in this process, or shared out
    among reader processes (`rebuild_readers`); then `reader` reads on from `ends`."""
    shares = shares_of(ends, settings.rebuild_readers)
    if len(shares) <= 1:
        await loader.load_all(reader, ends, on_chunk=lambda: on_read(loader.report.read))
        return
    read = await read_in_processes(
        shares, partial(read_share, loader.service, settings), on_read=on_read
    )
    loader.report.add(read)
    reader.seek(ends)


async def read_share(
    service: EvaluationService,
    settings: EvaluationSettings,
    ends: dict[TopicPartition, int],
    tell: Callable[[Read], None],
) -> Read:
    """A reader process's part: its partitions to `ends`, COPied on a connection of its own."""
    connection = await rebuild_connection(settings)
    reader = topic_reader(settings, partitions=list(ends))
    try:
        loader = Loader(RebuildRepository(connection, schema=STAGING), service)
        await reader.start()
        await loader.load_all(reader, ends, on_chunk=lambda: tell(loader.report.read))
        return loader.report.read
    finally:
        await reader.stop()
        await connection.close()
