"""Reading a topic to its end (the rebuilds, the tests and the bench all do): exactly what
was there when the end was taken, in offset order per partition, and later what came since."""

import uuid
from collections.abc import AsyncIterator

import pytest

from shared import kafka
from shared.config import Settings
from tests.support.stack import scratch_topic


@pytest.fixture
async def topic(settings: Settings) -> AsyncIterator[str]:
    async with scratch_topic(settings, "reader-test", partitions=3) as name:
        yield name


async def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()


async def test_reads_what_was_there_at_the_end_taken_then_what_came_since(
    settings: Settings, topic: str
) -> None:
    first = [f"first-{n}".encode() for n in range(30)]
    later = [f"later-{n}".encode() for n in range(10)]
    await produce(settings, topic, first)

    async with kafka.TopicReader(settings, topic) as reader:
        assert len(reader.partitions) == 3
        ends = await reader.end_offsets()
        assert ends == await kafka.end_offsets(settings, topic)
        await produce(settings, topic, later)
        read = [r async for records in reader.read_to(ends, chunk=7) for r in records]
        assert sorted(r.value for r in read) == sorted(first)
        for partition in {r.partition for r in read}:
            offsets = [r.offset for r in read if r.partition == partition]
            assert offsets == sorted(offsets)
        since = await reader.end_offsets()
        rest = [r.value async for records in reader.read_to(since) for r in records]
        assert sorted(rest) == sorted(later)


async def test_a_topic_that_does_not_exist_reads_as_empty(settings: Settings) -> None:
    missing = f"{settings.events_topic}.missing-{uuid.uuid4().hex[:8]}"

    read = [records async for records in kafka.read_to_end(settings, missing)]

    assert read == []
    assert await kafka.end_offsets(settings, missing) == {}
