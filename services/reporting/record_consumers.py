"""The indicator and warning topics into the read model, each on the shared consumer loop in a
consumer group of its own (`ReportingSettings.indicator_consumer_group`,
`warning_consumer_group`). Both write under the read model's apply lock, so a warning's feed
number, like a status change's, follows commit order; a redelivered message is at or below the
stored version and changes nothing."""

from collections.abc import Callable, Sequence

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.config import ReportingSettings
from services.reporting.projection import Applied
from services.reporting.records import (
    StoredIndicators,
    StoredWarning,
    parse_indicators,
    parse_warning,
)
from services.reporting.records_repository import RecordsRepository
from services.reporting.repository import ReportingRepository
from shared.consumer import BatchConsumer, DeadLetter, Record, Rejected
from shared.db import Database
from shared.registry.cache import UnitRegistry

applied_total = Counter(
    "sanwu_reporting_records_applied_total", "Indicator and warning messages applied", ["topic"]
)
ignored_total = Counter(
    "sanwu_reporting_records_ignored_total",
    "Indicator and warning messages at or below the stored version",
    ["topic"],
)
dead_letters_total = Counter(
    "sanwu_reporting_records_dead_letters_total",
    "Malformed indicator and warning messages sent to the dead-letter topic",
    ["topic"],
)


async def apply_indicators(session: AsyncSession, items: Sequence[StoredIndicators]) -> Applied:
    """The highest version per (unit, period) wins; older or equal versions change nothing."""
    live = await ReportingRepository.from_session(session)
    await live.lock_writes()
    changed = await (await RecordsRepository.from_session(session)).save_indicators(items)
    if changed:
        await live.announce_change()  # summaries and exports show cadence and ratings
    return Applied(applied=changed, ignored=len(items) - changed)


async def apply_warnings(session: AsyncSession, items: Sequence[StoredWarning]) -> Applied:
    """Each version above the stored one is kept and appended to the warnings feed, in the
    order given."""
    live = await ReportingRepository.from_session(session)
    await live.lock_writes()
    records = await RecordsRepository.from_session(session)
    current = await records.warning_versions({w.warning_id for w in items})
    applied = []
    for warning in items:
        if warning.version > current.get(warning.warning_id, 0):
            current[warning.warning_id] = warning.version
            applied.append(warning)
    await records.save_warnings(applied)
    await records.append_warning_changes(applied)
    return Applied(applied=len(applied), ignored=len(items) - len(applied))


class IndicatorConsumer(BatchConsumer[StoredIndicators, Applied]):
    def __init__(
        self,
        *,
        db: Database,
        settings: ReportingSettings,
        registry: UnitRegistry,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(
            name="reporting-indicators",
            db=db,
            settings=settings,
            topic=settings.indicator_topic,
            group_id=settings.indicator_consumer_group,
            batch_size=settings.reporting_batch_size,
        )
        self.registry = registry
        self.on_change = on_change

    async def decode(self, record: Record) -> StoredIndicators | Rejected:
        return await parse_indicators(record, self.registry)

    async def apply(self, session: AsyncSession, items: Sequence[StoredIndicators]) -> Applied:
        return await apply_indicators(session, items)

    def committed(self, result: Applied) -> None:
        if result.applied:
            self.on_change()
        applied_total.labels("indicators").inc(result.applied)
        ignored_total.labels("indicators").inc(result.ignored)

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        dead_letters_total.labels("indicators").inc(len(letters))


class WarningConsumer(BatchConsumer[StoredWarning, Applied]):
    def __init__(
        self, *, db: Database, settings: ReportingSettings, registry: UnitRegistry
    ) -> None:
        super().__init__(
            name="reporting-warnings",
            db=db,
            settings=settings,
            topic=settings.warning_topic,
            group_id=settings.warning_consumer_group,
            batch_size=settings.reporting_batch_size,
        )
        self.registry = registry

    async def decode(self, record: Record) -> StoredWarning | Rejected:
        return await parse_warning(record, self.registry)

    async def apply(self, session: AsyncSession, items: Sequence[StoredWarning]) -> Applied:
        return await apply_warnings(session, items)

    def committed(self, result: Applied) -> None:
        applied_total.labels("warnings").inc(result.applied)
        ignored_total.labels("warnings").inc(result.ignored)

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        dead_letters_total.labels("warnings").inc(len(letters))
