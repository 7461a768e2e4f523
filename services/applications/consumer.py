"""The status topic into the service's view of statuses, as a consumer group of its own, on
the shared consumer loop (`shared.consumer`): a batch read again after a crash finds its
versions applied and changes nothing (`services.applications.flags`). Malformed messages go to
the dead-letter topic with their reason; the consumer goes on."""

import os
import re
from collections.abc import Callable, Sequence

import structlog
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.applications.config import ApplicationsSettings
from services.applications.flags import Applied, apply_statuses
from shared.consumer import BatchConsumer, DeadLetter, Record, Rejected, summary_of
from shared.db import Database
from shared.status import UnitStatus

log = structlog.get_logger(__name__)
CRASH_EXIT_CODE = 99

applied_total = Counter("sanwu_applications_statuses_applied_total", "Status changes applied")
ignored_total = Counter(
    "sanwu_applications_statuses_ignored_total", "Status changes at or below the stored version"
)
flags_total = Counter(
    "sanwu_applications_flags_total", "Application units flagged or cleared", ["action"]
)
dead_letters_total = Counter(
    "sanwu_applications_dead_letters_total", "Malformed status messages sent to the dead letters"
)

CODE = re.compile(r"^[0-9]{12}$")
PERIOD = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def problems_of(status: UnitStatus, key: bytes | None) -> list[str]:
    problems = []
    if key != status.key:
        problems.append(f"key {key!r} is not unit_code:period ({status.key!r})")
    if status.schema_version != 1:
        problems.append(f"schema_version {status.schema_version} is not understood")
    if not CODE.match(status.unit_code):
        problems.append("unit_code is not 12 digits")
    if not PERIOD.match(status.period):
        problems.append("period is not a period id")
    if not 1 <= status.version < 2**31:
        problems.append("version must lie within 1..2^31-1")
    if status.changed_at.utcoffset() is None:
        problems.append("changed_at has no offset")
    return problems


def parse(record: Record) -> UnitStatus | Rejected:
    if record.value is None:
        return Rejected("no value (a tombstone); statuses are never deleted")
    try:
        status = UnitStatus.model_validate_json(record.value)
    except ValidationError as exc:
        return Rejected(f"not a unit status: {summary_of(exc)}")
    problems = problems_of(status, record.key)
    return Rejected("; ".join(problems)) if problems else status


class StatusConsumer(BatchConsumer[UnitStatus, Applied]):
    def __init__(
        self,
        *,
        db: Database,
        settings: ApplicationsSettings,
        on_flag: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(
            name="applications",
            db=db,
            settings=settings,
            topic=settings.status_topic,
            group_id=settings.consumer_group,
            batch_size=settings.applications_batch_size,
        )
        self.on_flag = on_flag  # after each commit that wrote steps (wakes the relay)
        self.crash_at = settings.applications_crash_at

    async def decode(self, record: Record) -> UnitStatus | Rejected:
        return parse(record)

    async def apply(self, session: AsyncSession, items: Sequence[UnitStatus]) -> Applied:
        applied = await apply_statuses(session, items)
        self._maybe_crash("before_commit", applied)
        return applied

    def committed(self, result: Applied) -> None:
        self._maybe_crash("after_commit", result)
        applied_total.inc(result.applied)
        ignored_total.inc(result.ignored)
        flags_total.labels("flagged").inc(result.flagged)
        flags_total.labels("flag_cleared").inc(result.cleared)
        if result.flagged or result.cleared:
            self.on_flag()

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        dead_letters_total.inc(len(letters))

    def _maybe_crash(self, point: str, applied: Applied) -> None:
        if self.crash_at == point and applied.applied:
            log.warning("crashing_on_purpose", point=point, statuses=applied.applied)
            os._exit(CRASH_EXIT_CODE)
