"""How long intake keeps what people wrote.

What people wrote in an event (`FREE_TEXT_FIELDS`) is kept apart from its journal row, in
`intake.free_text`, for `free_text_retention_days` after it was accepted; then the purge deletes
it. The journal row is history and never changes: its content hash, taken over the whole event,
stays, so a repeat of the event is still recognised as a duplicate and other content under its
id is still a conflict. Free text is never published, so intake is the only place that keeps
it.

Intake runs the purge at start and then every `free_text_purge_interval_seconds`;
`sanwu intake purge-free-text` runs it once."""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NoReturn

import structlog

from services.intake.repository import EventRepository
from shared.campaign import system_now
from shared.db import Database
from shared.retry import keep_running

log = structlog.get_logger(__name__)

PURGE_BATCH = 5000


async def purge_free_text(
    db: Database, *, now: datetime, retention: timedelta, batch_size: int = PURGE_BATCH
) -> int:
    """Remove the free text of every event accepted before `now - retention`; returns how
    many events lost theirs."""
    cutoff = now - retention
    purged = 0
    while True:
        # One batch per statement, each committing alone: a purge cut short leaves whole
        # rows done and is finished by the next one.
        async with db.connection(commits=True) as connection:
            count = await EventRepository(connection).purge_free_text(
                accepted_before=cutoff, batch_size=batch_size
            )
        purged += count
        if count < batch_size:
            return purged


async def keep_purging(
    db: Database,
    *,
    retention: timedelta,
    interval_seconds: float,
    clock: Callable[[], datetime] = system_now,
) -> NoReturn:
    """Purge now and then every interval, until cancelled; a failed round (the database
    down) is logged and tried again after the backoff."""

    async def purge_then_wait() -> None:
        purged = await purge_free_text(db, now=clock(), retention=retention)
        if purged:
            log.info("free_text_purged", events=purged, retention_days=retention.days)
        await asyncio.sleep(interval_seconds)

    await keep_running(purge_then_wait, event="free_text_purge_failed")
