"""The status topic into the read model: a consumer group that commits offsets only after the
database transaction, so a crash re-delivers and the version check makes that harmless.
Malformed messages go to the dead-letter topic with their reason; the consumer goes on."""

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, RebalanceInProgressError
from prometheus_client import Counter
from pydantic import ValidationError

from services.reporting.config import ReportingSettings
from services.reporting.projection import Applied, apply_changes, follow_registry
from services.reporting.readmodel import StoredStatus, path_of
from shared import kafka
from shared.db import Database, is_connection_error
from shared.errors import DependencyUnavailable
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
MAX_BACKOFF = 5.0


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


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


async def parse(
    record: ConsumerRecord[bytes, bytes], registry: UnitRegistry
) -> StoredStatus | Rejected:
    if record.value is None:
        return Rejected("no value (a tombstone); statuses are never deleted")
    try:
        status = UnitStatus.model_validate_json(record.value)
    except ValidationError as exc:
        first = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()[:3]
        )
        return Rejected(f"not a unit status: {first}")
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


def correlation_id(record: ConsumerRecord[bytes, bytes]) -> str | None:
    """The id that travels in Kafka headers from the request that caused the change."""
    value = dict(record.headers or ()).get("correlation_id")
    return value.decode(errors="replace") if value else None


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, DependencyUnavailable) or is_connection_error(exc)


class StatusConsumer:
    def __init__(
        self,
        *,
        db: Database,
        settings: ReportingSettings,
        registry: UnitRegistry,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self.on_change = on_change  # after each commit that changed the read model
        self._producer = kafka.LazyProducer(settings)
        self._placed_version: int | None = None
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def assignment(self) -> set[TopicPartition]:
        """The partitions this instance reads now (empty while joining or stopped)."""
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    async def run(self) -> None:
        """Until cancelled; after any failure, start over from the committed offsets."""
        backoff = 0.2
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("status_consumer_failed", error=repr(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            else:
                backoff = 0.2

    async def _consume(self) -> None:
        consumer = kafka.consumer(
            self.settings,
            self.settings.status_topic,
            group_id=self.settings.consumer_group,
            max_poll_records=self.settings.reporting_batch_size,
        )
        self._consumer = consumer
        try:
            # Inside the try: a consumer cancelled while joining must still leave the group,
            # or it stays a member that owns partitions and never reads them.
            await consumer.start()
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                await self._follow_registry()
                if batch:
                    await self.handle(batch)
                    await self._commit(consumer, batch)
        finally:
            self._consumer = None
            with contextlib.suppress(Exception):
                await consumer.stop()
            await self._producer.drop()

    async def handle(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        records = [record for tp in sorted(batch) for record in batch[tp]]
        parsed = [(record, await parse(record, self.registry)) for record in records]
        statuses = [p for _, p in parsed if isinstance(p, StoredStatus)]
        for record, status in parsed:
            if isinstance(status, StoredStatus):
                log.debug(
                    "status_received",
                    unit_code=status.unit_code,
                    period=status.period,
                    version=status.version,
                    correlation_id=correlation_id(record),
                )
        rejected = [(r, p.reason) for r, p in parsed if isinstance(p, Rejected)]
        try:
            result = await self._apply(statuses)
        except Exception as exc:
            if _transient(exc):
                raise
            log.warning("status_batch_failed_applying_one_by_one", error=repr(exc))
            result, failed = await self._apply_one_by_one(parsed)
            rejected += failed
        if result.applied:
            self.on_change()
        applied_total.inc(result.applied)
        ignored_total.inc(result.ignored)
        await self._dead_letter(rejected)

    async def _apply(self, statuses: list[StoredStatus]) -> Applied:
        async with self.db.session() as session:
            return await apply_changes(session, statuses)

    async def _apply_one_by_one(
        self, parsed: list[tuple[ConsumerRecord[bytes, bytes], StoredStatus | Rejected]]
    ) -> tuple[Applied, list[tuple[ConsumerRecord[bytes, bytes], str]]]:
        applied = ignored = 0
        failed = []
        for record, status in parsed:
            if not isinstance(status, StoredStatus):
                continue
            try:
                result = await self._apply([status])
            except Exception as exc:
                if _transient(exc):
                    raise
                failed.append((record, f"could not be applied: {exc!r}"[:500]))
                continue
            applied += result.applied
            ignored += result.ignored
        return Applied(applied, ignored), failed

    async def _dead_letter(self, rejected: list[tuple[ConsumerRecord[bytes, bytes], str]]) -> None:
        if not rejected:
            return
        producer = await self._producer.get()
        for record, reason in rejected:
            log.warning(
                "status_dead_lettered",
                partition=record.partition,
                offset=record.offset,
                reason=reason,
                correlation_id=correlation_id(record),
            )
            headers = [
                ("dead_letter_reason", reason.encode()),
                ("dead_letter_by", b"reporting"),
                ("source_topic", record.topic.encode()),
                ("source_partition", str(record.partition).encode()),
                ("source_offset", str(record.offset).encode()),
            ]
            await producer.send_and_wait(
                self.settings.dead_letter_topic, value=record.value, key=record.key, headers=headers
            )
        dead_letters_total.inc(len(rejected))

    @staticmethod
    async def _commit(
        consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, RebalanceInProgressError) as exc:
            # The partitions moved to another member; it re-applies from the last commit and
            # the version check ignores what this member already applied.
            log.info("status_commit_skipped", reason=repr(exc))

    async def _follow_registry(self) -> None:
        version = self.registry.version
        if version == self._placed_version:
            return
        async with self.db.session() as session:
            moved = await follow_registry(session, self.registry)
        if moved:
            self.on_change()
        self._placed_version = version
