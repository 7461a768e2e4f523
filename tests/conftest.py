"""The whole suite runs against the real local stack (deploy/stack.sh): each run gets its own
PostgreSQL database and its own Kafka topic prefix, built by the real migrations."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.migrations import migrate_all
from shared import config as shared_config
from shared import kafka
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database
from shared.registry.generator import ProvinceShape, generate, write_csv
from shared.registry.loader import load_file
from tests.support.app import bearer, serve  # noqa: F401  (re-exported for tests)
from tests.support.stack import (
    IsolatedStack,
    create_database,
    default_stack_in_use,
    drop_database,
    ensure_stack_up,
    new_stack,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO_UNITS = ROOT / "data" / "demo-units.csv"
# A small second province so that tests see several counties and cities. Like the demo units
# it is shared and read only: a test that loads or moves units does so in a province of its own
# package's (the first two digits of the codes; in use: evaluation 45-48, 52 and 54, reporting
# 61 and 62, e2e 53 and 44 in databases of their own, tests/ 36, 37 and 55, cli 39, security 63
# in a database of its own).
SMALL_PROVINCE = ProvinceShape(
    province="35", cities=2, counties=4, townships_per_county=3, villages_per_township=3
)

COUNTY = "340722000000"  # 枞阳县
TOWNSHIP = "340722100000"  # 枞阳镇
VILLAGE = "340722100201"  # a village of 枞阳镇
SIBLING_TOWNSHIP = "340722101000"  # 横埠镇
SIBLING_VILLAGE = "340722101201"


DESTRUCTIVE = ("faults", "cluster")  # markers of tests that stop or kill parts of the stack


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests that break the stack never run on the default one, which `make run` may be
    using: `make test-faults` (or `make test`) starts a stack of their own."""
    marked = [name for name in DESTRUCTIVE if item.get_closest_marker(name)]
    if marked and (reason := default_stack_in_use()):
        pytest.skip(
            f"refused: {marked[0]} tests stop and kill parts of the stack, and {reason}; "
            "run them with `make test-faults`, on a stack of their own"
        )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedStack]:
    ensure_stack_up()
    test_stack = new_stack()
    saved = {k: os.environ.get(k) for k in test_stack.env()}
    os.environ.update(test_stack.env())
    shared_config.get_settings.cache_clear()
    asyncio.run(create_database(test_stack.database))
    yield test_stack
    asyncio.run(drop_database(test_stack.database))
    settings = Settings()
    topics = [topic.name for topic in kafka.topic_specs(settings)]
    with contextlib.suppress(Exception):
        asyncio.run(kafka.delete_topics(settings, topics))
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
async def settings(stack: IsolatedStack, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings()
    await migrate_all(settings)
    province_csv = tmp_path_factory.mktemp("registry") / "province.csv"
    with province_csv.open("w", encoding="utf-8") as handle:
        write_csv(generate(SMALL_PROVINCE), handle)
    db = Database.from_settings(settings, pool_size=1)
    async with db.engine.begin() as connection:
        await load_file(connection, DEMO_UNITS)
        await load_file(connection, province_csv)
    await db.dispose()
    await kafka.ensure_topics(settings)
    return settings


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(settings, pool_size=4)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def keys(db: Database) -> dict[str, str]:
    """Keys by name: desk and reader keys for the county, a township and its sibling, an admin."""
    specs = {
        "county_desk": (Role.desk, COUNTY),
        "township_desk": (Role.desk, TOWNSHIP),
        "sibling_desk": (Role.desk, SIBLING_TOWNSHIP),
        "county_reader": (Role.reader, COUNTY),
        "township_reader": (Role.reader, TOWNSHIP),
        "sibling_reader": (Role.reader, SIBLING_TOWNSHIP),
        "admin": (Role.admin, None),
    }
    created = {}
    async with db.engine.begin() as connection:
        for name, (role, scope) in specs.items():
            created[name] = await access_service.create(connection, role=role, scope_code=scope)
    return created


# Fixtures other packages share: a running intake app and its relay.
from tests.support.intake import intake, intake_settings, relay_control  # noqa: E402, F401
