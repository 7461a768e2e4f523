"""`sanwu evaluation rebuild`: every status recomputed from the petition-event topic, from the
beginning, into fresh tables that are then swapped in.

The topic is the source rather than intake's journal: it is what the live consumer applies
(the same records, the same order per county, the same unparseable messages skipped), it is
kept forever for exactly this, and evaluation reads no other service's tables.

1. Stream the topic up to its end offsets at the start. Each event's effects (with its own
   attribution, on the registry as loaded at the start) are computed in memory and COPied
   into fresh tables, chunk by chunk; the partitions are shared out among reader processes
   (`rebuild_readers`), one per core by default.
2. Apply the corrections to their targets, set-based, with the live consumer's own code
   (which also decides each correction's state).
3. Fetch the visits on a second connection and find every early warning they give in a
   thread, while the database builds the remaining indexes (leaving the thread a core when
   it shares the machine: `index_workers`), aggregates every status in one statement and
   every (unit, period)'s indicators in another.
4. In one transaction holding the rebuild lock exclusively (live batches wait for it): read
   and apply what reached the topic meanwhile (the warnings are then found again), carry the
   live versions over (unchanged statuses and indicators keep version and changed_at,
   changed ones get the next version and are published) while the warnings' changes are
   worked out in a thread and staged on the rebuild's own connection, swap the tables in
   (the visits the warnings read among them), save the warnings' changes, and follow a
   registry load made since the start (`Upkeep.follow_registry`). Events the live consumer
   applies afterwards are already in the new tables and change nothing.

The cyclic garbage collector is paused throughout (`collector_paused`).
"""

import asyncio
import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable

from services.evaluation.config import Clock, EvaluationSettings
from services.evaluation.correcting import new_correction
from services.evaluation.early_warnings import EarlyWarnings, WarningRebuild
from services.evaluation.models import REBUILT_TABLES, tables_in
from services.evaluation.rebuild_readers import Read, read_in_processes, shares_of
from services.evaluation.rebuild_repository import RebuildRepository
from services.evaluation.records import (
    CORRECTION_COLUMNS,
    EFFECT_COLUMNS,
    EVENT_COLUMNS,
    NewEvent,
    correction_record,
    effect_record,
    event_record,
)
from services.evaluation.repository import EvaluationRepository
from services.evaluation.service import (
    EvaluationService,
    Incoming,
    new_event,
)
from services.evaluation.upkeep import Upkeep
from services.evaluation.upkeep_repository import UpkeepRepository
from services.evaluation.worker import load_campaign, migrate
from shared import kafka
from shared.campaign import rolling_window
from shared.db import Database, asyncpg_dsn
from shared.events import (
    EventReattributed,
    EventRecord,
    EventType,
    EventVoided,
    ScreeningMeeting,
)
from shared.registry.cache import UnitRegistry

log = structlog.get_logger(__name__)
STAGING = "evaluation_rebuild"
CHUNK = 20_000
PARSED_BETWEEN_YIELDS = 1_000
CORRECTIONS = (EventVoided, EventReattributed)  # a tuple: isinstance is quicker than with |
INDEXED_AFTER_LOAD = {
    "ix_event_attributed_code",
    "ix_effect_unit_code_occurred_at",
    "ix_effect_occurred_at",
    "ix_warning_visit_petitioner_ref",
    "ix_warning_visit_reported_county_occurred_at",
    "ix_warning_visit_county_occurred_at",
}
CORRECTIONS_PER_ROUND = 5_000
MEETING = EventType.screening_meeting.value


class RebuildRunning(Exception):
    pass


@dataclass
class Progress:
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


@dataclass
class RebuildReport:
    messages: int = 0  # read from the topic
    events: int = 0  # distinct events and corrections applied
    skipped: int = 0  # messages that cannot be applied (the live consumer dead-letters them)
    statuses: int = 0
    indicators: int = 0
    differences: list[tuple[str, str]] = field(default_factory=list)
    swapped: bool = False
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, in order

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = time.perf_counter() - began

    @property
    def events_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def read(self) -> Read:
        return Read(self.messages, self.events, self.skipped)

    def add(self, read: Read) -> None:
        """Count what a reader process read."""
        self.messages, self.events, self.skipped = astuple(self.read + read)


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


def staging_ddl(*, after_load: bool = False) -> list[str]:
    """The rebuilt tables exactly as `models` defines them, in the staging schema; with
    `after_load`, the indexes built once the rows are in (one sort costs less than keeping
    them up to date row by row through the COPY)."""
    dialect = postgresql.dialect()
    tables = tables_in(STAGING)
    statements = []
    for name in REBUILT_TABLES:
        if not after_load:
            statements.append(str(CreateTable(tables[name]).compile(dialect=dialect)))
        statements += [
            str(CreateIndex(i).compile(dialect=dialect))
            for i in tables[name].indexes
            if (i.name in INDEXED_AFTER_LOAD) == after_load
        ]
    return statements


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
        False,
    )


def meeting_effect_record(meeting: ScreeningMeeting, slot: date) -> tuple[Any, ...]:
    """`effect_record` of a meeting's one effect, in its slot at its own unit."""
    return (meeting.event_id, meeting.unit_code, 0, 0, meeting.occurred_at, slot, None, None)


class Loader:
    """Turns records into rows of the fresh tables (effects with each event's own
    attribution) and COPies them in."""

    def __init__(self, repository: RebuildRepository, service: EvaluationService) -> None:
        self.repository = repository
        self.service = service
        self.registry = service.registry
        self.seen: set[UUID] = set()
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
        try:
            parsed = EventRecord.model_validate_json(record.value or b"")
        except ValidationError:
            self.report.skipped += 1
            return None
        event = parsed.event
        known = self.registry.get_cached
        if known(event.unit_code) is None or (
            isinstance(event, EventReattributed) and known(event.new_unit_code) is None
        ):
            self.report.skipped += 1
            return None
        return parsed

    def first(self, parsed: EventRecord) -> bool:
        """Whether the event is read for the first time (then noted for the warnings)."""
        event_id = parsed.event.event_id
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
        self.seen |= await repository.stored_ids([p.event.event_id for p in decoded])
        return [p for p in decoded if self.first(p)]

    def rows_of(self, records: list[ConsumerRecord[bytes, bytes]], rows: Rows) -> None:
        """Add the rows of `records` to `rows`."""
        meeting_slot = self.service.meeting_slot
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
                self._add_event(rows, new_event(event))

    def _add_event(self, rows: Rows, event: NewEvent) -> None:
        rows.events.append(event_record(event))
        rows.effects.extend(
            effect_record(e)
            for e in self.service.effects_for(
                event_id=event.event_id,
                facts=event.facts,
                unit_code=event.unit_code,
                occurred_at=event.occurred_at,
            )
        )

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


async def rebuild(
    settings: EvaluationSettings,
    *,
    clock: Clock,
    swap: bool = True,
    progress: Callable[[Progress], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """Recompute every status from the topic; swap the result in unless `swap` is false (then
    only report how it differs from the live statuses)."""
    with collector_paused():
        return await _rebuild(
            settings, clock=clock, swap=swap, progress=progress, on_progress=on_progress
        )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Without the cyclic garbage collector: a rebuild keeps millions of objects alive (the
    ids seen, the rows of a chunk, the visits), and the collector's full passes over them
    cost more than a third of the rebuild. Reference counting still frees what it drops;
    only reference cycles wait for the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _rebuild(
    settings: EvaluationSettings,
    *,
    clock: Clock,
    swap: bool,
    progress: Callable[[Progress], None] | None,
    on_progress: Callable[[int, int], None] | None,
) -> RebuildReport:
    started = time.perf_counter()
    campaign = load_campaign(settings, clock)
    await migrate(settings)
    now = clock.now()
    # No statement timeout: the swap's statements grow with the number of statuses.
    db = Database(
        create_async_engine(settings.database_url, pool_size=2, connect_args={"timeout": 10})
    )
    registry = UnitRegistry(db.engine)
    await registry.refresh()
    followed = registry.version  # the effects are computed with this registry
    service = EvaluationService(campaign=campaign, registry=registry, schema=STAGING, publish=False)
    connection = await rebuild_connection(settings)
    reader = topic_reader(settings)
    staging = RebuildRepository(connection, schema=STAGING)
    if not await staging.try_lock_running():
        await connection.close()
        await db.dispose()
        raise RebuildRunning("another rebuild is running")
    try:
        await staging.create_staging(staging_ddl())
        loader = Loader(staging, service)
        report = loader.report
        await reader.start()
        ends = await reader.end_offsets()
        report.phases["start"] = time.perf_counter() - started  # campaign, registry, tables
        total = sum(ends.values())

        def on_read(read: Read) -> None:
            if progress is not None:
                progress(Progress(read.messages, time.perf_counter() - started))
            if on_progress is not None:
                on_progress(min(read.messages, total), total)

        with report.phase("read"):
            await read_topic(loader, reader, ends, settings, on_read=on_read)
            if on_progress is not None:
                on_progress(total, total)  # transaction markers take offsets but are no messages
            await staging.analyze()
        # Before the indexes that only the aggregations and the live consumer need: the
        # warnings are then found in a thread while the database builds them.
        with report.phase("corrections"):
            await apply_corrections(EvaluationRepository(connection, schema=STAGING), service)
        finding = asyncio.create_task(find_warnings(loader.warnings, settings))
        try:
            with report.phase("indexes"):
                if (workers := index_workers(settings)) is not None:
                    await staging.limit_index_workers(workers)
                await staging.execute_ddl(staging_ddl(after_load=True))
            with report.phase("statuses"):
                report.statuses = await staging.compute_statuses(
                    service.period_bounds(now), now=now
                )
            with report.phase("indicators"):
                report.indicators = await staging.compute_indicators(
                    service.period_bounds(now), now=now
                )
        finally:
            with report.phase("warnings"):
                await finding
                await loader.warnings.set_counties(connection)
        if swap:
            with report.phase("swap"):
                await swap_in(
                    db=db, reader=reader, loader=loader, service=service, now=now, followed=followed
                )
            report.swapped = True
        else:
            report.differences = await staging.differences()
    finally:
        ending = time.perf_counter()
        await reader.stop()
        await staging.drop_staging()
        await connection.close()  # releases the running lock
        await db.dispose()
    report.phases["end"] = time.perf_counter() - ending  # the old tables dropped
    report.seconds = time.perf_counter() - started
    log.info(
        "rebuilt",
        messages=report.messages,
        statuses=report.statuses,
        changed=len(report.differences),
        seconds=round(report.seconds, 2),
        per_second=round(report.events_per_second),
        phases={name: round(seconds, 2) for name, seconds in report.phases.items()},
    )
    return report


async def rebuild_connection(settings: EvaluationSettings) -> asyncpg.Connection:
    memory = settings.rebuild_sort_memory
    return await asyncpg.connect(
        asyncpg_dsn(settings.database_url),
        server_settings={"work_mem": memory, "maintenance_work_mem": memory},
    )


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", ""})


def index_workers(settings: EvaluationSettings, *, cores: int | None = None) -> int | None:
    """Parallel workers per index build (`rebuild_index_workers`); None: the server's own.
    Beside the builds, a thread finds the warnings; when PostgreSQL shares this machine's
    `cores`, the builds leave it one."""
    if settings.rebuild_index_workers is not None:
        return settings.rebuild_index_workers
    if (make_url(settings.database_url).host or "") not in LOCAL_HOSTS:
        return None
    return max(0, (cores or os.cpu_count() or 1) - 2)  # the build's own process, the thread


async def find_warnings(warnings: WarningRebuild, settings: EvaluationSettings) -> None:
    """`WarningRebuild.find` on a connection of its own, beside the index builds."""
    connection = await rebuild_connection(settings)
    try:
        await warnings.find(connection)
    finally:
        await connection.close()


async def apply_corrections(repository: EvaluationRepository, service: EvaluationService) -> None:
    """Bring every corrected event's effects in line with its corrections, and decide each
    correction's state (also those whose target is a correction or never came)."""
    targets = await repository.corrected_targets()
    for start in range(0, len(targets), CORRECTIONS_PER_ROUND):
        await service.reevaluate(repository, targets[start : start + CORRECTIONS_PER_ROUND])


async def swap_in(
    *,
    db: Database,
    reader: kafka.TopicReader,
    loader: Loader,
    service: EvaluationService,
    now: datetime,
    followed: int,
) -> None:
    async with db.session() as session:
        await service.unit_of_work(session, exclusive=True)  # no live batch runs from here
        swap = await RebuildRepository.from_session(session, schema=STAGING)
        ends = await reader.end_offsets()
        async for records in reader.read_to(ends, chunk=CHUNK):
            items = [Incoming(p) for p in await loader.tail(records, swap)]
            await service.apply(session, items, now=now)
        # The warnings' changes are worked out and staged meanwhile, on the rebuild's own
        # connection.
        changes = await loader.warnings.reconcile(session, now=now)
        warnings = asyncio.ensure_future(
            loader.warnings.stage(changes, loader.repository.connection)
        )
        try:
            changed = await swap.merge_history(now=now)  # and the changes published
            await swap.merge_indicator_history(now=now)
            await swap.swap(REBUILT_TABLES)
            await loader.warnings.swap_in(session, warnings)
        except BaseException:
            await asyncio.gather(warnings, return_exceptions=True)  # the connection is free
            raise
        live = await UpkeepRepository.from_session(session)
        await live.set_rolling_window_start(rolling_window(now)[0])
        await live.mark_future_effects(now)
        # The rebuilt effects follow the registry as it was when the rebuild began; a load
        # since then is followed here, before any batch sees the new tables.
        await live.set_followed_registry_version(followed)
        following = EvaluationService(campaign=service.campaign, registry=service.registry)
        moved = await Upkeep(following).follow_registry(session, now=now)
        loader.report.differences = changed
        loader.report.differences += [(s.unit_code, s.period) for s in moved]
