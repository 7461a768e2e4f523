"""Kafka plumbing with safe settings: idempotent producers (acks=all), consumers that commit
only by hand, and topics created explicitly with the partitions, replication and configs they
need. Every client reaches the brokers through `client_options` (bootstrap servers, TLS,
SASL/SCRAM)."""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    NotCoordinatorForGroupError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from shared.config import Settings
from shared.errors import BrokerRefused
from shared.retry import retry_until_done

log = structlog.get_logger(__name__)

FOREVER = "-1"


def client_options(settings: Settings) -> dict[str, Any]:
    """How a client reaches the brokers: bootstrap servers, and TLS and SASL/SCRAM when the
    settings ask for them. Every producer, consumer and admin client is built with these."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL_"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_username,
            "sasl_plain_password": settings.kafka_password.get_secret_value(),
        }
    return options


def admin(settings: Settings, **overrides: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings) | overrides)


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = (
        client_options(settings)
        | {
            "enable_idempotence": True,  # implies acks=all
            "acks": "all",
            "linger_ms": 5,
            "max_batch_size": 256 * 1024,
            "request_timeout_ms": 15_000,
        }
        | overrides
    )
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
    options: dict[str, Any] = (
        client_options(settings)
        | {
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            "max_poll_records": 1000,
        }
        | overrides
    )
    return AIOKafkaConsumer(*topics, **options)


def topic_specs(settings: Settings) -> list[NewTopic]:
    def topic(name: str, partitions: int, configs: dict[str, str]) -> NewTopic:
        return NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=settings.kafka_replication_factor,
            topic_configs=configs
            | {"min.insync.replicas": str(settings.kafka_min_insync_replicas)},
        )

    kept = {"retention.ms": FOREVER, "retention.bytes": FOREVER}
    compacted = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
    return [
        # Petition events are the record the evaluation rebuilds from: kept forever.
        topic(settings.events_topic, settings.event_partitions, kept),
        # The latest status per unit and period: compacted so a reader can rebuild from it.
        topic(settings.status_topic, settings.status_partitions, compacted),
        # The latest work-record indicators per unit and period, compacted like statuses.
        topic(settings.indicator_topic, settings.status_partitions, compacted),
        # Every raise and clear of a warning, in order per warning: the feed is rebuilt from it.
        topic(settings.warning_topic, settings.status_partitions, kept),
        # Every step of every application for the title, keyed by county: kept forever.
        topic(settings.application_topic, settings.event_partitions, kept),
        # Every step of every dispute of a counted event, keyed by the event: kept forever.
        topic(settings.disputes_topic, settings.event_partitions, kept),
        # Every step of every case (信访事项), keyed by the case: kept forever.
        topic(settings.cases_topic, settings.event_partitions, kept),
        topic(settings.dead_letter_topic, 1, {"retention.ms": FOREVER}),
    ]


async def ensure_topics(settings: Settings, *, timeout: float = 60.0) -> list[str]:
    """Create the project's topics if missing; returns the names created. Retries, up to
    `timeout` seconds, while a broker that has just started is not yet serving."""
    return await retry_until_done(
        lambda: _create_missing_topics(settings),
        event="topics_not_ensured",
        retry_if=lambda error: isinstance(error, KafkaError),
        within=timeout,
    )


async def _create_missing_topics(settings: Settings) -> list[str]:
    client = admin(settings, request_timeout_ms=10_000)
    try:
        await client.start()
        existing = set(await client.list_topics())
        missing = [t for t in topic_specs(settings) if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await client.create_topics(missing)
            log.info("topics_created", topics=[t.name for t in missing])
        return [t.name for t in missing]
    except KafkaConnectionError:
        await raise_if_refused(settings)
        raise
    finally:
        await client.close()


async def stop_if_refused(settings: Settings) -> None:
    """At a service's start: a broker that refuses this client stops the process with one line
    saying why; one that is away only delays the tasks that need it, which wait for it. Topics
    are not created here: `sanwu topics ensure`, as the Kafka administrator, creates them."""
    try:
        await raise_if_refused(settings)
    except BrokerRefused as refused:
        log.error("kafka_refused", detail=refused.detail)
        raise


async def raise_if_refused(settings: Settings, *, timeout: float = 10.0) -> None:
    """After a failed bootstrap: raise BrokerRefused if a broker answered but refused this
    client (credentials, certificate, mechanism: no retry mends that); return if none did."""
    options = client_options(settings)
    options.pop("bootstrap_servers")
    for server in settings.kafka_bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            connection = await asyncio.wait_for(create_conn(host, int(port), **options), timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            reason = _refusal(settings, exc)
            if reason is None:
                continue
            raise BrokerRefused(f"Kafka at {server.strip()}", reason) from exc
        connection.close()


def _refusal(settings: Settings, exc: BaseException) -> str | None:
    """Why the broker refused this client, or None when the failure was not a refusal."""
    mechanism = settings.kafka_sasl_mechanism
    if isinstance(exc, SaslAuthenticationFailed):
        return (
            f"user {settings.kafka_username!r} was not authenticated by {mechanism}: wrong "
            "user name or password (SANWU_KAFKA_USERNAME, SANWU_KAFKA_PASSWORD[_FILE])"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"the listener does not offer {mechanism} (SANWU_KAFKA_SASL_MECHANISM)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"its TLS certificate was not accepted ({exc.verify_message}; SANWU_KAFKA_SSL_CAFILE)"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason}): does that listener speak TLS?"
    return None


async def delete_topics(settings: Settings, names: list[str]) -> None:
    client = admin(settings)
    await client.start()
    try:
        existing = set(await client.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await client.delete_topics(doomed)
    finally:
        await client.close()


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
    client = admin(settings)
    await client.start()
    try:
        described = await client.describe_topics([topic])
    finally:
        await client.close()
    found = [p["partition"] for d in described if d["error_code"] == 0 for p in d["partitions"]]
    return [TopicPartition(topic, p) for p in sorted(found)]


async def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    """The offset after the last message of each partition of the topic."""
    partitions = await partitions_of(settings, topic)
    if not partitions:
        return {}
    reader = consumer(settings, group_id=None)
    await reader.start()
    try:
        ends: dict[TopicPartition, int] = await reader.end_offsets(partitions)
        return ends
    finally:
        await reader.stop()


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

    def __init__(
        self,
        settings: Settings,
        topic: str,
        *,
        partitions: list[TopicPartition] | None = None,
        **overrides: Any,
    ) -> None:
        """`partitions`: only those (by default every partition of the topic)."""
        self.settings = settings
        self.topic = topic
        self.consumer = consumer(settings, group_id=None, **overrides)
        self.partitions: list[TopicPartition] = []
        self._only = partitions
        self.started = False

    async def start(self) -> None:
        if self._only is None:
            self.partitions = await partitions_of(self.settings, self.topic)
        else:
            self.partitions = list(self._only)
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

    def seek(self, offsets: dict[TopicPartition, int]) -> None:
        """Read on from `offsets` (as if `read_to(offsets)` had been called)."""
        for tp, offset in offsets.items():
            self.consumer.seek(tp, offset)

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
