"""The topics the service reads, each into its own view as a consumer group of its own, on the
shared consumer loop (`shared.consumer`); messages the parser of `shared.messages` refuses go
to the dead-letter topic with their reason, and the consumer goes on.

- statuses (`parse_unit_status`): a batch read again after a crash finds its versions applied
  and changes nothing (`services.applications.flags`);
- indicators (`parse_unit_indicators`), the work records of docs/domain.md section 7: the
  highest version per unit and period wins (`services.applications.indicators`); a submission
  snapshots from this view each unit's meeting cadence and satisfaction.
"""

from collections.abc import Callable, Sequence

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.applications import flags, indicators
from services.applications.config import ApplicationsSettings
from shared.consumer import CRASH_EXIT_CODE as CRASH_EXIT_CODE
from shared.consumer import BatchConsumer, Counters, DeadLetter, Record, Rejected, crash_on_purpose
from shared.db import Database
from shared.messages import UnitIndicators, UnitStatus, parse_unit_indicators, parse_unit_status

STATUS_COUNTERS = Counters(
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
INDICATOR_COUNTERS = Counters(
    applied=Counter(
        "sanwu_applications_indicators_applied_total", "Unit indicator messages applied"
    ),
    ignored=Counter(
        "sanwu_applications_indicators_ignored_total",
        "Unit indicator messages at or below the stored version",
    ),
    dead_letters=Counter(
        "sanwu_applications_indicators_dead_letters_total",
        "Malformed unit indicator messages sent to the dead letters",
    ),
)


class StatusConsumer(BatchConsumer[UnitStatus, flags.Applied]):
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
        return parse_unit_status(record)

    async def apply(self, session: AsyncSession, items: Sequence[UnitStatus]) -> flags.Applied:
        applied = await flags.apply_statuses(session, items)
        self._maybe_crash("before_commit", applied)
        return applied

    def committed(self, result: flags.Applied) -> None:
        self._maybe_crash("after_commit", result)
        STATUS_COUNTERS.count(result)
        flags_total.labels("flagged").inc(result.flagged)
        flags_total.labels("flag_cleared").inc(result.cleared)
        if result.flagged or result.cleared:
            self.on_flag()

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        STATUS_COUNTERS.count_dead(letters)

    def _maybe_crash(self, point: str, applied: flags.Applied) -> None:
        if self.crash_at == point and applied.applied:
            crash_on_purpose(point, statuses=applied.applied)


class IndicatorConsumer(BatchConsumer[UnitIndicators, indicators.Applied]):
    def __init__(self, *, db: Database, settings: ApplicationsSettings) -> None:
        super().__init__(
            name="applications-indicators",
            db=db,
            settings=settings,
            topic=settings.indicator_topic,
            group_id=settings.indicator_consumer_group,
            batch_size=settings.applications_batch_size,
        )

    async def decode(self, record: Record) -> UnitIndicators | Rejected:
        return parse_unit_indicators(record)

    async def apply(
        self, session: AsyncSession, items: Sequence[UnitIndicators]
    ) -> indicators.Applied:
        return await indicators.apply_indicators(session, items)

    def committed(self, result: indicators.Applied) -> None:
        INDICATOR_COUNTERS.count(result)

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        INDICATOR_COUNTERS.count_dead(letters)
