"""A bench run's own corner of the shared stack: a database `sanwu_bench_<id>` built by the
migrations, a Kafka topic prefix `bench-<id>.`, a registry and desk keys. Everything is dropped
when the run ends, whether it succeeds, fails or is interrupted; the shared PostgreSQL and Kafka
themselves are never stopped."""

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy.engine import make_url

from bench.report import ROOT
from services.migrations import migrate_all
from shared import kafka
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database, asyncpg_dsn
from shared.registry.generator import ProvinceShape, generate, write_csv
from shared.registry.loader import load_file

DEMO_UNITS = ROOT / "data" / "demo-units.csv"
DEMO_COUNTY = "340722000000"  # 枞阳县

SettingsT = TypeVar("SettingsT", bound=Settings)


@dataclass
class BenchEnvironment:
    run_id: str
    database: str
    database_url: str
    topic_prefix: str
    db: Database
    work_dir: Path
    scratch_topics: list[str] = field(default_factory=list)

    @property
    def services_url(self) -> str:
        """The database URL without a user: each service logs in as its own role, as deployed
        (the bench's own connections, `database_url`, are the migrator's)."""
        return make_url(self.database_url).set(username=None).render_as_string(False)

    def variables(self) -> dict[str, str]:
        """The SANWU_* settings that point a service at this run's database and topics."""
        return {
            "SANWU_ENVIRONMENT": "test",
            "SANWU_DATABASE_URL": self.services_url,
            "SANWU_TOPIC_PREFIX": self.topic_prefix,
            "SANWU_LOG_LEVEL": "WARNING",
        }

    def service_env(self, **overrides: str) -> dict[str, str]:
        """The environment of a service process: ours, this run's settings, then overrides."""
        return os.environ | self.variables() | overrides

    def settings(self) -> Settings:
        return self.settings_as(Settings)

    def settings_as(self, kind: type[SettingsT], **overrides: Any) -> SettingsT:
        """A service's settings pointed at this run (in-process, without the environment)."""
        values: dict[str, Any] = {
            "database_url": self.services_url,
            "topic_prefix": self.topic_prefix,
        }
        return kind(**(values | overrides))

    # --- reference data and keys ---------------------------------------------------------

    async def load_registry(self, path: Path) -> None:
        async with self.db.engine.begin() as connection:
            await load_file(connection, path)

    async def load_province(self, shape: ProvinceShape) -> Path:
        """Generate a synthetic province, load it, and return its CSV."""
        path = self.work_dir / f"province-{shape.province}.csv"
        with path.open("w", encoding="utf-8") as handle:
            write_csv(generate(shape), handle)
        await self.load_registry(path)
        return path

    async def create_keys(self, *, role: Role, scope_code: str | None, count: int) -> list[str]:
        async with self.db.engine.begin() as connection:
            return [
                await access_service.create(
                    connection, role=role, scope_code=scope_code, label=f"bench {self.run_id}"
                )
                for _ in range(count)
            ]

    async def unit_codes(self, *, level: str, within: str) -> list[str]:
        """Codes of the units at `level` whose code starts like `within`'s (same county)."""
        prefix = within.rstrip("0")
        async with self.db.engine.connect() as connection:
            rows = await connection.execute(
                sa.text(
                    "SELECT code FROM registry.units WHERE level = :level AND code LIKE :prefix "
                    "ORDER BY code"
                ),
                {"level": level, "prefix": f"{prefix}%"},
            )
            return [row.code for row in rows]

    # --- Kafka -----------------------------------------------------------------------------

    async def scratch_topic(self, name: str, *, like: str | None = None) -> str:
        """A topic of this run (created now, deleted at the end) with the partitions and
        configs of the project topic `like` (the petition-event topic by default)."""
        settings = self.settings()
        model = like or settings.events_topic
        spec = next(t for t in kafka.topic_specs(settings) if t.name == model)
        topic = f"{self.topic_prefix}{name}"
        admin = kafka.admin(settings)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(topic, spec.num_partitions, spec.replication_factor, topic_configs={})]
            )
            self.scratch_topics.append(topic)
            await _wait_for_leaders(admin, topic, partitions=spec.num_partitions)
        finally:
            await admin.close()
        return topic

    async def topic_size(self, topic: str) -> int:
        """Messages on a topic: the sum of its partitions' end offsets."""
        return sum((await kafka.end_offsets(self.settings(), topic)).values())


@asynccontextmanager
async def isolated_environment(work_dir: Path) -> AsyncIterator[BenchEnvironment]:
    """Create, migrate and load the run's database and topics; drop them all on the way out."""
    base = Settings()
    run_id = uuid.uuid4().hex[:8]
    database = f"sanwu_bench_{run_id}"
    database_url = base.database_url.rsplit("/", 1)[0] + f"/{database}"
    admin_dsn = asyncpg_dsn(base.database_url.rsplit("/", 1)[0] + "/postgres")
    await _execute(admin_dsn, f'CREATE DATABASE "{database}"')
    topic_prefix = f"bench-{run_id}."
    settings = Settings(database_url=database_url, topic_prefix=topic_prefix)
    env: BenchEnvironment | None = None
    try:
        env = BenchEnvironment(
            run_id=run_id,
            database=database,
            database_url=database_url,
            topic_prefix=topic_prefix,
            db=Database.from_settings(settings, pool_size=4),
            work_dir=work_dir,
        )
        await migrate_all(settings)
        await env.load_registry(DEMO_UNITS)
        await kafka.ensure_topics(env.settings())
        yield env
    finally:
        if env is not None:
            await env.db.dispose()
            await _clean_up(f"topics {topic_prefix}*", _delete_topics(env))
        await _clean_up(
            f"database {database}",
            _execute(admin_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'),
        )


async def _clean_up(what: str, step: Awaitable[None]) -> None:
    """Run one clean-up step; if it fails (the stack went away meanwhile), say what is left
    rather than hide the run's own outcome."""
    try:
        await step
    except Exception as exc:
        print(f"could not remove {what}: {exc!r}; remove it by hand", file=sys.stderr)


async def postgres_version() -> str:
    connection = await asyncpg.connect(asyncpg_dsn(Settings().database_url))
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topic: str, *, partitions: int, timeout: float = 30
) -> None:
    """Until every partition of a new topic has a leader, producing to it only retries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (described,) = await admin.describe_topics([topic])
        led = [p for p in described["partitions"] if p["error_code"] == 0 and p["leader"] >= 0]
        if described["error_code"] == 0 and len(led) == partitions:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"topic {topic} has no leader for every partition")


async def _execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _delete_topics(env: BenchEnvironment) -> None:
    settings = env.settings()
    names = [topic.name for topic in kafka.topic_specs(settings)]
    await kafka.delete_topics(settings, names + env.scratch_topics)
