"""The status topic into the service's view of statuses, as a consumer group of its own, on
the shared consumer loop (`shared.consumer`): a batch read again after a crash finds its
versions applied and changes nothing (`services.applications.flags`). Malformed messages go to
the dead-letter topic with their reason; the consumer goes on."""

from collections.abc import Callable, Sequence

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.applications.config import ApplicationsSettings
from services.applications.flags import Applied, apply_statuses
from shared.consumer import CRASH_EXIT_CODE as CRASH_EXIT_CODE
from shared.consumer import BatchConsumer, Counters, DeadLetter, Record, Rejected, crash_on_purpose
from shared.db import Database
from shared.messages import decode, identity_problems
from shared.status import UnitStatus

COUNTERS = Counters(
    applied=Counter("sanwu_applications_statuses_applied_total", "Status changes applied"),
    ignored=Counter(
        "sanwu_applications_statuses_ignored_total",
        "Status changes at or below the stored version",
    ),
    dead_letters=Counter(
        "sanwu_applications_dead_letters_total",
        "Malformed status messages sent to the dead letters",
    ),
)
flags_total = Counter(
    "sanwu_applications_flags_total", "Application units flagged or cleared", ["action"]
)


def problems_of(status: UnitStatus, key: bytes | None) -> list[str]:
    problems = identity_problems(
        key=key,
        expected_key=status.key,
        schema_version=status.schema_version,
        unit_code=status.unit_code,
        period=status.period,
    )
    if not 1 <= status.version < 2**31:
        problems.append("version must lie within 1..2^31-1")
    if status.changed_at.utcoffset() is None:
        problems.append("changed_at has no offset")
    return problems


def parse(record: Record) -> UnitStatus | Rejected:
    return decode(
        record,
        UnitStatus,
        what="a unit status",
        tombstone="statuses are never deleted",
        problems=problems_of,
    )


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
        COUNTERS.count(result)
        flags_total.labels("flagged").inc(result.flagged)
        flags_total.labels("flag_cleared").inc(result.cleared)
        if result.flagged or result.cleared:
            self.on_flag()

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        COUNTERS.count_dead(letters)

    def _maybe_crash(self, point: str, applied: Applied) -> None:
        if self.crash_at == point and applied.applied:
            crash_on_purpose(point, statuses=applied.applied)
