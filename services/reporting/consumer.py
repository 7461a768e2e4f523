"""The status topic into the read model, on the shared consumer loop (`shared.consumer`): a
crash re-delivers and the version check makes that harmless. Malformed messages go to the
dead-letter topic with their reason; the consumer goes on."""

import re
from collections.abc import Callable, Sequence

import structlog
from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.config import ReportingSettings
from services.reporting.projection import Applied, apply_changes, follow_registry
from services.reporting.readmodel import StoredStatus, path_of
from shared.consumer import BatchConsumer, DeadLetter, Record, Rejected, correlation_id, summary_of
from shared.db import Database
from shared.levels import CAMPAIGN_LEVELS
from shared.registry.cache import UnitRegistry
from shared.status import UnitStatus

log = structlog.get_logger(__name__)

applied_total = Counter("sanwu_reporting_changes_applied_total", "Status changes applied")
ignored_total = Counter(
    "sanwu_reporting_changes_ignored_total", "Status changes at or below the stored version"
)
dead_letters_total = Counter(
    "sanwu_reporting_dead_letters_total", "Malformed status messages sent to the dead-letter topic"
)

CODE = re.compile(r"^[0-9]{12}$")
PERIOD = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_COUNT = 1_000_000_000


def _problems(status: UnitStatus, key: bytes | None) -> list[str]:
    problems = []
    if key != status.key:
        problems.append(f"key {key!r} is not unit_code:period ({status.key!r})")
    if status.schema_version != 1:
        problems.append(f"schema_version {status.schema_version} is not understood")
    if not CODE.match(status.unit_code):
        problems.append("unit_code is not 12 digits")
    if not PERIOD.match(status.period):
        problems.append("period is not a period id")
    if status.version < 1:
        problems.append("version must be 1 or more")
    counts = [*status.counts.model_dump().values(), *status.people.model_dump().values()]
    if any(not 0 <= n <= MAX_COUNT for n in counts):
        problems.append(f"counts must lie within 0..{MAX_COUNT}")
    if status.changed_at.utcoffset() is None:
        problems.append("changed_at has no offset")
    return problems


async def parse(record: Record, registry: UnitRegistry) -> StoredStatus | Rejected:
    if record.value is None:
        return Rejected("no value (a tombstone); statuses are never deleted")
    try:
        status = UnitStatus.model_validate_json(record.value)
    except ValidationError as exc:
        return Rejected(f"not a unit status: {summary_of(exc)}")
    problems = _problems(status, record.key)
    if problems:
        return Rejected("; ".join(problems))
    unit = await registry.get(status.unit_code)
    if unit is None:
        return Rejected(f"unit {status.unit_code} is not in the registry")
    if unit.level not in CAMPAIGN_LEVELS:
        return Rejected(f"unit {status.unit_code} is a {unit.level}, not a campaign level")
    placement = path_of(registry, status.unit_code)
    assert placement is not None
    level, path = placement
    return StoredStatus.from_message(status, level=level, path=path)


class StatusConsumer(BatchConsumer[StoredStatus, Applied]):
    def __init__(
        self,
        *,
        db: Database,
        settings: ReportingSettings,
        registry: UnitRegistry,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(
            name="reporting",
            db=db,
            settings=settings,
            topic=settings.status_topic,
            group_id=settings.consumer_group,
            batch_size=settings.reporting_batch_size,
        )
        self.registry = registry
        self.on_change = on_change  # after each commit that changed the read model
        self._placed_version: int | None = None

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

    def committed(self, result: Applied) -> None:
        if result.applied:
            self.on_change()
        applied_total.inc(result.applied)
        ignored_total.inc(result.ignored)

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        dead_letters_total.inc(len(letters))

    async def polled(self, consumer: AIOKafkaConsumer) -> None:
        """Follow a registry load: statuses move with their units."""
        version = self.registry.version
        if version == self._placed_version:
            return
        async with self.db.session() as session:
            moved = await follow_registry(session, self.registry)
        if moved:
            self.on_change()
        self._placed_version = version
