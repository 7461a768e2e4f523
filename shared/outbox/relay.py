"""Publishing an outbox to Kafka: oldest first, one database transaction per round."""

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from shared import kafka
from shared.config import Settings
from shared.db import Database, asyncpg_dsn
from shared.outbox.metrics import pending_gauge, published_total, relay_errors_total
from shared.outbox.repository import OutboxRepository, PendingMessage
from shared.outbox.table import channel_of
from shared.retry import keep_running

log = structlog.get_logger(__name__)
# A round publishes up to `batch_size` messages at once, so in record batches of up to a
# megabyte (the broker's default limit) rather than the producer's 256 KB: a message that finds
# its partition's batch full waits until that batch is sent, a turn of a busy event loop. And
# without lingering: a round hands over all its messages before it waits for their
# acknowledgements, so nothing more would join a batch, and every round would wait the linger.
RELAY_PRODUCER: dict[str, Any] = {"max_batch_size": 1_000_000, "linger_ms": 0}


class OutboxRelay:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        table: sa.Table,
        topic: str,
        batch_size: int = 1000,
        idle_poll_seconds: float = 1.0,
        notified: bool = True,
        producer_options: dict[str, Any] | None = None,
    ) -> None:
        """`notified`: the outbox has a wake trigger (see create_wake_trigger) to LISTEN for;
        without one the relay is woken by `wake()` in process and otherwise polls."""
        self.db = db
        self.settings = settings
        self.table = table
        self.topic = topic
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self.notified = notified
        # The schema's own outbox is named by the schema; another outbox also by its table.
        self.name = str(table.schema) + ("" if table.name == "outbox" else f".{table.name}")
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._producer = kafka.LazyProducer(settings, **RELAY_PRODUCER | (producer_options or {}))

    async def publish_pending(self, producer: AIOKafkaProducer) -> int:
        """One round: take the oldest messages, publish and wait for every ack, then commit
        (what a failed round took stays in the outbox). Returns the count."""
        async with self.db.session() as session:
            pending = await OutboxRepository(session, self.table).take(self.batch_size)
            if not pending:
                return 0
            await self.publish(producer, pending)
        published_total.labels(self.name).inc(len(pending))
        return len(pending)

    async def publish(self, producer: AIOKafkaProducer, messages: list[PendingMessage]) -> None:
        partition_of = await key_partitions(producer, self.topic)
        deliveries = [
            await producer.send(
                self.topic,
                value=m.value,
                key=m.key,
                partition=partition_of(m.key),
                headers=[(k, v.encode()) for k, v in m.headers.items()],
            )
            for m in messages
        ]
        await acknowledged(deliveries)

    async def run(self) -> None:
        """Until cancelled: publish whenever the outbox has rows, back off while Kafka is away."""
        try:
            await keep_running(
                self._publish_rounds,
                event="relay_round_failed",
                on_failure=lambda _: relay_errors_total.labels(self.name).inc(),
                outbox=self.name,
            )
        finally:
            await self._producer.drop()
            await self._unlisten()

    async def _publish_rounds(self) -> None:
        last_gauge = 0.0
        while True:
            await self._listen()
            try:
                published = await self.publish_pending(await self._producer.get())
            except Exception:
                await self._producer.drop()  # the next round starts a fresh producer
                raise
            if time.monotonic() - last_gauge > 5:
                last_gauge = time.monotonic()
                await self._update_gauge()
            if published < self.batch_size:
                await self._wait_for_work()

    def wake(self) -> None:
        """Rows were committed to the outbox in this process: publish them now."""
        self._wake.set()

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.idle_poll_seconds)
        self._wake.clear()

    async def _listen(self) -> None:
        """LISTEN for committed outbox rows; without it the relay simply polls."""
        if not self.notified:
            return
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            dsn = asyncpg_dsn(self.settings.database_url)
            self._listener = await asyncpg.connect(dsn, timeout=3)
            await self._listener.add_listener(channel_of(str(self.table.schema)), self._notified)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            self._listener = None

    def _notified(self, _connection: object, _pid: int, _channel: str, table: str) -> None:
        """A wake-up names the outbox table whose rows committed (none: any of the schema's)."""
        if table in ("", self.table.name):
            self._wake.set()

    async def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _update_gauge(self) -> None:
        with contextlib.suppress(Exception):
            async with self.db.session() as session:
                count = await OutboxRepository(session, self.table).pending_count()
                pending_gauge.labels(self.name).set(count)


async def key_partitions(producer: AIOKafkaProducer, topic: str) -> Callable[[bytes], int]:
    """Each key's partition as the producer's default partitioner picks it, worked out once per
    key in a round: messages share keys (intake's are counties), and the partitioner hashed each
    message anew, in Python, for half of a send's time."""
    partitions = sorted(await producer.partitions_for(topic))
    partitioner = DefaultPartitioner()

    @functools.cache
    def partition_of(key: bytes) -> int:
        return int(partitioner(key, partitions, partitions))

    return partition_of


async def acknowledged(deliveries: list["asyncio.Future[Any]"]) -> None:
    """Every delivery acknowledged, or the first failure raised. Awaited in turn: deliveries
    settle a record batch at a time, so this wakes once per batch, where `gather` would hang a
    callback on each of a round's thousands."""
    for index, delivery in enumerate(deliveries):
        try:
            await delivery
        except BaseException:
            for unsettled in deliveries[index + 1 :]:
                unsettled.add_done_callback(_retrieve)  # their failures are this one's
            raise


def _retrieve(delivery: "asyncio.Future[Any]") -> None:
    if not delivery.cancelled():
        delivery.exception()
