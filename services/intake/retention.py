"""How long intake keeps what people wrote.

The journal keeps each event as it was posted, free text included, for
`free_text_retention_days` after it was accepted; then the purge removes the free text
(`FREE_TEXT_FIELDS`) from the stored payload. The content hash stays, so a repeat of the event
is still recognised as a duplicate and other content under its id is still a conflict. Free text
is never published, so the journal is the only place that keeps it.

Intake runs the purge at start and then every `free_text_purge_interval_seconds`;
`sanwu intake purge-free-text` runs it once."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from shared.db import Database
from shared.events import FREE_TEXT_FIELDS

log = structlog.get_logger(__name__)

PURGE_BATCH = 5000
_FIELDS = sorted(FREE_TEXT_FIELDS)
# A batch per statement, so no statement holds many row locks for long. Each statement commits
# on its own; a purge cut short leaves whole rows done and is finished by the next one.
PURGE_SQL = """
    WITH due AS (
        SELECT event_id FROM intake.journal
         WHERE accepted_at < $1 AND payload ?| $2::text[]
         LIMIT $3
    )
    UPDATE intake.journal AS j
       SET payload = j.payload - $2::text[]
      FROM due
     WHERE j.event_id = due.event_id
"""


async def purge_free_text(
    db: Database, *, now: datetime, retention: timedelta, batch_size: int = PURGE_BATCH
) -> int:
    """Remove the free text of every event accepted before `now - retention`; returns how
    many events lost theirs."""
    cutoff = now - retention
    purged = 0
    while True:
        async with db.connection(commits=True) as connection:
            status = await connection.execute(PURGE_SQL, cutoff, _FIELDS, batch_size)
        count = int(status.rsplit(" ", 1)[-1])  # "UPDATE n"
        purged += count
        if count < batch_size:
            return purged


async def keep_purging(
    db: Database,
    *,
    retention: timedelta,
    interval_seconds: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Purge now and then every interval, until cancelled; a failed round (the database
    down) is logged and tried again at the next."""
    while True:
        try:
            purged = await purge_free_text(db, now=clock(), retention=retention)
            if purged:
                log.info("free_text_purged", events=purged, retention_days=retention.days)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("free_text_purge_failed", error=repr(exc))
        await asyncio.sleep(interval_seconds)
