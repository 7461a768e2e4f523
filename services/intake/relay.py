"""The relay: publishes the outbox to the petition-event topic, oldest first, and deletes what
Kafka acknowledged, in one database transaction per round.

If the process dies after Kafka acknowledged but before the deletion committed, the rows are
published again on restart; the message carries the same event_id, which downstream consumers
de-duplicate on. Kafka being down only delays delivery: rows wait in the outbox.
"""

import asyncio
import contextlib
import time

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from services.intake import metrics
from services.intake.config import IntakeSettings
from services.intake.repository import OutboxRepository, PendingMessage
from shared import kafka
from shared.db import Database, asyncpg_dsn

log = structlog.get_logger(__name__)
CHANNEL = "intake_outbox"
MAX_BACKOFF = 5.0


class Relay:
    def __init__(self, *, db: Database, settings: IntakeSettings) -> None:
        self.db = db
        self.settings = settings
        self.topic = settings.events_topic
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._producer: AIOKafkaProducer | None = None

    async def publish_pending(self, producer: AIOKafkaProducer) -> int:
        """One round: claim, publish and wait for every ack, then mark sent. Returns the count."""
        async with self.db.session() as session:
            outbox = OutboxRepository.from_session(session)
            pending = await outbox.claim(self.settings.relay_batch_size)
            if not pending:
                return 0
            await self.publish(producer, pending)
            await outbox.mark_sent([m.id for m in pending])
        metrics.published.inc(len(pending))
        return len(pending)

    async def publish(self, producer: AIOKafkaProducer, messages: list[PendingMessage]) -> None:
        deliveries = [
            await producer.send(
                self.topic,
                value=m.value,
                key=m.key,
                headers=[
                    ("event_id", str(m.event_id).encode()),
                    ("correlation_id", (m.correlation_id or "").encode()),
                ],
            )
            for m in messages
        ]
        await asyncio.gather(*deliveries)

    async def run(self) -> None:
        """Until cancelled: publish whenever the outbox has rows, back off while Kafka is away."""
        backoff = 0.2
        last_gauge = 0.0
        try:
            while True:
                await self._listen()
                try:
                    producer = await self._ensure_producer()
                    published = await self.publish_pending(producer)
                    backoff = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    metrics.relay_errors.inc()
                    log.warning("relay_round_failed", error=repr(exc), retry_in=backoff)
                    await self._drop_producer()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                if time.monotonic() - last_gauge > 5:
                    last_gauge = time.monotonic()
                    await self._update_gauge()
                if published < self.settings.relay_batch_size:
                    await self._wait_for_work()
        finally:
            await self._drop_producer()
            await self._unlisten()

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.settings.relay_idle_poll_seconds)
        self._wake.clear()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = kafka.producer(self.settings)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _listen(self) -> None:
        """LISTEN for committed outbox rows; without it the relay simply polls."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(
                asyncpg_dsn(self.settings.database_url), timeout=3
            )
            await self._listener.add_listener(CHANNEL, lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError, TimeoutError):
            self._listener = None

    async def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _update_gauge(self) -> None:
        with contextlib.suppress(Exception):
            async with self.db.session() as session:
                metrics.outbox_pending.set(
                    await OutboxRepository.from_session(session).pending_count()
                )
