"""Per-run isolation on the shared local stack: a database and a topic prefix of our own.

The stack is found the way deploy/stack.sh starts it: SANWU_PG_PORT and SANWU_KAFKA_PORT
(25432 and 29092 by default), so that fault tests can run against a second stack of their own
(`SANWU_STACK_DIR=... SANWU_PG_PORT=... SANWU_KAFKA_PORT=... SANWU_KAFKA_CONTROLLER_PORT=...`,
exported for both deploy/stack.sh and pytest). With SANWU_KAFKA_BROKERS above 1 the brokers
are a cluster on ports 10 apart, as deploy/stack.sh lays them out. SANWU_TEST_ADMIN_DSN and
SANWU_KAFKA_BOOTSTRAP_SERVERS, when set, win.

Tests that stop or kill parts of the stack (marked `faults` or `cluster`) refuse the default
stack, which a developer or `make run` may be using: `make test-faults` gives them their own."""

import asyncio
import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from aiokafka.admin import NewTopic
from sqlalchemy.engine import make_url

from shared import kafka
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PG_PORT = os.environ.get("SANWU_PG_PORT", "25432")
KAFKA_PORT = os.environ.get("SANWU_KAFKA_PORT", "29092")
BASE_DSN = os.environ.get(
    "SANWU_TEST_ADMIN_DSN", f"postgresql://sanwu@127.0.0.1:{PG_PORT}/postgres"
)
STACK_SCRIPT = str(ROOT / "deploy" / "stack.sh")
STACK_DIR = Path(os.environ.get("SANWU_STACK_DIR", ROOT / ".stack"))
BROKERS = int(os.environ.get("SANWU_KAFKA_BROKERS", os.environ.get("KAFKA_BROKERS", "1")))
PORT_STRIDE = 10  # deploy/stack.sh: node N listens on the base port + 10 × (N - 1)
KAFKA_BOOTSTRAP = os.environ.get(
    "SANWU_KAFKA_BOOTSTRAP_SERVERS",
    ",".join(f"127.0.0.1:{int(KAFKA_PORT) + PORT_STRIDE * n}" for n in range(BROKERS)),
)
# The stack's passwords (deploy/stack.sh writes them), for every connection the tests and the
# processes they start make; an admin DSN of one's own brings its own.
if "SANWU_TEST_ADMIN_DSN" not in os.environ:
    os.environ["PGPASSFILE"] = str(STACK_DIR / "pgpass")
# The cluster's superuser: only for what no role of the project may do (changing history).
SUPERUSER = "postgres"


# deploy/stack.sh's defaults: the stack `make up` and `make run` start.
DEFAULT_STACK_DIR = ROOT / ".stack"
DEFAULT_PORTS = {"PostgreSQL": 25432, "Kafka": 29092, "the Kafka controller": 29093}


def default_stack_in_use() -> str | None:
    """Why the stack under test is the default one (so not to be broken), or None."""
    ports = [urlsplit(BASE_DSN).port]
    ports += [int(server.rsplit(":", 1)[1]) for server in KAFKA_BOOTSTRAP.split(",")]
    ports.append(int(os.environ.get("SANWU_KAFKA_CONTROLLER_PORT", "29093")))
    for name, port in DEFAULT_PORTS.items():
        if port in ports:
            return f"{name} on port {port} is the default stack's"
    if STACK_DIR.resolve() == DEFAULT_STACK_DIR.resolve():
        return f"{STACK_DIR} is the default stack's directory"
    return None


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
    """A database and topic prefix of a run's own. Its URL names no user, so each service logs
    in as its own role and everything else (the tests, the commands) as the migrator."""
    run_id = uuid.uuid4().hex[:10]
    database = f"sanwu_test_{run_id}"
    url = make_url(BASE_DSN).set(drivername="postgresql+asyncpg", database=database)
    return IsolatedStack(
        run_id, database, without_user(url.render_as_string(False)), f"test-{run_id}."
    )


def without_user(database_url: str) -> str:
    """The URL naming no user: a service given it logs in as its own role."""
    return make_url(database_url).set(username=None).render_as_string(False)


def dsn_as(role: str, database: str) -> str:
    """An asyncpg DSN of the stack under test for `role` on `database` (password: PGPASSFILE)."""
    return make_url(BASE_DSN).set(username=role, database=database).render_as_string(False)


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
    messages: list[tuple[int, bytes | None, bytes, dict[str, bytes]]] = []
    try:
        async with (
            asyncio.timeout(timeout),
            contextlib.aclosing(kafka.read_to_end(settings, topic)) as chunks,
        ):
            async for records in chunks:
                messages.extend((r.partition, r.key, r.value, dict(r.headers)) for r in records)
    except TimeoutError:
        raise TimeoutError(f"could not read {topic} to its end") from None
    return messages


@contextlib.asynccontextmanager
async def scratch_topic(
    settings: Settings, name: str, *, partitions: int = 1
) -> AsyncIterator[str]:
    """A topic of this run's prefix, deleted afterwards; yields its full name."""
    topic = f"{settings.events_topic}.{name}-{uuid.uuid4().hex[:8]}"
    admin = kafka.admin(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, settings.kafka_replication_factor)])
    finally:
        await admin.close()
    try:
        yield topic
    finally:
        with contextlib.suppress(Exception):
            await kafka.delete_topics(settings, [topic])


def kafka_libs_dir() -> Path | None:
    """The Kafka jars of the stack under test when they are complete for this checkout's
    deploy/kafka/pom.xml (another broker can run from them without resolving its own)."""
    libs = STACK_DIR / "kafka" / "libs"
    marker = libs / ".complete"
    pom = ROOT / "deploy" / "kafka" / "pom.xml"
    if marker.is_file() and marker.read_bytes() == pom.read_bytes():
        return libs
    return None


async def stack_command(*args: str) -> str:
    """Run deploy/stack.sh with these arguments on the stack under test; returns its stdout."""
    process = await asyncio.create_subprocess_exec(
        STACK_SCRIPT, *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"deploy/stack.sh {' '.join(args)} failed ({process.returncode})")
    return out.decode()


async def kafka_leader() -> int:
    """The node id of the cluster's active controller."""
    return int((await stack_command("kafka-leader")).strip())
