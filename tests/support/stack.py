"""Per-run isolation on the shared local stack: a database and a topic prefix of our own.

The stack is found the way deploy/stack.sh starts it: SANWU_PG_PORT and SANWU_KAFKA_PORT
(55432 and 59092 by default), so that fault tests can run against a second stack of their own
(`SANWU_STACK_DIR=... SANWU_PG_PORT=... SANWU_KAFKA_PORT=... SANWU_KAFKA_CONTROLLER_PORT=...`,
exported for both deploy/stack.sh and pytest). SANWU_TEST_ADMIN_DSN and
SANWU_KAFKA_BOOTSTRAP_SERVERS, when set, win."""

import asyncio
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PG_PORT = os.environ.get("SANWU_PG_PORT", "55432")
KAFKA_PORT = os.environ.get("SANWU_KAFKA_PORT", "59092")
BASE_DSN = os.environ.get(
    "SANWU_TEST_ADMIN_DSN", f"postgresql://sanwu@127.0.0.1:{PG_PORT}/postgres"
)
KAFKA_BOOTSTRAP = os.environ.get("SANWU_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{KAFKA_PORT}")


@dataclass(frozen=True)
class IsolatedStack:
    run_id: str
    database: str
    database_url: str
    topic_prefix: str

    def env(self) -> dict[str, str]:
        return {
            "SANWU_ENVIRONMENT": "test",
            "SANWU_DATABASE_URL": self.database_url,
            "SANWU_TOPIC_PREFIX": self.topic_prefix,
            "SANWU_KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
        }


def new_stack() -> IsolatedStack:
    run_id = uuid.uuid4().hex[:10]
    database = f"sanwu_test_{run_id}"
    host = BASE_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return IsolatedStack(run_id, database, f"{host}/{database}", f"test-{run_id}.")


def ensure_stack_up() -> None:
    status = subprocess.run(
        [str(ROOT / "deploy" / "stack.sh"), "status"], capture_output=True, text=True, check=False
    ).stdout
    if "down" in status:
        subprocess.run([str(ROOT / "deploy" / "stack.sh"), "up"], check=True)


async def create_database(name: str) -> None:
    connection = await asyncpg.connect(BASE_DSN)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(BASE_DSN)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def read_topic(
    settings: Settings, topic: str, *, timeout: float = 10.0
) -> list[tuple[int, bytes | None, bytes, dict[str, bytes]]]:
    """Everything on a topic right now: (partition, key, value, headers), in offset order
    per partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        messages: list[tuple[int, bytes | None, bytes, dict[str, bytes]]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            if loop.time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                messages.extend((tp.partition, r.key, r.value, dict(r.headers)) for r in records)
        return messages
    finally:
        await consumer.stop()
