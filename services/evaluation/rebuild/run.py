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
3. Find every early warning the visits give, a county at a time (fetched on a second
   connection, weighed in a thread), while the database builds the remaining indexes
   (leaving the thread a core when it shares the machine: `index_workers`), aggregates every
   status in one statement and every (unit, period)'s indicators in another.
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
from datetime import datetime

import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.evaluation.config import Clock, EvaluationSettings
from services.evaluation.live.repository.events import EvaluationRepository
from services.evaluation.live.repository.upkeep import UpkeepRepository
from services.evaluation.live.service import EvaluationService, Incoming
from services.evaluation.live.upkeep import Upkeep
from services.evaluation.main import load_campaign, migrate
from services.evaluation.models import REBUILT_TABLES
from services.evaluation.rebuild.loader import CHUNK, Loader, read_topic, topic_reader
from services.evaluation.rebuild.memory import peak_resident, reset_peak_resident
from services.evaluation.rebuild.readers import Read
from services.evaluation.rebuild.report import Progress, RebuildReport
from services.evaluation.rebuild.repository import (
    STAGING,
    RebuildRepository,
    rebuild_connection,
    staging_ddl,
)
from services.evaluation.rebuild.warnings import WarningRebuild
from shared import kafka
from shared.campaign import rolling_window
from shared.config import as_migrator
from shared.db import Database
from shared.registry.cache import UnitRegistry

log = structlog.get_logger(__name__)
CORRECTIONS_PER_ROUND = 5_000


class RebuildRunning(Exception):
    pass


async def rebuild(
    settings: EvaluationSettings,
    *,
    clock: Clock,
    swap: bool = True,
    progress: Callable[[Progress], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """Recompute every status from the topic; swap the result in unless `swap` is false (then
    only report how it differs from the live statuses). It runs as the migrator: it creates
    the tables it swaps in."""
    with collector_paused():
        return await _rebuild(
            as_migrator(settings),
            clock=clock,
            swap=swap,
            progress=progress,
            on_progress=on_progress,
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
    reset_peak_resident()
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
                    service.calculator.period_bounds(now), now=now
                )
            with report.phase("indicators"):
                report.indicators = await staging.compute_indicators(
                    service.calculator.period_bounds(now), now=now
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
    report.peak_resident = peak_resident()
    log.info(
        "rebuilt",
        messages=report.messages,
        statuses=report.statuses,
        changed=len(report.differences),
        seconds=round(report.seconds, 2),
        per_second=round(report.events_per_second),
        phases={name: round(seconds, 2) for name, seconds in report.phases.items()},
        peak_resident_mb=round(report.peak_resident / 2**20),
        readers_peak_resident_mb=round(report.readers_peak_resident / 2**20),
    )
    return report


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
