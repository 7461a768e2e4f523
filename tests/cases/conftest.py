"""The cases service on the session's database, with the keys its tests need."""

from collections.abc import AsyncIterator

import httpx
import pytest

from shared.access import service as access_service
from shared.access.models import Role
from shared.campaign import SHANGHAI, system_now
from shared.config import Settings
from shared.db import Database
from shared.registry.bodies import BodyRepository, load_bodies
from tests.support.cases import (
    CITY,
    COUNTY,
    DEMO_BODIES,
    PROVINCE,
    TOWNSHIP,
    MovableClock,
    RunningCases,
    running_cases,
    years_covered,
)
from tests.support.intake import RelayControl


@pytest.fixture(scope="package")
async def case_keys(db: Database, keys: dict[str, str]) -> dict[str, str]:
    async with db.engine.begin() as connection:
        made = {
            name: await access_service.create(connection, role=role, scope_code=scope)
            for name, role, scope in [
                ("county_bureau", Role.bureau, COUNTY),
                ("city_bureau", Role.bureau, CITY),
            ]
        }
    return keys | made


@pytest.fixture(scope="package")
async def handler_keys(db: Database, case_keys: dict[str, str]) -> dict[str, str]:
    """The demo bodies loaded (as an operator would), and keys of some of them, and of the
    province's bureau (复核 above the city)."""
    async with db.engine.begin() as connection:
        await load_bodies(await BodyRepository.from_connection(connection), DEMO_BODIES)
        made = {
            name: await access_service.create(
                connection, role=Role.handler, scope_code=scope, body=body
            )
            for name, scope, body in [
                ("county_civil", COUNTY, "民政"),
                ("county_justice", COUNTY, "司法"),
                ("township_civil", TOWNSHIP, "民政"),
            ]
        }
        made["province_bureau"] = await access_service.create(
            connection, role=Role.bureau, scope_code=PROVINCE
        )
    return case_keys | made


@pytest.fixture(scope="package")
async def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture(scope="package")
async def disputes_app(
    settings: Settings,
    db: Database,
    case_keys: dict[str, str],
    clock: MovableClock,
    relay_control: RelayControl,
    intake: httpx.AsyncClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningCases]:
    """The service with its consumer and relay, intake publishing the events it reads. Events
    are accepted now, so the windows need this year and the next in the calendar (the tests
    move the clock past a window's end); the calendar tests, which run first and want a year
    missing, work at a fixed date of their own."""
    relay_control.start()
    this_year = system_now().astimezone(SHANGHAI).year
    async with (
        years_covered(db, {this_year, this_year + 1}, tmp_path_factory.mktemp("calendar")),
        running_cases(settings, key=case_keys["township_reader"], today=clock) as running,
    ):
        yield running


@pytest.fixture(autouse=True)
def clock_back(clock: MovableClock) -> None:
    clock.days = 0
