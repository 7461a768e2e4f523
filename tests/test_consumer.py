"""The shared consumer loop's policy, on a topic of its own: what cannot be decoded or applied
is dead-lettered with the record's own headers and a reason, the rest of the batch is applied,
a database that is away is waited out without dead-lettering, and offsets are committed."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared import kafka
from shared.config import Settings
from shared.consumer import BatchConsumer, DeadLetter, Record, Rejected
from shared.db import Database
from shared.errors import DependencyUnavailable
from tests.support.stack import read_topic, scratch_topic
from tests.support.waiting import wait_until

TABLE = "public.consumer_test_applied"


class Words(BatchConsumer[str, int]):
    """Applies UTF-8 words into a table; refuses to apply "poison"; the database is away for
    the first `outages` transactions."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        topic: str,
        outages: int = 0,
        batch_size: int = 100,
        decode_ahead: bool = False,
    ) -> None:
        super().__init__(
            name="test",
            db=db,
            settings=settings,
            topic=topic,
            group_id=f"{topic}.group",
            batch_size=batch_size,
            poll_ms=200,
            decode_ahead=decode_ahead,
        )
        self.outages = outages
        self.failures: list[BaseException] = []
        self.letters: list[DeadLetter] = []
        self.batches: list[list[str]] = []  # as applied, in order
        self.applying: asyncio.Event | None = None  # set while a batch is applied, if given
        self.apply_seconds = 0.0  # how long applying a batch takes

    async def decode(self, record: Record) -> str | Rejected:
        try:
            return (record.value or b"").decode()
        except UnicodeDecodeError:
            return Rejected("not UTF-8", "invalid")

    async def apply(self, session: AsyncSession, items: Sequence[str]) -> int:
        if self.outages:
            self.outages -= 1
            raise DependencyUnavailable("database", "away for the test")
        if "poison" in items:
            raise ValueError("poison cannot be applied")
        if self.applying is not None:
            self.applying.set()
        await asyncio.sleep(self.apply_seconds)
        insert = sa.text(f"INSERT INTO {TABLE} (word) VALUES (:word) ON CONFLICT DO NOTHING")
        await session.execute(insert, [{"word": word} for word in items])
        self.batches.append(list(items))
        return len(items)

    def apply_failed(self, error: BaseException) -> None:
        self.failures.append(error)

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        self.letters.extend(letters)


@pytest.fixture
async def topic(settings: Settings, db: Database) -> AsyncIterator[str]:
    async with db.session() as session:
        await session.execute(
            sa.text(f"CREATE TABLE IF NOT EXISTS {TABLE} (word text PRIMARY KEY)")
        )
    async with scratch_topic(settings, "consumer-test") as name:
        yield name


async def produce(settings: Settings, topic: str, values: list[bytes], marker: bytes) -> None:
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k", headers=[("marker", marker)])
    finally:
        await producer.stop()


async def applied(db: Database, candidates: list[str]) -> set[str]:
    async with db.session() as session:
        rows = await session.execute(
            sa.text(f"SELECT word FROM {TABLE} WHERE word = ANY(:words)"), {"words": candidates}
        )
        return {row[0] for row in rows}


async def run_until_committed(consumer: Words, *, settings: Settings, topic: str) -> None:
    consumer.start()
    try:
        async with asyncio.timeout(30):
            while True:
                ends = await kafka.end_offsets(settings, topic)
                committed = await committed_offsets(settings, consumer.group_id)
                if ends and all(committed.get(tp.partition, 0) >= end for tp, end in ends.items()):
                    return
                await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


async def committed_offsets(settings: Settings, group: str) -> dict[int, int]:
    admin = kafka.admin(settings)
    await admin.start()
    try:
        offsets = await kafka.committed_offsets(admin, group)
    finally:
        await admin.close()
    return {tp.partition: offset for tp, offset in (offsets or {}).items()}


@pytest.mark.parametrize("decode_ahead", [False, True])
async def test_what_cannot_be_decoded_or_applied_is_dead_lettered_and_the_rest_applied(
    settings: Settings, db: Database, topic: str, decode_ahead: bool
) -> None:
    marker = uuid.uuid4().hex.encode()
    good = [f"good-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    values = [good[0].encode(), b"poison", b"\xff\xfe", good[1].encode()]
    await produce(settings, topic, values, marker)
    consumer = Words(db=db, settings=settings, topic=topic, decode_ahead=decode_ahead)

    await run_until_committed(consumer, settings=settings, topic=topic)

    assert await applied(db, good) == set(good)
    dead = {
        value: headers
        for _, _, value, headers in await read_topic(settings, settings.dead_letter_topic)
        if headers.get("marker") == marker
    }
    assert set(dead) == {b"poison", b"\xff\xfe"}
    assert dead[b"poison"]["dead_letter_reason"].decode().startswith("could not be applied")
    assert dead[b"\xff\xfe"]["dead_letter_reason"] == b"not UTF-8"
    for headers in dead.values():
        assert headers["dead_letter_by"] == b"test"
        assert headers["source_topic"] == topic.encode()
    assert sorted(letter.kind for letter in consumer.letters) == ["invalid", "unapplicable"]


@pytest.mark.parametrize("decode_ahead", [False, True])
async def test_a_database_outage_is_waited_out_without_dead_letters(
    settings: Settings, db: Database, topic: str, decode_ahead: bool
) -> None:
    marker = uuid.uuid4().hex.encode()
    word = f"late-{uuid.uuid4().hex[:8]}"
    await produce(settings, topic, [word.encode()], marker)
    consumer = Words(db=db, settings=settings, topic=topic, outages=2, decode_ahead=decode_ahead)

    await run_until_committed(consumer, settings=settings, topic=topic)

    assert await applied(db, [word]) == {word}
    assert len(consumer.failures) == 2
    assert all(isinstance(error, DependencyUnavailable) for error in consumer.failures)
    assert consumer.letters == []


async def test_batches_decoded_ahead_are_applied_once_each_in_order(
    settings: Settings, db: Database, topic: str
) -> None:
    words = [f"w{n:03d}-{uuid.uuid4().hex[:8]}" for n in range(60)]
    await produce(settings, topic, [word.encode() for word in words], b"ahead")
    consumer = Words(db=db, settings=settings, topic=topic, batch_size=7, decode_ahead=True)

    await run_until_committed(consumer, settings=settings, topic=topic)

    assert [word for batch in consumer.batches for word in batch] == words
    assert len(consumer.batches) > 1
    assert await applied(db, words) == set(words)


async def test_a_batch_after_a_long_one_takes_what_came_meanwhile_not_only_what_was_held(
    settings: Settings, db: Database, topic: str
) -> None:
    """While a batch is applied the consumer fetches again and holds the first records that
    come; those that come after wait at the broker until the held ones are taken. The next
    batch takes both."""
    first, early, late = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("first", "early", "late"))
    consumer = Words(db=db, settings=settings, topic=topic)
    consumer.top_up_ms = 1000  # a slow broker's answer, on a busy machine, is still waited for
    consumer.apply_seconds = 2.0
    consumer.applying = asyncio.Event()
    await produce(settings, topic, [first.encode()], b"top-up")
    consumer.start()
    try:
        await asyncio.wait_for(consumer.applying.wait(), 30)
        await produce(settings, topic, [early.encode()], b"top-up")  # fetched and held
        await asyncio.sleep(0.5)
        await produce(settings, topic, [late.encode()], b"top-up")  # left at the broker
        await wait_until(lambda: len(consumer.batches) >= 2, timeout=30, message="two batches")
    finally:
        await consumer.stop()

    assert consumer.batches[:2] == [[first], [early, late]]
