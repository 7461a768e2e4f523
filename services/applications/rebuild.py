"""Rebuild the service's view of statuses from the compacted status topic: read it from the
beginning to its end as of now and apply every status the view lacks or holds an older version
of, through the consumer's own path, so the flags follow. Safe while the service runs (both
apply under the status lock, newer version wins).

Applications, their units and their history are the service's own record: a rebuild reads and
writes only statuses, and the flags and steps those statuses call for."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from services.applications.config import ApplicationsSettings
from services.applications.flags import apply_statuses
from shared.db import Database
from shared.messages import parse_unit_status
from shared.status import UnitStatus
from shared.topic_reading import RebuildCounts, read_whole


@dataclass
class RebuildResult(RebuildCounts):
    applied: int = 0
    flagged: int = 0
    cleared: int = 0


async def rebuild(
    *,
    db: Database,
    settings: ApplicationsSettings,
    on_progress: Callable[[int, int], None] | None = None,
) -> RebuildResult:
    """`on_progress` gets (offsets read, offsets to read) after every chunk."""
    started = time.monotonic()
    result = RebuildResult()
    async for records in read_whole(
        settings,
        settings.status_topic,
        batch_size=settings.applications_batch_size,
        progress=result,
        required_as="status topic",
    ):
        parsed = [parse_unit_status(record) for record in records]
        statuses = [s for s in parsed if isinstance(s, UnitStatus)]
        result.messages += len(records)
        result.malformed += len(records) - len(statuses)
        async with db.session() as session:
            applied = await apply_statuses(session, statuses)
        result.applied += applied.applied
        result.flagged += applied.flagged
        result.cleared += applied.cleared
        if on_progress is not None:
            on_progress(result.offsets_read, result.offsets_total)
    result.seconds = time.monotonic() - started
    return result
