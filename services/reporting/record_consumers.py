"""The indicator and warning topics into the read model, each on the shared consumer loop in a
consumer group of its own (`ReportingSettings.indicator_consumer_group`,
`warning_consumer_group`). Both write under the read model's apply lock, so a warning's feed
number, like a status change's, follows commit order; a redelivered message is at or below the
stored version and changes nothing."""

from collections.abc import Sequence

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.config import ReportingSettings
from services.reporting.consumer import ReadModelConsumer
from services.reporting.projection import Applied
from services.reporting.records import (
    StoredIndicators,
    StoredWarning,
    parse_indicators,
    parse_warning,
)
from services.reporting.records_repository import RecordsRepository
from services.reporting.repository import ReportingRepository
from shared.consumer import Counters, Record, Rejected

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


def counters_of(topic: str) -> Counters:
    return Counters(
        applied=applied_total.labels(topic),
        ignored=ignored_total.labels(topic),
        dead_letters=dead_letters_total.labels(topic),
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
    if applied:
        await live.announce_change()  # summaries count the open warnings
    return Applied(applied=len(applied), ignored=len(items) - len(applied))


class IndicatorConsumer(ReadModelConsumer[StoredIndicators]):
    consumer_name = "reporting-indicators"
    counters = counters_of("indicators")

    @staticmethod
    def source(settings: ReportingSettings) -> tuple[str, str]:
        return settings.indicator_topic, settings.indicator_consumer_group

    async def decode(self, record: Record) -> StoredIndicators | Rejected:
        return await parse_indicators(record, self.registry)

    async def apply(self, session: AsyncSession, items: Sequence[StoredIndicators]) -> Applied:
        return await apply_indicators(session, items)


class WarningConsumer(ReadModelConsumer[StoredWarning]):
    consumer_name = "reporting-warnings"
    counters = counters_of("warnings")

    @staticmethod
    def source(settings: ReportingSettings) -> tuple[str, str]:
        return settings.warning_topic, settings.warning_consumer_group

    async def decode(self, record: Record) -> StoredWarning | Rejected:
        return await parse_warning(record, self.registry)

    async def apply(self, session: AsyncSession, items: Sequence[StoredWarning]) -> Applied:
        return await apply_warnings(session, items)
