"""The cases service as its tests drive it: in process, on the session's database, with a clock
of the test's; the `sanwu calendar` commands run as an operator would; the years a test loads
taken out again."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from services.cases.config import CasesSettings
from services.cases.main import create_app
from shared.access import service as access_service
from shared.access.models import Role
from shared.calendar.store import Deadlines
from shared.campaign import system_now
from shared.config import Settings
from shared.db import Database
from shared.registry.bodies import BodyRepository, load_bodies
from tests.support.app import bearer, serve
from tests.support.stack import without_user
from tests.support.waiting import poll

SANWU = str(Path(sys.executable).parent / "sanwu")
DEMO_BODIES = Path(__file__).parents[2] / "data" / "demo-bodies.csv"
PROVINCE = "340000000000"  # 安徽省
CITY = "340700000000"  # 铜陵市
COUNTY = "340722000000"  # 枞阳县
TOWNSHIP = "340722100000"  # 枞阳镇
VILLAGE = "340722100201"
SIBLING_TOWNSHIP = "340722101000"  # 横埠镇
SIBLING_VILLAGE = "340722101201"


@dataclass
class RunningCases:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def deadlines(self) -> Deadlines:
        deadlines: Deadlines = self.app.state.deadlines
        return deadlines


class MovableClock:
    """Now, or as many days later as a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.start = start
        self.days = 0

    def __call__(self) -> datetime:
        return (self.start or system_now()) + timedelta(days=self.days)


def cases_settings(settings: Settings, *, workers: bool = True) -> CasesSettings:
    """The session's settings; the service logs in as its own role (`sanwu_cases`)."""
    return CasesSettings(
        **settings.model_dump(include={"environment", "topic_prefix"}),
        database_url=without_user(settings.database_url),
        registry_refresh_seconds=0.3,
        cases_relay_idle_poll_seconds=0.2,
        # Tests run the watch's rounds themselves, at the day their clock says: a round of
        # another app of the session, at its own day, would judge their cases otherwise.
        cases_clock_watch_seconds=86_400,
        cases_run_consumer=workers,
        cases_run_relay=workers,
    )


@asynccontextmanager
async def running_cases(
    settings: Settings, *, key: str, today: datetime | MovableClock, workers: bool = True
) -> AsyncIterator[RunningCases]:
    """`workers`: with the event consumer and the outbox relay."""
    clock = today if isinstance(today, MovableClock) else MovableClock(today)
    app = create_app(cases_settings(settings, workers=workers), clock=clock)
    async with serve(app) as client:
        client.headers.update(bearer(key))
        yield RunningCases(app, client)


async def sanwu_calendar(
    *args: str, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`sanwu calendar ...` against the session's database (its environment), or the one
    `database_url` names."""
    env = os.environ | {"SANWU_LOG_LEVEL": "WARNING"}
    if database_url is not None:
        env["SANWU_DATABASE_URL"] = database_url
    return await asyncio.to_thread(
        subprocess.run,
        [SANWU, "calendar", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


FORGET_DAY_SQL = "DELETE FROM cases.calendar_day WHERE day = $1"
NOTIFY_SQL = "SELECT pg_notify('cases_calendar', '')"
FORGET_YEAR_SQL = (
    "DELETE FROM cases.calendar_day WHERE extract(year FROM day) = $1",
    "DELETE FROM cases.calendar_year WHERE year = $1",
    "SELECT pg_notify('cases_calendar', '')",
)


COVERED_YEARS_SQL = "SELECT year FROM cases.calendar_year"


@asynccontextmanager
async def years_covered(
    db: Database, years: set[int], work_dir: Path, *, database_url: str | None = None
) -> AsyncIterator[None]:
    """The years a test's real dates need in the calendar: those the holiday package does not
    have yet (late in a year, the next) are loaded for the test as test data (New Year's Day
    off, the rest Monday to Friday) the way an operator loads a year, and taken out after."""
    async with db.connection() as connection:
        covered = {row["year"] for row in await connection.fetch(COVERED_YEARS_SQL)}
    added = sorted(years - covered)
    for year in added:
        path = work_dir / f"test-{year}.csv"
        path.write_text(f"date,kind,name\n{year}-01-01,holiday,元旦\n", encoding="utf-8")
        loaded = await sanwu_calendar("load", str(path), database_url=database_url)
        assert loaded.returncode == 0, loaded.stderr
    try:
        yield
    finally:
        for year in added:
            await forget_year(db, year)


async def forget_year(db: Database, year: int) -> None:
    """A year a test loaded, taken out of the calendar again (as the migrator)."""
    async with db.connection() as connection, connection.transaction():
        await connection.execute(FORGET_YEAR_SQL[0], year)
        await connection.execute(FORGET_YEAR_SQL[1], year)
        await connection.execute(FORGET_YEAR_SQL[2])


async def forget_day(db: Database, day: date) -> None:
    """A day a test loaded, taken out of the calendar again (as the migrator)."""
    async with db.connection() as connection, connection.transaction():
        await connection.execute(FORGET_DAY_SQL, day)
        await connection.execute(NOTIFY_SQL)


async def posted(intake: httpx.AsyncClient, key: str, event: dict[str, Any]) -> str:
    """An event accepted by intake (its relay publishes it)."""
    response = await intake.post("/v1/events", json=event, headers=bearer(key))
    assert response.status_code in (200, 201, 202), response.text
    return str(event["event_id"])


async def file_when_known(cases: RunningCases, key: str, body: dict[str, Any]) -> httpx.Response:
    """The dispute filed once the service has read its event from the topic."""

    async def filed() -> httpx.Response | None:
        response = await cases.client.post("/v1/disputes", json=body, headers=bearer(key))
        return None if response.status_code == 404 else response

    found: httpx.Response | None = await poll(
        filed, timeout=30, message="the event to reach the cases service"
    )
    assert found is not None
    return found


def dispute(event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "dispute_id": str(uuid.uuid4()),
        "event_id": event_id,
        "grounds": "not_ours",
        "proposed_unit": SIBLING_VILLAGE,
        "statement": "来访人户籍不在本村",
    } | fields


async def county_with_civil_affairs(
    db: Database, directory: Path, *, county: str, name: str, reader: Role
) -> dict[str, str]:
    """The county's 民政 body loaded, and keys of its desk, of that body (handler) and of a
    `reader`-role key of the county, by "desk", "body" and the role's name."""
    bodies = directory / "bodies.csv"
    bodies.write_text(f"unit_code,body,name\n{county},民政,{name}\n", encoding="utf-8")
    async with db.engine.begin() as connection:
        await load_bodies(await BodyRepository.from_connection(connection), bodies)
        return {
            "desk": await access_service.create(connection, role=Role.desk, scope_code=county),
            "body": await access_service.create(
                connection, role=Role.handler, scope_code=county, body="民政"
            ),
            reader.value: await access_service.create(connection, role=reader, scope_code=county),
        }
