"""The status topic into the read model, on the shared consumer loop (`shared.consumer`): a
crash re-delivers and the version check makes that harmless. Malformed messages go to the
dead-letter topic with their reason; the consumer goes on. `ReadModelConsumer` is what the
status, indicator and warning consumers share."""

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
from services.reporting.records import registered
from shared.consumer import BatchConsumer, Counters, DeadLetter, Record, Rejected, correlation_id
from shared.db import Database
from shared.messages import MAX_COUNT, decode, identity_problems
from shared.registry.cache import UnitRegistry
from shared.status import UnitStatus

log = structlog.get_logger(__name__)

COUNTERS = Counters(
    applied=Counter("sanwu_reporting_changes_applied_total", "Status changes applied"),
    ignored=Counter(
        "sanwu_reporting_changes_ignored_total", "Status changes at or below the stored version"
    ),
    dead_letters=Counter(
        "sanwu_reporting_dead_letters_total",
        "Malformed status messages sent to the dead-letter topic",
    ),
)
Item = TypeVar("Item")


def _problems(status: UnitStatus, key: bytes | None) -> list[str]:
    problems = identity_problems(
        key=key,
        expected_key=status.key,
        schema_version=status.schema_version,
        unit_code=status.unit_code,
        period=status.period,
        version=status.version,
    )
    counts = [*status.counts.model_dump().values(), *status.people.model_dump().values()]
    if any(not 0 <= n <= MAX_COUNT for n in counts):
        problems.append(f"counts must lie within 0..{MAX_COUNT}")
    if status.changed_at.utcoffset() is None:
        problems.append("changed_at has no offset")
    return problems


async def parse(record: Record, registry: UnitRegistry) -> StoredStatus | Rejected:
    status = decode(
        record,
        UnitStatus,
        what="a unit status",
        tombstone="statuses are never deleted",
        problems=_problems,
    )
    if isinstance(status, Rejected):
        return status
    unit = await registered(registry, status.unit_code)
    if isinstance(unit, Rejected):
        return unit
    placement = path_of(registry, status.unit_code)
    assert placement is not None
    level, path = placement
    return StoredStatus.from_message(status, level=level, path=path)


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
    counters = COUNTERS
    _placed_version: int | None = None  # the registry version statuses were last placed by

    @staticmethod
    def source(settings: ReportingSettings) -> tuple[str, str]:
        return settings.status_topic, settings.consumer_group

    async def decode(self, record: Record) -> StoredStatus | Rejected:
        status = await parse(record, self.registry)
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
