"""Cases (信访事项) under faults. The cases service, a real process, dies just before or just
after a registration's or a routing's transaction commits. Before: nothing of the step is kept,
and the desk takes it again at the same version. After: the step is kept once, a retry at the
old version is refused as stale (a registration's retry is a duplicate), and the step is
published once when the service is back. Kafka down while desks register and route: every
request is answered, every step reaches the cases topic once when Kafka is back, and the feed,
paged with its cursor all along, neither skips nor repeats a step.

These kill processes: `make test` runs them on a stack of their own (docs/operations.md,
"Tests")."""

import asyncio
import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import kafka
from shared.access import service as access_service
from shared.access.models import Role
from shared.campaign import SHANGHAI, system_now
from shared.config import DEFAULT_CAMPAIGN_FILE
from shared.consumer import CRASH_EXIT_CODE
from shared.registry.bodies import BodyRepository, load_bodies
from tests.conftest import COUNTY, DEMO_UNITS, VILLAGE
from tests.support.app import bearer
from tests.support.cases import DEMO_BODIES, years_covered
from tests.support.pipeline import KeySpecs, Pipeline, running_pipeline
from tests.support.processes import free_port, uvicorn, wait_healthy
from tests.support.stack import IsolatedStack, read_topic, stack_command
from tests.support.waiting import poll, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]

BODY = "民政"
KEYS: KeySpecs = {
    "county_desk": (Role.desk, COUNTY),
    "county_reader": (Role.reader, COUNTY),
}
STEPS_SQL = "SELECT action FROM cases.case_step WHERE case_id = $1 ORDER BY step_id"
ALL_STEPS_SQL = "SELECT step_id FROM cases.case_step WHERE step_id > $1 ORDER BY step_id"
Step = tuple[str, str]  # (case_id, action)


@pytest.fixture(scope="module")
async def pipeline(
    stack: IsolatedStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    """The pipeline with the demo handling bodies loaded and a key of the county's 民政."""
    async with running_pipeline(
        campaign_file=DEFAULT_CAMPAIGN_FILE, registry=[DEMO_UNITS], keys=KEYS
    ) as running:
        async with running.db.engine.begin() as connection:
            await load_bodies(await BodyRepository.from_connection(connection), DEMO_BODIES)
            running.keys["county_civil"] = await access_service.create(
                connection, role=Role.handler, scope_code=COUNTY, body=BODY
            )
        this_year = system_now().astimezone(SHANGHAI).year
        try:
            async with years_covered(
                running.db,
                {this_year, this_year + 1},
                tmp_path_factory.mktemp("calendar"),
                database_url=running.settings.database_url,
            ):
                yield running
        finally:
            names = [topic.name for topic in kafka.topic_specs(running.settings)]
            with contextlib.suppress(Exception):
                await kafka.delete_topics(running.settings, names)


@contextmanager
def cases_process(
    pipeline: Pipeline, log: Path, **settings: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The cases service as a process on the pipeline's database and topics."""
    port = free_port()
    env = (
        os.environ
        | {
            "SANWU_DATABASE_URL": pipeline.settings.database_url,
            "SANWU_TOPIC_PREFIX": pipeline.settings.topic_prefix,
            "SANWU_CAMPAIGN_FILE": str(pipeline.settings.campaign_file),
            "SANWU_CASES_RELAY_IDLE_POLL_SECONDS": "0.2",
            "SANWU_LOG_JSON": "false",
        }
        | {f"SANWU_{name.upper()}": value for name, value in settings.items()}
    )
    with log.open("ab") as output:
        popen = subprocess.Popen(
            uvicorn("services.cases.main:create_app", port), env=env, stdout=output, stderr=output
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/healthz", popen)
        yield popen, url
    finally:
        if popen.poll() is None:
            popen.terminate()
            popen.wait(timeout=30)


def hours_ago(hours: int) -> str:
    return (system_now() - timedelta(hours=hours)).astimezone(SHANGHAI).isoformat()


def registration() -> dict[str, Any]:
    """A visit to the county's desk three hours ago; its steps follow an hour apart."""
    return {
        "case_id": str(uuid.uuid4()),
        "unit_code": VILLAGE,
        "received_at": hours_ago(3),
        "channel": "visit",
        "category": "土地征收",
        "petitioner_ref": uuid.uuid4().hex,
        "headcount": 1,
        "summary": "征地补偿款未足额发放",
    }


class Desk:
    """The county's desk and its 民政 on one cases process."""

    def __init__(self, pipeline: Pipeline, client: httpx.AsyncClient) -> None:
        self.keys = pipeline.keys
        self.client = client

    async def register(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            "/v1/cases", json=body, headers=bearer(self.keys["county_desk"])
        )

    async def route(self, case_id: str, *, version: int = 1) -> httpx.Response:
        return await self._step(
            "county_desk",
            case_id,
            "route",
            {"to": {"unit_code": COUNTY, "body": BODY}, "at": hours_ago(2)},
            version,
        )

    async def accept(self, case_id: str, *, version: int = 2) -> httpx.Response:
        at = hours_ago(1)
        body = {"reason": "属于本部门职责", "notified_at": at, "at": at}
        return await self._step("county_civil", case_id, "accept", body, version)

    async def _step(
        self, key: str, case_id: str, path: str, body: dict[str, Any], version: int
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/cases/{case_id}/{path}",
            json=body,
            headers=bearer(self.keys[key]) | {"If-Match": f'"{version}"'},
        )

    async def feed_page(self, since: str | None, *, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit} | ({"since": since} if since else {})
        response = await self.client.get(
            "/v1/feed/cases", params=params, headers=bearer(self.keys["county_reader"])
        )
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    async def feed_to_end(
        self, since: str | None, *, limit: int = 3
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every step after `since`, paged with the cursor; and the cursor at the end."""
        items: list[dict[str, Any]] = []
        while True:
            page = await self.feed_page(since, limit=limit)
            items += page["items"]
            if not page["items"] and page["next_cursor"] == since:
                return items, since
            since = page["next_cursor"]


@contextlib.asynccontextmanager
async def desk_on(url: str, pipeline: Pipeline) -> AsyncIterator[Desk]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield Desk(pipeline, client)


async def steps_of(pipeline: Pipeline, case_id: str) -> list[str]:
    async with pipeline.db.connection() as connection:
        rows = await connection.fetch(STEPS_SQL, uuid.UUID(case_id))
    return [row["action"] for row in rows]


async def step_ids_after(pipeline: Pipeline, step_id: int) -> list[int]:
    async with pipeline.db.connection() as connection:
        return [row["step_id"] for row in await connection.fetch(ALL_STEPS_SQL, step_id)]


async def published(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every case step on the cases topic, in offset order per partition (a case's steps
    share its partition)."""
    messages = await read_topic(pipeline.settings, pipeline.settings.cases_topic, timeout=30)
    return [json.loads(value) for _, _, value, _ in messages]


def actions_of(messages: list[dict[str, Any]], case_id: str) -> list[str]:
    return [m["step"]["action"] for m in messages if m["case"]["case_id"] == case_id]


async def take(desk: Desk, step: str, body: dict[str, Any]) -> httpx.Response:
    if step == "register":
        return await desk.register(body)
    return await desk.route(body["case_id"], version=1)


EXPECTED = {"register": ["registered"], "route": ["registered", "routed"]}
AGAIN = {
    ("register", "before_commit"): 201,
    ("register", "after_commit"): 200,  # the same registration: a duplicate
    ("route", "before_commit"): 200,
    ("route", "after_commit"): 412,  # stale: the routing made version 2
}


@pytest.mark.parametrize("step", ["register", "route"])
@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
async def test_the_cases_service_killed_around_a_steps_commit_keeps_and_publishes_it_once(
    point: str, step: str, pipeline: Pipeline, tmp_path: Path
) -> None:
    log = tmp_path / "cases.log"
    body = registration()
    case_id = body["case_id"]
    expected = EXPECTED[step]
    if step == "route":
        with cases_process(pipeline, log) as (_, url):
            async with desk_on(url, pipeline) as desk:
                registered = await desk.register(body)
                assert registered.status_code == 201, registered.text

    with cases_process(pipeline, log, cases_crash_at=point) as (popen, url):
        async with desk_on(url, pipeline) as desk:
            with contextlib.suppress(httpx.HTTPError):
                await take(desk, step, body)
        exit_code = await asyncio.to_thread(popen.wait, 30)
    assert exit_code == CRASH_EXIT_CODE, log.read_text()[-3000:]

    kept = expected[:-1] if point == "before_commit" else expected
    assert await steps_of(pipeline, case_id) == kept

    with cases_process(pipeline, log) as (_, url):
        async with desk_on(url, pipeline) as desk:
            again = await take(desk, step, body)
            assert again.status_code == AGAIN[step, point], again.text
            if again.status_code != 412:
                shown = again.json()
                assert shown["version"] == len(expected)
                assert shown["duplicate"] is (AGAIN[step, point] == 200 and step == "register")

            async def once() -> bool:
                return actions_of(await published(pipeline), case_id) == expected

            await wait_until(once, timeout=30, message="the case's steps published once")
            feed, _ = await desk.feed_to_end(None)

    assert await steps_of(pipeline, case_id) == expected
    assert [i["action"] for i in feed if i["case_id"] == case_id] == expected
    assert [i["step_id"] for i in feed] == await step_ids_after(pipeline, 0)


# --- Kafka down while the desks register ------------------------------------------------------

DESKS = 4
CASES_PER_DESK = 8


async def desk_at_work(desk: Desk) -> dict[str, list[str]]:
    """A desk registering cases one after another, routing every other one to 民政, which
    accepts it; returns each case's steps as taken."""
    taken: dict[str, list[str]] = {}
    for n in range(CASES_PER_DESK):
        body = registration()
        registered = await desk.register(body)
        assert registered.status_code == 201, registered.text
        taken[body["case_id"]] = ["registered"]
        if n % 2 == 0:
            routed = await desk.route(body["case_id"])
            assert routed.status_code == 200, routed.text
            accepted = await desk.accept(body["case_id"])
            assert accepted.status_code == 200, accepted.text
            taken[body["case_id"]] += ["routed", "accepted"]
    return taken


async def read_feed_until(
    desk: Desk, since: str | None, done: asyncio.Event
) -> list[dict[str, Any]]:
    """The feed paged by its cursor while the desks work, and to its end once they are done."""
    items: list[dict[str, Any]] = []
    while not done.is_set():
        page = await desk.feed_page(since, limit=5)
        items += page["items"]
        since = page["next_cursor"]
    rest, _ = await desk.feed_to_end(since, limit=5)
    return items + rest


@pytest.mark.timeout(240)
async def test_desks_register_while_kafka_is_down_and_every_step_follows_once(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    log = tmp_path / "cases.log"
    with cases_process(pipeline, log) as (_, url):
        async with desk_on(url, pipeline) as desk:
            _, start = await desk.feed_to_end(None, limit=1000)
            before = await step_ids_after(pipeline, 0)
            done = asyncio.Event()
            reader = asyncio.create_task(read_feed_until(desk, start, done))
            await stack_command("kafka-stop")
            try:
                assert not await kafka.reachable(pipeline.settings, timeout=3), "Kafka is up"
                taken: dict[str, list[str]] = {}
                for work in await asyncio.gather(*(desk_at_work(desk) for _ in range(DESKS))):
                    taken |= work
                done.set()
                feed = await reader
                assert not await kafka.reachable(pipeline.settings, timeout=3), (
                    "Kafka came back while the desks worked"
                )
            finally:
                done.set()
                await stack_command("kafka-start")

            async def all_published() -> list[dict[str, Any]]:
                ours = [m for m in await published(pipeline) if m["case"]["case_id"] in taken]
                steps = sum(len(actions) for actions in taken.values())
                return ours if len(ours) >= steps else []

            messages: list[dict[str, Any]] = await poll(
                all_published, timeout=120, interval=1, message="every step on the cases topic"
            )
            whole, _ = await desk.feed_to_end(None, limit=1000)

    made = [i for i in await step_ids_after(pipeline, 0) if i not in before]
    assert sorted(m["step_id"] for m in messages) == made  # each step once
    assert {case_id: actions_of(messages, case_id) for case_id in taken} == taken
    assert [i["step_id"] for i in feed] == made  # paged during the outage: none skipped
    assert {(i["case_id"], i["action"]) for i in feed} == {
        (case_id, action) for case_id, actions in taken.items() for action in actions
    }
    assert [i["step_id"] for i in whole] == before + made
