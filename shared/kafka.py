"""Kafka plumbing with safe settings: idempotent producers (acks=all), consumers that commit
only by hand, and topics created explicitly with the partitions and configs they need."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    KafkaError,
    NotCoordinatorForGroupError,
    TopicAlreadyExistsError,
)
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.config import Settings

log = structlog.get_logger(__name__)

FOREVER = "-1"


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "enable_idempotence": True,  # implies acks=all
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 15_000,
    } | overrides
    return AIOKafkaProducer(**options)


class LazyProducer:
    """A producer started on first use and dropped after a failure, so a worker outlives a
    broker outage: the next use starts a fresh one."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self._settings = settings
        self._overrides = overrides
        self._producer: AIOKafkaProducer | None = None

    async def get(self) -> AIOKafkaProducer:
        if self._producer is None:
            started = producer(self._settings, **self._overrides)
            try:
                await started.start()
            except BaseException:
                await started.stop()
                raise
            self._producer = started
        return self._producer

    async def drop(self) -> None:
        dropped, self._producer = self._producer, None
        if dropped is not None:
            with contextlib.suppress(Exception):
                await dropped.stop()


def consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": 1000,
    } | overrides
    return AIOKafkaConsumer(*topics, **options)


def topic_specs(settings: Settings) -> list[NewTopic]:
    return [
        # Petition events are the record the evaluation rebuilds from: kept forever.
        NewTopic(
            settings.events_topic,
            num_partitions=settings.event_partitions,
            replication_factor=1,
            topic_configs={"retention.ms": FOREVER, "retention.bytes": FOREVER},
        ),
        # The latest status per unit and period: compacted so a reader can rebuild from it.
        NewTopic(
            settings.status_topic,
            num_partitions=settings.status_partitions,
            replication_factor=1,
            topic_configs={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
        ),
        # The latest work-record indicators per unit and period, compacted like statuses.
        NewTopic(
            settings.indicator_topic,
            num_partitions=settings.status_partitions,
            replication_factor=1,
            topic_configs={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
        ),
        # Every raise and clear of a warning, in order per warning: the feed is rebuilt from it.
        NewTopic(
            settings.warning_topic,
            num_partitions=settings.status_partitions,
            replication_factor=1,
            topic_configs={"retention.ms": FOREVER, "retention.bytes": FOREVER},
        ),
        # Every step of every application for the title, keyed by county: kept forever.
        NewTopic(
            settings.application_topic,
            num_partitions=settings.event_partitions,
            replication_factor=1,
            topic_configs={"retention.ms": FOREVER, "retention.bytes": FOREVER},
        ),
        NewTopic(
            settings.dead_letter_topic,
            num_partitions=1,
            replication_factor=1,
            topic_configs={"retention.ms": FOREVER},
        ),
    ]


async def ensure_topics(settings: Settings, *, timeout: float = 60.0) -> list[str]:
    """Create the project's topics if missing; returns the names created. Retries while a
    broker that has just started is not yet serving."""
    retrying = AsyncRetrying(
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=0.2, max=3),
        retry=retry_if_exception_type(KafkaError),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await _create_missing_topics(settings)
    raise AssertionError("unreachable")


async def _create_missing_topics(settings: Settings) -> list[str]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topic_specs(settings) if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("topics_created", topics=[t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()


async def ensure_topics_if_reachable(settings: Settings) -> None:
    """Create missing topics before a background task needs them; a broker that is away only
    delays that task, which waits for it, so its absence is not an error here."""
    with contextlib.suppress(Exception):
        await ensure_topics(settings, timeout=10)


async def delete_topics(settings: Settings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def reachable(settings: Settings, *, timeout: float = 1.0) -> bool:
    """A cheap readiness probe: can we open a TCP connection to a bootstrap server?"""
    for server in settings.kafka_bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        except (OSError, TimeoutError):
            continue
        writer.close()
        return True
    return False


async def partitions_of(settings: Settings, topic: str) -> list[TopicPartition]:
    """The topic's partitions as the brokers know them now (none when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    found = [p["partition"] for d in described if d["error_code"] == 0 for p in d["partitions"]]
    return [TopicPartition(topic, p) for p in sorted(found)]


async def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    """The offset after the last message of each partition of the topic."""
    partitions = await partitions_of(settings, topic)
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


# A group's coordinator is briefly unknown while the broker loads its offsets (a new group,
# a broker just back): its commits are then not known yet rather than absent.
COORDINATOR_NOT_READY = (
    GroupCoordinatorNotAvailableError,
    CoordinatorLoadInProgressError,
    NotCoordinatorForGroupError,
)


async def committed_offsets(
    admin: AIOKafkaAdminClient, group: str, partitions: list[TopicPartition] | None = None
) -> dict[TopicPartition, int] | None:
    """The offset `group` has committed per partition (partitions without a commit left out),
    or None while its coordinator is not ready: the caller asks again."""
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    except COORDINATOR_NOT_READY:
        return None
    return {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}


class TopicReader:
    """A whole topic from its beginning, without a consumer group: `read_to(ends)` yields
    chunks of records until every partition has been read up to `ends`, and may be called
    again with later ends to read what arrived meanwhile."""

    def __init__(self, settings: Settings, topic: str, **overrides: Any) -> None:
        self.settings = settings
        self.topic = topic
        self.consumer = consumer(settings, group_id=None, **overrides)
        self.partitions: list[TopicPartition] = []
        self.started = False

    async def start(self) -> None:
        self.partitions = await partitions_of(self.settings, self.topic)
        await self.consumer.start()
        self.started = True
        if self.partitions:
            self.consumer.assign(self.partitions)
            await self.consumer.seek_to_beginning(*self.partitions)

    async def stop(self) -> None:
        if self.started:
            await asyncio.sleep(0)  # aiokafka cannot stop a consumer whose tasks never ran
            await self.consumer.stop()
            self.started = False

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def end_offsets(self) -> dict[TopicPartition, int]:
        if not self.partitions:
            return {}
        ends: dict[TopicPartition, int] = await self.consumer.end_offsets(self.partitions)
        return ends

    async def beginning_offsets(self) -> dict[TopicPartition, int]:
        if not self.partitions:
            return {}
        begins: dict[TopicPartition, int] = await self.consumer.beginning_offsets(self.partitions)
        return begins

    async def positions(self) -> dict[TopicPartition, int]:
        """The offset of the next record to read, per partition."""
        return {tp: await self.consumer.position(tp) for tp in self.partitions}

    async def read_to(
        self, ends: dict[TopicPartition, int], *, chunk: int | None = None
    ) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
        """Chunks of records, in offset order per partition, until every partition has been
        read up to `ends`."""
        while True:
            positions = await self.positions()
            pending = [tp for tp in self.partitions if positions[tp] < ends[tp]]
            if not pending:
                return
            batch = await self.consumer.getmany(*pending, timeout_ms=500, max_records=chunk)
            records = [r for tp in sorted(batch) for r in batch[tp] if r.offset < ends[tp]]
            for tp, read in batch.items():
                if read and read[-1].offset >= ends[tp]:
                    self.consumer.seek(tp, ends[tp])
            if records:
                yield records


async def read_to_end(
    settings: Settings, topic: str, **overrides: Any
) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
    """The topic from its beginning to its end as of now, in chunks."""
    async with TopicReader(settings, topic, **overrides) as reader:
        async for records in reader.read_to(await reader.end_offsets()):
            yield records
