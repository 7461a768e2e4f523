"""Rebuild the read model from its topics: the compacted status and indicator topics and the
warning topic (kept whole) are read from the beginning into fresh tables; then, holding the
apply lock, anything newer the running consumers applied meanwhile is taken over, feed entries
are added for what the old read model lacked, and the tables are swapped in.

The feeds' history is kept: clients' cursors stay valid, and a status change or a warning
version the old read model missed reaches them as a new entry after their cursor. The disputes
are the disputes topic's own state, kept by its consumer: a rebuild neither reads nor swaps
them."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from services.reporting.config import ReportingSettings
from services.reporting.consumers import placed_status
from services.reporting.readmodel import StoredStatus
from services.reporting.records import (
    StoredIndicators,
    StoredWarning,
    placed_indicators,
    placed_warning,
)
from services.reporting.repository import (
    ReadModelWrites,
    RebuildRepository,
    RecordsRebuildRepository,
    WarningRepository,
)
from shared.db import Database
from shared.registry.cache import UnitRegistry
from shared.topic_reading import RebuildCounts, read_whole

Progress = Callable[["RebuildProgress"], None]


@dataclass
class RebuildProgress(RebuildCounts):
    statuses: int = 0
    taken_from_live: int = 0
    feed_entries_added: int = 0
    indicator_messages: int = 0
    warning_messages: int = 0
    warning_entries_added: int = 0

    @property
    def share(self) -> float:
        return self.offsets_read / self.offsets_total if self.offsets_total else 1.0


async def rebuild(
    *,
    db: Database,
    settings: ReportingSettings,
    registry: UnitRegistry,
    progress: Progress | None = None,
    progress_every: float = 1.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> RebuildProgress:
    """`on_progress` gets (offsets read, offsets to read) after every batch."""
    started = time.monotonic()
    state = RebuildProgress()
    async with db.session() as session:
        await (await RebuildRepository.from_session(session)).create_staging()
        await (await RecordsRebuildRepository.from_session(session)).create_staging()
    last_report = 0.0
    async for records in read_whole(
        settings,
        settings.status_topic,
        batch_size=settings.reporting_batch_size,
        progress=state,
        required_as="status topic",
    ):
        newest: dict[tuple[str, str], StoredStatus] = {}
        for record in records:
            parsed = await placed_status(record, registry)
            if not isinstance(parsed, StoredStatus):
                state.malformed += 1
            elif parsed.key not in newest or parsed.version > newest[parsed.key].version:
                newest[parsed.key] = parsed
        state.messages += len(records)
        async with db.session() as session:
            staged = await RebuildRepository.from_session(session)
            await staged.keep_newest(list(newest.values()))
        if on_progress is not None:
            on_progress(state.offsets_read, state.offsets_total)
        if progress and time.monotonic() - last_report >= progress_every:
            last_report = time.monotonic()
            progress(state)
    warnings = await _stage_records(db=db, settings=settings, registry=registry, state=state)
    async with db.session() as session:
        live = await ReadModelWrites.from_session(session)
        await live.lock_writes()
        staging = await RebuildRepository.from_session(session)
        state.taken_from_live = await staging.merge_newer_live_rows()
        state.feed_entries_added = await staging.append_missed_changes()
        await staging.count_staged()
        state.statuses = await staging.staged_count()
        work_records = await RecordsRebuildRepository.from_session(session)
        missed = await work_records.missed_warning_versions(warnings)
        await (await WarningRepository.from_session(session)).append_warning_changes(missed)
        state.warning_entries_added = len(missed)
        state.taken_from_live += await work_records.merge_newer_live_rows()
        await staging.swap()
        await work_records.swap()
        await live.announce_change(statuses=None)
    state.seconds = time.monotonic() - started
    if progress:
        progress(state)
    return state


async def _stage_records(
    *, db: Database, settings: ReportingSettings, registry: UnitRegistry, state: RebuildProgress
) -> list[StoredWarning]:
    """The indicator and warning topics into the staging tables; returns every warning version
    read, in topic order per warning (a missing topic reads as empty)."""
    warnings: list[StoredWarning] = []
    batch_size = settings.reporting_batch_size
    async for records in read_whole(settings, settings.indicator_topic, batch_size=batch_size):
        parsed = [await placed_indicators(record, registry) for record in records]
        indicators = [p for p in parsed if isinstance(p, StoredIndicators)]
        state.indicator_messages += len(records)
        state.malformed += len(parsed) - len(indicators)
        async with db.session() as session:
            staged = await RecordsRebuildRepository.from_session(session)
            await staged.stage_indicators(indicators)
    async for records in read_whole(settings, settings.warning_topic, batch_size=batch_size):
        parsed_warnings = [await placed_warning(record, registry) for record in records]
        batch = [p for p in parsed_warnings if isinstance(p, StoredWarning)]
        state.warning_messages += len(records)
        state.malformed += len(parsed_warnings) - len(batch)
        warnings += batch
        async with db.session() as session:
            staged = await RecordsRebuildRepository.from_session(session)
            await staged.stage_warnings(batch)
    return warnings
