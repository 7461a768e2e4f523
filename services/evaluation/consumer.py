"""The consumer-group loop over the petition-event topic.

Each batch: parse (what cannot be parsed goes to the dead-letter topic with the reason), apply
in one database transaction (effects, the ids applied and the status changes to publish),
commit it, and only then commit the offsets. A crash anywhere in between means the batch is
read again, and applying it again changes nothing.
"""

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from services.evaluation import metrics
from services.evaluation.config import Clock, CrashPoint, EvaluationSettings
from services.evaluation.repository import DeadLetterRecord, EvaluationRepository
from services.evaluation.service import Applied, EvaluationService, Incoming
from shared import kafka
from shared.db import Database
from shared.events import EventRecord, unit_codes_of
from shared.registry.cache import UnitRegistry

log = structlog.get_logger(__name__)
MAX_BACKOFF = 5.0
CRASH_EXIT_CODE = 99
LAG_EVERY_SECONDS = 1.0
UNIT_CODE = re.compile(r"[0-9]{12}")

Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: ConsumerRecord[bytes, bytes]
    reason: str
    kind: str


def dead_letter_record(letter: DeadLetter) -> DeadLetterRecord | None:
    """The event id (from intake's header, else the message) and unit of a dead letter, as
    far as they can be read."""
    record = letter.record
    event: Any = None
    with contextlib.suppress(ValueError, TypeError):
        event = orjson.loads(record.value or b"").get("event")
    if not isinstance(event, dict):
        event = {}
    header = dict(record.headers).get("event_id")
    candidates = [header.decode(errors="replace") if header else None, event.get("event_id")]
    unit_code = event.get("unit_code")
    if not (isinstance(unit_code, str) and UNIT_CODE.fullmatch(unit_code)):
        unit_code = None
    for candidate in candidates:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            return DeadLetterRecord(UUID(candidate), unit_code, letter.reason)
    return None


def _reason(exc: ValidationError) -> str:
    details = [
        f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in exc.errors()[:5]
    ]
    return "; ".join(details)


class EvaluationConsumer:
    def __init__(
        self,
        *,
        db: Database,
        settings: EvaluationSettings,
        service: EvaluationService,
        registry: UnitRegistry,
        clock: Clock,
        on_batch: Callable[[Applied], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.service = service
        self.registry = registry
        self.clock = clock
        self.on_batch = on_batch
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lag_at = 0.0

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="evaluation-consumer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        """Until cancelled: consume, waiting out Kafka when it is away."""
        backoff = 0.2
        while True:
            consumer = self._new_consumer()
            producer = kafka.producer(self.settings)
            try:
                await consumer.start()
                await producer.start()
                self.consumer = consumer
                backoff = 0.2
                await self._loop(consumer, producer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_failed", error=repr(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                self.consumer = None
                with contextlib.suppress(Exception):
                    await producer.stop()
                with contextlib.suppress(Exception):
                    await consumer.stop()

    def _new_consumer(self) -> AIOKafkaConsumer:
        settings = self.settings
        return kafka.consumer(
            settings,
            settings.events_topic,
            group_id=settings.group_id,
            group_instance_id=settings.evaluation_instance_id,
            session_timeout_ms=settings.evaluation_session_timeout_ms,
            heartbeat_interval_ms=max(settings.evaluation_session_timeout_ms // 5, 500),
            max_poll_records=settings.evaluation_batch_size,
        )

    async def _loop(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        while True:
            batch = await consumer.getmany(
                timeout_ms=self.settings.evaluation_poll_ms,
                max_records=self.settings.evaluation_batch_size,
            )
            if batch:
                await self.handle(consumer, producer, batch)
            await self._measure_lag(consumer)

    # --- one batch ----------------------------------------------------------------------------

    async def handle(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, batch: Batch
    ) -> Applied:
        started = time.perf_counter()
        records = [r for tp in sorted(batch) for r in batch[tp]]
        items, dead = await self.parse(records)
        if dead:
            await self.dead_letter(producer, dead)
        applied = await self.apply(items) if items else Applied()
        self._maybe_crash("after_commit", applied)
        await self._commit(consumer, batch)
        metrics.batch_seconds.observe(time.perf_counter() - started)
        metrics.events_redelivered.inc(applied.redelivered)
        if applied.event_ids or applied.changes:
            log.info(
                "batch_applied",
                messages=len(records),
                applied=len(applied.event_ids),
                redelivered=applied.redelivered,
                dead_lettered=len(dead),
                status_changes=len(applied.changes),
            )
        if self.on_batch is not None:
            self.on_batch(applied)
        return applied

    async def parse(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[Incoming], list[DeadLetter]]:
        items: list[Incoming] = []
        dead: list[DeadLetter] = []
        for record in records:
            if record.value is None:
                dead.append(DeadLetter(record, "the message has no value", "empty"))
                continue
            try:
                parsed = EventRecord.model_validate_json(record.value)
            except ValidationError as exc:
                dead.append(DeadLetter(record, f"not an event record: {_reason(exc)}", "invalid"))
                continue
            unknown = [c for c in unit_codes_of(parsed.event) if await self.registry.get(c) is None]
            if unknown:
                reason = f"unknown unit {', '.join(unknown)}"
                dead.append(DeadLetter(record, reason, "unknown_unit"))
                continue
            headers = dict(record.headers)
            correlation = headers.get("correlation_id")
            items.append(Incoming(parsed, correlation.decode() if correlation else None))
        return items, dead

    async def dead_letter(self, producer: AIOKafkaProducer, dead: Sequence[DeadLetter]) -> None:
        deliveries = []
        for letter in dead:
            record = letter.record
            headers = [
                *record.headers,
                ("dead_letter_reason", letter.reason.encode()),
                ("source_topic", record.topic.encode()),
                ("source_partition", str(record.partition).encode()),
                ("source_offset", str(record.offset).encode()),
            ]
            log.warning(
                "dead_lettered",
                reason=letter.reason,
                partition=record.partition,
                offset=record.offset,
            )
            deliveries.append(
                await producer.send(
                    self.settings.dead_letter_topic,
                    value=record.value,
                    key=record.key,
                    headers=headers,
                )
            )
        await asyncio.gather(*deliveries)
        await self.record_dead_letters(dead)
        for letter in dead:
            metrics.dead_lettered.labels(letter.kind).inc()

    async def record_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        """Remember the ids of dead-lettered events (those that can be read), so that a desk
        asking what became of one is told."""
        letters = [r for letter in dead if (r := dead_letter_record(letter)) is not None]
        if letters:
            async with self.db.session() as session:
                repository = await EvaluationRepository.from_session(session)
                await repository.record_dead_letters(letters)

    async def apply(self, items: Sequence[Incoming]) -> Applied:
        """One transaction; retried (the batch is not re-read) until it commits."""
        backoff = 0.2
        while True:
            try:
                async with self.db.session() as session:
                    applied = await self.service.apply(session, items, now=self.clock.now())
                    self._maybe_crash("before_commit", applied)
                return applied
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.batch_failures.inc()
                log.warning("batch_failed", error=repr(exc), events=len(items), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _commit(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # The partitions moved to another instance, which reads the batch again and finds
            # it applied.
            log.warning("offset_commit_failed", error=repr(exc))

    def _maybe_crash(self, point: CrashPoint, applied: Applied) -> None:
        if self.settings.evaluation_crash_at == point and applied.event_ids:
            log.warning("crashing_on_purpose", point=point, events=len(applied.event_ids))
            os._exit(CRASH_EXIT_CODE)

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        if time.monotonic() - self._lag_at < LAG_EVERY_SECONDS:
            return
        self._lag_at = time.monotonic()
        lag = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                with contextlib.suppress(Exception):
                    lag[tp.partition] = max(highwater - await consumer.position(tp), 0)
        metrics.consumer_lag.clear()  # partitions that moved to another instance are not ours
        for partition, behind in lag.items():
            metrics.consumer_lag.labels(str(partition)).set(behind)
