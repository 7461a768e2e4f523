"""The consumer-group loop every service that reads a topic runs, with one policy:

- each batch's records are decoded one by one; what cannot be decoded is dead-lettered;
- the decoded records are applied in one database transaction, retried in place while the
  database is unreachable; a batch that fails otherwise is applied record by record, and a
  record that still fails is dead-lettered;
- a dead letter carries the record's key, value and headers, plus its reason and source;
- offsets are committed only after the transaction (and the dead letters), so a crash means
  the batch is read again: applying must be idempotent. A commit refused because the
  partitions moved is skipped (their new owner reads from the last commit); any other failure
  starts the consumer again from the committed offsets, after a growing pause;
- with `decode_ahead`, the next batch is polled (`polled` too) and decoded while the current
  one's transaction runs (the process decodes while the database works); batches are still
  applied and committed one after the other, in order, and a batch read ahead is never
  committed before it is applied. For consumers whose `decode` reads nothing `apply` writes.

A service subclasses `BatchConsumer`, says how to `decode` a record and `apply` decoded items
in a session, and may use the hooks (`polled`, `committed`, `dead_lettered`, `apply_failed`).
"""

import abc
import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, Protocol, TypeAlias, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, RebalanceInProgressError
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from shared import kafka
from shared.config import Settings
from shared.db import Database, is_connection_error
from shared.errors import DependencyUnavailable
from shared.retry import backoff, keep_running

log = structlog.get_logger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")
Record: TypeAlias = ConsumerRecord[bytes, bytes]
Batch: TypeAlias = dict[TopicPartition, list[Record]]
MAX_REASON = 500
CRASH_EXIT_CODE = 99
# Records decoded between two turns of the event loop when decoding ahead: the transaction
# running meanwhile goes on after each slice, not after the whole batch.
DECODE_SLICE = 256
# How long a batch waits for the broker's answer to the fetch its own records let the consumer
# send: a local broker answers in a millisecond or two when it has records.
TOP_UP_MS = 2
TOP_UP_AFTER_SECONDS = 0.01


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot be applied, why, and the kind of reason (a metric label)."""

    reason: str
    kind: str = "invalid"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    reason: str
    kind: str


@dataclass(frozen=True, slots=True)
class Decoded(Generic[Item]):
    """A batch decoded: the items to apply with their records, and the records refused."""

    items: list[tuple[Record, Item]]
    dead: list[DeadLetter]


def is_transient(exc: BaseException) -> bool:
    """Whether applying failed because the database was away, rather than the record wrong."""
    return isinstance(exc, DependencyUnavailable) or is_connection_error(exc)


def summary_of(exc: ValidationError, *, limit: int = 5) -> str:
    """The first problems of a message that does not validate, for a dead letter's reason."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
        for e in exc.errors()[:limit]
    )


def correlation_id(record: Record) -> str | None:
    """The id that travels in Kafka headers from the request that caused the message."""
    value = dict(record.headers or ()).get("correlation_id")
    return value.decode(errors="replace") if value else None


def dead_letter_headers(letter: DeadLetter, *, by: str) -> list[tuple[str, bytes]]:
    record = letter.record
    return [
        *(record.headers or ()),
        ("dead_letter_reason", letter.reason.encode()),
        ("dead_letter_by", by.encode()),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
    ]


def crash_on_purpose(point: str, **applied: int) -> NoReturn:
    """End the process at once, as a crash at that point would (`*_crash_at` settings, for
    the exactly-once tests)."""
    log.warning("crashing_on_purpose", point=point, **applied)
    os._exit(CRASH_EXIT_CODE)


class Tally(Protocol):
    @property
    def applied(self) -> int: ...

    @property
    def ignored(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Counters:
    """A consumer's metrics: items applied, items ignored (at or below the stored version) and
    records dead-lettered."""

    applied: Counter
    ignored: Counter
    dead_letters: Counter

    def count(self, result: Tally) -> None:
        self.applied.inc(result.applied)
        self.ignored.inc(result.ignored)

    def count_dead(self, letters: Sequence[DeadLetter]) -> None:
        self.dead_letters.inc(len(letters))


class BatchConsumer(abc.ABC, Generic[Item, Result]):
    def __init__(
        self,
        *,
        name: str,
        db: Database,
        settings: Settings,
        topic: str,
        group_id: str,
        batch_size: int,
        poll_ms: int = 1000,
        decode_ahead: bool = False,
        **consumer_options: Any,
    ) -> None:
        self.name = name
        self.db = db
        self.settings = settings
        self.topic = topic
        self.group_id = group_id
        self.batch_size = batch_size
        self.poll_ms = poll_ms
        self.decode_ahead = decode_ahead
        self.consumer_options = consumer_options
        self.consumer: AIOKafkaConsumer | None = None
        self._producer = kafka.LazyProducer(settings)
        self._task: asyncio.Task[None] | None = None
        self._polled_at = 0.0  # when the last poll returned
        self.top_up_ms = TOP_UP_MS

    # --- what a service says ----------------------------------------------------------------

    @abc.abstractmethod
    async def decode(self, record: Record) -> Item | Rejected: ...

    @abc.abstractmethod
    async def apply(self, session: AsyncSession, items: Sequence[Item]) -> Result:
        """Apply the items within the session's transaction (idempotently)."""

    async def polled(self, consumer: AIOKafkaConsumer) -> None:
        """After every poll, before its batch (if any) is handled."""

    def committed(self, result: Result) -> None:
        """After each transaction that applied items committed."""

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        """After the dead letters of a batch were acknowledged by Kafka."""

    def apply_failed(self, error: BaseException) -> None:
        """Each time applying fails (before a retry or a record-by-record attempt)."""

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"{self.name}-consumer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def assignment(self) -> set[TopicPartition]:
        """The partitions this instance reads now (empty while joining or stopped)."""
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    async def run(self) -> None:
        """Until cancelled; after any failure, start over from the committed offsets."""
        await keep_running(self._consume, event="consumer_failed", consumer=self.name)

    async def _consume(self) -> None:
        consumer = kafka.consumer(
            self.settings,
            self.topic,
            group_id=self.group_id,
            max_poll_records=self.batch_size,
            **self.consumer_options,
        )
        self.consumer = consumer
        try:
            # Inside the try: a consumer cancelled while joining must still leave the group,
            # or it stays a member that owns partitions and never reads them.
            await consumer.start()
            if self.decode_ahead:
                await self._consume_decoding_ahead(consumer)
            else:
                await self._consume_one_by_one(consumer)
        finally:
            self.consumer = None
            with contextlib.suppress(Exception):
                await consumer.stop()
            await self._producer.drop()

    async def _consume_one_by_one(self, consumer: AIOKafkaConsumer) -> NoReturn:
        while True:
            batch = await self._poll(consumer)
            await self.polled(consumer)
            if batch:
                await self.handle(batch)
                await self._commit(consumer, batch)

    async def _consume_decoding_ahead(self, consumer: AIOKafkaConsumer) -> NoReturn:
        """Apply and commit each batch while the next one is polled and decoded."""
        ahead: asyncio.Task[tuple[Batch, Decoded[Item]] | None] | None = None
        try:
            current = None
            while True:
                if current is None:
                    current = await self._poll_and_decode(consumer)
                    continue
                ahead = asyncio.create_task(self._poll_and_decode(consumer))
                batch, decoded = current
                await self.handle_decoded(decoded)
                await self._commit(consumer, batch)
                current = await ahead
                ahead = None
        finally:
            if ahead is not None:  # read, never applied: read again after a restart
                ahead.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await ahead

    async def _poll(self, consumer: AIOKafkaConsumer) -> Batch:
        """The next batch: the records the consumer holds, topped up with those the broker has
        beyond them. The consumer fetches a partition again only once the records it holds of
        it are taken, and holds only what had come when it fetched: without the top-up, records
        that came while the last batch was applied would wait for the batch after this one."""
        handled_for = time.monotonic() - self._polled_at
        batch = await consumer.getmany(timeout_ms=self.poll_ms, max_records=self.batch_size)
        count = sum(len(records) for records in batch.values())
        # After a short batch the fetch it let the consumer send was answered already.
        top_up = handled_for > TOP_UP_AFTER_SECONDS
        while top_up and batch and count < self.batch_size:
            more = await consumer.getmany(
                timeout_ms=self.top_up_ms, max_records=self.batch_size - count
            )
            if not more:
                break
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
        self._polled_at = time.monotonic()
        return batch

    async def _poll_and_decode(
        self, consumer: AIOKafkaConsumer
    ) -> tuple[Batch, Decoded[Item]] | None:
        batch = await self._poll(consumer)
        await self.polled(consumer)
        return (batch, await self.decode_batch(batch, in_slices=True)) if batch else None

    # --- one batch --------------------------------------------------------------------------

    async def handle(self, batch: Batch) -> None:
        await self.handle_decoded(await self.decode_batch(batch))

    async def decode_batch(self, batch: Batch, *, in_slices: bool = False) -> Decoded[Item]:
        """The batch's records in partition order, decoded; `in_slices` lets other tasks run
        after every DECODE_SLICE records."""
        items: list[tuple[Record, Item]] = []
        dead: list[DeadLetter] = []
        records = [record for tp in sorted(batch) for record in batch[tp]]
        for count, record in enumerate(records, 1):
            decoded = await self.decode(record)
            if isinstance(decoded, Rejected):
                dead.append(DeadLetter(record, decoded.reason, decoded.kind))
            else:
                items.append((record, decoded))
            if in_slices and count % DECODE_SLICE == 0:
                await asyncio.sleep(0)
        return Decoded(items, dead)

    async def handle_decoded(self, decoded: Decoded[Item]) -> None:
        """Apply a decoded batch, then dead-letter what could not be decoded or applied."""
        dead = list(decoded.dead)
        if decoded.items:
            dead += await self._apply_or_reject(decoded.items)
        if dead:
            await self._dead_letter(dead)

    async def _apply_or_reject(self, items: list[tuple[Record, Item]]) -> list[DeadLetter]:
        """Apply in one transaction, else record by record; returns what could not be applied."""
        try:
            result = await self._apply_until_committed([item for _, item in items])
        except Exception as exc:
            self.apply_failed(exc)
            if len(items) == 1:
                reason = f"could not be applied: {exc!r}"[:MAX_REASON]
                return [DeadLetter(items[0][0], reason, "unapplicable")]
            log.warning("batch_failed_applying_one_by_one", consumer=self.name, error=repr(exc))
        else:
            self.committed(result)
            return []
        dead: list[DeadLetter] = []
        for one in items:
            dead += await self._apply_or_reject([one])
        return dead

    async def _apply_until_committed(self, items: list[Item]) -> Result:
        """One transaction, retried in place (the batch is not read again) while the database
        is away; any other failure is raised."""
        retrying = backoff(
            event="batch_failed",
            on_failure=self.apply_failed,
            retry_if=is_transient,
            consumer=self.name,
            items=len(items),
        )
        async for attempt in retrying:
            with attempt:
                async with self.db.session() as session:
                    return await self.apply(session, items)
        raise AssertionError("unreachable: the backoff retries forever")

    async def _dead_letter(self, dead: Sequence[DeadLetter]) -> None:
        producer = await self._producer.get()
        deliveries = []
        for letter in dead:
            record = letter.record
            log.warning(
                "dead_lettered",
                consumer=self.name,
                reason=letter.reason,
                partition=record.partition,
                offset=record.offset,
                correlation_id=correlation_id(record),
            )
            headers = dead_letter_headers(letter, by=self.name)
            deliveries.append(
                await producer.send(
                    self.settings.dead_letter_topic,
                    value=record.value,
                    key=record.key,
                    headers=headers,
                )
            )
        await asyncio.gather(*deliveries)
        await self.dead_lettered(dead)

    async def _commit(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, RebalanceInProgressError) as exc:
            # The partitions moved to another member, which reads the batch again from the
            # last commit and finds it applied.
            log.info("offset_commit_skipped", consumer=self.name, reason=repr(exc))
