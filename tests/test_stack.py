"""The local stack is real: PostgreSQL answers SQL and Kafka round-trips a message."""

import uuid

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from shared import kafka
from shared.config import Settings
from shared.db import Database
from tests.support.stack import read_topic


async def test_postgresql_is_a_real_server(db: Database) -> None:
    async with db.engine.connect() as connection:
        version = (await connection.execute(sa.text("SHOW server_version"))).scalar_one()
    assert version.startswith("15") or int(version.split(".")[0]) >= 15


async def test_kafka_round_trips_a_message(settings: Settings) -> None:
    producer: AIOKafkaProducer = kafka.producer(settings)
    await producer.start()
    marker = uuid.uuid4().hex.encode()
    try:
        await producer.send_and_wait(settings.dead_letter_topic, value=marker, key=b"probe")
    finally:
        await producer.stop()
    values = [value for _, _, value, _ in await read_topic(settings, settings.dead_letter_topic)]
    assert marker in values


async def test_topics_have_the_configured_partitions(settings: Settings) -> None:
    producer = kafka.producer(settings)
    await producer.start()
    try:
        assert (
            len(await producer.partitions_for(settings.events_topic)) == settings.event_partitions
        )
        assert (
            len(await producer.partitions_for(settings.status_topic)) == settings.status_partitions
        )
    finally:
        await producer.stop()
