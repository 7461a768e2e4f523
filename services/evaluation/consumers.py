"""The consumer group over the petition-event topic, on the shared loop (`shared.consumer`):
each batch's events and corrections are applied in one transaction (effects, the ids applied
and the status changes to publish); what cannot be applied is dead-lettered, and the ids of
dead-lettered events are recorded so that a desk asking about one is told."""

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import orjson
import structlog
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation import metrics
from services.evaluation.config import Clock, CrashPoint, EvaluationSettings
from services.evaluation.live.repository.events import EvaluationRepository
from services.evaluation.live.service import Applied, EvaluationService, Incoming
from services.evaluation.records import DeadLetterRecord
from shared.consumer import CRASH_EXIT_CODE as CRASH_EXIT_CODE
from shared.consumer import (
    Batch,
    BatchConsumer,
    DeadLetter,
    Record,
    Rejected,
    correlation_id,
    crash_on_purpose,
)
from shared.db import Database
from shared.dispute_steps import DisputeStep
from shared.events import unit_codes_of
from shared.messages import parse_dispute_step, parse_event_record
from shared.registry.cache import UnitRegistry
from shared.status import UnitStatus

log = structlog.get_logger(__name__)
LAG_EVERY_SECONDS = 1.0
UNIT_CODE = re.compile(r"[0-9]{12}")


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


class EvaluationConsumer(BatchConsumer[Incoming, Applied]):
    settings: EvaluationSettings

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
        super().__init__(
            name="evaluation",
            db=db,
            settings=settings,
            topic=settings.events_topic,
            group_id=settings.group_id,
            batch_size=settings.evaluation_batch_size,
            poll_ms=settings.evaluation_poll_ms,
            group_instance_id=settings.evaluation_instance_id,
            session_timeout_ms=settings.evaluation_session_timeout_ms,
            heartbeat_interval_ms=max(settings.evaluation_session_timeout_ms // 5, 500),
            max_partition_fetch_bytes=settings.evaluation_fetch_bytes,
        )
        self.service = service
        self.registry = registry
        self.clock = clock
        self.on_batch = on_batch
        self._lag_at = 0.0

    async def decode(self, record: Record) -> Incoming | Rejected:
        parsed = parse_event_record(record)
        if isinstance(parsed, Rejected):
            return parsed
        unknown = [c for c in unit_codes_of(parsed.event) if await self.registry.get(c) is None]
        if unknown:
            return Rejected(f"unknown unit {', '.join(unknown)}", "unknown_unit")
        return Incoming(parsed, correlation_id(record))

    async def apply(self, session: AsyncSession, items: Sequence[Incoming]) -> Applied:
        applied = await self.service.apply(session, items, now=self.clock.now())
        self._maybe_crash("before_commit", applied)
        return applied

    async def handle(self, batch: Batch) -> None:
        started = time.perf_counter()
        await super().handle(batch)
        metrics.batch_seconds.observe(time.perf_counter() - started)

    def committed(self, result: Applied) -> None:
        self._maybe_crash("after_commit", result)
        metrics.events_redelivered.inc(result.redelivered)
        if result.event_ids or result.changes:
            log.info(
                "batch_applied",
                applied=len(result.event_ids),
                redelivered=result.redelivered,
                status_changes=len(result.changes),
            )
        if self.on_batch is not None:
            self.on_batch(result)

    def apply_failed(self, error: BaseException) -> None:
        metrics.batch_failures.inc()

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        """Remember the ids of dead-lettered events (those that can be read), so that a desk
        asking what became of one is told."""
        records = [r for letter in letters if (r := dead_letter_record(letter)) is not None]
        if records:
            async with self.db.session() as session:
                repository = await EvaluationRepository.from_session(session)
                await repository.record_dead_letters(records)
        for letter in letters:
            metrics.dead_lettered.labels(letter.kind).inc()

    async def polled(self, consumer: AIOKafkaConsumer) -> None:
        await self._measure_lag(consumer)

    def _maybe_crash(self, point: CrashPoint, applied: Applied) -> None:
        if self.settings.evaluation_crash_at == point and applied.event_ids:
            crash_on_purpose(point, events=len(applied.event_ids))

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


class DisputeConsumer(BatchConsumer[DisputeStep, list[UnitStatus]]):
    """The disputes topic: each batch's rulings applied in one transaction, as corrections by
    the deciding bureau, with the status changes they make."""

    settings: EvaluationSettings

    def __init__(
        self,
        *,
        db: Database,
        settings: EvaluationSettings,
        service: EvaluationService,
        clock: Clock,
    ) -> None:
        super().__init__(
            name="evaluation-disputes",
            db=db,
            settings=settings,
            topic=settings.disputes_topic,
            group_id=settings.disputes_group_id,
            batch_size=settings.evaluation_batch_size,
            poll_ms=settings.evaluation_poll_ms,
        )
        self.service = service
        self.clock = clock

    async def decode(self, record: Record) -> DisputeStep | Rejected:
        return parse_dispute_step(record)

    async def apply(self, session: AsyncSession, items: Sequence[DisputeStep]) -> list[UnitStatus]:
        changes = await self.service.apply_disputes(session, items, now=self.clock.now())
        self._maybe_crash("before_commit", changes)
        return changes

    def committed(self, result: list[UnitStatus]) -> None:
        self._maybe_crash("after_commit", result)
        if result:
            log.info("disputes_applied", status_changes=len(result))

    def _maybe_crash(self, point: CrashPoint, changes: list[UnitStatus]) -> None:
        if self.settings.evaluation_crash_at == point and changes:
            crash_on_purpose(point, status_changes=len(changes))

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            metrics.dead_lettered.labels(letter.kind).inc()
