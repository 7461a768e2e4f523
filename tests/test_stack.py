"""The local stack is real: PostgreSQL answers SQL and Kafka round-trips a message."""

import re
import uuid

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from shared import kafka
from shared.config import Settings
from shared.db import Database
from tests.support.stack import ROOT, read_topic


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


# Linux hands these to client sockets (net.ipv4.ip_local_port_range): a port the suite's own
# connections may hold at the moment a stack starts listening.
EPHEMERAL_PORTS = range(32768, 61000)


def test_every_port_the_project_picks_lies_outside_the_ephemeral_range() -> None:
    """The fault stack once found its PostgreSQL port taken by a connection of the suite."""
    sources = {
        "deploy/stack.sh": r"SANWU_[A-Z_]*PORT:-(\d+)",
        "deploy/keycloak.sh": r"SANWU_KEYCLOAK_PORT:-(\d+)",
        "Makefile": r"SANWU_[A-Z_]*PORT=(\d+)",
        "shared/config.py": r"127\.0\.0\.1:(\d+)",
    }
    picked = {
        (name, int(port))
        for name, pattern in sources.items()
        for port in re.findall(pattern, (ROOT / name).read_text())
    }
    assert len({name for name, _ in picked}) == len(sources)  # every source names a port
    assert [(name, port) for name, port in sorted(picked) if port in EPHEMERAL_PORTS] == []
