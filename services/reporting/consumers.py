"""The topics reporting reads into its read model, each on the shared consumer loop
(`shared.consumer`) in a consumer group of its own (`ReportingSettings.consumer_group`,
`indicator_consumer_group`, `warning_consumer_group`, `dispute_consumer_group`): statuses,
indicators, warnings and dispute steps. Each message is parsed by its one parser in
`shared.messages` (a status, indicators or a warning then placed at its unit in the registry);
what is refused, and what names a unit the registry lacks, goes to the dead-letter topic with
its reason, and the consumer goes on. Statuses, indicators and warnings are written under the
read model's apply lock, so a warning's feed number, like a status change's, follows commit
order; a dispute, which feeds no count and no feed, is kept without it. A message delivered
again after a crash is at or below the stored version and changes nothing."""

import abc
from collections.abc import Callable, Collection, Sequence
from typing import ClassVar, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.cache import StatusKey
from services.reporting.config import ReportingSettings
from services.reporting.projection import Applied, apply_changes, follow_registry
from services.reporting.readmodel import StoredStatus, path_of
from services.reporting.records import (
    StoredIndicators,
    StoredWarning,
    placed_indicators,
    placed_warning,
    registered,
)
from services.reporting.repository import (
    DisputeRepository,
    IndicatorRepository,
    ReadModelWrites,
    WarningRepository,
)
from shared.consumer import BatchConsumer, Counters, DeadLetter, Record, Rejected, correlation_id
from shared.db import Database
from shared.dispute_steps import DisputeStep
from shared.messages import parse_dispute_step, parse_unit_status
from shared.registry.cache import UnitRegistry

log = structlog.get_logger(__name__)

STATUS_COUNTERS = Counters(
    applied=Counter("sanwu_reporting_changes_applied_total", "Status changes applied"),
    ignored=Counter(
        "sanwu_reporting_changes_ignored_total", "Status changes at or below the stored version"
    ),
    dead_letters=Counter(
        "sanwu_reporting_dead_letters_total",
        "Malformed status messages sent to the dead-letter topic",
    ),
)
applied_total = Counter(
    "sanwu_reporting_records_applied_total",
    "Indicator, warning and dispute-step messages applied",
    ["topic"],
)
ignored_total = Counter(
    "sanwu_reporting_records_ignored_total",
    "Indicator, warning and dispute-step messages at or below the stored version",
    ["topic"],
)
dead_letters_total = Counter(
    "sanwu_reporting_records_dead_letters_total",
    "Malformed indicator, warning and dispute-step messages sent to the dead-letter topic",
    ["topic"],
)


def counters_of(topic: str) -> Counters:
    return Counters(
        applied=applied_total.labels(topic),
        ignored=ignored_total.labels(topic),
        dead_letters=dead_letters_total.labels(topic),
    )


Item = TypeVar("Item")


async def placed_status(record: Record, registry: UnitRegistry) -> StoredStatus | Rejected:
    """The record's status (`parse_unit_status`) at its unit's place in the registry."""
    status = parse_unit_status(record)
    if isinstance(status, Rejected):
        return status
    unit = await registered(registry, status.unit_code)
    if isinstance(unit, Rejected):
        return unit
    placement = path_of(registry, status.unit_code)
    assert placement is not None
    level, path = placement
    return StoredStatus.from_message(status, level=level, path=path)


async def apply_indicators(session: AsyncSession, items: Sequence[StoredIndicators]) -> Applied:
    """The highest version per (unit, period) wins; older or equal versions change nothing."""
    live = await ReadModelWrites.from_session(session)
    await live.lock_writes()
    changed = await (await IndicatorRepository.from_session(session)).save_indicators(items)
    if changed:
        await live.announce_change()  # summaries and exports show cadence and ratings
    return Applied(applied=changed, ignored=len(items) - changed)


async def apply_warnings(session: AsyncSession, items: Sequence[StoredWarning]) -> Applied:
    """Each version above the stored one is kept and appended to the warnings feed, in the
    order given."""
    live = await ReadModelWrites.from_session(session)
    await live.lock_writes()
    records = await WarningRepository.from_session(session)
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


async def apply_dispute_steps(session: AsyncSession, items: Sequence[DisputeStep]) -> Applied:
    """Each dispute as its newest step left it; an older or repeated step changes nothing."""
    changed = await (await DisputeRepository.from_session(session)).save_disputes(items)
    if changed:
        # Which statuses list the disputed events is not indexed: every status is read anew.
        await (await ReadModelWrites.from_session(session)).announce_statuses(None)
    return Applied(applied=changed, ignored=len(items) - changed, statuses=None)


class ReadModelConsumer(BatchConsumer[Item, Applied]):
    """One of reporting's topics into the read model, in a consumer group of its own: a
    subclass names the consumer, its counters and where it reads (`source`)."""

    consumer_name: ClassVar[str]
    counters: ClassVar[Counters]

    @staticmethod
    @abc.abstractmethod
    def source(settings: ReportingSettings) -> tuple[str, str]:
        """The topic and the consumer group."""

    def __init__(
        self,
        *,
        db: Database,
        settings: ReportingSettings,
        registry: UnitRegistry,
        on_change: Callable[[Collection[StatusKey] | None], None] = lambda _: None,
    ) -> None:
        topic, group_id = self.source(settings)
        super().__init__(
            name=self.consumer_name,
            db=db,
            settings=settings,
            topic=topic,
            group_id=group_id,
            batch_size=settings.reporting_batch_size,
        )
        self.registry = registry
        # After each commit that changed the read model, with the statuses it changed.
        self.on_change = on_change

    def committed(self, result: Applied) -> None:
        if result.applied:
            self.on_change(result.statuses)
        self.counters.count(result)

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        self.counters.count_dead(letters)


class StatusConsumer(ReadModelConsumer[StoredStatus]):
    consumer_name = "reporting"
    counters = STATUS_COUNTERS
    _placed_version: int | None = None  # the registry version statuses were last placed by

    @staticmethod
    def source(settings: ReportingSettings) -> tuple[str, str]:
        return settings.status_topic, settings.consumer_group

    async def decode(self, record: Record) -> StoredStatus | Rejected:
        status = await placed_status(record, self.registry)
        if isinstance(status, StoredStatus):
            log.debug(
                "status_received",
                unit_code=status.unit_code,
                period=status.period,
                version=status.version,
                correlation_id=correlation_id(record),
            )
        return status

    async def apply(self, session: AsyncSession, items: Sequence[StoredStatus]) -> Applied:
        return await apply_changes(session, list(items))

    async def polled(self, consumer: AIOKafkaConsumer) -> None:
        """Follow a registry load: statuses move with their units."""
        version = self.registry.version
        if version == self._placed_version:
            return
        async with self.db.session() as session:
            moved = await follow_registry(session, self.registry)
        if moved:
            self.on_change(None)
        self._placed_version = version


class IndicatorConsumer(ReadModelConsumer[StoredIndicators]):
    consumer_name = "reporting-indicators"
    counters = counters_of("indicators")

    @staticmethod
    def source(settings: ReportingSettings) -> tuple[str, str]:
        return settings.indicator_topic, settings.indicator_consumer_group

    async def decode(self, record: Record) -> StoredIndicators | Rejected:
        return await placed_indicators(record, self.registry)

    async def apply(self, session: AsyncSession, items: Sequence[StoredIndicators]) -> Applied:
        return await apply_indicators(session, items)


class WarningConsumer(ReadModelConsumer[StoredWarning]):
    consumer_name = "reporting-warnings"
    counters = counters_of("warnings")

    @staticmethod
    def source(settings: ReportingSettings) -> tuple[str, str]:
        return settings.warning_topic, settings.warning_consumer_group

    async def decode(self, record: Record) -> StoredWarning | Rejected:
        return await placed_warning(record, self.registry)

    async def apply(self, session: AsyncSession, items: Sequence[StoredWarning]) -> Applied:
        return await apply_warnings(session, items)


class DisputeConsumer(ReadModelConsumer[DisputeStep]):
    consumer_name = "reporting-disputes"
    counters = counters_of("disputes")

    @staticmethod
    def source(settings: ReportingSettings) -> tuple[str, str]:
        return settings.disputes_topic, settings.dispute_consumer_group

    async def decode(self, record: Record) -> DisputeStep | Rejected:
        return parse_dispute_step(record)

    async def apply(self, session: AsyncSession, items: Sequence[DisputeStep]) -> Applied:
        return await apply_dispute_steps(session, items)
